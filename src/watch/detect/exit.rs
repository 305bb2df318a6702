//! The one classifier of a process exit that the log did not explain (no traceback, no error
//! line): what the exit status alone says, in the protocol's categories. The detector uses it
//! when the log ends (live watching and `trainwatch triage` alike), and the engine files it
//! for an exit no detector incident covers (`exit_incident`), so both always agree.
//!
//! - SIGKILL: resource — the kernel's OOM killer far more often than anything else;
//! - SIGTERM, SIGINT, SIGHUP and other catchable signals: resource — stopped from outside
//!   (a scheduler's time limit, a user, a supervisor), not a bug in the code;
//! - SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV: implementation — a native crash in the code
//!   or a library it calls;
//! - exit code 124: resource — the status `timeout(1)` gives a command it stopped at its
//!   time limit (a job script passing it on: the time budget ran out);
//! - exit codes 64–78 of sysexits(3) (Python's `os.EX_*`), which a program picks to say what
//!   kind of failure it stopped for: EX_DATAERR and EX_NOINPUT are data, EX_UNAVAILABLE,
//!   EX_NOHOST, EX_TEMPFAIL (the requeue convention: try again later), EX_PROTOCOL,
//!   EX_IOERR, EX_NOPERM are infrastructure, EX_OSERR is resource, EX_USAGE, EX_SOFTWARE and
//!   EX_CONFIG are implementation;
//! - exit code n (not 0, not 124, not a sysexits code): implementation — the program chose to stop (`sys.exit(n)`, a shell
//!   `exit`, an error message in a form we do not know): the code's logic speaking;
//! - status unknown (its holder died too): implementation, so the code's owner looks first;
//! - any failed exit while the log's file system is full (see [`LogDisk`]): resource — the job
//!   could not write (ENOSPC), and neither could its traceback, which is why the log is silent.
//!   This comes first: it explains the silence the other rules assume;
//! - a scheduler's end (Slurm) is its own statement of the cause: a node failure, a preemption
//!   a boot failure or a requeue is infrastructure (the cluster's fault; nobody's code to fix); the time
//!   limit, a deadline and the memory limit are resource; a cancel is resource, stopped from
//!   outside. Infrastructure comes before the full-disk rule: a dead node explains everything.
//!
//! Each rule gives the incident's text and its reason ([`ExitJudgement`]).

use std::path::{Path, PathBuf};

use crate::model::{Category, ExitOutcome, Incident, SchedulerEnd, Severity};

/// The log's file system found full when the process ended: what explains an end the log
/// is silent about, since nothing more could be written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDisk {
    /// The folder holding the log.
    pub folder: PathBuf,
    /// Bytes still available to an unprivileged writer.
    pub free: u64,
}

impl LogDisk {
    /// Under this many free bytes the file system counts as full: a writer there meets ENOSPC.
    pub const FULL_BELOW: u64 = 64 * 1024;

    /// The log's file system as it is now (statvfs of the log's folder), when it is full;
    /// None when it has room or cannot be asked.
    pub fn full_at(log: &Path) -> Option<LogDisk> {
        let folder = log.parent().filter(|d| !d.as_os_str().is_empty())?.to_path_buf();
        let s = nix::sys::statvfs::statvfs(&folder).ok()?;
        #[allow(clippy::useless_conversion)] // the field types differ between platforms
        let free = u64::from(s.blocks_available()) * u64::from(s.fragment_size());
        (free < Self::FULL_BELOW).then_some(LogDisk { folder, free })
    }
}

/// What an exit the log did not explain says: its category, the one-line statement of the
/// incident, and the rule's reason (why that category, see [`Incident::reason`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitJudgement {
    pub category: Category,
    pub text: String,
    pub reason: &'static str,
}

pub(crate) const NATIVE_CRASH: &str = "a native crash in the code or a library it calls (implementation)";
pub(crate) const EXIT_CODE_ALONE: &str = "the exit code alone: the program chose to stop (implementation)";

/// The judgement of a failed exit with nothing in the log to explain it; None for a success
/// (exit code 0), which says nothing went wrong. `disk` is the log's file system when it was
/// found full at the exit.
pub fn judge_exit(outcome: ExitOutcome, disk: Option<&LogDisk>) -> Option<ExitJudgement> {
    let judged = |category, text, reason| {
        Some(ExitJudgement {
            category,
            text,
            reason,
        })
    };
    if let ExitOutcome::Scheduler(end) = outcome {
        if end.is_infrastructure() {
            return judged(
                Category::Infrastructure,
                format!(
                    "{end}: the cluster's failure, not the job's code; resubmitting it unchanged is safe"
                ),
                "the scheduler says the cluster failed, not the job's code (infrastructure)",
            );
        }
    }
    if let (Some(d), false) = (disk, outcome == ExitOutcome::Code(0)) {
        return judged(
            Category::Resource,
            format!(
                "no space left on the file system of {} ({} bytes free): the job could not write its log (it ended with {outcome})",
                d.folder.display(),
                d.free
            ),
            "the log's file system is full: the job could not write, not even its error (resource)",
        );
    }
    match outcome {
        ExitOutcome::Code(0) => None,
        ExitOutcome::Code(124) => judged(
            Category::Resource,
            "the process ended with exit code 124, the status timeout(1) gives a command it stopped at its time limit".to_string(),
            "exit code 124: timeout(1) stopped the command at its time limit (resource)",
        ),
        ExitOutcome::Code(code) if sysexit(code).is_some() => {
            let (category, name, reason) = sysexit(code)?;
            judged(
                category,
                format!("the process ended with exit code {code} ({name}) and the log states no error"),
                reason,
            )
        }
        ExitOutcome::Code(code) => judged(
            Category::Implementation,
            format!("the process ended with exit code {code} and the log states no error"),
            EXIT_CODE_ALONE,
        ),
        ExitOutcome::Signal(9) => judged(
            Category::Resource,
            format!(
                "{outcome} with no traceback: out of memory? (the kernel's OOM killer; check the kernel log)"
            ),
            "killed by SIGKILL with no traceback: most often the kernel's OOM killer (resource)",
        ),
        ExitOutcome::Signal(4 | 6 | 7 | 8 | 11) => judged(
            Category::Implementation,
            format!("{outcome} with no traceback: native crash"),
            NATIVE_CRASH,
        ),
        ExitOutcome::Signal(_) => judged(
            Category::Resource,
            format!(
                "{outcome} with no traceback: stopped from outside (a scheduler limit, a user, a supervisor)"
            ),
            "a signal from outside stopped it (a scheduler limit, a user, a supervisor) (resource)",
        ),
        ExitOutcome::Unknown => judged(
            Category::Implementation,
            "the process ended and its exit status could not be learned".to_string(),
            "the exit status is unknown: the code's owner looks first (implementation)",
        ),
        ExitOutcome::Scheduler(end @ (SchedulerEnd::TimeLimit | SchedulerEnd::Deadline)) => judged(
            Category::Resource,
            format!("{end}: the run needs more time than it was given (a longer time limit, or a restart from its checkpoint)"),
            "the scheduler's time limit ended it: the run needs more time than it was given (resource)",
        ),
        ExitOutcome::Scheduler(end @ SchedulerEnd::OutOfMemory) => judged(
            Category::Resource,
            format!("{end}: the job needs more memory than it asked for (--mem), or a smaller batch"),
            "the scheduler's memory limit ended it: the job needs more memory than it asked for (resource)",
        ),
        ExitOutcome::Scheduler(end) => judged(
            Category::Resource,
            format!("{end}: stopped from outside, not by the job's code"),
            "the scheduler stopped it from outside, not the job's code (resource)",
        ),
    }
}

/// A sysexits(3) code: its category, its name and the reason. A program exits with one of
/// these to say what kind of failure stopped it; the codes nobody reads as a category
/// (EX_NOUSER, EX_OSFILE, EX_CANTCREAT: a mail system's, or too vague) are left out.
fn sysexit(code: i32) -> Option<(Category, &'static str, &'static str)> {
    use Category::*;
    Some(match code {
        64 => (Implementation, "EX_USAGE", "exit code 64, EX_USAGE of sysexits(3): the job was started with a command line it does not accept (implementation)"),
        65 => (Data, "EX_DATAERR", "exit code 65, EX_DATAERR of sysexits(3): the program found its input data malformed (data)"),
        66 => (Data, "EX_NOINPUT", "exit code 66, EX_NOINPUT of sysexits(3): an input the program needs does not exist or cannot be read (data)"),
        68 => (Infrastructure, "EX_NOHOST", "exit code 68, EX_NOHOST of sysexits(3): a host the job needs is unknown (infrastructure)"),
        69 => (Infrastructure, "EX_UNAVAILABLE", "exit code 69, EX_UNAVAILABLE of sysexits(3): a service the job needs is unavailable (infrastructure)"),
        76 => (Infrastructure, "EX_PROTOCOL", "exit code 76, EX_PROTOCOL of sysexits(3): a remote service answered with something the program could not use (infrastructure)"),
        70 => (Implementation, "EX_SOFTWARE", "exit code 70, EX_SOFTWARE of sysexits(3): the program says it hit an internal error (implementation)"),
        71 => (Resource, "EX_OSERR", "exit code 71, EX_OSERR of sysexits(3): the system refused the program a resource (a fork, a thread, memory) (resource)"),
        74 => (Infrastructure, "EX_IOERR", "exit code 74, EX_IOERR of sysexits(3): an input/output error on a file system the job uses (infrastructure)"),
        75 => (Infrastructure, "EX_TEMPFAIL", "exit code 75, EX_TEMPFAIL of sysexits(3): a temporary failure of something the job depends on; the program asks to be retried (infrastructure)"),
        77 => (Infrastructure, "EX_NOPERM", "exit code 77, EX_NOPERM of sysexits(3): the job may not use something it needs (infrastructure)"),
        78 => (Implementation, "EX_CONFIG", "exit code 78, EX_CONFIG of sysexits(3): the program found its configuration wrong (implementation)"),
        _ => return None,
    })
}

/// The category and the one-line statement of [`judge_exit`].
pub fn exit_verdict(outcome: ExitOutcome, disk: Option<&LogDisk>) -> Option<(Category, String)> {
    judge_exit(outcome, disk).map(|j| (j.category, j.text))
}

/// The incident that stands for a failed exit the log did not explain (no excerpt: the
/// engine files it without the log at hand).
pub fn exit_incident(outcome: ExitOutcome) -> Incident {
    let j = judge_exit(outcome, None).unwrap_or_else(|| ExitJudgement {
        category: Category::Implementation,
        text: format!("the process ended with {outcome}"),
        reason: EXIT_CODE_ALONE,
    });
    Incident {
        category: j.category,
        severity: Severity::Fatal,
        line: 0,
        text: j.text,
        excerpt: Vec::new(),
        count: 1,
        reason: j.reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failed exits with nothing in the log to explain them, each worded differently.
    const UNEXPLAINED_FAILURES: [ExitOutcome; 5] = [
        ExitOutcome::Code(2),
        ExitOutcome::Signal(9),
        ExitOutcome::Signal(15),
        ExitOutcome::Signal(11),
        ExitOutcome::Unknown,
    ];

    fn category(outcome: ExitOutcome) -> Option<Category> {
        exit_verdict(outcome, None).map(|(c, _)| c)
    }

    #[test]
    fn each_exit_is_judged_by_what_it_means() {
        use Category::*;
        let cases = [
            (ExitOutcome::Code(0), None),
            (ExitOutcome::Code(1), Some(Implementation)),
            (ExitOutcome::Code(137), Some(Implementation)),
            (ExitOutcome::Signal(9), Some(Resource)),
            (ExitOutcome::Signal(15), Some(Resource)),
            (ExitOutcome::Signal(2), Some(Resource)),
            (ExitOutcome::Signal(1), Some(Resource)),
            (ExitOutcome::Signal(11), Some(Implementation)),
            (ExitOutcome::Signal(6), Some(Implementation)),
            (ExitOutcome::Signal(7), Some(Implementation)),
            (ExitOutcome::Signal(8), Some(Implementation)),
            (ExitOutcome::Signal(4), Some(Implementation)),
            (ExitOutcome::Unknown, Some(Implementation)),
            (
                ExitOutcome::Scheduler(SchedulerEnd::NodeFailure),
                Some(Infrastructure),
            ),
            (
                ExitOutcome::Scheduler(SchedulerEnd::Preempted),
                Some(Infrastructure),
            ),
            (
                ExitOutcome::Scheduler(SchedulerEnd::BootFailure),
                Some(Infrastructure),
            ),
            (
                ExitOutcome::Scheduler(SchedulerEnd::Requeued),
                Some(Infrastructure),
            ),
            (ExitOutcome::Scheduler(SchedulerEnd::TimeLimit), Some(Resource)),
            (ExitOutcome::Scheduler(SchedulerEnd::Deadline), Some(Resource)),
            (ExitOutcome::Scheduler(SchedulerEnd::OutOfMemory), Some(Resource)),
            (
                ExitOutcome::Scheduler(SchedulerEnd::Cancelled { uid: Some(1000) }),
                Some(Resource),
            ),
        ];
        for (outcome, expected) in cases {
            assert_eq!(category(outcome), expected, "{outcome:?}");
        }
    }

    #[test]
    fn the_text_says_why() {
        let text = |o| exit_verdict(o, None).unwrap().1;
        assert!(text(ExitOutcome::Signal(9)).contains("OOM killer"));
        assert!(text(ExitOutcome::Signal(15)).contains("stopped from outside"));
        assert!(text(ExitOutcome::Signal(15)).contains("SIGTERM"));
        assert!(text(ExitOutcome::Signal(11)).contains("native crash"));
        assert!(text(ExitOutcome::Code(3)).contains("exit code 3"));
        assert!(text(ExitOutcome::Unknown).contains("could not be learned"));
    }

    /// Live watching and triage go through `Detector::finish`: its verdict for an exit with
    /// nothing in the log is the classifier's, with the log's last lines as the excerpt.
    #[test]
    fn the_detector_gives_the_classifiers_verdict_for_an_unexplained_exit() {
        use crate::watch::detect::{DetectConfig, Detector, Finding};
        for outcome in UNEXPLAINED_FAILURES {
            let mut d = Detector::new(DetectConfig::default());
            assert!(d.push_line(1, "step 1 of 10").is_empty());
            let found = d.finish(Some(outcome));
            let [Finding::New { incident, .. }] = found.as_slice() else {
                panic!("{outcome:?}: {found:?}");
            };
            let (category, text) = exit_verdict(outcome, None).unwrap();
            assert_eq!(
                (incident.category, &incident.text),
                (category, &text),
                "{outcome:?}"
            );
            assert_eq!(incident.excerpt, ["step 1 of 10"]);
        }
        let mut d = Detector::new(DetectConfig::default());
        assert!(d.finish(Some(ExitOutcome::Code(0))).is_empty());
    }

    #[test]
    fn the_engine_files_the_same_verdict_as_the_detector() {
        for outcome in UNEXPLAINED_FAILURES {
            let inc = exit_incident(outcome);
            let (category, text) = exit_verdict(outcome, None).unwrap();
            assert_eq!((inc.category, inc.text), (category, text));
            assert_eq!(inc.severity, Severity::Fatal);
        }
    }

    fn full(folder: &str) -> LogDisk {
        LogDisk {
            folder: PathBuf::from(folder),
            free: 0,
        }
    }

    #[test]
    fn a_full_log_file_system_explains_any_failed_exit_as_resource_and_names_it() {
        let disk = full("out/logs");
        for outcome in UNEXPLAINED_FAILURES.into_iter().chain([ExitOutcome::Code(120)]) {
            let (category, text) = exit_verdict(outcome, Some(&disk)).unwrap();
            assert_eq!(category, Category::Resource, "{outcome:?}");
            assert!(
                text.starts_with("no space left on the file system of out/logs"),
                "{text}"
            );
        }
        assert_eq!(exit_verdict(ExitOutcome::Code(0), Some(&disk)), None);
    }

    /// Live watching and triage alike: the detector given the log's full file system says so.
    #[test]
    fn the_detector_names_a_full_log_file_system() {
        use crate::watch::detect::{DetectConfig, Detector, Finding};
        let mut d = Detector::new(DetectConfig::default());
        d.push_line(1, "step 1 of 10");
        d.note_log_disk(Some(full("out/logs")));
        let found = d.finish(Some(ExitOutcome::Code(1)));
        let [Finding::New { incident, .. }] = found.as_slice() else {
            panic!("{found:?}");
        };
        assert_eq!(incident.category, Category::Resource);
        assert!(incident.text.contains("no space left"), "{}", incident.text);
    }

    #[test]
    fn a_folder_with_room_is_not_full() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LogDisk::full_at(&dir.path().join("train.log")), None);
    }
}
