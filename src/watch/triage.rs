//! The post-mortem of a finished log, as a typed [`TriageReport`]: it streams the log through
//! the same [`Detector`] the live watcher uses (all lines, then the exit status), so a log
//! read after the fact gives the incidents the watcher reported while it ran. Memory stays
//! bounded whatever the size of the log: one window of the file at a time (mapped from a
//! regular file, read into a buffer otherwise), over-long lines cut. Pure: no
//! command-line arguments, no printing (`trainwatch triage` does both in the binary).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use super::detect::{DetectConfig, Detector, Finding, LogDisk, RegionScan, ScanSlots};
use crate::model::{Category, ExitOutcome, Incident, Severity};

/// Bytes read at a time; also the longest line kept whole (longer ones are cut).
const BUF: usize = 1 << 20;
/// How many of an incident's excerpt lines the human form shows.
const HUMAN_EXCERPT: usize = 12;

#[derive(Debug, Error)]
pub enum TriageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The overall verdict of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warning => "warning",
            Verdict::Error => "error",
        }
    }
    /// The exit status of `trainwatch triage`: 0 ok, 1 an error, 3 warnings only.
    pub fn exit_status(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Error => 1,
            Verdict::Warning => 3,
        }
    }
}

/// What triage concludes about a log.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageReport {
    pub verdict: Verdict,
    pub category: Option<Category>,
    /// Index in `incidents` of the incident to look at first.
    pub primary: Option<usize>,
    pub incidents: Vec<Incident>,
}

#[derive(Serialize)]
struct JsonFirst<'a> {
    line: u64,
    text: &'a str,
}

#[derive(Serialize)]
struct JsonIncident<'a> {
    category: Category,
    severity: Severity,
    line: u64,
    text: &'a str,
    /// Why it got its category (the decision table's rule).
    reason: &'a str,
    excerpt: &'a [String],
}

#[derive(Serialize)]
struct JsonReport<'a> {
    verdict: Verdict,
    category: Option<Category>,
    first_error: Option<JsonFirst<'a>>,
    incidents: Vec<JsonIncident<'a>>,
}

impl TriageReport {
    /// Verdict, category and the line to look at, from the incidents.
    pub fn from_incidents(mut incidents: Vec<Incident>) -> Self {
        // The report quotes the log: the same redaction as live watching, before any output.
        let redactor = crate::redact::Redactor::default();
        incidents.iter_mut().for_each(|i| redactor.incident(i));
        let fatal = incidents.iter().any(|i| i.severity == Severity::Fatal);
        let warned = incidents.iter().any(|i| i.severity == Severity::Warning);
        // Notes (exceptions the run said it handled and outlived) never change the verdict.
        let verdict = if fatal {
            Verdict::Error
        } else if warned {
            Verdict::Warning
        } else {
            Verdict::Ok
        };
        let wanted = if fatal { Severity::Fatal } else { Severity::Warning };
        // The earliest line that states the problem among the incidents that make the
        // verdict; an incident with no line (an exit status) only when there is no other.
        let primary = incidents
            .iter()
            .enumerate()
            .filter(|(_, i)| i.severity == wanted)
            .min_by_key(|(_, i)| if i.line == 0 { u64::MAX } else { i.line })
            .map(|(k, _)| k);
        let category = primary.map(|k| incidents[k].category);
        Self {
            verdict,
            category,
            primary,
            incidents,
        }
    }

    /// The incident that states the problem with a log line, if any.
    pub fn first_error(&self) -> Option<&Incident> {
        self.primary.map(|k| &self.incidents[k]).filter(|i| i.line > 0)
    }

    /// The machine-readable form (exactly the documented schema).
    pub fn to_json(&self) -> String {
        let r = JsonReport {
            verdict: self.verdict,
            category: self.category,
            first_error: self.first_error().map(|i| JsonFirst {
                line: i.line,
                text: &i.text,
            }),
            incidents: self
                .incidents
                .iter()
                .map(|i| JsonIncident {
                    category: i.category,
                    severity: i.severity,
                    line: i.line,
                    text: &i.text,
                    reason: &i.reason,
                    excerpt: &i.excerpt,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&r).expect("report serialises")
    }

    /// The human form: verdict first, then the line to look at, then each incident.
    pub fn to_human(&self) -> String {
        let mut s = String::new();
        match self.category {
            Some(c) => s.push_str(&format!("verdict: {} ({c})\n", self.verdict.as_str())),
            None => s.push_str(&format!("verdict: {}\n", self.verdict.as_str())),
        }
        match (self.first_error(), self.primary) {
            (Some(i), _) => s.push_str(&format!("look at line {}: {}\n", i.line, i.text)),
            (None, Some(k)) => s.push_str(&format!("look at: {}\n", self.incidents[k].text)),
            (None, None) if self.incidents.is_empty() => {
                s.push_str("no incidents: nothing in the log or the exit status points at a problem\n")
            }
            (None, None) => {
                s.push_str("no problem: the run said it handled what is noted below and went on\n")
            }
        }
        if let Some(k) = self.primary.filter(|&k| !self.incidents[k].reason.is_empty()) {
            s.push_str(&format!("why: {}\n", self.incidents[k].reason));
        }
        if !self.incidents.is_empty() {
            s.push_str(&format!("\nincidents ({}):\n", self.incidents.len()));
        }
        for (k, i) in self.incidents.iter().enumerate() {
            let at = if i.line > 0 {
                format!("line {}", i.line)
            } else {
                "exit status".to_string()
            };
            let times = if i.count > 1 {
                format!(" (×{})", i.count)
            } else {
                String::new()
            };
            s.push_str(&format!(
                "{}. {} {} at {at}{times}: {}\n",
                k + 1,
                i.severity,
                i.category,
                i.text
            ));
            if !i.reason.is_empty() {
                s.push_str(&format!("     why: {}\n", i.reason));
            }
            let skip = i.excerpt.len().saturating_sub(HUMAN_EXCERPT);
            if skip > 0 {
                s.push_str(&format!("     | [… {skip} lines …]\n"));
            }
            for l in &i.excerpt[skip..] {
                s.push_str(&format!("     | {l}\n"));
            }
        }
        s
    }
}

/// Run the detector over a whole log read from `r`, then the exit status.
pub fn analyse_reader<R: Read>(
    r: R,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
) -> io::Result<TriageReport> {
    analyse(r, cfg, exit, None)
}

/// `disk`: the log's file system, when it is full (an exit the log is silent about is then
/// explained by that, as in live watching).
fn analyse<R: Read>(
    mut r: R,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
    disk: Option<LogDisk>,
) -> io::Result<TriageReport> {
    let mut feed = Feed::new(cfg);
    let mut cutter = Cutter::default();
    let mut buf = vec![0u8; BUF];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = loop {
            match r.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            break;
        }
        end += n;
        let (piece, used) = cutter.cut(&buf[..end]);
        let scan = piece.region(&buf[..end]).map(RegionScan::of);
        feed.apply(&buf[..end], &piece, scan.as_ref());
        start = used;
    }
    feed.apply(&buf[..end], &cutter.last(start, end), None);
    Ok(feed.report(exit, disk))
}

/// What the detector is handed from a window (offsets in the window).
#[derive(Debug)]
enum Piece {
    /// Whole lines `start..end` (the detector is handed their [`RegionScan`] with them).
    Region {
        start: usize,
        end: usize,
    },
    /// The head `start..end` of a line longer than a window (the rest is skipped).
    Head {
        start: usize,
        end: usize,
    },
    /// The log's last line `start..end`, unterminated.
    Last {
        start: usize,
        end: usize,
    },
    Nothing,
}

impl Piece {
    /// The same piece of a window that starts `by` bytes into a larger buffer, with offsets
    /// in that buffer.
    fn shifted(self, by: usize) -> Self {
        match self {
            Piece::Region { start, end } => Piece::Region {
                start: start + by,
                end: end + by,
            },
            Piece::Head { start, end } => Piece::Head {
                start: start + by,
                end: end + by,
            },
            Piece::Last { start, end } => Piece::Last {
                start: start + by,
                end: end + by,
            },
            Piece::Nothing => Piece::Nothing,
        }
    }

    /// The lines of a region piece, in `window`.
    fn region<'a>(&self, window: &'a [u8]) -> Option<&'a [u8]> {
        match *self {
            Piece::Region { start, end } => Some(&window[start..end]),
            _ => None,
        }
    }
}

/// Cuts a log into the lines handed to the detector, from successive windows of at most
/// [`BUF`] bytes, each starting where the previous one's last whole line ended: a line is
/// cut (head kept, rest skipped) when it does not end within a window, whether the windows
/// are read into a buffer or mapped from the file. A function of the bytes only (the
/// detector's state plays no part), so it can run ahead of the detector on another thread,
/// and so can the regions' scans.
#[derive(Debug, Default)]
struct Cutter {
    /// Inside an over-long line whose head was already handed over: drop bytes until its end.
    discarding: bool,
}

impl Cutter {
    /// The whole lines of `window` (at most [`BUF`] bytes), and how many bytes they use (the
    /// rest, an unfinished line, starts the next window).
    fn cut(&mut self, window: &[u8]) -> (Piece, usize) {
        let mut start = 0;
        if self.discarding {
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    self.discarding = false;
                    start = i + 1;
                }
                None => return (Piece::Nothing, window.len()),
            }
        }
        let Some(last_nl) = memchr::memrchr(b'\n', &window[start..]).map(|i| start + i) else {
            if window.len() == BUF {
                // A line longer than a window: keep its head, skip the rest.
                self.discarding = true;
                let end = window.len();
                return (Piece::Head { start, end }, end);
            }
            return (Piece::Nothing, start);
        };
        let end = last_nl + 1;
        (Piece::Region { start, end }, end)
    }

    /// The log ended: `start..end` of the last window is a line without its `\n` (or
    /// nothing).
    fn last(&self, start: usize, end: usize) -> Piece {
        if start < end && !self.discarding {
            Piece::Last { start, end }
        } else {
            Piece::Nothing
        }
    }
}

/// The detector fed with the pieces of a log, in order.
struct Feed {
    det: Detector,
    findings: Vec<Finding>,
    line_no: u64,
}

impl Feed {
    fn new(cfg: DetectConfig) -> Self {
        Self {
            det: Detector::new(cfg),
            findings: Vec::new(),
            line_no: 0,
        }
    }

    /// Hand `piece` of `window` to the detector, with its scan if it is a region.
    fn apply(&mut self, window: &[u8], piece: &Piece, scan: Option<&RegionScan>) {
        match *piece {
            Piece::Region { start, end } => {
                let region = &window[start..end];
                let scan = scan.expect("a region comes with its scan");
                self.line_no += self
                    .det
                    .push_scanned(self.line_no + 1, region, scan, &mut self.findings);
                // Triage reads the incidents at the end, not the findings on the way.
                self.findings.clear();
            }
            Piece::Head { start, end } | Piece::Last { start, end } => {
                self.line_no += 1;
                self.det
                    .push_line(self.line_no, &String::from_utf8_lossy(&window[start..end]));
            }
            Piece::Nothing => {}
        }
    }

    fn report(mut self, exit: Option<ExitOutcome>, disk: Option<LogDisk>) -> TriageReport {
        self.det.note_log_disk(disk);
        self.det.finish(exit);
        TriageReport::from_incidents(self.det.incidents().to_vec())
    }
}

/// Bytes mapped at a time: several windows, cut one after the other from one mapping. Each
/// mapping costs the kernel a fixed amount besides its pages (with 1 MiB mappings about a fifth
/// of triage's CPU time went to mapping and unmapping, half of it with 4 MiB ones); memory
/// stays flat: at most [`AHEAD`] + 2 mappings exist at once.
const SPAN: usize = 4 * BUF;

/// Mappings the scanning thread has cut and scanned ahead of the detector.
const AHEAD: usize = 1;

/// A mapping of part of the file and what the detector is handed from it.
struct Batch {
    map: Mapped,
    /// The pieces of its windows, in order, with offsets in the mapping.
    pieces: Vec<Piece>,
    /// Each piece's scan, made by whichever thread comes to it first: the mapping thread
    /// scans the windows it hands over from the last, the detector from the first.
    scans: ScanSlots,
}

impl Batch {
    fn new(map: Mapped, pieces: Vec<Piece>) -> Self {
        let scans = ScanSlots::new(pieces.len());
        Self { map, pieces, scans }
    }

    /// The mapping thread: scan piece `k` unless the detector holds it or it is done.
    fn scan_ahead(&self, k: usize) {
        if let Some(region) = self.pieces[k].region(self.map.bytes()) {
            self.scans.ahead(k, region);
        }
    }

    /// The detector: piece `k` with its scan, waiting for the mapping thread if it is
    /// scanning it, scanning it here if nobody has.
    fn apply(&self, k: usize, feed: &mut Feed) {
        let piece = &self.pieces[k];
        let Some(region) = piece.region(self.map.bytes()) else {
            return feed.apply(self.map.bytes(), piece, None);
        };
        let scan = self.scans.get(k, region);
        feed.apply(self.map.bytes(), piece, Some(&scan));
    }
}

/// Triage a regular file through windows mapped from it, not read into a buffer: the log is
/// in the page cache and copying it out was a sixth of triage's time. A second thread maps
/// the file [`SPAN`] bytes at a time, cuts each mapping into windows, hands it over and scans
/// their lines for the prefilter's literals (a function of the bytes), at most [`AHEAD`]
/// mappings ahead, while this one runs the detector on them (and scans a window itself when
/// it gets there first): memory stays flat, and the thread ends with the triage. The file's length is read again before each mapping, so a log cut shorter
/// meanwhile ends the reading instead of mapping pages past its end.
fn analyse_mapped(
    file: &File,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
    disk: Option<LogDisk>,
) -> io::Result<TriageReport> {
    let mut feed = Feed::new(cfg);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
        s.spawn(move || {
            // A send fails only when the detector stopped (an error): stop too.
            map_windows(file, |b| match b {
                Ok(b) => {
                    let b = Arc::new(b);
                    let sent = tx.send(Ok(Arc::clone(&b))).is_ok();
                    // From the last window back: the detector takes them from the first
                    // on, so while it is behind, each scans a share before they meet.
                    (0..b.pieces.len()).rev().for_each(|k| b.scan_ahead(k));
                    sent
                }
                Err(e) => tx.send(Err(e)).is_ok(),
            });
        });
        // The report's redaction rules, built meanwhile rather than after the last line.
        s.spawn(crate::redact::prepare);
        for batch in rx {
            let batch = batch?;
            (0..batch.pieces.len()).for_each(|k| batch.apply(k, &mut feed));
        }
        Ok::<_, io::Error>(())
    })?;
    Ok(feed.report(exit, disk))
}

/// Map and cut `file` mapping by mapping, handing each to `send` (which returns false to
/// stop), then the error if one ended the reading. The windows are those the read path
/// cuts: each starts where the previous one's last whole line ended and is [`BUF`] bytes
/// long, or reaches the end of the file; one that would reach past its mapping is cut from
/// the next mapping instead.
fn map_windows(file: &File, mut send: impl FnMut(io::Result<Batch>) -> bool) {
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let mut cutter = Cutter::default();
    let mut off: u64 = 0;
    let mut mapping = || -> io::Result<Option<Batch>> {
        let len = file.metadata()?.len();
        if off >= len {
            return Ok(None);
        }
        let map_at = off - off % page;
        let lead = (off - map_at) as usize;
        let want = (len - off).min(SPAN as u64) as usize;
        let to_end = want as u64 == len - off;
        let map = Mapped::new(file, map_at, lead + want)?;
        let bytes = &map.bytes()[lead..];
        let mut pieces = Vec::new();
        let mut pos = 0;
        loop {
            let rest = bytes.len() - pos;
            if rest < BUF && !to_end {
                break;
            }
            let window = &bytes[pos..pos + rest.min(BUF)];
            let (piece, used) = cutter.cut(window);
            pieces.push(piece.shifted(lead + pos));
            if window.len() < BUF {
                if used < window.len() {
                    // The window reached the end of the file: what is left is its last
                    // line, unterminated (a log that grows meanwhile is read as it was).
                    pieces.push(cutter.last(used, window.len()).shifted(lead + pos));
                    off = u64::MAX;
                    return Ok(Some(Batch::new(map, pieces)));
                }
                pos += used;
                break;
            }
            pos += used;
        }
        off += pos as u64;
        Ok(Some(Batch::new(map, pieces)))
    };
    loop {
        let sent = match mapping() {
            Ok(Some(b)) => send(Ok(b)),
            Ok(None) => false,
            Err(e) => {
                send(Err(e));
                false
            }
        };
        if !sent {
            return;
        }
    }
}

/// A read-only, private mapping of part of a file, unmapped when dropped.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn new(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        let off = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh read-only mapping of `len` bytes of an open file; nothing else
        // aliases it. MAP_POPULATE maps the window's pages (in the page cache) at once.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

// SAFETY: the mapping is owned by the value alone and only read; it may be read and
// unmapped from any thread, and read from several at once (nothing writes it).
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping this value owns.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Triage the log at `path`.
pub fn triage_file(
    path: &Path,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
) -> Result<TriageReport, TriageError> {
    let err = |source| TriageError::Read {
        path: path.display().to_string(),
        source,
    };
    let f = File::open(path).map_err(err)?;
    let disk = exit.filter(|o| !o.success()).and_then(|_| LogDisk::full_at(path));
    let regular = f.metadata().map_err(err)?.is_file();
    if regular {
        analyse_mapped(&f, cfg, exit, disk).map_err(err)
    } else {
        // A pipe or a device: read it.
        analyse(f, cfg, exit, disk).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A log whose lines cross the windows' edges, with lines longer than a window (one of
    /// them exactly a window long, before its `\n`), evidence past a long line's cut and an
    /// unterminated last line: mapped from the file and read through a buffer, the same.
    #[test]
    fn a_mapped_log_gives_what_a_read_one_gives() {
        let mut log = Vec::new();
        let mut k = 0u64;
        while log.len() < 3 * BUF + 777 {
            k += 1;
            log.extend_from_slice(format!("step {k} loss=0.{k} tokens/s 4000\n").as_bytes());
            if k % 5000 == 0 {
                log.extend_from_slice(b"/p/x.py:3: FutureWarning: stuff\n  warnings.warn(\n");
            }
        }
        let mut long = vec![b'x'; BUF + 300];
        long.extend_from_slice(b" RuntimeError: past the cut\n");
        log.extend_from_slice(&long);
        log.extend_from_slice(&vec![b'y'; BUF]);
        log.extend_from_slice(b"\nepoch 2 done\n");
        log.extend_from_slice(b"Traceback (most recent call last):\n  File \"t.py\", line 1, in <module>\n");
        log.extend_from_slice(b"KeyError: 'label'");
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(&log).expect("write");
        let exit = Some(ExitOutcome::Code(1));
        let mapped = triage_file(file.path(), DetectConfig::default(), exit).expect("mapped");
        let read = analyse_reader(Cursor::new(&log), DetectConfig::default(), exit).expect("read");
        assert_eq!(mapped, read);
        assert_eq!(
            mapped.first_error().map(|i| i.text.as_str()),
            Some("KeyError: 'label'")
        );
    }

    /// Both forms say why the incident got its category: the human one under the line to
    /// look at and under the incident, the JSON one as the incident's `reason`.
    #[test]
    fn the_report_says_why() {
        let mut d = Detector::new(DetectConfig::default());
        let log = [
            "Traceback (most recent call last):",
            "  File \"train.py\", line 9, in <module>",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        ];
        for (k, l) in log.iter().enumerate() {
            d.push_line(k as u64 + 1, l);
        }
        d.finish(Some(ExitOutcome::Code(1)));
        let r = TriageReport::from_incidents(d.incidents().to_vec());
        let human = r.to_human();
        assert!(
            human.contains("\nwhy: CUDA ran out of memory (resource)\n"),
            "{human}"
        );
        assert!(
            human.contains("\n     why: CUDA ran out of memory (resource)\n"),
            "{human}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["incidents"][0]["reason"], "CUDA ran out of memory (resource)");
    }
}
