//! Rules for single lines outside a traceback: Python warnings (which ones matter, which are
//! noise), native libraries' fatal lines, sampler diagnostics (divergences, R-hat, effective
//! sample size), solver messages and a NaN loss. Only called on lines the prefilter let by.

use std::sync::OnceLock;

use regex::Regex;

use super::classify::{self, TbContext};
use super::{exit, prefilter};
use crate::model::{Category, ExitOutcome};

/// What one line is, for the detector's state machine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LineKind<'a> {
    /// `Traceback (most recent call last):` (possibly glued after a progress bar).
    TracebackHeader,
    /// PyTorch DataLoader's `Original Traceback (most recent call last):`.
    OriginalHeader,
    /// `…_RemoteTraceback: ` / `RemoteTraceback:`: a worker's traceback follows, quoted.
    RemoteWrapper,
    /// `Exception ignored in: …`: the traceback that follows was swallowed.
    ExceptionIgnored,
    /// A Python warning whose class says nothing about the run (FutureWarning, …): skip its
    /// message lines too, they are prose that may contain any word.
    NoiseWarning,
    /// A line that is evidence on its own.
    Hit(Hit<'a>),
    /// A summary table header with an `r_hat` column (ArviZ / PyMC `az.summary`).
    RhatTable { col: usize, ncols: usize },
    /// A log record at level ERROR / CRITICAL / FATAL (`ERROR:name:msg`, `12:00 CRITICAL
    /// name: msg`, …) with its message. Not evidence while the run goes on (programs log
    /// errors they handle); the cause when the process then fails and nothing else says why.
    ErrorRecord { msg: &'a str },
    /// bash's complaint about a line of the script it runs (`job.sh: line 4: $'\r': command
    /// not found`): the script is wrong even if it then ends well (it has no `set -e`).
    ShellComplaint,
    /// Nothing (the prefilter's literal was a false alarm: `train_error`, `0 diverging`, …).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HitKind {
    /// A Python warning line `file:N: XWarning: msg` (its message and source line follow).
    PyWarning,
    /// `Fatal Python error: …` (faulthandler's thread dump follows).
    Faulthandler,
    /// A native library's fatal line (LightGBM `[Fatal]`, a C++ `terminate called …`).
    Native,
    /// Any other single line.
    Plain,
    /// A Python exception line outside a traceback (only SyntaxError & co., which the
    /// interpreter prints without the `Traceback` header for the main script).
    Exception,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit<'a> {
    pub category: Category,
    /// Ends the run unless output shows it did not (then it is a warning).
    pub looks_fatal: bool,
    pub kind: HitKind,
    /// The part of the line that identifies it for burst folding (digits are masked later).
    pub key: &'a str,
    /// For [`HitKind::Native`]: the message a Python exception will repeat.
    pub message: &'a str,
    /// Only reports another process's end (torchrun's summary of a rank that exited with a
    /// code): the rank's own evidence, when the log has it, comes first.
    pub consequence: bool,
    /// Why the line got its category (the rule's reason, see [`classify::Verdict`]).
    pub reason: &'static str,
    /// The death the line states, if any.
    pub death: Option<Death>,
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

/// A Python warning as the `warnings` module prints it: `path:N: ClassWarning: message`
/// (maybe behind a logging prefix). Returns the class, the message and where the class
/// starts. Hand-parsed: this runs on every line that mentions a warning.
fn parse_warning_line(t: &str) -> Option<(&str, &str, usize)> {
    parse_warning_named(t, "Warning")
}

/// [`parse_warning_line`] for a warning class whose name ends in `tail` (pandas' warning
/// `ChainedAssignmentError` is a warning despite its name).
fn parse_warning_named<'a>(t: &'a str, tail: &str) -> Option<(&'a str, &'a str, usize)> {
    // Asked of nearly every stop line: for the two names asked, a searcher built once
    // (`str::find` builds one per call, which cost more than the search); the same first
    // occurrence either way.
    static WARNING: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    static CHAINED: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    let built = match tail {
        "Warning" => Some(&WARNING),
        "ChainedAssignmentError" => Some(&CHAINED),
        _ => None,
    };
    let first = match built {
        Some(f) => f
            .get_or_init(|| memchr::memmem::Finder::new(tail).into_owned())
            .find(t.as_bytes()),
        None => t.find(tail),
    };
    let p = first.filter(|&p| t[p + tail.len()..].starts_with(": "))?;
    let end = p + tail.len();
    let b = t.as_bytes();
    let mut start = p;
    while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'_' | b'.')) {
        start -= 1;
    }
    if !(b[start].is_ascii_alphabetic() || b[start] == b'_') {
        return None;
    }
    let before = t[..start].strip_suffix(": ")?;
    let path = before.trim_end_matches(|c: char| c.is_ascii_digit());
    if path.len() == before.len() || !path.ends_with(':') {
        return None;
    }
    Some((&t[start..end], &t[end + 2..], start))
}

fn divergence_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        // The sampler's wording, not "step 12 divergence=0.3" (a KL divergence metric).
        // The count is a whole number (not the tail of `r_hat 1.01`), and `divergences=0` is
        // a key with its value, read by `divergence_value_re`.
        r"(?i)(?:^|[^\w.])(\d+)\s+(?:divergences\b|divergence\s+after|divergent\s+(?:transitions|samples))",
    )
}

/// `divergences=3`, `divergences: 3`, `n_divergent=3` — a sampler summary's key and value.
fn divergence_value_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b(?:n_)?(?:divergences|divergent|diverging)\s*[=:]\s*(\d+)(?:[^\w.]|$)",
    )
}

/// torchrun's elastic agent on the first rank that failed:
/// `failed (exitcode: -9) local_rank: 1 (pid: 29714) of binary: …`. A negative code is
/// the signal that ended the rank.
pub(crate) fn elastic_exit(t: &str) -> Option<i32> {
    let rest = &t[t.find("failed (exitcode: ")? + "failed (exitcode: ".len()..];
    let code = rest[..rest.find(')')?].trim().parse().ok()?;
    rest.contains("local_rank:").then_some(code)
}

/// torchrun's agent stopped by a signal from outside: `Received 15 death signal, shutting
/// down workers` — the signal.
pub(crate) fn agent_signal(t: &str) -> Option<i32> {
    let rest = &t[t.find("Received ")? + "Received ".len()..];
    let (n, rest) = rest.split_once(' ')?;
    rest.starts_with("death signal").then(|| n.parse().ok()).flatten()
}

/// A C++ exception nobody caught, when neither its `what():` message nor its backtrace says
/// more (see `Detector::native_detail`).
pub(crate) const NATIVE_UNCAUGHT: &str =
    "a native library stopped on an uncaught C++ exception (implementation)";

/// A shell's report that a child it ran died of a signal: `job.sh: line 5: 4242 Killed
/// python train.py` (bash's `Segmentation fault`, `Aborted`… for the others).
fn shell_child_died(t: &str, signal: &str) -> bool {
    let Some(i) = t.find(signal) else {
        return false;
    };
    let before = t[..i].trim_end();
    let pid = before.rsplit([' ', ':']).next().unwrap_or("");
    !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && before.contains("line ")
}

/// faulthandler's watchdog firing (`faulthandler.dump_traceback_later(timeout)`):
/// `Timeout (0:00:03)!`, then every thread's stack.
fn watchdog_timeout(t: &str) -> bool {
    let Some(inner) = t.strip_prefix("Timeout (").and_then(|r| r.strip_suffix(")!")) else {
        return false;
    };
    let mut parts = inner.split(':');
    let whole = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    };
    whole(parts.next()) && whole(parts.next()) && whole(parts.next()) && parts.next().is_none()
}

/// glibc's message before it aborts on a corrupted heap: `double free or corruption (out)`,
/// `free(): invalid pointer`, `malloc(): corrupted top size`, `corrupted size vs. prev_size`
/// (older glibc: `*** Error in `./prog': double free or corruption … ***`).
fn heap_check_failed(t: &str) -> bool {
    let t = t
        .strip_prefix("*** Error in `")
        .map_or(t, |r| r.split_once("': ").map_or(r, |(_, m)| m));
    if t.starts_with("double free or corruption")
        || t.starts_with("corrupted size vs. prev_size")
        || t.starts_with("corrupted double-linked list")
    {
        return true;
    }
    let Some((func, what)) = t.split_once("(): ") else {
        return false;
    };
    matches!(
        func,
        "free" | "malloc" | "realloc" | "munmap_chunk" | "malloc_consolidate" | "_int_free" | "_int_malloc"
    ) && ["invalid", "corrupt", "double free", "unaligned"]
        .iter()
        .any(|w| what.contains(w))
}

fn shell_child_killed(t: &str) -> bool {
    shell_child_died(t, " Killed")
}

/// How a line of evidence says a process died: a shell's `Killed`, a native crash's
/// `Segmentation fault`, a C++ exception nobody caught. Kept with the incident, so the end
/// of the log can ask which deaths it states without reading reasons as keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Death {
    /// `Killed`, a shell's `line 5: 4242 Killed` (SIGKILL).
    Killed,
    /// A segfault, a bus error, a failed `assert()`, a shell's `Segmentation fault`.
    Crash,
    /// faulthandler's `Fatal Python error: Aborted`: the process called abort() (a failed
    /// check in native code or the program's own); the lines before it may say why.
    Abort,
    /// A shell's `CPU time limit exceeded` (SIGXCPU: the job's `ulimit -t`).
    CpuLimit,
    /// A shell's `File size limit exceeded` (SIGXFSZ: the job's `ulimit -f`).
    FileLimit,
    /// A shell's `Alarm clock` (SIGALRM with no handler: the program's own timer, a time
    /// budget it set itself with `alarm()`).
    Alarm,
    /// `terminate called after throwing …`: `said` once its `what():` message or backtrace
    /// gave a more specific category than the exception's type (see
    /// `Detector::native_detail`), or when the type said it all (`std::bad_alloc`).
    Uncaught { said: bool },
}

impl Death {
    /// The signals this death explains: a failing exit by one of them is explained by that
    /// line, however much the script printed after it.
    pub(crate) fn signals(self) -> &'static [i32] {
        match self {
            Death::Killed => &[9],
            // SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV
            Death::Crash => &[4, 6, 7, 8, 11],
            Death::Abort => &[6],
            Death::CpuLimit => &[24],
            Death::FileLimit => &[25],
            Death::Alarm => &[14],
            // std::terminate aborts
            Death::Uncaught { .. } => &[6],
        }
    }
}

/// A logging record at an error level: its message. The level must be a whole token among
/// the record's first fields (`ERROR:name:msg`, `12:00:01 CRITICAL name: msg`,
/// `2026-01-01 12:00:01,5 - name - ERROR - msg`, `[ERROR] msg`, `| ERROR    | msg`).
pub(crate) fn error_record(t: &str) -> Option<&str> {
    // sd-daemon(3)'s priority prefix, as a systemd service logs (`<3>` err, `<2>` crit)
    record_at(t, &["<3>", "<2>"], &["ERROR", "CRITICAL", "FATAL"])
}

/// A logging record at the warning level (`12:00:01 WARNING name: msg`, `[WARN] msg`, `<4>`):
/// its message. The program judged what it logs there not to stop it.
pub(crate) fn warning_record(t: &str) -> Option<&str> {
    record_at(t, &["<4>"], &["WARNING", "WARN"])
}

/// A logging record at the info or debug level (`12:00:01 INFO name: msg`, `<6>`, `<7>`):
/// its message. The program judged what it logs there ordinary.
pub(crate) fn info_record(t: &str) -> Option<&str> {
    record_at(t, &["<6>", "<7>"], &["INFO", "DEBUG"])
}

/// Does the record message `intro` quote the exception `name: msg` that follows it: its
/// message (the part before any quoted detail) or its class name? Then the traceback is that
/// record's, not an unrelated crash after an ordinary line of the log.
pub(crate) fn quotes_exception(intro: &str, name: &str, msg: &str) -> bool {
    let class = classify::short_name(name);
    let msg = msg.trim();
    // (A bare `Error` or `Exception`, as binascii's, names nothing a record would quote.)
    let specific = class.len() > "Error".len() && !matches!(class, "Exception" | "Warning");
    (msg.len() >= 8 && intro.contains(msg)) || (specific && intro.contains(class))
}

/// The message of a record whose level, one of `levels`, is a whole token among its first
/// fields, or that starts with one of the sd-daemon priority prefixes `priorities`.
fn record_at<'a>(t: &'a str, priorities: &[&str], levels: &[&str]) -> Option<&'a str> {
    if let Some(msg) = priorities.iter().find_map(|p| t.strip_prefix(p)) {
        let msg = msg.trim_start();
        return (!msg.is_empty()).then_some(msg);
    }
    for level in levels {
        let Some(p) = memchr::memmem::find(t.as_bytes(), level.as_bytes()) else {
            continue;
        };
        if p > 48 {
            continue;
        }
        let before = t.as_bytes()[..p].last().copied();
        let after = t.as_bytes().get(p + level.len()).copied();
        let sep = |c: Option<u8>| matches!(c, None | Some(b' ' | b':' | b'[' | b']' | b'|' | b'-' | b'\t'));
        if !(sep(before) && sep(after)) || after.is_none() {
            continue;
        }
        let msg = t[p + level.len()..].trim_start_matches([' ', ':', ']', '|', '-', '\t']);
        return (!msg.is_empty()).then_some(msg);
    }
    None
}

/// A C or C++ `assert()` that failed, as glibc prints it before it aborts the process:
/// `python3: csrc/index.cpp:118: void build(…): Assertion `b < n' failed.`
fn native_assertion(t: &str) -> bool {
    t.contains(": Assertion `") && t.ends_with("' failed.")
}

/// The line before a traceback says the program handles what follows and goes on: a
/// recovery ([`announces_recovery`]), a skip it logs below the error level (`loader:
/// skipping corrupt record 57`), or a record at the warning level that the traceback belongs
/// to (`logger.warning(…, exc_info=True)`: `WARNING recipe: push_to_hub failed on this node`).
/// A skip logged as an ERROR is the program calling it an error (data was dropped): that
/// stays a warning.
pub(crate) fn handles_next(line: &str) -> bool {
    if announces_recovery(line) || warning_record(line.trim()).is_some() {
        return true;
    }
    let l = line.to_ascii_lowercase();
    (l.contains("skipping") || l.contains("skipped")) && error_record(line.trim()).is_none()
}

/// The source line Python prints after a warning's message (`  warnings.warn(msg, …)`):
/// whatever the message held, a traceback among it, was reported and the program went on.
pub(crate) fn closes_warning(line: &str) -> bool {
    line.starts_with([' ', '\t']) && line.trim_start().starts_with("warnings.warn(")
}

/// The program says it handles a failure and goes on: a retry, a rebuilt cache, a
/// fallback. (Not "skipped": dropping data is worth a warning unless logged below error
/// level, see [`handles_next`].)
pub(crate) fn announces_recovery(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "retrying",
        "will retry",
        "retry in",
        "trying again",
        "rebuilding",
        "regenerating",
        "recomputing",
        "refitting",
        "falling back",
        "fall back",
        "recovering",
    ]
    .iter()
    .any(|p| l.contains(p))
}

/// Does the line say that what failed works again (`circuit CLOSED: gateway back, flushed
/// 19 buffered points`, `connection restored`, `reconnected to the broker`, `upload
/// succeeded on attempt 3`)? Not a plan to retry: that is [`announces_recovery`].
pub(crate) fn states_recovered(line: &str) -> bool {
    static BACK: OnceLock<Regex> = OnceLock::new();
    !states_failure(line)
        && re(
            &BACK,
            r"(?i)\b(?:recovered|restored|reconnected|back online|is back|are back|came back|(?:gateway|service|server|store|connection|endpoint) back|succeeded on (?:attempt|retry|try)|circuit closed)\b",
        )
        .is_match(line)
}

/// Does the line report a service's error answer (`token service replied HTTP 200:
/// {'error': 'temporarily_unavailable', …}`, `feature API responded 503`, a server's access
/// log of a 5xx)?
pub(crate) fn reports_service_error(line: &str) -> bool {
    // A server's access log of the request: `"GET /v1/label-map HTTP/1.1" 503 -`.
    static ACCESS_5XX: OnceLock<Regex> = OnceLock::new();
    if line.contains("HTTP/") && re(&ACCESS_5XX, r#"HTTP/[0-9.]+" 5[0-9][0-9]\b"#).is_match(line) {
        return true;
    }
    // A service's status the job logged as a field (`catalog listing: status=degraded
    // shards=0`, `status: REINDEXING`): a state in which its answers hold nothing usable.
    static STATUS: OnceLock<Regex> = OnceLock::new();
    if line.contains("tatus")
        && re(
            &STATUS,
            r"(?i)\bstatus\s*[=:]\s*['\x22]?(?:degraded|reindexing|rebuilding|unavailable|maintenance|down|not[_ ]ready|starting|initializing|read[_-]?only)\b",
        )
        .is_match(line)
    {
        return true;
    }
    let l = line.to_ascii_lowercase();
    let answered = [
        "replied",
        "reply",
        "response",
        "responded",
        "answered",
        "returned",
    ]
    .iter()
    .any(|w| l.contains(w));
    answered
        && [
            "unavailable",
            "maintenance",
            "'error'",
            "\"error\"",
            "overloaded",
            "try again later",
            " 500",
            " 502",
            " 503",
            " 504",
            // a service answering while it is not ready to serve (`registry answered 200:
            // stage=production status=REINDEXING`): its answer holds nothing usable
            "reindexing",
            "rebuilding",
            "not ready",
            "initializing",
            "starting up",
            "degraded",
        ]
        .iter()
        .any(|w| l.contains(w))
}

/// Does the line report an attempt of something the program retries: a retry announced, or
/// an attempt numbered out of its tries (`attempt 2/3 failed`, `try 1 of 5`)?
pub(crate) fn reports_attempt(line: &str) -> bool {
    static ATTEMPT: OnceLock<Regex> = OnceLock::new();
    announces_recovery(line)
        || re(&ATTEMPT, r"(?i)\b(?:attempt|try|retry)\s*#?\d+\s*(?:/|of)\s*\d+").is_match(line)
}

/// Does `t` start with a call whose first argument is a string literal: `name('…`,
/// `obj.method("…`?
fn echoed_call(t: &str) -> bool {
    let name = t
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
        .count();
    name > 0
        && t.as_bytes()[0].is_ascii_alphabetic()
        && matches!(t.as_bytes().get(name..name + 2), Some([b'(', b'\'' | b'"']))
}

/// The job's own word, or its scheduler's, that the cluster is stopping it: a preemption
/// (`received SIGTERM (preemption notice)`, `checkpoint written; exiting so the scheduler
/// requeues the job`, a spot instance's interruption notice) or a failed node
/// (slurmstepd's `CANCELLED AT … DUE TO NODE FAILURE`).
pub(crate) fn announces_preemption(line: &str) -> bool {
    // A partition or an instance that can be preempted (`preemptible`) is no notice.
    let l = line.to_ascii_lowercase().replace("preemptible", "");
    [
        "preempt",
        "requeue",
        "spot instance",
        "spot interruption",
        "interruption notice",
        "due to node failure",
        "node_fail",
    ]
    .iter()
    .any(|p| l.contains(p))
}

pub(crate) const PREEMPTED: &str =
    "the job's log says the cluster stopped it: a preemption, a requeue, a failed node (infrastructure)";

/// A Unix tool's message in its conventional form, `prog: message` (`curl: (22) The requested
/// URL returned error: 404`, `tar: Unexpected EOF in archive`, bash's `repo/job.sh: line 4:
/// …`): its message. Not a log level's word (`error: …`), nor a record with a time or a
/// level before it.
pub(crate) fn tool_message(t: &str) -> Option<&str> {
    let (name, msg) = t.split_once(": ")?;
    let named = (1..=24).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'/'));
    let level = matches!(
        name,
        "error" | "warning" | "warn" | "fatal" | "info" | "debug" | "note" | "hint" | "usage" | "critical"
    );
    (named && !level && !msg.trim().is_empty()).then_some(msg)
}

/// Does the (lower-cased) line say that nothing failed (`retry policy: max_retries=3 on
/// (ConnectionError, TimeoutError); no errors so far`, `Failed: 0`, `0 errors`)? Its error
/// words name what it counts, not a failure.
fn states_no_error(l: &str) -> bool {
    static NONE: OnceLock<Regex> = OnceLock::new();
    re(
        &NONE,
        // (a count of zero closes its field: `Failed: 0 |`, `errors=0 nan_count=0`, not
        // `failed: 0 of 4 trials finished`)
        r"\b(?:no|0|zero)\s+(?:errors?|failures?|exceptions?|failed)\b|\b(?:errors?|failures?|exceptions?|failed)\s*[:=]\s*0(?:\s*[|,;)\]]|\s*$|\s+[a-z_]+\s*[:=])|\bwithout errors?\b",
    )
    .is_match(l)
}

/// A line of a program's own that states a failure (`print(e)` before `sys.exit(2)`). A
/// decision to stop (`metric below the gate, aborting`) is not one: the exit says it all.
pub(crate) fn states_failure(line: &str) -> bool {
    let l = line.trim().to_ascii_lowercase();
    !l.is_empty()
        && !states_no_error(&l)
        // a record the program logged at an informational level is not its word of failure
        // (`INFO  checkpoint sanity: 0 Failed / 312 tensors OK; no RuntimeError during load`)
        && info_record(line.trim()).is_none()
        && [
            "error",
            "failed",
            "failure",
            "cannot",
            "can't",
            "could not",
            "unable to",
            "no such file",
            "[errno",
            "invalid",
            "not found",
            "fatal",
            "exception",
            "missing",
            "out of range",
            "out of bounds",
            "refusing to",
            "mismatch",
            "unexpected end",
            "exceeds",
            "exceeded",
            "killing",
            "killed",
            "corrupt",
            "truncated",
            "timed out",
            "denied",
            "refused",
            "unreachable",
            // bash's `line 11: ROOT: unbound variable`
            "unbound variable",
            "command not found",
            // mountpoint(1)'s `/mnt/data is not a mountpoint`; a volume `not mounted`
            "not a mountpoint",
            "not mounted",
            // a watchdog's word on a process that stopped answering
            "no heartbeat",
            "not responding",
            // getopts' and getopt's (`train.sh: illegal option -- r`), cmp's (`a b differ:
            // byte 11048, line 1383`)
            "illegal option",
            "unrecognized option",
            "option requires an argument",
            "differ: byte",
            "differ: char",
        ]
        .iter()
        .any(|p| l.contains(p))
            // a time budget that ran out (`hit its 3s wall-clock budget and was stopped`,
            // `DUE TO TIME LIMIT`), not one announced (`with wall-clock budget 3s`)
            || ["wall-clock", "time limit"].iter().any(|p| l.contains(p))
                && ["hit", "reached", "stopped", "killed", "due to", "ran out", "exceeded"]
                    .iter()
                    .any(|p| l.contains(p))
}

/// Does a warning's message say a table or an input is empty (`the score table is empty`)?
fn says_empty(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    ["is empty", "are empty", "was empty", "were empty"]
        .iter()
        .any(|p| l.contains(p))
}

pub(crate) const STREAM_REPEATED: &str =
    "the loader fetched more samples than its IterableDataset holds: every worker yields the whole stream, so each sample comes once per worker (implementation)";
pub(crate) const EMPTY_WARNED: &str =
    "a warning that a table the job read or wrote is empty: the run went on with no data (data)";

/// A line that says what it reports was dealt with and left behind: a trial discarded, a
/// batch or a step skipped, a sample dropped (whole words), the run rolled back.
pub(crate) fn states_handled(line: &str) -> bool {
    const HANDLED: [&str; 8] = [
        "discarded",
        "discarding",
        "skipped",
        "skipping",
        "pruned",
        "rejected",
        "dropped",
        "dropping",
    ];
    line.split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w.len() >= 6 && HANDLED.iter().any(|h| w.eq_ignore_ascii_case(h)))
        // a trainer's guard going back to an earlier state (`non-finite loss (inf) at step
        // 16; rolling back to step 0 and halving lr`), not a rolling mean
        || ["rolling back", "rolled back"].iter().any(|p| line.contains(p))
}

/// A runner's word that a step it ran failed, which only relays that step's own failure:
/// make's `make: *** [Makefile:4: features] Error 1` (`make[2]: *** …`), a job script's ERR
/// trap or a supervisor saying a command failed or exited with a status (`FAILED (exit 7)
/// at line 14: curl …`, `train.py failed 3 times (last status 3)`, `exited with status 3`).
pub(crate) fn relays_failure(line: &str) -> bool {
    let t = line.trim();
    if t.starts_with("make") && t.contains(": *** [") && t.contains("] Error ") {
        return true;
    }
    let l = t.to_ascii_lowercase();
    (l.contains("failed") || l.contains("exited"))
        && [
            "failed (exit ",
            "exit status",
            "(last status",
            "with status",
            "with exit code",
            "exited with code",
        ]
        .iter()
        .any(|p| l.contains(p))
}

/// A line that gives the reason for a failure stated just before it: `reason : …`,
/// `cause: …`, `because …` (a job's own failure banner).
pub(crate) fn gives_reason(line: &str) -> bool {
    let l = line.trim_start().to_ascii_lowercase();
    l.strip_prefix("because ").is_some()
        || ["reason", "cause", "why"].iter().any(|w| {
            l.strip_prefix(w)
                .is_some_and(|rest| rest.trim_start().starts_with([':', '=']))
        })
}

/// A run stopping itself over its loss: a trainer's guard (`val_loss 32.5 is more than 10x
/// the first epoch's 1.15; stopping`), a loss-named early stop that ends the job. The loss
/// as a whole word or a key ending in it (`val_loss`), and a word of stopping, as whole words.
pub(crate) fn stops_over_loss(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let mut loss = false;
    let mut stop = false;
    for w in lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        loss |= w == "loss" || w.ends_with("_loss");
        stop |= matches!(w, "stopping" | "aborting" | "halting" | "abort" | "halt");
    }
    loss && (stop || lower.contains("giving up"))
}

/// A metric record whose loss (or gradient norm) is NaN or infinite: `{'loss': nan, …}`,
/// `{'grad_norm': 'inf'}`, `train_loss=nan`. Each value is read as a whole token with its
/// own key, so `nan_count=0` or `inf_steps: 0` say nothing.
pub(crate) fn metric_not_finite(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'=' || c == b':' {
            // The key: the word before the separator (quotes stripped).
            let mut k_end = i;
            while k_end > 0 && matches!(b[k_end - 1], b'\'' | b'"' | b' ') {
                k_end -= 1;
            }
            let mut k_start = k_end;
            while k_start > 0
                && (b[k_start - 1].is_ascii_alphanumeric() || matches!(b[k_start - 1], b'_' | b'/' | b'.'))
            {
                k_start -= 1;
            }
            let key = &t[k_start..k_end];
            let mut v = i + 1;
            while v < b.len() && matches!(b[v], b' ' | b'\'' | b'"') {
                v += 1;
            }
            let mut v_end = v;
            while v_end < b.len()
                && (b[v_end].is_ascii_alphanumeric() || matches!(b[v_end], b'-' | b'+' | b'.'))
            {
                v_end += 1;
            }
            let value = t[v..v_end].trim_start_matches(['-', '+']);
            let lossy = {
                let k = key.to_ascii_lowercase();
                k.contains("loss") || k.contains("grad_norm") || k == "objective" || k == "elbo"
            };
            let value = value.to_ascii_lowercase();
            if lossy
                && matches!(value.as_str(), "nan" | "inf" | "infinity")
                && !classify::best_so_far_unset(key, &value)
                && !classify::window_filling(key, &value)
            {
                return true;
            }
            i = v_end.max(i + 1);
            continue;
        }
        i += 1;
    }
    false
}

fn rhat_value_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b(?:max(?:imum)?[ _])?r[-_ ]?hat\b[^0-9\n]{0,24}?(\d+(?:\.\d+)?|nan|inf)",
    )
}

fn rhat_pymc_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"rhat statistic is larger than (\d+(?:\.\d+)?)")
}

fn hit<'a>(
    category: Category,
    looks_fatal: bool,
    kind: HitKind,
    key: &'a str,
    reason: &'static str,
) -> LineKind<'a> {
    LineKind::Hit(Hit {
        category,
        looks_fatal,
        kind,
        key,
        message: "",
        consequence: false,
        reason,
        death: None,
    })
}

/// [`hit`] for a line that states how a process died.
fn death_hit<'a>(
    category: Category,
    kind: HitKind,
    key: &'a str,
    reason: &'static str,
    death: Death,
) -> LineKind<'a> {
    match hit(category, true, kind, key, reason) {
        LineKind::Hit(h) => LineKind::Hit(Hit {
            death: Some(death),
            ..h
        }),
        other => other,
    }
}

pub(crate) const ABORTED: &str =
    "the process aborted itself (abort(): a failed check in native code or the program) with no reason before it (implementation)";
pub(crate) const STUCK: &str =
    "the program made no progress for its watchdog's timeout: stuck waiting (a service, I/O, a lock, a peer) (resource)";
pub(crate) const HEAP_CORRUPTED: &str =
    "glibc found the heap corrupted (a double free, an invalid pointer) and aborted: a memory bug in native code (implementation)";
pub(crate) const BROADCAST_LOSS: &str =
    "the loss warned that its target and input shapes differ and are broadcast: it compares the wrong pairs (implementation)";
pub(crate) const WRITE_LOST: &str =
    "pandas warned that a chained assignment never reaches the frame: the code's write is lost (implementation)";
pub(crate) const DEBUG_RUN: &str =
    "a debugging switch is on (Lightning's fast_dev_run: one batch, no logging, no checkpoint): the run trains and saves nothing real (implementation)";
pub(crate) const NAN_MADE: &str =
    "numpy made NaN of the job's values (0/0, the log or square root of a negative): what follows computes on NaN (data)";
pub(crate) const CONVERGENCE_WARNING: &str = "the solver warned that it did not converge (convergence)";
pub(crate) const KILLED: &str =
    "the process was killed (SIGKILL), most often by the kernel's OOM killer (resource)";
pub(crate) const DIVERGENCES: &str = "the sampler reported divergent transitions (convergence)";
pub(crate) const RHAT_HIGH: &str = "R-hat above the bar: the chains did not mix (convergence)";
pub(crate) const ESS_LOW: &str = "the sampler's effective sample size is too small (convergence)";

/// The memory rule's reason for a line: CUDA's own, or the process's.
fn memory_reason(t: &str) -> &'static str {
    if t.contains("CUDA") {
        classify::CUDA_OOM
    } else {
        classify::OUT_OF_MEMORY
    }
}

/// joblib's warning that a worker died. Asked of every warning's message: the searcher for
/// this long phrase is built once (building it per line cost more than the search).
fn says_worker_stopped(msg: &str) -> bool {
    static F: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    F.get_or_init(|| memchr::memmem::Finder::new("worker stopped while some jobs were given to the executor"))
        .find(msg.as_bytes())
        .is_some()
}

/// Convergence wording shared by warnings, plain lines and exception messages.
pub(crate) fn says_not_converged(s: &str) -> bool {
    // (`Failed to converge after 6 iterations` as well: the case of a sentence's start.)
    let lower = s.to_ascii_lowercase();
    NOT_CONVERGED
        .iter()
        .any(|p| lower.contains(&p.to_ascii_lowercase()))
        && !lower.contains("svd did not converge")
}

/// A run's own word that its model is not learning (`WARNING: model did not learn: eval_loss
/// 0.6927 -> 0.6927`). Each holds a [`prefilter::CONVERGE`] literal.
pub(crate) fn says_not_learning(s: &str) -> bool {
    NOT_LEARNING.iter().any(|p| s.contains(p))
}

const NOT_LEARNING: [&str; 8] = [
    "did not learn",
    "is not learning",
    "failed to learn",
    "stopped learning",
    "model did not train",
    "plateau at chance",
    "on a plateau",
    "units are dead",
];

/// Each holds a [`prefilter::CONVERGE`] literal: only a line with one is asked.
const NOT_CONVERGED: [&str; 10] = [
    "failed to converge",
    "did not converge",
    "not converged",
    "no convergence",
    "Maximum number of iterations",
    "maximum number of iterations",
    "ITERATIONS REACHED LIMIT",
    "Iteration limit reached",
    "max iterations reached",
    "Optimal parameters not found",
];

/// Classify a line the prefilter let by. `line` is the visible text (after the last `\r`).
#[cfg(test)]
pub(crate) fn classify_line(line: &str, rhat_threshold: f64) -> LineKind<'_> {
    classify_line_with(line, rhat_threshold, prefilter::lits(line.as_bytes()))
}

/// [`classify_line`], `m` being the groups of literals `line` holds ([`prefilter::lits`]).
pub(crate) fn classify_line_with(line: &str, rhat_threshold: f64, m: prefilter::Lits) -> LineKind<'_> {
    let t = line.trim();
    if t.ends_with("Traceback (most recent call last):") {
        return if t.ends_with("Original Traceback (most recent call last):") {
            LineKind::OriginalHeader
        } else {
            LineKind::TracebackHeader
        };
    }
    if t.ends_with("RemoteTraceback:") {
        return LineKind::RemoteWrapper;
    }
    if t.starts_with("Exception ignored in") {
        return LineKind::ExceptionIgnored;
    }
    // A call echoed with a string argument (`predict('CUDA out of memory…') -> ERROR`, a
    // REPL's or a test's print): the words are its data, not the run's evidence.
    if echoed_call(t) {
        return LineKind::Nothing;
    }
    // rich's boxed traceback: `╭──── Traceback (most recent call last) ────╮`.
    if t.starts_with('╭') && t.contains("Traceback (most recent call last)") {
        return LineKind::TracebackHeader;
    }
    // Which literals the line holds: each rule below runs only where its literal is (the
    // regexes capture, which costs far more than a scan).
    let has = |group: prefilter::Lits| m & group != 0;
    let hat = has(prefilter::RHAT);
    if let Some((class, msg, start)) = has(prefilter::WARNING).then(|| parse_warning_line(t)).flatten() {
        let short = classify::short_name(class);
        let key = &t[start..];
        if matches!(
            short,
            "ConvergenceWarning"
                | "IterationLimitWarning"
                | "HessianInversionWarning"
                | "PerfectSeparationWarning"
        ) || (has(prefilter::CONVERGE) && (says_not_converged(msg) || says_not_learning(msg)))
        {
            // The solver's warning names its cause when the data made it (KMeans' `Number of
            // distinct clusters (3) found smaller than n_clusters (5). Possibly due to
            // duplicate points in X.`): the data's, not the solver's.
            let v = classify::classify_exception("", msg, &TbContext::default());
            if v.strong && v.category == Category::Data {
                return hit(Category::Data, false, HitKind::PyWarning, key, v.reason);
            }
            return hit(
                Category::Convergence,
                false,
                HitKind::PyWarning,
                key,
                CONVERGENCE_WARNING,
            );
        }
        if classify::class_absent(msg) {
            return hit(
                Category::Data,
                false,
                HitKind::PyWarning,
                key,
                classify::CLASS_ABSENT,
            );
        }
        // torch's loss warning that the target and the input shapes differ and will be
        // broadcast (`Using a target size … that is different to the input size`): the
        // loss is computed on the wrong pairs, silently; the code's shapes.
        if short == "UserWarning" && msg.contains("incorrect results due to broadcasting") {
            return hit(
                Category::Implementation,
                false,
                HitKind::PyWarning,
                key,
                BROADCAST_LOSS,
            );
        }
        // numpy making NaN of the job's values (`invalid value encountered in divide`: 0/0,
        // the log or square root of a negative): what follows computes on NaN. Not of one
        // number (`… in scalar divide`: a summary's 0/0, one rank's recall with no positives).
        if short == "RuntimeWarning"
            && msg.starts_with("invalid value encountered in")
            && !msg.starts_with("invalid value encountered in scalar ")
        {
            return hit(Category::Data, false, HitKind::PyWarning, key, NAN_MADE);
        }
        // torch's check of an IterableDataset's length (`Length of IterableDataset … was
        // reported to be 12 …, but 24 samples have been fetched`): every loader worker yields
        // the whole stream, so each sample comes once per worker.
        if short == "UserWarning"
            && msg.contains("IterableDataset")
            && msg.contains("samples have been fetched")
        {
            return hit(
                Category::Implementation,
                false,
                HitKind::PyWarning,
                key,
                STREAM_REPEATED,
            );
        }
        // A warning that what the job read or produced holds nothing (`scored 0 customers;
        // the score table is empty`): the run goes on with no data.
        if short == "UserWarning" && says_empty(msg) {
            return hit(Category::Data, false, HitKind::PyWarning, key, EMPTY_WARNED);
        }
        if says_worker_stopped(msg) {
            return hit(
                Category::Resource,
                false,
                HitKind::PyWarning,
                key,
                classify::WORKER_KILLED,
            );
        }
        return LineKind::NoiseWarning;
    }
    if !has(!(prefilter::WARNING | prefilter::TRACEBACK | prefilter::EXCEPTION)) {
        return LineKind::Nothing;
    }
    // pandas under copy-on-write: a chained assignment (`df['x'].fillna(…, inplace=True)`)
    // that never reaches the frame, printed as a warning; the run goes on with the values
    // unchanged.
    if has(prefilter::ERROR) {
        if let Some((_, _, start)) = parse_warning_named(t, "ChainedAssignmentError") {
            return hit(
                Category::Implementation,
                false,
                HitKind::PyWarning,
                &t[start..],
                WRITE_LOST,
            );
        }
    }
    if has(prefilter::WATCHDOG) && watchdog_timeout(t) {
        return hit(Category::Resource, true, HitKind::Faulthandler, t, STUCK);
    }
    if let Some(rest) = t.strip_prefix("Fatal Python error:") {
        let lower = rest.to_ascii_lowercase();
        if lower.contains("memory") {
            return hit(
                Category::Resource,
                true,
                HitKind::Faulthandler,
                t,
                classify::OUT_OF_MEMORY,
            );
        }
        if lower.trim() == "aborted" {
            return death_hit(
                Category::Implementation,
                HitKind::Faulthandler,
                t,
                ABORTED,
                Death::Abort,
            );
        }
        return hit(
            Category::Implementation,
            true,
            HitKind::Faulthandler,
            t,
            "the Python interpreter itself crashed (implementation)",
        );
    }
    if let Some(i) = has(prefilter::FATAL).then(|| t.find("[Fatal]")).flatten() {
        let msg = t[i + "[Fatal]".len()..].trim();
        let v = classify::classify_exception("", msg, &TbContext::default());
        return LineKind::Hit(Hit {
            category: v.category,
            looks_fatal: true,
            kind: HitKind::Native,
            key: t,
            message: msg,
            consequence: false,
            reason: v.reason,
            death: None,
        });
    }
    if t.starts_with("terminate called") {
        let (cat, reason, said) = if t.contains("bad_alloc") {
            (Category::Resource, classify::OUT_OF_MEMORY, true)
        } else {
            (Category::Implementation, NATIVE_UNCAUGHT, false)
        };
        return death_hit(cat, HitKind::Native, t, reason, Death::Uncaught { said });
    }
    if has(prefilter::KILLED)
        && (t == "Killed" || t.starts_with("Killed ") && t.len() < 80 || shell_child_killed(t))
    {
        return death_hit(Category::Resource, HitKind::Plain, t, KILLED, Death::Killed);
    }
    if let Some(j) = has(prefilter::EXITCODE)
        .then(|| agent_signal(t))
        .flatten()
        .and_then(|s| exit::judge_exit(ExitOutcome::Signal(s), None))
    {
        // The launcher itself was stopped from outside: its shutdown of the ranks, and the
        // `SignalException` it then raises, follow from this line.
        return hit(j.category, true, HitKind::Plain, t, j.reason);
    }
    if let Some(code) = has(prefilter::EXITCODE).then(|| elastic_exit(t)).flatten() {
        // The exit classifier judges the rank's end (one classifier for exits and logs).
        let outcome = match code {
            c if c < 0 => ExitOutcome::Signal(-c),
            c => ExitOutcome::Code(c),
        };
        // (A rank's own end, read from the launcher's line: no disk to ask about here.)
        if let Some(j) = exit::judge_exit(outcome, None) {
            return LineKind::Hit(Hit {
                category: j.category,
                reason: j.reason,
                looks_fatal: true,
                kind: HitKind::Plain,
                key: t,
                message: "",
                // A signal is the rank's own end; a code repeats what the rank printed.
                consequence: code >= 0,
                death: (code < 0 && Death::Crash.signals().contains(&-code)).then_some(Death::Crash),
            });
        }
    }
    if has(prefilter::LIMIT) {
        for (words, reason, death) in [
            (" CPU time limit exceeded", classify::CPU_LIMIT, Death::CpuLimit),
            (
                " File size limit exceeded",
                classify::FILE_TOO_LARGE,
                Death::FileLimit,
            ),
            (" Alarm clock", classify::ALARM, Death::Alarm),
        ] {
            if t.starts_with(&words[1..]) || shell_child_died(t, words) {
                return death_hit(Category::Resource, HitKind::Plain, t, reason, death);
            }
        }
        // Lightning's `max_time` ending the fit (`Time limit reached. Elapsed time is
        // 0:00:06. Signaling Trainer to stop.`): the run stops early, in order, with what it
        // has learnt so far — a warning, the time budget's.
        if t.contains("Time limit reached. Elapsed time is") {
            return hit(Category::Resource, false, HitKind::Plain, t, classify::TIME_LIMIT);
        }
    }
    if has(prefilter::CRASH) && heap_check_failed(t) {
        return death_hit(
            Category::Implementation,
            HitKind::Plain,
            t,
            HEAP_CORRUPTED,
            Death::Crash,
        );
    }
    if t.starts_with("Segmentation fault")
        || t.starts_with("Bus error")
        || (has(prefilter::CRASH) && native_assertion(t))
        || (has(prefilter::CRASH) && shell_child_died(t, " Segmentation fault"))
        || (has(prefilter::CRASH) && shell_child_died(t, " Bus error"))
    {
        return death_hit(
            Category::Implementation,
            HitKind::Plain,
            t,
            exit::NATIVE_CRASH,
            Death::Crash,
        );
    }
    if let Some(e) = has(prefilter::ERROR)
        .then(|| classify::parse_exception_line(t))
        .flatten()
    {
        let short = classify::short_name(e.name);
        if matches!(short, "SyntaxError" | "IndentationError" | "TabError") {
            let v = classify::classify_exception(e.name, e.msg, &TbContext::default());
            return hit(Category::Implementation, true, HitKind::Exception, t, v.reason);
        }
    }
    if has(prefilter::MEMORY) {
        return hit(Category::Resource, true, HitKind::Plain, t, memory_reason(t));
    }
    if has(prefilter::DISK) && t.contains("No space left on device") {
        return hit(Category::Resource, true, HitKind::Plain, t, classify::DISK_FULL);
    }
    // Sampler diagnostics.
    if has(prefilter::DIVERG) {
        if t.contains("only diverging samples") {
            return hit(Category::Convergence, false, HitKind::Plain, t, DIVERGENCES);
        }
        if t.contains("Divergence threshold reached") {
            return hit(
                Category::Convergence,
                false,
                HitKind::Plain,
                t,
                classify::DIVERGED,
            );
        }
        let count = divergence_re()
            .captures(t)
            .or_else(|| divergence_value_re().captures(t));
        if let Some(c) = count {
            let n: u64 = c[1].parse().unwrap_or(0);
            if n > 0 {
                return hit(Category::Convergence, false, HitKind::Plain, t, DIVERGENCES);
            }
        }
    }
    if let Some(c) = (hat && t.contains("rhat statistic"))
        .then(|| rhat_pymc_re().captures(t))
        .flatten()
    {
        // PyMC warns above 1.01; the protocol's bar is the configured threshold.
        let bar: f64 = c[1].parse().unwrap_or(0.0);
        return if bar >= rhat_threshold {
            hit(Category::Convergence, false, HitKind::Plain, t, RHAT_HIGH)
        } else {
            LineKind::Nothing
        };
    }
    if let Some(k) = (hat && t.contains("r_hat"))
        .then(|| rhat_table_header(t))
        .flatten()
    {
        return k;
    }
    if let Some(c) = hat.then(|| rhat_value_re().captures(t)).flatten() {
        let v = &c[1];
        let bad = v
            .parse::<f64>()
            .map_or(true, |x| x.is_nan() || x > rhat_threshold);
        if bad {
            return hit(Category::Convergence, false, HitKind::Plain, t, RHAT_HIGH);
        }
    }
    if has(prefilter::ESS) && t.contains("smaller than") {
        return hit(Category::Convergence, false, HitKind::Plain, t, ESS_LOW);
    }
    if has(prefilter::CONVERGE) && says_not_converged(t) {
        return hit(
            Category::Convergence,
            false,
            HitKind::Plain,
            t,
            classify::NOT_CONVERGED,
        );
    }
    if has(prefilter::CONVERGE) && says_not_learning(t) {
        return hit(
            Category::Convergence,
            false,
            HitKind::Plain,
            t,
            classify::NOT_LEARNING,
        );
    }
    // A non-finite loss the run says it dealt with (`trial 2: diverged (loss=nan),
    // discarded`, `nan loss, batch skipped`): the run goes on past it, so it is no alarm.
    if has(prefilter::NON_FINITE) && classify::loss_not_finite(t) && !states_handled(t) {
        return hit(
            Category::Convergence,
            false,
            HitKind::Plain,
            t,
            classify::LOSS_NOT_FINITE,
        );
    }
    if has(prefilter::NON_FINITE) && metric_not_finite(t) && !states_handled(t) {
        // One problem however many records show it, `inf` or `nan`: one incident.
        return hit(
            Category::Convergence,
            false,
            HitKind::Plain,
            "metric record: loss not finite",
            classify::LOSS_NOT_FINITE,
        );
    }
    if let Some(msg) = has(prefilter::LEVEL).then(|| error_record(t)).flatten() {
        return LineKind::ErrorRecord { msg };
    }
    if has(prefilter::SHELL) && tool_message(t).is_some() && classify::shell_error(t) {
        return LineKind::ShellComplaint;
    }
    // A validator's printed heading (`2 validation errors for TrainConfig`), its field errors
    // below: the program's word on why it stops, as an error record is.
    if has(prefilter::VALIDATION) && classify::validation_summary(t).is_some() {
        return LineKind::ErrorRecord { msg: t };
    }
    // Lightning's warning that a loader has no batches on any rank (`Total length of
    // `DataLoader` across ranks is zero. Please make sure this was your intention.`): the fit
    // goes on without that split (no validation, no checkpoint on its metric) — the split
    // is empty, a data warning.
    if has(prefilter::EMPTY_LOADER) {
        return hit(Category::Data, false, HitKind::Plain, t, classify::EMPTY_LOADER);
    }
    // Lightning's notice that it runs one batch with logging and checkpoints off
    // (`Running in `fast_dev_run` mode: …`): a debugging switch, never a real run's — left on,
    // the run trains nothing and saves nothing (a warning, the fit goes on).
    if has(prefilter::DEBUG_RUN) && t.contains("Running in `fast_dev_run` mode") {
        return hit(Category::Implementation, false, HitKind::Plain, t, DEBUG_RUN);
    }
    // (A Unix tool's `sha256sum: WARNING: 1 computed checksum did NOT match` is the tool's
    // summary of what failed, read with that line: not the job's own check.)
    if let Some((category, reason)) = has(prefilter::WARN_RECORD)
        .then(|| warning_record(t))
        .flatten()
        .filter(|_| tool_message(t).is_none())
        .and_then(check_warning)
    {
        return hit(category, false, HitKind::Plain, t, reason);
    }
    // A job's own word, at the warning level, that its model collapsed (`WARNING offers:
    // policy collapsed: entropy 0.0002 nats`): the run goes on, its result is worth little.
    if let Some(reason) = has(prefilter::WARN_RECORD)
        .then(|| warning_record(t))
        .flatten()
        .and_then(classify::says_collapsed)
    {
        return hit(Category::Convergence, false, HitKind::Plain, t, reason);
    }
    // A job's own word, at the warning level, that it stops training because its time is
    // running out (`WARNING intent: wall-time budget 4 s nearly used (3.6 s) at step
    // 234/1504; stopping training`): the run ends well, with a model trained for less.
    if has(prefilter::WARN_RECORD) && warning_record(t).is_some_and(stops_for_time) {
        return hit(Category::Resource, false, HitKind::Plain, t, STOPPED_FOR_TIME);
    }
    LineKind::Nothing
}

pub(crate) const STOPPED_FOR_TIME: &str =
    "the job stopped its training early for its time budget: the model trained for less than planned (resource)";

/// Does the record message `msg` say training stops because its time budget is used up?
fn stops_for_time(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    classify::has_any(
        &l,
        &[
            "stopping training",
            "stopping early",
            "stopped training",
            "ending training early",
        ],
    ) && classify::has_any(
        &l,
        &[
            "wall-time",
            "walltime",
            "wall-clock",
            "wall clock",
            "time budget",
            "time limit",
        ],
    )
}

pub(crate) const CHECK_FOUND: &str =
    "the job's own check of its data warned, and the run went on with what it found: its result stands on that data (data)";
pub(crate) const SHARE_LOST: &str =
    "the job warned that a large share of its data was dropped or unusable, and went on without it: its result stands on what was left (data)";
pub(crate) const REPLICAS_DIFFER: &str =
    "the job's own check found its ranks' model replicas differ: the code does not keep them in step (implementation)";

/// Does a warning say that a tenth or more of the data's items were dropped or unusable
/// (`dropped 5907 of 10000 rows with no parseable order_date`)? A few skipped records are
/// a loader's routine; half the rows are another export.
fn share_lost(msg: &str) -> bool {
    static SHARE: OnceLock<Regex> = OnceLock::new();
    static LOST: OnceLock<Regex> = OnceLock::new();
    let Some(c) = re(
        &SHARE,
        r"(?i)\b(\d[\d,]*) (?:of|out of) (\d[\d,]*) (?:\w+ ){0,2}(?:rows|records|samples|examples|files|lines|shards|images|documents|sequences|transactions|utterances|items)\b",
    )
    .captures(msg) else {
        return false;
    };
    let n = |i: usize| c[i].replace(',', "").parse::<f64>().unwrap_or(0.0);
    let (lost, of) = (n(1), n(2));
    of > 0.0
        && lost / of >= 0.1
        && re(
            &LOST,
            r"(?i)\b(?:dropped|dropping|skipped|skipping|discarded|removed|filtered out|unparseable|no parseable|malformed|corrupt|invalid|empty)\b",
        )
        .is_match(msg)
}

/// A job's own check that warns about what it found and lets the run go on (`overlap check:
/// 300 of 300 validation rows also appear in the training shards`, `replica check:
/// parameters differ across ranks`, `drift: unit_price PSI 8.18 > 0.25; continuing`, `shards
/// part-00000 and part-00001 have the same checksum`), as a record at the warning level: what
/// the run then produced stands on it. A check that says what it does about it (`retrying`,
/// `skipping`, `falling back`) handled it.
pub(crate) fn check_warning(msg: &str) -> Option<(Category, &'static str)> {
    let l = msg.to_ascii_lowercase();
    let words = || l.split(|c: char| !c.is_ascii_alphanumeric());
    const CHECKS: [&str; 12] = [
        "check",
        "checks",
        "checksum",
        "checksums",
        "drift",
        "overlap",
        "replica",
        "replicas",
        "sanity",
        "quality",
        "audit",
        "leakage",
    ];
    if share_lost(msg) {
        return Some((Category::Data, SHARE_LOST));
    }
    if !words().any(|w| CHECKS.contains(&w)) || announces_recovery(msg) || states_handled(msg) {
        return None;
    }
    Some(
        if words().any(|w| matches!(w, "replica" | "replicas" | "ranks" | "rank")) && l.contains("differ") {
            (Category::Implementation, REPLICAS_DIFFER)
        } else {
            (Category::Data, CHECK_FOUND)
        },
    )
}

/// `        mean     sd  …  ess_tail  r_hat` → the column of r_hat.
fn rhat_table_header(t: &str) -> Option<LineKind<'static>> {
    let cols: Vec<&str> = t.split_whitespace().collect();
    let col = cols.iter().position(|c| *c == "r_hat")?;
    // A header has only column names, no numbers.
    if cols.iter().any(|c| c.parse::<f64>().is_ok()) || cols.len() < 2 {
        return None;
    }
    Some(LineKind::RhatTable {
        col,
        ncols: cols.len(),
    })
}

/// A row of an R-hat table: its r_hat value, or None when the line is not a row.
pub(crate) fn rhat_row(t: &str, col: usize, ncols: usize) -> Option<f64> {
    let cells: Vec<&str> = t.split_whitespace().collect();
    if cells.len() != ncols + 1 {
        return None;
    }
    let v = cells[col + 1];
    if v.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(line: &str) -> Option<(Category, bool)> {
        match classify_line(line, 1.1) {
            LineKind::Hit(h) => Some((h.category, h.looks_fatal)),
            _ => None,
        }
    }

    #[test]
    fn every_not_converged_phrase_holds_a_converge_literal() {
        for p in NOT_CONVERGED.iter().chain(&NOT_LEARNING) {
            assert_ne!(prefilter::lits(p.as_bytes()) & prefilter::CONVERGE, 0, "{p}");
        }
    }

    #[test]
    fn noise_is_not_evidence() {
        assert_eq!(cat("epoch 3 train_error=0.12 val_error=0.15"), None);
        assert_eq!(cat("tests: 12 passed, 0 failed"), None);
        assert_eq!(cat("There were 0 divergences after tuning."), None);
        assert_eq!(cat("step 12 divergence=0.31 kl_divergence 0.2"), None);
        assert_eq!(cat("max r_hat = 1.004"), None);
        // A healthy sampler summary: the R-hat's digits are not a count of divergences.
        assert_eq!(cat("sampler done: r_hat 1.01 divergences=0 ess=812"), None);
        assert_eq!(cat("chain 2: max r_hat=1.003, 0 divergences"), None);
        assert_eq!(cat("2026-12-01 12:00:00 INFO errors=0 nan_count=0"), None);
        assert_eq!(cat("INFO loading data from disk"), None);
        assert_eq!(
            classify_line("/x/y.py:3: FutureWarning: the default will change", 1.1),
            LineKind::NoiseWarning
        );
        assert_eq!(
            classify_line("The rhat statistic is larger than 1.01 for some parameters.", 1.1),
            LineKind::Nothing
        );
    }

    #[test]
    fn evidence_lines_are_classified() {
        use Category::*;
        assert_eq!(
            cat("There were 37 divergences after tuning. Increase `target_accept`."),
            Some((Convergence, false))
        );
        assert_eq!(
            cat("There was 1 divergence after tuning."),
            Some((Convergence, false))
        );
        assert_eq!(cat("max r_hat = 1.42"), Some((Convergence, false)));
        assert_eq!(cat("sampler done: divergences=12"), Some((Convergence, false)));
        assert_eq!(cat("step 300 | loss=nan | lr 0.1"), Some((Convergence, false)));
        assert_eq!(cat("Killed"), Some((Resource, true)));
        assert_eq!(
            cat("Fatal Python error: Segmentation fault"),
            Some((Implementation, true))
        );
        assert_eq!(
            cat("[LightGBM] [Fatal] Label must be in [0, 3), but found 7 in label"),
            Some((Data, true))
        );
        assert_eq!(
            cat("/v/sklearn/linear_model/_logistic.py:473: ConvergenceWarning: lbfgs failed to converge after 5 iteration(s)"),
            Some((Convergence, false))
        );
        assert_eq!(
            cat("terminate called after throwing an instance of 'std::bad_alloc'"),
            Some((Resource, true))
        );
    }

    #[test]
    fn a_line_that_states_a_death_carries_it_typed() {
        let death = |line| match classify_line(line, 1.1) {
            LineKind::Hit(h) => h.death,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(death("Killed"), Some(Death::Killed));
        assert_eq!(
            death("job.sh: line 5: 4242 Killed python train.py"),
            Some(Death::Killed)
        );
        assert_eq!(death("Segmentation fault (core dumped)"), Some(Death::Crash));
        assert_eq!(
            death("terminate called after throwing an instance of 'c10::Error'"),
            Some(Death::Uncaught { said: false })
        );
        assert_eq!(
            death("terminate called after throwing an instance of 'std::bad_alloc'"),
            Some(Death::Uncaught { said: true })
        );
        assert_eq!(death("Fatal Python error: Aborted"), Some(Death::Abort));
        assert_eq!(death("step 300 | loss=nan | lr 0.1"), None);
        assert!(Death::Killed.signals() == [9] && Death::Crash.signals().contains(&11));
    }

    #[test]
    fn rhat_threshold_is_configurable() {
        assert!(matches!(classify_line("R-hat: 1.05", 1.01), LineKind::Hit(_)));
        assert!(matches!(classify_line("R-hat: 1.05", 1.1), LineKind::Nothing));
    }
}
