//! Incident detection in a training log, line by line, the way an ML engineer reads it:
//! whole Python tracebacks (chained, from worker processes, interleaved with output),
//! native crashes, resource exhaustion, sampler and solver diagnostics. The same
//! [`Detector`] serves the live watcher (one line at a time, reporting at the first fatal
//! line and completing the report as the rest arrives) and `trainwatch triage` (all lines,
//! then [`Detector::finish`] with the exit status), so both report the same incidents.
//!
//! Severity is decided from what happens next: evidence that usually ends a run (a
//! traceback, `CUDA out of memory`) is reported fatal at once, and becomes a warning when
//! the log goes on with ordinary output (the program caught it) or the process exits 0.

mod attempts;
mod blocks;
mod bulk;
mod burst;
mod classify;
mod config;
mod curve;
mod ending;
mod exit;
mod nan_start;
mod prefilter;
mod rise;
mod rules;
mod scan;
mod signals;

use std::collections::{HashMap, VecDeque};

use crate::model::{Category, Incident, Severity};
use crate::watch::follower::display_segment;
/// A best-so-far value still at its start is bookkeeping: the metrics tracker asks it too.
pub(crate) use classify::{best_so_far_unset, window_filling};
use classify::{ExcLine, TbContext, Verdict};
pub use config::{DetectConfig, PatternError};
pub use exit::{exit_incident, exit_verdict, LogDisk};
/// Every fixture log of the corpus, for tests that walk them all.
#[cfg(test)]
pub(crate) use prefilter::tests::for_each_fixture;
use prefilter::{Lits, Prefilter};
pub(crate) use rules::states_handled;
use rules::{Death, Hit, HitKind, LineKind};
pub use scan::RegionScan;
pub(crate) use scan::ScanSlots;

/// What the detector learned from a line (or from the end of the log).
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// A new incident (index = position in emission order, 0-based).
    New { index: usize, incident: Incident },
    /// More evidence for incident `index` (rest of a traceback arrived, severity settled,
    /// count grew in a burst).
    Updated { index: usize, incident: Incident },
}

impl Finding {
    pub fn index(&self) -> usize {
        match self {
            Finding::New { index, .. } | Finding::Updated { index, .. } => *index,
        }
    }
    pub fn incident(&self) -> &Incident {
        match self {
            Finding::New { incident, .. } | Finding::Updated { incident, .. } => incident,
        }
    }
}

/// Ordinary lines after fatal-looking evidence that show the program went on (caught it).
const SURVIVE_AFTER: u64 = 3;
/// With a failing exit, the latest fatal-looking evidence is taken as the cause if no more
/// than this many ordinary lines follow it (stdout buffered until exit can land after the
/// traceback, so "nothing after it" would be too strict).
const CAUSE_WITHIN: u64 = 200;
/// Bounds that keep memory flat whatever the log holds.
const MAX_INCIDENTS: usize = 1000;
const MAX_EXCERPT: usize = 60;
const EXCERPT_HEAD: usize = 8;
const MAX_LINE_CHARS: usize = 400;
const RING: usize = 5;
/// The log's last lines that its end reads for the program's stated cause (of them the
/// context ring is the last [`RING`]): a wrapper's report after it (`/usr/bin/time -v`'s
/// two dozen lines, a watchdog's stack dump) must not push the cause out of sight.
const TAIL: usize = 40;
/// How many lines after a warning a line saying the program deals with it (`…; refitting`)
/// may come and still be about it (a library's warning message runs a dozen lines).
const RESTATED_WITHIN: u64 = 12;

/// Cut `s` to at most `max` bytes on a char boundary, marking the cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A traceback the program announced it recovers from (see [`Detector::handled`]).
#[derive(Debug, Clone)]
struct Handled {
    incident: Incident,
    /// Where it first went wrong: the first of the attempts the program said it retried,
    /// just before, whose words name the same cause (`upload attempt 1/3 failed: HTTP Error
    /// 503: Service Unavailable; retrying in 0.5s`).
    first_attempt: Option<(u64, String)>,
    /// Ordinary lines after it, until the next evidence (enough of them: the run went on).
    ordinary_after: u64,
    /// Evidence came after it: the count stops.
    evidence_after: bool,
    /// The rank prefix it was printed with: another rank's traceback right after it is not
    /// chained to it.
    prefix: String,
}

#[derive(Debug, Clone)]
struct Meta {
    looks_fatal: bool,
    strong: bool,
    /// The latest occurrence was followed by ordinary output.
    survived: bool,
    /// The program said, right after it, that it handled this and goes on (`falling back
    /// to …`): a note, whatever the exit.
    outlived: bool,
    /// The latest occurrence was swallowed (`Exception ignored in`).
    caught: bool,
    /// Set by the exit status, overrides the log-based guess.
    forced: Option<Severity>,
    /// Excerpt lines dropped from the middle.
    omitted: usize,
    /// Only reports another process's failure (a launcher's summary, a survivor's failed
    /// collective): not the cause when the log states one.
    consequence: bool,
    /// Printed by one rank of a distributed job (`[rank1]: …`): that process's end, which
    /// the other ranks' output does not survive.
    rank: bool,
    /// An exception group whose leaf (the sub-exception that caused it) was read.
    leaf: bool,
    /// How the evidence says the process died, if it does.
    death: Option<Death>,
}

impl Meta {
    fn severity(&self) -> Severity {
        if let Some(s) = self.forced {
            return s;
        }
        if self.outlived {
            return Severity::Note;
        }
        if self.looks_fatal && !self.survived && !self.caught {
            Severity::Fatal
        } else {
            Severity::Warning
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Fresh,
    /// A chained traceback of incident `.0` (`.1`: its lines go into the excerpt).
    Chained(usize, bool),
    /// DataLoader's `Original Traceback` inside incident `.0`: holds the root cause.
    Original(usize, bool),
    /// A sub-exception's traceback inside exception group `.0`: the first leaf is the cause.
    Leaf(usize, bool),
}

#[derive(Debug)]
struct Block {
    target: Target,
    lines: Vec<String>,
    ctx: TbContext,
    interleaved: u32,
    ignored: bool,
    /// An exception group's traceback: every line carries a `  | ` margin.
    group: bool,
    /// The program announced, just before, that it handles this and goes on (a retry, a
    /// rebuilt cache, a fallback).
    recovered: bool,
    /// The message of the record at the info or debug level just before the traceback, if
    /// one was: when it quotes the exception, the program logged the traceback as
    /// information (`logger.info(…, exc_info=True)`) and goes on.
    info_intro: Option<String>,
    /// What the log stated just before this traceback began (see `Detector::relay_words`).
    stated: Option<(u64, String, Verdict)>,
    /// The last frame line read is in the job's own code, and the line after it is its
    /// source (see `TbContext::converting`).
    own_frame: bool,
    source_next: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterKind {
    Exception,
    Warning,
    Faulthandler,
    Native,
}

#[derive(Debug)]
struct After {
    idx: usize,
    append: bool,
    kind: AfterKind,
    left: u32,
    blank: bool,
    chain: bool,
    /// After an exception group: its sub-exceptions follow in `| `/`+-` margins.
    group: bool,
}

#[derive(Debug)]
struct Table {
    col: usize,
    ncols: usize,
    header: String,
    /// The incident of this table's rows above the threshold, and whether its rows go into
    /// the excerpt (not when the table repeats an earlier one: a burst).
    idx: Option<(usize, bool)>,
}

#[derive(Debug)]
enum Mode {
    Normal,
    Block(Block),
    After(After),
    /// A noise warning's message: skip up to this many lines (ends at its source line).
    Skip(u32),
    Table(Table),
    /// Inside rich's box of an exception group's sub-exception (`╭─ Sub-exception #1 ─╮`):
    /// its exception line is the group's leaf (see [`Detector::rich_leaf`]).
    RichLeaf(RichLeaf),
}

/// Where a rich-drawn sub-exception box is read: the group's incident, whether its lines
/// join the excerpt, and how many more lines the box may take.
#[derive(Debug, Clone, Copy)]
struct RichLeaf {
    idx: usize,
    append: bool,
    left: u32,
}

/// The incremental detector. Feed lines in order; read findings as they come.
#[derive(Debug)]
pub struct Detector {
    cfg: DetectConfig,
    pre: Prefilter,
    incidents: Vec<Incident>,
    meta: Vec<Meta>,
    by_key: HashMap<u64, usize>,
    mode: Mode,
    /// The last [`TAIL`] lines; its last [`RING`] are the context ring (see
    /// [`Detector::ring`]: context before a line that states a problem, the exit-status
    /// incident's excerpt), all of them are read at the log's end for a stated cause.
    tail: VecDeque<(u64, String)>,
    /// Lines that introduce the next traceback (`_RemoteTraceback:`, `Exception ignored in`).
    prefix: Vec<String>,
    ignore_next: bool,
    /// Incident whose latest occurrence looks fatal and has not been survived yet.
    pending_fatal: Option<usize>,
    /// Incident with the latest fatal-looking occurrence.
    last_fatal: Option<usize>,
    /// Ordinary lines since the latest fatal-looking occurrence.
    tail_ordinary: u64,
    finished: bool,
    /// The log's file system, found full when the process ended (see [`LogDisk`]).
    log_disk: Option<LogDisk>,
    /// The current line's distributed-rank prefix (`[rank1]: `), empty for most lines.
    rank_prefix: String,
    /// The first of the latest error-level log records: its line, text and verdict.
    error_record: Option<(u64, String, Verdict)>,
    /// What the log stated just before a relay of another process's failure — torchrun's word
    /// that a rank exited with a code (the rank printed why, then `sys.exit(3)`), a driver's
    /// `CalledProcessError` for its child: the cause, if nothing but relays states one.
    relay_words: Option<(u64, String, Verdict)>,
    /// The first of bash's complaints about the job script (see [`LineKind::ShellComplaint`]).
    shell_complaint: Option<(u64, String)>,
    /// Lines since `error_record`.
    since_record: u64,
    /// A traceback the program announced it recovers from has just ended: the chained
    /// tracebacks that follow belong to it.
    recovering: bool,
    /// The latest such traceback, kept aside (it is no incident): if nothing but other
    /// processes' relays of the failure follows it before a failing exit, it was not handled
    /// after all — the retry raised again — and it is the cause.
    handled: Option<Handled>,
    /// The run's first non-finite training record (see [`nan_start`]).
    nan_start: Option<nan_start::NanStart>,
    /// Whether the run's non-finite records were evaluations' only (see [`nan_start`]).
    nan_seen: Option<nan_start::NanSeen>,
    /// The latest lines that reported a failed or retried attempt (see [`attempts`]).
    attempts: attempts::Attempts,
    /// The evaluation scores of the log's first lines (see [`curve`]).
    head: curve::Head,
    /// Number of the latest line seen.
    seen: u64,
    /// The incident of the latest occurrence of any evidence, and the line it was at.
    last_evidence: Option<(usize, u64)>,
    /// The groups of prefilter literals the current line's visible text holds (set by
    /// `step`; 0: an ordinary line, no rule can fire on it).
    lits: Lits,
    /// What the bulk path found the next line to be before stepping it (see
    /// `Detector::reads_no_ring`), so that [`Detector::normal`] does not classify it again.
    classified: Option<Quiet>,
}

/// A [`LineKind`] that reads no earlier line, without its borrow of the line.
#[derive(Debug, Clone, Copy)]
enum Quiet {
    Nothing,
    NoiseWarning,
    ShellComplaint,
    /// The message at `start..end` of the visible text.
    ErrorRecord {
        start: usize,
        end: usize,
    },
}

impl Quiet {
    /// `kind` of the visible text `vis`, if it is one of these.
    fn of(vis: &str, kind: &LineKind<'_>) -> Option<Self> {
        match kind {
            LineKind::Nothing => Some(Quiet::Nothing),
            LineKind::NoiseWarning => Some(Quiet::NoiseWarning),
            LineKind::ShellComplaint => Some(Quiet::ShellComplaint),
            LineKind::ErrorRecord { msg } => {
                let start = (msg.as_ptr() as usize).checked_sub(vis.as_ptr() as usize)?;
                let end = start + msg.len();
                (end <= vis.len()).then_some(Quiet::ErrorRecord { start, end })
            }
            _ => None,
        }
    }

    fn kind(self, vis: &str) -> LineKind<'_> {
        match self {
            Quiet::Nothing => LineKind::Nothing,
            Quiet::NoiseWarning => LineKind::NoiseWarning,
            Quiet::ShellComplaint => LineKind::ShellComplaint,
            Quiet::ErrorRecord { start, end } => LineKind::ErrorRecord {
                msg: &vis[start..end],
            },
        }
    }
}

impl Detector {
    pub fn new(cfg: DetectConfig) -> Self {
        Self {
            cfg,
            pre: Prefilter::new(),
            incidents: Vec::new(),
            meta: Vec::new(),
            by_key: HashMap::new(),
            mode: Mode::Normal,
            tail: VecDeque::with_capacity(TAIL),
            prefix: Vec::new(),
            ignore_next: false,
            pending_fatal: None,
            last_fatal: None,
            tail_ordinary: 0,
            finished: false,
            log_disk: None,
            rank_prefix: String::new(),
            error_record: None,
            shell_complaint: None,
            relay_words: None,
            since_record: 0,
            recovering: false,
            handled: None,
            classified: None,
            nan_start: None,
            nan_seen: None,
            attempts: attempts::Attempts::new(),
            head: curve::Head::default(),
            seen: 0,
            last_evidence: None,
            lits: 0,
        }
    }

    /// The log's file system was found full at the end (before [`Detector::finish`]): an
    /// exit the log does not explain is then explained by that.
    pub fn note_log_disk(&mut self, disk: Option<LogDisk>) {
        self.log_disk = disk;
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Incidents so far, in emission order (index = the `index` of findings).
    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// Feed one log line (1-based line number, text without the trailing '\n'; may
    /// contain '\r').
    pub fn push_line(&mut self, line_no: u64, line: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        if line_no <= curve::HEAD_LINES {
            self.head.look(line_no, display_segment(line));
        }
        self.step(line_no, line, &mut out);
        out
    }

    /// The log went quiet for a while (live mode): settle anything pending.
    pub fn idle(&mut self) -> Vec<Finding> {
        // Everything is reported as it arrives; quiet only closes the message or table
        // being read, so that later lines are taken for what they are.
        self.settle(false);
        Vec::new()
    }

    fn set_forced(&mut self, i: usize, s: Severity, out: &mut Vec<Finding>) {
        self.meta[i].forced = Some(s);
        self.sync_severity(i, out);
    }

    /// Recompute incident `i`'s severity; report it when it changed.
    fn sync_severity(&mut self, i: usize, out: &mut Vec<Finding>) {
        let s = self.meta[i].severity();
        if self.incidents[i].severity != s {
            self.incidents[i].severity = s;
            self.updated(i, out);
        }
    }

    fn updated(&self, i: usize, out: &mut Vec<Finding>) {
        // One finding per incident per line is enough: replace an earlier one.
        if let Some(pos) = out.iter().position(|f| f.index() == i) {
            let f = &mut out[pos];
            match f {
                Finding::New { incident, .. } | Finding::Updated { incident, .. } => {
                    *incident = self.incidents[i].clone();
                }
            }
            return;
        }
        out.push(Finding::Updated {
            index: i,
            incident: self.incidents[i].clone(),
        });
    }

    /// End whatever is in progress. A traceback cut off before its exception line says
    /// nothing by itself (the exit status will), so it is dropped.
    fn settle(&mut self, at_end: bool) {
        match &self.mode {
            Mode::Block(_) if !at_end => {}
            _ => self.mode = Mode::Normal,
        }
        if at_end {
            self.prefix.clear();
        }
    }

    fn remember(&mut self, n: u64, line: &str) {
        let mut s = if self.tail.len() == TAIL {
            self.tail.pop_front().map(|(_, s)| s).unwrap_or_default()
        } else {
            String::new()
        };
        s.clear();
        let mut end = line.len().min(MAX_LINE_CHARS);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        s.push_str(&line[..end]);
        self.tail.push_back((n, s));
    }

    /// The context ring: the last [`RING`] lines remembered.
    fn ring(&self) -> std::collections::vec_deque::Iter<'_, (u64, String)> {
        self.tail.range(self.tail.len().saturating_sub(RING)..)
    }

    fn step(&mut self, n: u64, raw: &str, out: &mut Vec<Finding>) {
        self.step_scanned(n, raw, None, out);
    }

    /// [`Detector::step`] with the groups of literals `raw` holds, when a [`RegionScan`]
    /// already found them.
    fn step_scanned(&mut self, n: u64, raw: &str, lits: Option<Lits>, out: &mut Vec<Finding>) {
        let shown = self.step_rules(n, raw, lits, out);
        self.remember(n, shown);
    }

    /// The text the rules read of a line: its shown segment, the length of its rank or worker
    /// prefix, and the groups of literals the text after that prefix holds (`lits`: those
    /// of `raw`, when a [`RegionScan`] already found them).
    fn reading<'a>(&self, raw: &'a str, lits: Option<Lits>) -> (&'a str, usize, Lits) {
        let shown = display_segment(raw);
        let k = self.line_prefix_len(shown).unwrap_or(0);
        // The raw line's literals are the visible text's unless a redraw was cut off before
        // it: a rank prefix and the ends `trim` drops hold no part of a literal, and lossy
        // decoding keeps every ASCII byte.
        let lits = match lits {
            Some(m) if shown.len() == raw.len() => m,
            _ => prefilter::lits(&shown.as_bytes()[k..]),
        };
        (shown, k, lits)
    }

    /// [`Detector::step_scanned`] but for the line joining the context ring (the caller
    /// remembers it); returns the line's shown segment.
    fn step_rules<'a>(
        &mut self,
        n: u64,
        raw: &'a str,
        lits: Option<Lits>,
        out: &mut Vec<Finding>,
    ) -> &'a str {
        let (shown, k, lits) = self.reading(raw, lits);
        self.seen = n;
        self.since_record = self.since_record.saturating_add(1);
        // torchrun prefixes each line of a rank's output with `[rankN]: `, `srun --label` with
        // `N: `, Ray a worker's with `(NAME pid=N) `: read the line the rank printed, and
        // quote it with its rank.
        self.rank_prefix.clear();
        let label = if self.cfg.rank_labels {
            srun_label_len(shown)
        } else {
            None
        };
        self.rank_prefix.push_str(&shown[..k]);
        let vis = &shown[k..];
        self.lits = lits;
        if self.cfg.rank_labels && label.is_none() {
            if let Some((node, first, last)) = srun_task_failure(shown) {
                self.name_node(node, first, last, out);
            }
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal(n, vis, out),
            Mode::Block(b) => self.in_block(b, n, vis, out),
            Mode::After(a) => self.after(a, n, vis, out),
            Mode::Skip(left) => self.skip(left, n, vis, out),
            Mode::Table(t) => self.table(t, n, vis, out),
            Mode::RichLeaf(r) => self.rich_leaf(r, n, vis, out),
        }
        shown
    }

    /// Length of the line's rank or worker prefix: `srun --label`'s `N: ` (when the job
    /// asks for it), torchrun's `[rankN]: `, Ray's `(NAME pid=N) `.
    fn line_prefix_len(&self, shown: &str) -> Option<usize> {
        let label = if self.cfg.rank_labels {
            srun_label_len(shown)
        } else {
            None
        };
        label
            .or_else(|| rank_prefix_len(shown))
            .or_else(|| worker_prefix_len(shown))
    }

    /// srun said which node the failed tasks `first..=last` ran on: the first incident a rank of
    /// them stated (quoted with its label) names its node too, so the report says where.
    fn name_node(&mut self, node: &str, first: u32, last: u32, out: &mut Vec<Finding>) {
        let by_rank = |text: &str| {
            let t = text.trim_start();
            let digits = t.bytes().take_while(u8::is_ascii_digit).count();
            t[digits..].starts_with(": ")
                && t[..digits]
                    .parse::<u32>()
                    .is_ok_and(|r| (first..=last).contains(&r))
        };
        let Some(i) = self
            .incidents
            .iter()
            .position(|inc| by_rank(&inc.text) && !inc.text.contains(" (rank "))
        else {
            return;
        };
        let rank = self.incidents[i]
            .text
            .trim_start()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        self.incidents[i]
            .text
            .push_str(&format!(" (rank {rank} on {node})"));
        self.updated(i, out);
    }

    /// `text` as the log shows it: with the current line's rank prefix.
    fn quoted(&self, text: &str) -> String {
        if self.rank_prefix.is_empty() {
            text.to_string()
        } else {
            format!("{}{}", self.rank_prefix, text.trim_start())
        }
    }

    fn count_ordinary(&mut self, count: u64, out: &mut Vec<Finding>) {
        self.tail_ordinary = self.tail_ordinary.saturating_add(count);
        if let Some(h) = self.handled.as_mut().filter(|h| !h.evidence_after) {
            h.ordinary_after = h.ordinary_after.saturating_add(count);
            if h.ordinary_after >= SURVIVE_AFTER {
                // The run went on after it: handled, as it said.
                self.handled = None;
            }
        }
        if !self.prefix.is_empty() {
            self.prefix.clear();
            self.ignore_next = false;
        }
        if let Some(i) = self.pending_fatal {
            // Another rank's output says nothing about whether this rank went on.
            if self.tail_ordinary >= SURVIVE_AFTER && !self.meta[i].rank {
                self.pending_fatal = None;
                self.meta[i].survived = true;
                self.sync_severity(i, out);
            }
        }
    }

    fn ignored(&self, vis: &str) -> bool {
        self.cfg.ignore.iter().any(|r| r.is_match(vis))
    }

    fn normal(&mut self, n: u64, vis: &str, out: &mut Vec<Finding>) {
        let classified = self.classified.take();
        let extra = if self.cfg.extra.is_empty() {
            None
        } else {
            self.cfg
                .extra
                .iter()
                .find(|(_, r)| r.is_match(vis))
                .map(|(c, _)| *c)
        };
        if self.recovering {
            let t = vis.trim();
            // Between a handled traceback and the one chained to it.
            let same_process = self
                .handled
                .as_ref()
                .map_or(true, |h| h.prefix == self.rank_prefix);
            self.recovering = same_process
                && (t.is_empty()
                    || t.starts_with("During handling of the above exception")
                    || t.starts_with("The above exception was the direct cause")
                    || t.ends_with("Traceback (most recent call last):"));
        }
        if extra.is_none() && self.lits == 0 {
            // The hot path: an ordinary line.
            if !self.prefix.is_empty() && vis.trim() == "\"\"\"" {
                self.prefix.push(vis.to_string());
                return;
            }
            self.count_ordinary(1, out);
            return;
        }
        if self.ignored(vis) {
            self.count_ordinary(1, out);
            return;
        }
        self.note_attempt(n, vis);
        if self.lits == prefilter::ATTEMPT && extra.is_none() {
            // No rule reads an attempt's literal: the line is kept, and otherwise ordinary.
            self.count_ordinary(1, out);
            return;
        }
        if let Some(category) = extra {
            let t = vis.trim();
            let h = Hit {
                category,
                looks_fatal: true,
                kind: HitKind::Plain,
                key: t,
                message: "",
                consequence: false,
                reason: extra_reason(category),
                death: None,
            };
            self.hit(n, vis, h, out);
            return;
        }
        let kind = match classified {
            Some(q) => q.kind(vis),
            None => rules::classify_line_with(vis, self.cfg.rhat_threshold, self.lits),
        };
        match kind {
            LineKind::TracebackHeader | LineKind::OriginalHeader => {
                self.start_block(Target::Fresh, vis);
            }
            LineKind::RemoteWrapper => self.prefix.push(cut(vis, MAX_LINE_CHARS)),
            LineKind::ExceptionIgnored => {
                self.ignore_next = true;
                self.prefix.push(cut(vis, MAX_LINE_CHARS));
            }
            LineKind::NoiseWarning => {
                self.count_ordinary(1, out);
                self.mode = Mode::Skip(12);
            }
            LineKind::Hit(h) => {
                if rules::error_record(vis.trim()).is_some() {
                    // Evidence logged at an error level (`[CRITICAL] loss is inf …`): also the
                    // program's last word if it then stops, as an error record is.
                    let v = classify::Verdict {
                        category: h.category,
                        strong: true,
                        reason: h.reason,
                    };
                    self.error_record = Some((n, cut(&self.quoted(vis.trim()), MAX_LINE_CHARS), v));
                    self.since_record = 0;
                }
                self.hit(n, vis, h, out)
            }
            LineKind::RhatTable { col, ncols } => {
                self.count_ordinary(1, out);
                self.mode = Mode::Table(Table {
                    col,
                    ncols,
                    header: cut(vis, MAX_LINE_CHARS),
                    idx: None,
                });
            }
            LineKind::ErrorRecord { msg } => {
                let stale = self.since_record > CAUSE_WITHIN;
                if self.error_record.is_none() || stale {
                    let v = classify::classify_exception("", msg, &TbContext::default());
                    let text = cut(&self.quoted(vis.trim()), MAX_LINE_CHARS);
                    self.error_record = Some((n, text, v));
                }
                self.since_record = 0;
                self.count_ordinary(1, out);
            }
            LineKind::ShellComplaint => {
                if self.shell_complaint.is_none() {
                    self.shell_complaint = Some((n, cut(&self.quoted(vis.trim()), MAX_LINE_CHARS)));
                }
                self.count_ordinary(1, out);
            }
            LineKind::Nothing => self.count_ordinary(1, out),
        }
    }

    fn start_block(&mut self, target: Target, vis: &str) {
        let mut lines = if target == Target::Fresh {
            std::mem::take(&mut self.prefix)
        } else {
            Vec::new()
        };
        let ignored = target == Target::Fresh && std::mem::take(&mut self.ignore_next);
        // Keep the header readable when it was glued after a progress bar.
        let t = vis.trim_end();
        let header = match t.rfind("Traceback (most recent call last):") {
            Some(i) if t[..i].ends_with("Original ") => &t[i - "Original ".len()..],
            Some(i) => &t[i..],
            None => t,
        };
        // An exception group's traceback, or one of its sub-exceptions' (`    | Traceback`).
        let group = t.contains("Exception Group Traceback") || t.trim_start().starts_with('|');
        let header = if group { t.trim_start() } else { header };
        lines.push(header.to_string());
        // (Not an exception group: what `except*` handled is gone from it, the printed group
        // is the part nobody handled.)
        let recovered = match target {
            Target::Fresh if !group => {
                std::mem::take(&mut self.recovering)
                    || self.tail.back().is_some_and(|(_, l)| rules::handles_next(l))
            }
            _ => false,
        };
        let info_intro = match target {
            Target::Fresh if !group => self
                .tail
                .back()
                .and_then(|(_, l)| rules::info_record(l.trim()))
                .map(str::to_string),
            _ => None,
        };
        let ctx = TbContext {
            service_refused: self.ring().any(|(_, l)| rules::reports_service_error(l)),
            ..TbContext::default()
        };
        self.mode = Mode::Block(Block {
            target,
            lines,
            ctx,
            interleaved: 0,
            ignored,
            group,
            recovered,
            info_intro,
            stated: if target == Target::Fresh {
                self.stated_cause()
            } else {
                None
            },
            own_frame: false,
            source_next: false,
        });
    }

    /// Record one occurrence of evidence: a new incident, or one more of a known one.
    /// Returns the incident's index and whether it is new.
    #[allow(clippy::too_many_arguments)]
    fn occurrence(
        &mut self,
        key: u64,
        n: u64,
        verdict: Verdict,
        looks_fatal: bool,
        caught: bool,
        text: &str,
        excerpt: Vec<String>,
        out: &mut Vec<Finding>,
    ) -> Option<(usize, bool)> {
        let fatalish = looks_fatal && !caught;
        let text = &self.quoted(text);
        if let Some(h) = self.handled.as_mut() {
            h.evidence_after = true;
        }
        if let Some(&i) = self.by_key.get(&key) {
            self.last_evidence = Some((i, n));
            let m = &mut self.meta[i];
            m.survived = false;
            // Happening again unannounced: no longer only handled.
            m.outlived = false;
            m.caught = caught;
            m.looks_fatal |= looks_fatal;
            self.incidents[i].count = self.incidents[i].count.saturating_add(1);
            self.incidents[i].severity = self.meta[i].severity();
            if fatalish {
                self.note_fatal(i);
            }
            self.updated(i, out);
            return Some((i, false));
        }
        if self.incidents.len() >= MAX_INCIDENTS {
            tracing::debug!(line = n, "incident limit reached; evidence dropped");
            return None;
        }
        let meta = Meta {
            looks_fatal,
            strong: verdict.strong,
            survived: false,
            outlived: false,
            caught,
            forced: None,
            omitted: 0,
            consequence: false,
            rank: !self.rank_prefix.is_empty(),
            leaf: false,
            death: None,
        };
        let mut inc = Incident {
            category: verdict.category,
            severity: meta.severity(),
            line: n,
            text: cut(text.trim(), MAX_LINE_CHARS),
            excerpt: Vec::new(),
            count: 1,
            reason: verdict.reason.to_string(),
        };
        let i = self.incidents.len();
        self.meta.push(meta);
        for l in excerpt {
            push_excerpt(&mut inc.excerpt, &mut self.meta[i].omitted, l);
        }
        self.incidents.push(inc);
        self.by_key.insert(key, i);
        self.last_evidence = Some((i, n));
        if fatalish {
            self.note_fatal(i);
        }
        out.push(Finding::New {
            index: i,
            incident: self.incidents[i].clone(),
        });
        Some((i, true))
    }

    fn note_fatal(&mut self, i: usize) {
        self.pending_fatal = Some(i);
        self.last_fatal = Some(i);
        self.tail_ordinary = 0;
    }

    fn append(&mut self, i: usize, line: &str) {
        let (inc, m) = (&mut self.incidents[i], &mut self.meta[i]);
        push_excerpt(&mut inc.excerpt, &mut m.omitted, cut(line, MAX_LINE_CHARS));
    }

    /// The program said it deals with incident `i` and goes on: a note, not the run's end.
    fn outlive(&mut self, i: usize, out: &mut Vec<Finding>) {
        self.meta[i].outlived = true;
        if self.pending_fatal == Some(i) {
            self.pending_fatal = None;
        }
        if self.last_fatal == Some(i) {
            self.last_fatal = None;
        }
        self.sync_severity(i, out);
    }

    fn hit(&mut self, n: u64, vis: &str, h: Hit<'_>, out: &mut Vec<Finding>) {
        if h.consequence && self.relay_words.is_none() {
            // The launcher's word on a rank's exit code: what was said just before is the
            // rank's own (read before this line joins the ring).
            self.relay_words = self.stated_cause();
        }
        let t = vis.trim_end();
        let mut excerpt = Vec::new();
        if h.kind == HitKind::Exception {
            // SyntaxError & co. without a header: the lines before show file, code, caret.
            excerpt.extend(self.ring().rev().take(4).rev().map(|(_, l)| l.clone()));
        }
        // An abort names no cause of its own: what the program printed just before it (a
        // native loader's `fatal: … beyond the shard size`, a failed check's message) is the
        // line to look at, classified by what it says; the abort joins its excerpt.
        let said = (h.death == Some(Death::Abort))
            .then(|| self.words_before_abort())
            .flatten();
        let (n, t, key, verdict) = match &said {
            Some((line, words, v)) => {
                excerpt.push(words.clone());
                (*line, words.as_str(), burst::key(v.category, words), *v)
            }
            None => (
                n,
                t,
                burst::key(h.category, h.key),
                Verdict {
                    category: h.category,
                    strong: true,
                    reason: h.reason,
                },
            ),
        };
        excerpt.push(cut(vis.trim_end(), MAX_LINE_CHARS));
        let Some((idx, new)) = self.occurrence(key, n, verdict, h.looks_fatal, false, t, excerpt, out) else {
            return;
        };
        self.meta[idx].consequence = h.consequence;
        if new {
            self.meta[idx].death = h.death;
        }
        // The line says in the same breath that the program deals with it and goes on
        // (`upload failed: 503; retrying in 5s`, `did not converge; refitting with
        // max_iter=2000`): the run outlives it.
        // So is a warning of the same kind just before, which the line restates (scikit-learn's
        // ConvergenceWarning, then the script's own `… did not converge; refitting`).
        if rules::announces_recovery(t) {
            self.outlive(idx, out);
            let restated = (0..self.incidents.len()).rev().find(|&j| {
                j != idx
                    && self.incidents[j].category == self.incidents[idx].category
                    && n.saturating_sub(self.incidents[j].line) <= RESTATED_WITHIN
            });
            if let Some(j) = restated {
                self.outlive(j, out);
            }
        }
        if h.kind == HitKind::Plain && h.category == Category::Convergence {
            self.nan_record(idx, t, out);
        }
        let (kind, left) = match h.kind {
            HitKind::PyWarning => (AfterKind::Warning, 10),
            HitKind::Faulthandler => (AfterKind::Faulthandler, 80),
            // A C++ exception's `what():` and its native backtrace (`frame #N: …`).
            HitKind::Native => (AfterKind::Native, 80),
            HitKind::Exception => (AfterKind::Exception, 10),
            HitKind::Plain => return,
        };
        self.mode = Mode::After(After {
            idx,
            append: new,
            kind,
            left,
            blank: false,
            chain: false,
            group: false,
        });
    }
}

/// Why a line matched by the job's own `extra` patterns got its category.
fn extra_reason(category: Category) -> &'static str {
    match category {
        Category::Implementation => "a pattern of the job's own config says so (implementation)",
        Category::Data => "a pattern of the job's own config says so (data)",
        Category::Resource => "a pattern of the job's own config says so (resource)",
        Category::Convergence => "a pattern of the job's own config says so (convergence)",
        Category::Infrastructure => "a pattern of the job's own config says so (infrastructure)",
    }
}

/// Length of torchrun's `[rankN]: ` prefix at the start of `line`, if it has one.
fn rank_prefix_len(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("[rank")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !rest[digits..].starts_with("]:") {
        return None;
    }
    let k = "[rank".len() + digits + "]:".len();
    Some(if line[k..].starts_with(' ') { k + 1 } else { k })
}

/// Length of a worker's prefix as Ray prints it, `(NAME pid=N) ` or `(NAME pid=N, ip=A) `
/// (NAME optional), at the start of `line`.
fn worker_prefix_len(line: &str) -> Option<usize> {
    let rest = line.strip_prefix('(')?;
    let close = rest.as_bytes().iter().take(160).position(|&b| b == b')')?;
    let inner = &rest[..close];
    if !rest[close + 1..].starts_with(' ') {
        return None;
    }
    let (head, ip) = match inner.split_once(", ip=") {
        Some((h, ip)) => (h, Some(ip)),
        None => (inner, None),
    };
    let pid = match head.rsplit_once(' ') {
        Some((name, pid)) if !name.is_empty() && !name.contains(' ') => pid,
        Some(_) => return None,
        None => head,
    };
    let digits = pid.strip_prefix("pid=")?;
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ip.map_or(true, |ip| !ip.is_empty() && !ip.contains(' '));
    ok.then_some(1 + close + 2)
}

/// srun's word on failed tasks, `srun: error: NODE: task 1: Exited with exit code 1` (or
/// `tasks 0-3: Killed`): the node and the first and last task.
fn srun_task_failure(line: &str) -> Option<(&str, u32, u32)> {
    let rest = line.trim_start().strip_prefix("srun: error: ")?;
    let (node, rest) = rest.split_once(": ")?;
    let rest = rest
        .strip_prefix("tasks ")
        .or_else(|| rest.strip_prefix("task "))?;
    let (tasks, _) = rest.split_once(':')?;
    let (a, b) = tasks.split_once('-').unwrap_or((tasks, tasks));
    if node.is_empty() || node.contains(' ') {
        return None;
    }
    Some((node, a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// The length of `srun --label`'s prefix: the task number right-aligned, then `: `.
fn srun_label_len(line: &str) -> Option<usize> {
    let pad = line.bytes().take_while(|&b| b == b' ').count();
    let digits = line[pad..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 6 || !line[pad + digits..].starts_with(": ") {
        return None;
    }
    Some(pad + digits + 2)
}

fn push_excerpt(ex: &mut Vec<String>, omitted: &mut usize, line: String) {
    if ex.len() >= MAX_EXCERPT {
        // Keep the head (where it started) and the tail (the frames that matter).
        if *omitted == 0 {
            ex.insert(EXCERPT_HEAD, String::new());
        }
        ex.remove(EXCERPT_HEAD + 1);
        *omitted += 1;
        ex[EXCERPT_HEAD] = format!("  [… {omitted} lines …]");
    }
    ex.push(line);
}

#[cfg(test)]
mod prefix_tests {
    use super::worker_prefix_len;

    #[test]
    fn a_workers_prefix_is_read_as_ray_prints_it() {
        let len = |p: &str| Some(p.len());
        assert_eq!(
            worker_prefix_len("(train_worker pid=31429) Traceback"),
            len("(train_worker pid=31429) ")
        );
        assert_eq!(worker_prefix_len("(pid=7) x"), len("(pid=7) "));
        assert_eq!(
            worker_prefix_len("(RayTrainWorker pid=12, ip=10.0.0.2) ValueError: x"),
            len("(RayTrainWorker pid=12, ip=10.0.0.2) ")
        );
        assert_eq!(worker_prefix_len("(see below) Traceback"), None);
        assert_eq!(worker_prefix_len("(a b pid=3) x"), None);
        assert_eq!(worker_prefix_len("(pid=) x"), None);
        assert_eq!(worker_prefix_len("(pid=3)x"), None);
    }
}
#[cfg(test)]
mod reason_tests;
#[cfg(test)]
mod tests;
