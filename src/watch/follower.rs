//! The log follower: reads a training job's log as it grows, from a stored offset, and
//! hands out complete lines with their 1-based line numbers. It never reads a file whole
//! and keeps memory bounded whatever the size of the log or of a line; it survives
//! copytruncate, rotation by rename, a log that does not exist yet, partial last lines,
//! `\r` progress bars and invalid UTF-8. Its position is a small serde value
//! ([`FollowState`]) that the supervisor persists, so following resumes exactly where it
//! left off after a restart. [`Follower::changed`] wakes the caller on inotify events
//! (Linux), with a slow poll as a safety net.

mod ahead;
mod identity;
mod line;

#[cfg(target_os = "linux")]
mod inotify;

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use ahead::ReadAhead;
use ahead::{Pending, Taken};
pub(crate) use line::render_line;
use line::Partial;
pub use line::{HEAD_KEEP, TAIL_KEEP};

/// Where following stands: persist it, and pass it back to [`Follower::new`] to resume.
///
/// `offset` is the byte offset just past the last line handed out (an incomplete last
/// line is re-read on resume); `line_no` counts the `\n`-terminated lines before it;
/// `dev`/`ino` identify the file the offset belongs to, so a log rotated while nobody
/// was watching is noticed; `head` fingerprints the file's first bytes, so a log
/// truncated and rewritten past the offset while nobody was watching is noticed too.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FollowState {
    pub offset: u64,
    pub line_no: u64,
    pub dev: Option<u64>,
    pub ino: Option<u64>,
    pub head: Option<HeadPrint>,
}

/// A fingerprint of a file's first `len` bytes (up to [`HeadPrint::MAX_LEN`]).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeadPrint {
    pub len: u32,
    /// FNV-1a 64 of those bytes: stable across versions, unlike std's hasher.
    pub hash: u64,
}

impl HeadPrint {
    pub const MAX_LEN: u32 = 1024;

    fn of(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Self {
            len: bytes.len() as u32,
            hash,
        }
    }

    /// The fingerprint of the first `len` bytes of `file`; `None` if it is shorter.
    fn read(file: &File, len: u32) -> io::Result<Option<Self>> {
        let mut bytes = vec![0; len as usize];
        match file.read_exact_at(&mut bytes, 0) {
            Ok(()) => Ok(Some(Self::of(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl FollowState {
    fn file_id(&self) -> Option<FileId> {
        Some(FileId {
            dev: self.dev?,
            ino: self.ino?,
        })
    }
}

/// One complete line of the log, owned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// 1-based; counts `\n` only, so a `\r`-redrawn progress bar is one line.
    pub no: u64,
    /// Lossy UTF-8 without the line terminator (`\n` or `\r\n`); an over-long line is cut
    /// to its head and tail around a `…[N bytes cut]…` marker.
    pub text: String,
    /// Whether bytes were cut out of `text`.
    pub cut: bool,
}

/// One complete line, lent to the callback of [`Follower::read_available_with`] to spare
/// an allocation per line. Same fields as [`LogLine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRef<'a> {
    pub no: u64,
    pub text: &'a str,
    pub cut: bool,
}

impl LineRef<'_> {
    pub fn to_log_line(&self) -> LogLine {
        LogLine {
            no: self.no,
            text: self.text.to_owned(),
            cut: self.cut,
        }
    }
}

/// What the follower hands out, in the log's order: whole lines as the file holds them, or
/// one line it had to assemble (across reads) or cut (over-long).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Whole lines exactly as read, not validated as UTF-8: each ends with `\n` (a CRLF
    /// line's `\r` is kept before it), none is longer than [`HEAD_KEEP`] + [`TAIL_KEEP`]
    /// bytes, the first is numbered `first`. [`lines`] cuts them into lines.
    Lines { first: u64, bytes: &'a [u8] },
    /// One line, rendered as [`LineRef`] says.
    Line(LineRef<'a>),
}

impl Chunk<'_> {
    /// Bytes of log it stands for (a rendered line's text).
    pub fn len(&self) -> usize {
        match self {
            Chunk::Lines { bytes, .. } => bytes.len(),
            Chunk::Line(line) => line.text.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The lines of a [`Chunk::Lines`] region: each one's number and its bytes without the
/// terminator (`\n` or `\r\n`), as [`Follower::read_available_with`] renders them.
pub fn lines(first: u64, bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes).enumerate().map(move |(k, nl)| {
        let piece = &bytes[start..nl];
        start = nl + 1;
        (first + k as u64, piece.strip_suffix(b"\r").unwrap_or(piece))
    })
}

/// The buffer a read's bytes lie in (see [`Follower::read_windows_shared`]).
pub type ReadBuf = Arc<Vec<u8>>;

/// What one read did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Bytes read from the log(s).
    pub bytes: u64,
    /// Lines handed to the callback (including a flushed partial line).
    pub lines: u64,
    /// The file shrank below the read position (copytruncate): following restarted at 0.
    pub truncated: bool,
    /// The path now names another file: the old one was finished and the new one is
    /// followed from its start.
    pub rotated: bool,
    /// The log does not exist (yet).
    pub missing: bool,
    /// The log's path names a symbolic link or something other than a regular file (a log
    /// swapped by someone who can write its folder): it is not opened, and the file already
    /// open — the one the job writes — is still followed.
    pub refused: bool,
    /// The read budget ran out before the end of the data: call again (soon) for more.
    pub more: bool,
}

impl ReadStats {
    fn absorb(&mut self, other: ReadStats) {
        self.bytes += other.bytes;
        self.lines += other.lines;
        self.truncated |= other.truncated;
        self.rotated |= other.rotated;
        self.missing = other.missing;
        self.more = other.more;
    }
}

/// Tuning knobs; the defaults suit a supervisor of a few dozen jobs.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Safety-net poll when inotify watches the file and its directory.
    pub poll_armed: Duration,
    /// Poll when inotify cannot cover us (no inotify, directory missing, other OS).
    pub poll_unarmed: Duration,
    /// Most bytes one `read_available` call reads, so a huge backlog (resuming after a
    /// long outage) does not stall the caller's thread; the rest comes with `more`.
    pub read_budget: u64,
    /// Wake on inotify events (Linux). Turn off where events do not reflect writes, e.g. a
    /// log on NFS written from another host: then only polling (`poll_unarmed`) is used.
    pub inotify: bool,
    /// Keep the read buffer (and the scratch text of long lines) between reads. A follower
    /// read only now and then (the metrics tracker's, woken by the job's reads) gives them
    /// back once caught up: a supervisor of many jobs holds none for it.
    pub keep_buffer: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            // inotify wakes us for every write; this fallback only catches a missed event,
            // and idle cost matters (20 quiet jobs < 0.1 % of a core).
            poll_armed: Duration::from_secs(5),
            poll_unarmed: Duration::from_millis(250),
            read_budget: 64 << 20,
            inotify: true,
            keep_buffer: true,
        }
    }
}

/// Identity of a file across renames: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(m: &Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

struct OpenLog {
    /// Shared with a read-ahead job reading the next window (see [`ahead`]).
    file: Arc<File>,
    id: FileId,
}

impl OpenLog {
    fn new(file: File, id: FileId) -> Self {
        Self {
            file: Arc::new(file),
            id,
        }
    }
}

/// Big reads keep syscalls rare; small enough that dozens of followers stay cheap.
const READ_CHUNK: usize = 128 * 1024;
/// Reads while behind the writer (a backlog, catching up): 4 × the usual read (fewer calls,
/// bigger regions for the detector), still within a core's L2 cache. Only a follower that is
/// behind holds a buffer this big.
const CATCH_UP_CHUNK: usize = 512 << 10;
/// Bound on reopen/restart rounds per call, so a file flapping between truncations and
/// renames cannot keep one call busy forever.
const MAX_SWITCHES: u32 = 8;

/// Follows one log file. See the module documentation.
pub struct Follower {
    path: PathBuf,
    name: Option<OsString>,
    opts: FollowOptions,
    /// Committed position: what was handed out.
    state: FollowState,
    log: Option<OpenLog>,
    /// Where the next read starts; past `state.offset` by the bytes held in `partial`.
    read_pos: u64,
    partial: Partial,
    scratch: String,
    joined: Vec<u8>,
    /// A window's chunks as split, and the text of its rendered lines (slot `k` for the
    /// `k`-th chunk), reused by every read.
    pieces: Vec<Piece>,
    rendered: Vec<String>,
    /// What is read goes here: shared with a consumer that lends it to another thread for
    /// as long as its callback runs ([`Follower::read_windows_shared`]).
    buf: ReadBuf,
    /// The last read stopped on its budget, not at the end of the data.
    backlog: bool,
    /// Where the next window of a backlog is read while the consumer works on this one
    /// (None: each read is made in place; see [`Follower::set_read_ahead`]).
    read_ahead: Option<Arc<dyn ReadAhead>>,
    /// The next window, being read ahead (only ever between two turns of one drain).
    pending: Option<Pending>,
    /// The buffer the next read-ahead reads into (the one before the current).
    spare: Vec<u8>,
    /// The job's process, when known: the file it holds open is the log, whatever the path
    /// names (see [`Follower::set_writer`]).
    writer: Option<u32>,
    /// A file found at the path that the job does not write: never read, even once the
    /// job is gone and nobody can tell any more.
    swapped: Option<FileId>,
    #[cfg(target_os = "linux")]
    watch: inotify::Watch,
}

impl Follower {
    /// A follower of `path` starting from `state` (`FollowState::default()` for the
    /// beginning of the log). Opens nothing yet: the file may not exist.
    pub fn new(path: PathBuf, state: FollowState) -> Self {
        Self::with_options(path, state, FollowOptions::default())
    }

    pub fn with_options(path: PathBuf, state: FollowState, opts: FollowOptions) -> Self {
        Self {
            name: path.file_name().map(|n| n.to_os_string()),
            path,
            opts,
            read_pos: state.offset,
            state,
            log: None,
            partial: Partial::default(),
            scratch: String::new(),
            joined: Vec::new(),
            pieces: Vec::new(),
            rendered: Vec::new(),
            buf: ReadBuf::default(),
            backlog: false,
            read_ahead: None,
            pending: None,
            spare: Vec::new(),
            writer: None,
            swapped: None,
            #[cfg(target_os = "linux")]
            watch: inotify::Watch::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read a backlog's next window on another thread (`ahead`) while the consumer's
    /// callback works on the current one: the kernel's copy and the window's newline count
    /// leave the consumer's thread. What is handed out, and when, is as if the follower had
    /// made each read itself (see the `ahead` module). Only a follower behind its writer
    /// reads ahead, into a second buffer of [`CATCH_UP_CHUNK`] bytes.
    pub fn set_read_ahead(&mut self, ahead: Arc<dyn ReadAhead>) {
        self.read_ahead = Some(ahead);
    }

    /// The position to persist. Lines handed out before this call are covered by it.
    pub fn state(&self) -> FollowState {
        self.state.clone()
    }

    /// Reads everything appended since the last call (up to the read budget, see
    /// [`ReadStats::more`]) and calls `f` once per complete line. Returns at the end of
    /// the data; never waits for more.
    pub fn read_available(&mut self, mut f: impl FnMut(LogLine)) -> io::Result<ReadStats> {
        self.read_available_with(|l| f(l.to_log_line()))
    }

    /// [`read_available`](Self::read_available), lending each line instead of allocating it.
    pub fn read_available_with(&mut self, mut f: impl FnMut(LineRef<'_>)) -> io::Result<ReadStats> {
        let mut scratch = String::new();
        self.read_windows(|chunks| {
            for chunk in chunks {
                match *chunk {
                    Chunk::Line(line) => f(line),
                    Chunk::Lines { first, bytes } => {
                        for (no, raw) in lines(first, bytes) {
                            let (text, cut) = render_line(raw, &mut scratch);
                            f(LineRef { no, text, cut });
                        }
                    }
                }
            }
        })
    }

    /// [`read_available_with`](Self::read_available_with), handing out what each read of
    /// the file brought at once, as chunks in order: whole lines as raw regions
    /// ([`Chunk::Lines`], a consumer decodes only the lines it reads) and the lines the
    /// follower assembled or cut.
    pub fn read_windows(&mut self, mut f: impl FnMut(&[Chunk<'_>])) -> io::Result<ReadStats> {
        self.read_windows_shared(|chunks, _| f(chunks))
    }

    /// [`read_windows`](Self::read_windows), with the buffer the chunks' bytes lie in (a
    /// [`Chunk::Lines`]'s bytes are a slice of it): a consumer may hand it to another thread
    /// for the callback's duration. A buffer still shared when the next read comes is left to
    /// its holders and a new one read into.
    pub fn read_windows_shared(
        &mut self,
        mut f: impl FnMut(&[Chunk<'_>], &ReadBuf),
    ) -> io::Result<ReadStats> {
        let mut stats = ReadStats::default();
        let result = self
            .read_inner(&mut f, &mut stats)
            .and_then(|()| self.update_head_print());
        self.backlog = stats.more;
        result.map(|()| stats)
    }

    /// For the end of a run: reads to the end of the log whatever the budget, then hands
    /// out an unterminated last line (the process died mid-line) via
    /// [`flush_partial`](Self::flush_partial).
    pub fn finish(&mut self, mut f: impl FnMut(LogLine)) -> io::Result<ReadStats> {
        let mut total = ReadStats::default();
        loop {
            let stats = self.read_available(&mut f)?;
            let more = stats.more;
            total.absorb(stats);
            if !more {
                break;
            }
        }
        if self.flush_partial(&mut f) {
            total.lines += 1;
        }
        Ok(total)
    }

    /// Hands out the incomplete last line as a line, if there is one; returns whether it
    /// did. The line number is not advanced: should the line be continued later (a
    /// restarted process appending to the same log), the continuation is handed out
    /// under the same number, which is the line's number in the file.
    pub fn flush_partial(&mut self, mut f: impl FnMut(LogLine)) -> bool {
        self.flush_partial_with(&mut |chunks: &[Chunk<'_>], _: &ReadBuf| {
            for c in chunks {
                if let Chunk::Line(l) = c {
                    f(l.to_log_line())
                }
            }
        })
    }

    fn flush_partial_with(&mut self, f: &mut impl FnMut(&[Chunk<'_>], &ReadBuf)) -> bool {
        if self.partial.is_empty() {
            return false;
        }
        let cut = self.partial.render(&mut self.scratch, &mut self.joined);
        f(
            &[Chunk::Line(LineRef {
                no: self.state.line_no + 1,
                text: &self.scratch,
                cut,
            })],
            &self.buf,
        );
        self.partial.clear();
        self.state.offset = self.read_pos;
        true
    }

    /// The incomplete last line as a terminal would show it (its last non-empty
    /// `\r`-segment, see [`display_segment`]), e.g. a tqdm bar being redrawn.
    pub fn pending_tail(&self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let (mut text, mut joined) = (String::new(), Vec::new());
        self.partial.render(&mut text, &mut joined);
        Some(display_segment(&text).to_owned())
    }

    /// Waits until the log may have changed: an inotify event about it, or the fallback
    /// poll interval elapsed. Returns at once when the last read left data behind, or
    /// when a watch was just set up (something may have happened before it existed).
    /// Cancel-safe, so it can sit in a `tokio::select!`.
    pub async fn changed(&mut self) {
        if self.backlog {
            tokio::task::yield_now().await;
            return;
        }
        #[cfg(target_os = "linux")]
        if self.opts.inotify {
            let open = self.log.as_ref().map(|l| (&*l.file, l.id));
            let armed = self.watch.arm(&self.path, open);
            if armed.fresh {
                return;
            }
            let poll = if armed.complete {
                self.opts.poll_armed
            } else {
                self.opts.poll_unarmed
            };
            tokio::select! {
                _ = self.watch.wait(self.name.as_ref()) => {}
                _ = tokio::time::sleep(poll) => {}
            }
            return;
        }
        tokio::time::sleep(self.opts.poll_unarmed).await;
    }

    fn read_inner(
        &mut self,
        f: &mut impl FnMut(&[Chunk<'_>], &ReadBuf),
        stats: &mut ReadStats,
    ) -> io::Result<()> {
        if self.log.is_none() && !self.open_initial(stats)? {
            return Ok(());
        }
        for _ in 0..MAX_SWITCHES {
            if !self.drain(f, stats)? {
                stats.more = true;
                return Ok(());
            }
            let log = self.log.as_ref().expect("opened above");
            if log.file.metadata()?.len() < self.read_pos {
                tracing::info!(
                    path = %self.path.display(),
                    "log truncated, reading from the start",
                );
                stats.truncated = true;
                self.restart_at_zero(None);
                continue;
            }
            let current = log.id;
            // `symlink_metadata`: a path swapped for a link is never followed to its target.
            let new_file = match std::fs::symlink_metadata(&self.path) {
                Ok(m) if !m.file_type().is_file() => {
                    stats.refused = true;
                    false
                }
                Ok(m) if FileId::of(&m) != current => {
                    if self.is_swap(FileId::of(&m)) {
                        stats.refused = true;
                        false
                    } else {
                        true
                    }
                }
                // Same file, or the path is gone (deleted, or renamed and not yet
                // recreated): keep reading what we hold; the writer may still use it.
                _ => false,
            };
            if !new_file {
                return Ok(());
            }
            // The writer may have written to the old file after our last read.
            if !self.drain(f, stats)? {
                stats.more = true;
                return Ok(());
            }
            // The old file is finished; a last line without `\n` is still a line.
            if self.flush_partial_with(f) {
                stats.lines += 1;
            }
            match self.open_path(stats)? {
                Some(log) => {
                    tracing::info!(
                        path = %self.path.display(),
                        "log rotated, reading the new file",
                    );
                    stats.rotated = true;
                    self.restart_at_zero(Some(log));
                }
                None => return Ok(()),
            }
        }
        stats.more = true;
        Ok(())
    }

    /// Open the log's path: never through a symbolic link (`O_NOFOLLOW`) and only a regular
    /// file (`O_NONBLOCK` so that a FIFO put in its place cannot block us); anything else is
    /// refused and reported in `stats`.
    fn open_path(&self, stats: &mut ReadStats) -> io::Result<Option<OpenLog>> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path);
        match opened {
            Ok(file) => {
                let meta = file.metadata()?;
                if !meta.file_type().is_file() {
                    stats.refused = true;
                    return Ok(None);
                }
                Ok(Some(OpenLog::new(file, FileId::of(&meta))))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                stats.refused = true;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Fingerprints the start of the file once the committed offset covers it (a file
    /// still shorter than [`HeadPrint::MAX_LEN`] is re-fingerprinted as it grows).
    fn update_head_print(&mut self) -> io::Result<()> {
        let Some(log) = self.log.as_ref() else {
            return Ok(());
        };
        let want = self.state.offset.min(u64::from(HeadPrint::MAX_LEN)) as u32;
        if want == 0 || self.state.head.map(|h| h.len) == Some(want) {
            return Ok(());
        }
        self.state.head = HeadPrint::read(&log.file, want)?;
        Ok(())
    }

    /// First open, honouring the saved state: same file → continue at the saved offset
    /// unless its start changed (truncated and rewritten while we were away; a merely
    /// shrunk file is caught as a truncation by the read loop); another file that the job
    /// does not write → a swap: refused, and the job's own file followed; another file
    /// otherwise → the log was rotated while we were away: finish the old file if it is
    /// still beside the new one under another name, else start the new one from 0.
    fn open_initial(&mut self, stats: &mut ReadStats) -> io::Result<bool> {
        let Some(log) = self.open_path(stats)? else {
            // Deleted (or refused) while we were away, but still written by the job.
            if let Some(Some(held)) = self.state.file_id().and_then(|id| self.writer_file(id)) {
                self.adopt(held);
                return Ok(true);
            }
            stats.missing = !stats.refused;
            return Ok(false);
        };
        if self.state.file_id() != Some(log.id) && self.is_swap(log.id) {
            // Replaced while away by a file the job does not write: follow the one it does,
            // through its descriptor, even if no name is left to it.
            stats.refused = true;
            let held = match self.state.file_id() {
                Some(saved) => self
                    .writer_file(saved)
                    .flatten()
                    .or_else(|| self.find_sibling(saved)),
                None => self.writer_stdout(),
            };
            return Ok(match held {
                Some(held) => {
                    self.adopt(held);
                    true
                }
                None => false,
            });
        }
        match self.state.file_id() {
            Some(saved) if saved != log.id => {
                if let Some(old) = self.find_sibling(saved) {
                    tracing::info!(
                        path = %self.path.display(),
                        "rotated while away: old file first",
                    );
                    self.adopt(old);
                } else {
                    tracing::warn!(
                        path = %self.path.display(),
                        "replaced while away, old file gone: new file from its start"
                    );
                    stats.rotated = true;
                    self.restart_at_zero(Some(log));
                }
            }
            _ => {
                let rewritten = match self.state.head {
                    Some(saved) => HeadPrint::read(&log.file, saved.len)? != Some(saved),
                    None => false,
                };
                if rewritten {
                    tracing::info!(
                        path = %self.path.display(),
                        "rewritten while away: from the start",
                    );
                    stats.truncated = true;
                    self.restart_at_zero(Some(log));
                } else {
                    self.adopt(log);
                }
            }
        }
        Ok(true)
    }

    fn adopt(&mut self, log: OpenLog) {
        self.state.dev = Some(log.id.dev);
        self.state.ino = Some(log.id.ino);
        self.read_pos = self.state.offset;
        self.partial.clear();
        self.log = Some(log);
    }

    /// Back to the start of a file: `Some` a new one, `None` the current one.
    fn restart_at_zero(&mut self, new: Option<OpenLog>) {
        self.state.offset = 0;
        self.state.line_no = 0;
        self.read_pos = 0;
        self.state.head = None;
        self.partial.clear();
        if let Some(log) = new {
            self.state.dev = Some(log.id.dev);
            self.state.ino = Some(log.id.ino);
            self.log = Some(log);
        }
    }

    /// Reads the open file from `read_pos` to its end or until the budget is spent;
    /// returns whether it reached the end.
    fn drain(
        &mut self,
        f: &mut impl FnMut(&[Chunk<'_>], &ReadBuf),
        stats: &mut ReadStats,
    ) -> io::Result<bool> {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.len() < READ_CHUNK {
            buf = Arc::new(vec![0; READ_CHUNK]);
        }
        let result = self.drain_into(&mut buf, f, stats);
        // Nothing is read ahead across calls (a read-ahead is taken at the next turn).
        self.pending = None;
        self.buf = buf;
        result
    }

    fn drain_into(
        &mut self,
        buf: &mut ReadBuf,
        f: &mut impl FnMut(&[Chunk<'_>], &ReadBuf),
        stats: &mut ReadStats,
    ) -> io::Result<bool> {
        loop {
            if stats.bytes >= self.opts.read_budget {
                return Ok(false);
            }
            let Some(log) = self.log.as_ref() else {
                return Ok(true);
            };
            let room = self.opts.read_budget - stats.bytes;
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            // The window read ahead during the last turn, if it is this one (it always is:
            // nothing moves the position or the file between two turns).
            let ahead = self
                .pending
                .take()
                .filter(|p| p.offset == self.read_pos && p.id == log.id && p.want <= room);
            let (n, want, newlines) = match ahead.map(|p| (p.want, p.take())) {
                Some((
                    want,
                    Taken::Read {
                        buf: bytes,
                        read,
                        newlines,
                    },
                )) => {
                    // Its buffer becomes the current one; the current one, given back by the
                    // consumer, the next read-ahead's.
                    let old = std::mem::replace(buf, Arc::new(bytes));
                    if let Ok(old) = Arc::try_unwrap(old) {
                        self.spare = old;
                    }
                    let mut n = read?;
                    let mut newlines = Some(newlines);
                    if n < want {
                        // Short then: the end of the data as it was. Topped up in place, so
                        // that this read ends where one made now would.
                        let into = Arc::get_mut(buf).expect("a buffer of its own");
                        let more = read_at(&log.file, &mut into[n..want], self.read_pos + n as u64)?;
                        newlines = newlines
                            .map(|k| k + memchr::memchr_iter(b'\n', &into[n..n + more]).count() as u64);
                        n += more;
                    }
                    (n, want, newlines)
                }
                other => {
                    if let Some((_, Taken::NotStarted(bytes))) = other {
                        // Never started (the other thread was busy): read here.
                        self.spare = bytes;
                    }
                    let want = buf.len().min(room);
                    if Arc::get_mut(buf).is_none() {
                        // Still lent out (a consumer kept it past its callback): read into a new one.
                        *buf = Arc::new(vec![0; buf.len()]);
                    }
                    let into = Arc::get_mut(buf).expect("a buffer of its own");
                    (read_at(&log.file, &mut into[..want], self.read_pos)?, want, None)
                }
            };
            if n > 0 {
                let start = self.read_pos;
                self.read_pos += n as u64;
                stats.bytes += n as u64;
                let next = room - n;
                if n == want && next > 0 {
                    // A full read: behind the writer. The next window is read ahead while
                    // this one is handed out.
                    self.read_next(next.min(CATCH_UP_CHUNK));
                }
                self.split(buf, n, start, newlines, f, stats);
            }
            if n < want {
                // A short read is the end of the file as of now; spare the empty read.
                // Caught up: a follower that waits holds only the small buffer. One that
                // caught up with a writer still writing (this call read something) keeps
                // the large one until a call finds nothing: a catch-up that reaches the
                // writer's end at every read allocated and zeroed it again each time.
                if (buf.len() > READ_CHUNK && stats.bytes == 0) || !self.opts.keep_buffer {
                    *buf = ReadBuf::default();
                    self.spare = Vec::new();
                }
                if !self.opts.keep_buffer {
                    // Nor the text of the long lines it rendered.
                    self.rendered = Vec::new();
                    self.scratch = String::new();
                    self.joined = Vec::new();
                    self.partial.shrink();
                }
                return Ok(true);
            }
            if buf.len() < CATCH_UP_CHUNK && self.pending.is_none() {
                // A full read: behind the writer. Bigger reads hand the consumer bigger
                // regions (fewer calls, and worth splitting between threads). (A window read
                // ahead comes in a buffer of that size.)
                *buf = Arc::new(vec![0; CATCH_UP_CHUNK]);
            }
        }
    }

    /// Submits the read of the `want` bytes at `read_pos` to the read-ahead, if there is one.
    fn read_next(&mut self, want: usize) {
        let (Some(ahead), Some(log)) = (self.read_ahead.as_ref(), self.log.as_ref()) else {
            return;
        };
        let mut into = std::mem::take(&mut self.spare);
        if into.len() != CATCH_UP_CHUNK {
            into = vec![0; CATCH_UP_CHUNK];
        }
        self.pending = Some(Pending::start(
            &**ahead,
            Arc::clone(&log.file),
            log.id,
            self.read_pos,
            want,
            into,
        ));
    }

    /// Cuts `chunk` (which starts at file offset `start`) into lines, handed out at once as
    /// runs of whole lines, with each line continued from the last read or over-long on its
    /// own. Only those two kinds are looked at one by one: the runs between them are walked
    /// in jumps of [`LONGEST_WHOLE`] bytes (to the last newline within each) and their lines
    /// counted in one SIMD pass, so an ordinary line costs no step of its own here.
    /// `newlines`, when known, is the count of `\n` in the chunk (a read ahead counted them
    /// on its thread): the last run's lines are then what the other pieces leave of it, and
    /// only runs before an over-long line are counted here.
    fn split(
        &mut self,
        buf: &ReadBuf,
        n: usize,
        start: u64,
        newlines: Option<u64>,
        f: &mut impl FnMut(&[Chunk<'_>], &ReadBuf),
        stats: &mut ReadStats,
    ) {
        let chunk = &buf[..n];
        let mut pieces = std::mem::take(&mut self.pieces);
        let mut rendered = std::mem::take(&mut self.rendered);
        pieces.clear();
        // The first line not yet gone through, and the first of the whole lines not yet in
        // `pieces` (a run, numbered from `state.line_no + 1`).
        let mut line_start = 0;
        let mut run = 0;
        // Newlines of the chunk gone through so far (those of the pieces pushed).
        let mut counted = 0;
        if !self.partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                // Still no end to the line the last read left unfinished.
                self.partial.push(chunk);
                self.pieces = pieces;
                self.rendered = rendered;
                return;
            };
            self.state.line_no += 1;
            stats.lines += 1;
            counted += 1;
            self.partial.push(&chunk[..nl]);
            self.partial.strip_trailing_cr();
            if rendered.is_empty() {
                rendered.push(String::new());
            }
            let cut = self.partial.render(&mut rendered[0], &mut self.joined);
            self.partial.clear();
            pieces.push(Piece::Line(self.state.line_no, cut));
            line_start = nl + 1;
            run = line_start;
        }
        while line_start < chunk.len() {
            // Every line that ends within this reach is whole.
            let reach = (line_start + LONGEST_WHOLE).min(chunk.len());
            if let Some(i) = memchr::memrchr(b'\n', &chunk[line_start..reach]) {
                line_start += i + 1;
                continue;
            }
            // No `\n` within reach: the line is unfinished, or longer than a whole line can
            // be (but for a CRLF's `\r`).
            let Some(nl) = memchr::memchr(b'\n', &chunk[reach..]).map(|i| reach + i) else {
                break;
            };
            let piece = &chunk[line_start..nl];
            let body = piece.strip_suffix(b"\r").unwrap_or(piece);
            if body.len() > HEAD_KEEP + TAIL_KEEP {
                counted += self.push_run(&mut pieces, chunk, run..line_start, None, stats);
                self.state.line_no += 1;
                stats.lines += 1;
                counted += 1;
                let k = pieces.len();
                if rendered.len() <= k {
                    rendered.resize_with(k + 1, String::new);
                }
                // Over-long: always rendered into `rendered[k]`, never borrowed.
                let cut = render_line(body, &mut rendered[k]).1;
                pieces.push(Piece::Line(self.state.line_no, cut));
                run = nl + 1;
            }
            line_start = nl + 1;
        }
        // No `\n` lies past `line_start`: the last run has every newline not yet counted.
        let last = newlines.map(|total| total - counted);
        self.push_run(&mut pieces, chunk, run..line_start, last, stats);
        if line_start > 0 {
            self.state.offset = start + line_start as u64;
        }
        if line_start < chunk.len() {
            self.partial.push(&chunk[line_start..]);
        }
        if !pieces.is_empty() {
            let chunks: Vec<Chunk<'_>> = pieces
                .iter()
                .enumerate()
                .map(|(k, p)| match p {
                    Piece::Lines(first, range) => Chunk::Lines {
                        first: *first,
                        bytes: &chunk[range.clone()],
                    },
                    Piece::Line(no, cut) => Chunk::Line(LineRef {
                        no: *no,
                        text: &rendered[k],
                        cut: *cut,
                    }),
                })
                .collect();
            f(&chunks, buf);
        }
        // A window of over-long lines must not pin their text.
        rendered.truncate(2);
        self.pieces = pieces;
        self.rendered = rendered;
    }

    /// The whole lines `range` of `chunk` as one piece (counted unless `known`, and
    /// numbered on from the last line handed out), if there are any; returns their count.
    fn push_run(
        &mut self,
        pieces: &mut Vec<Piece>,
        chunk: &[u8],
        range: std::ops::Range<usize>,
        known: Option<u64>,
        stats: &mut ReadStats,
    ) -> u64 {
        let count = known.unwrap_or_else(|| memchr::memchr_iter(b'\n', &chunk[range.clone()]).count() as u64);
        debug_assert_eq!(
            count,
            memchr::memchr_iter(b'\n', &chunk[range.clone()]).count() as u64,
            "the lines of a run"
        );
        if count > 0 {
            pieces.push(Piece::Lines(self.state.line_no + 1, range));
            self.state.line_no += count;
            stats.lines += count;
        }
        count
    }
}

/// One read of `into.len()` bytes at `offset`, retried when a signal interrupts it.
fn read_at(file: &File, into: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(into, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// The longest a line and its `\n` can be and still be handed out whole, in a run.
const LONGEST_WHOLE: usize = HEAD_KEEP + TAIL_KEEP + 1;

/// A chunk of a window as [`Follower::split`] records it: lines by their range in the
/// window, or the line rendered in the slot of its index.
#[derive(Debug, Clone)]
enum Piece {
    Lines(u64, std::ops::Range<usize>),
    Line(u64, bool),
}

/// What a terminal shows of a line redrawn with `\r` (tqdm and friends): its last
/// non-empty `\r`-separated segment (so a CRLF line loses its `\r` too). The one definition:
/// the detector reads lines through it as well, live and in triage.
pub fn display_segment(line: &str) -> &str {
    let seg = display_segment_bytes(line.as_bytes());
    // `\r` is ASCII: the segment lies on character boundaries.
    let start = seg.as_ptr() as usize - line.as_ptr() as usize;
    &line[start..start + seg.len()]
}

/// [`display_segment`] of a line's bytes (the segments of the decoded line: `\r` is ASCII,
/// and decoding never merges it into a replaced sequence).
pub fn display_segment_bytes(line: &[u8]) -> &[u8] {
    // A SIMD search back from the end: this runs for every line read.
    let mut end = line.len();
    while let Some(cr) = memchr::memrchr(b'\r', &line[..end]) {
        if cr + 1 < end {
            return &line[cr + 1..end];
        }
        end = cr;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_segment_takes_the_last_redraw() {
        assert_eq!(display_segment(" 10%|#  |\r 50%|### |\r100%|####|"), "100%|####|");
        assert_eq!(display_segment("epoch 3\r"), "epoch 3");
        assert_eq!(display_segment("\r\r"), "");
        assert_eq!(display_segment("plain"), "plain");
        assert_eq!(display_segment(""), "");
        assert_eq!(display_segment("a\rb\r\r"), "b");
        assert_eq!(display_segment("\rb"), "b");
    }

    #[test]
    fn state_round_trips_through_json_and_tolerates_missing_fields() {
        let s = FollowState {
            offset: 42,
            line_no: 3,
            dev: Some(7),
            ino: Some(9),
            head: Some(HeadPrint::of(b"hello")),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<FollowState>(&json).unwrap(), s);
        let old: FollowState = serde_json::from_str(r#"{"offset":5}"#).unwrap();
        assert_eq!(old.offset, 5);
        assert_eq!(old.ino, None);
    }

    #[test]
    fn head_print_tells_contents_apart() {
        assert_eq!(HeadPrint::of(b"abc"), HeadPrint::of(b"abc"));
        assert_ne!(HeadPrint::of(b"abc"), HeadPrint::of(b"abd"));
        // Published FNV-1a 64 test vector, so persisted prints stay comparable.
        assert_eq!(HeadPrint::of(b"a").hash, 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn follower_and_its_wait_can_move_to_another_task() {
        fn is_send<T: Send>(_: &T) {}
        let mut f = Follower::new(PathBuf::from("x.log"), FollowState::default());
        is_send(&f.changed());
        is_send(&f);
    }
}
