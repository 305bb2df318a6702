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
//! - exit code n (not 0): implementation — the program chose to stop (`sys.exit(n)`, a shell
//!   `exit`, an error message in a form we do not know): the code's logic speaking;
//! - status unknown (its holder died too): implementation, so the code's owner looks first.

use crate::model::{Category, ExitOutcome, Incident, Severity};

/// The category and the one-line statement for a failed exit with nothing in the log to
/// explain it; None for a success (exit code 0), which says nothing went wrong.
pub fn exit_verdict(outcome: ExitOutcome) -> Option<(Category, String)> {
    let (category, text) = match outcome {
        ExitOutcome::Code(0) => return None,
        ExitOutcome::Code(code) => (
            Category::Implementation,
            format!("the process ended with exit code {code} and the log states no error"),
        ),
        ExitOutcome::Signal(9) => (
            Category::Resource,
            format!(
                "{outcome} with no traceback: out of memory? (the kernel's OOM killer; check the kernel log)"
            ),
        ),
        ExitOutcome::Signal(4 | 6 | 7 | 8 | 11) => (
            Category::Implementation,
            format!("{outcome} with no traceback: native crash"),
        ),
        ExitOutcome::Signal(_) => (
            Category::Resource,
            format!(
                "{outcome} with no traceback: stopped from outside (a scheduler limit, a user, a supervisor)"
            ),
        ),
        ExitOutcome::Unknown => (
            Category::Implementation,
            "the process ended and its exit status could not be learned".to_string(),
        ),
    };
    Some((category, text))
}

/// The incident that stands for a failed exit the log did not explain (no excerpt: the
/// engine files it without the log at hand).
pub fn exit_incident(outcome: ExitOutcome) -> Incident {
    let (category, text) = exit_verdict(outcome).unwrap_or_else(|| {
        (
            Category::Implementation,
            format!("the process ended with {outcome}"),
        )
    });
    Incident {
        category,
        severity: Severity::Fatal,
        line: 0,
        text,
        excerpt: Vec::new(),
        count: 1,
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
        exit_verdict(outcome).map(|(c, _)| c)
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
        ];
        for (outcome, expected) in cases {
            assert_eq!(category(outcome), expected, "{outcome:?}");
        }
    }

    #[test]
    fn the_text_says_why() {
        let text = |o| exit_verdict(o).unwrap().1;
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
            let (category, text) = exit_verdict(outcome).unwrap();
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
            let (category, text) = exit_verdict(outcome).unwrap();
            assert_eq!((inc.category, inc.text), (category, text));
            assert_eq!(inc.severity, Severity::Fatal);
        }
    }
}
