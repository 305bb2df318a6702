//! The programs trainwatch supervises during the benchmarks. They write to standard output
//! (the job's log, once trainwatch has started them) with unbuffered `write(2)` calls, so a
//! stamp taken just before a write is the moment the line reaches the log.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::gen::{chained_traceback, letters, LogGen};
use crate::probe::mono_ns;

/// Standard output as an unbuffered file (never closed by us).
struct RawStdout(ManuallyDrop<File>);

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn raw_stdout() -> RawStdout {
    // SAFETY: fd 1 is open for the life of the process; ManuallyDrop keeps us from closing it.
    RawStdout(ManuallyDrop::new(unsafe { File::from_raw_fd(1) }))
}

#[derive(Debug, clap::Args)]
pub struct GenLogArgs {
    /// Bytes to write (suffixes K, M, G); as fast as possible unless --rate is given.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Bytes per second (suffixes K, M, G).
    #[arg(long, value_parser = parse_size)]
    pub rate: Option<u64>,
    /// Stop after this many seconds (with --rate).
    #[arg(long)]
    pub secs: Option<f64>,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// End with a chained traceback (root cause first); its write time goes to --stamps.
    #[arg(long)]
    pub fatal_at_end: bool,
    /// Where to write `0 <ns>` (CLOCK_MONOTONIC) just before the final fatal line.
    #[arg(long)]
    pub stamps: Option<PathBuf>,
    /// Exit status to end with.
    #[arg(long, default_value_t = 0)]
    pub exit_code: i32,
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as u64)
        .map_err(|e| format!("{s:?}: {e}"))
}

/// `gen-log`: a training log of a given size, or at a given rate for a while.
pub fn gen_log(a: &GenLogArgs) -> io::Result<i32> {
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(raw_stdout()),
    };
    let mut g = LogGen::new(a.seed);
    let mut buf = Vec::with_capacity(9 << 20);
    let start = mono_ns();
    let mut written: u64 = 0;
    loop {
        let elapsed = (mono_ns() - start) as f64 / 1e9;
        if a.secs.is_some_and(|s| elapsed >= s) {
            break;
        }
        let mut want: u64 = 8 << 20;
        if let Some(size) = a.size {
            if written >= size {
                break;
            }
            want = want.min(size - written);
        }
        if let Some(rate) = a.rate {
            let due = (rate as f64 * elapsed) as u64;
            if due <= written {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            want = want.min(due - written);
        }
        buf.clear();
        g.fill(&mut buf, want as usize);
        out.write_all(&buf)?;
        written += buf.len() as u64;
    }
    if a.fatal_at_end {
        let (head, root, rest) = chained_traceback("final");
        out.write_all(head.as_bytes())?;
        if let Some(p) = &a.stamps {
            std::fs::write(p, format!("0 {}\n", mono_ns()))?;
        }
        out.write_all(root.as_bytes())?;
        out.write_all(rest.as_bytes())?;
    }
    out.flush()?;
    Ok(a.exit_code)
}

#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// Ordinary output, bytes per second.
    #[arg(long, value_parser = parse_size, default_value = "1M")]
    pub rate: u64,
    /// A FIFO: each `i` read from it injects one error, `q` ends the job.
    #[arg(long)]
    pub trigger: PathBuf,
    /// Appends `<k> <ns>` (CLOCK_MONOTONIC) just before the k-th error's first fatal line.
    #[arg(long)]
    pub stamps: PathBuf,
    /// Safety bound: the job ends by itself after this long.
    #[arg(long, default_value_t = 600.0)]
    pub max_secs: f64,
}

/// `inject`: ordinary lines at a steady rate, and a chained traceback with a fresh text each
/// time the orchestrator asks for one. Output goes on between injections, as a training
/// loop with a background thread that crashed would.
pub fn inject(a: &InjectArgs) -> io::Result<i32> {
    let mut out = raw_stdout();
    let mut trigger = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&a.trigger)?;
    let mut stamps = OpenOptions::new().create(true).append(true).open(&a.stamps)?;
    let mut g = LogGen::new(2).without_handled_tracebacks();
    let mut buf = Vec::with_capacity(1 << 20);
    let start = mono_ns();
    let mut written: u64 = 0;
    let mut k: u64 = 0;
    let mut cmd = [0u8; 16];
    loop {
        let now = mono_ns();
        let elapsed = (now - start) as f64 / 1e9;
        if elapsed > a.max_secs {
            return Ok(0);
        }
        let due = (a.rate as f64 * elapsed) as u64;
        if due > written {
            buf.clear();
            g.fill(&mut buf, (due - written) as usize);
            out.write_all(&buf)?;
            written += buf.len() as u64;
        }
        let n = match trigger.read(&mut cmd) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        for &c in &cmd[..n] {
            match c {
                b'i' => {
                    let (head, root, rest) = chained_traceback(&letters(k));
                    out.write_all(head.as_bytes())?;
                    let t = mono_ns();
                    out.write_all(root.as_bytes())?;
                    out.write_all(rest.as_bytes())?;
                    writeln!(stamps, "{k} {t}")?;
                    k += 1;
                }
                b'q' => return Ok(0),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Debug, clap::Args)]
pub struct BurstArgs {
    /// Error lines to print within the burst.
    #[arg(long, default_value_t = 100_000)]
    pub lines: u64,
    /// Seconds of ordinary output before the burst and after it.
    #[arg(long, default_value_t = 1.0)]
    pub calm_secs: f64,
    /// Appends `0 <ns>` before the burst and `1 <ns>` after it.
    #[arg(long)]
    pub stamps: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub exit_code: i32,
}

/// `burst`: calm output, then `lines` near-identical CUDA out-of-memory lines as fast as
/// they can be written (every rank and retry printing the same error), calm again, exit.
pub fn burst(a: &BurstArgs) -> io::Result<i32> {
    let mut out = raw_stdout();
    let mut g = LogGen::new(3).without_handled_tracebacks();
    let mut buf = Vec::new();
    let calm = |out: &mut RawStdout, g: &mut LogGen, buf: &mut Vec<u8>| -> io::Result<()> {
        let start = mono_ns();
        while ((mono_ns() - start) as f64 / 1e9) < a.calm_secs {
            buf.clear();
            g.fill(buf, 20_000);
            out.write_all(buf)?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    };
    calm(&mut out, &mut g, &mut buf)?;
    let mut stamps = match &a.stamps {
        Some(p) => Some(File::create(p)?),
        None => None,
    };
    if let Some(s) = stamps.as_mut() {
        writeln!(s, "0 {}", mono_ns())?;
    }
    buf.clear();
    for i in 0..a.lines {
        let _ = writeln!(
            buf,
            "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU {}; 79.15 GiB total capacity; 76.{:02} GiB already allocated) [rank {}, retry {}]",
            i % 8,
            i % 100,
            i % 8,
            i / 8
        );
        if buf.len() > 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    if let Some(s) = stamps.as_mut() {
        writeln!(s, "1 {}", mono_ns())?;
    }
    calm(&mut out, &mut g, &mut buf)?;
    Ok(a.exit_code)
}

/// A FIFO at `path` (mode 0600).
pub fn mkfifo(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
