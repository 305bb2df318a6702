//! Requests from people, one language for every transport. A console line (`/decide
//! model_3 restart`, in `line`), a Discord slash command (`/decide job:model_3
//! decision:restart`, reduced by the Discord adapter) and a button's custom_id (`button`)
//! each become a [`Verb`] with its raw [`Args`]; [`validate`] is the one place that checks
//! them against the configured jobs and the limits (job names, free-text length, which
//! decisions take a duration) and builds the [`Request`]. Chat input is untrusted: anything
//! unexpected is a [`RequestError`] whose text is the answer (never a guess, never an echoed
//! mention), the same text whichever transport it came through.

pub mod button;
pub mod line;

use std::time::Duration;

use crate::chat::sanitize::{cut, defuse_mentions};
use crate::config::parse_duration;
use crate::engine::{Command, Decision};
use crate::model::JobName;

use button::{ButtonId, ButtonIdError};

/// The decisions `/decide` offers (approve and reject are a validator's, through `/validate`;
/// the engine refuses `extend` unless the attempt runs under a scheduler time limit).
pub const DECIDE: [Decision; 5] = [
    Decision::Restart,
    Decision::Kill,
    Decision::Continue,
    Decision::Investigate,
    Decision::Extend,
];
/// Longest fix summary or verdict reason taken from chat.
pub const MAX_TEXT: usize = 500;
/// Most log lines `/train logs` shows, and how many without a count.
pub const MAX_LOG_LINES: usize = 200;
pub const DEFAULT_LOG_LINES: usize = 20;
/// Longest piece of a rejected job name shown back.
const SHOWN_JOB: usize = 64;

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An engine command for one configured job.
    Engine {
        job: JobName,
        command: Command,
    },
    /// The status of every job.
    StatusAll,
    /// The last `lines` lines of a job's log.
    Logs {
        job: JobName,
        lines: usize,
    },
    /// The configured jobs.
    List,
    Help,
}

/// What is asked, before its arguments are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Help,
    /// Without a job: every job.
    Status,
    Start,
    /// `decision` names one of [`DECIDE`]; `extend` only with continue.
    Decide,
    /// `text` is the summary.
    FixSubmit,
    /// `text` is the optional reason.
    Validate {
        approve: bool,
    },
    /// `lines` is the optional count.
    Logs,
    List,
}

/// A request's arguments as the transport delivered them: raw text, unchecked. A missing
/// job means the only job, when there is exactly one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Args<'a> {
    pub job: Option<&'a str>,
    pub decision: Option<&'a str>,
    pub extend: Option<&'a str>,
    pub text: Option<&'a str>,
    pub lines: Option<&'a str>,
}

/// Why a request was refused; the text is the answer the sender gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("empty command; type /help")]
    Empty,
    #[error("unknown command /{0}; type /help")]
    UnknownCommand(String),
    #[error("too many arguments for /{0}; type /help")]
    TooManyArguments(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("unknown job {shown:?}; known jobs: {known}")]
    UnknownJob { shown: String, known: String },
    #[error("several jobs are supervised: name one (e.g. /decide JOB restart)")]
    JobNeeded,
    #[error("unknown decision {0:?}: the decision must be restart, kill, continue, investigate or extend")]
    UnknownDecision(String),
    #[error("{0} takes no duration")]
    NoDuration(Decision),
    /// The duration parser's explanation, mentions defused.
    #[error("{0}")]
    Duration(String),
    #[error("the summary is required; usage: /fix submit JOB SUMMARY (what was fixed, in a few words)")]
    SummaryRequired,
    #[error("lines must be 1 to {MAX_LOG_LINES}")]
    Lines,
    #[error("this button cannot be used: {0}")]
    Button(#[from] ButtonIdError),
    #[error("{0} is not a job of this bot (any more)")]
    ForeignJob(JobName),
}

/// Check a request against the configured `jobs` and the limits.
pub fn validate(verb: Verb, args: Args<'_>, jobs: &[JobName]) -> Result<Request, RequestError> {
    let engine = |command: Command| -> Result<Request, RequestError> {
        Ok(Request::Engine {
            job: job(args.job, jobs)?,
            command,
        })
    };
    match verb {
        Verb::Help => Ok(Request::Help),
        Verb::List => Ok(Request::List),
        Verb::Status if args.job.is_none() => Ok(Request::StatusAll),
        Verb::Status => engine(Command::Status),
        Verb::Start => engine(Command::Start),
        Verb::Decide => {
            let raw = args.decision.unwrap_or("");
            let decision = raw
                .parse::<Decision>()
                .ok()
                .filter(|d| DECIDE.contains(d))
                .ok_or_else(|| RequestError::UnknownDecision(cut(&defuse_mentions(raw), SHOWN_JOB)))?;
            let extend = args.extend.map(extension).transpose()?;
            if extend.is_some() && decision != Decision::Continue {
                return Err(RequestError::NoDuration(decision));
            }
            engine(Command::Decide {
                decision,
                target: None,
                extend,
            })
        }
        Verb::FixSubmit => {
            let job = job(args.job, jobs)?;
            let summary = free_text(args.text).ok_or(RequestError::SummaryRequired)?;
            Ok(Request::Engine {
                job,
                command: Command::SubmitFix {
                    summary,
                    evidence: None,
                },
            })
        }
        Verb::Validate { approve } => engine(Command::Validate {
            approve,
            reason: free_text(args.text),
        }),
        Verb::Logs => {
            let job = job(args.job, jobs)?;
            let lines = match args.lines {
                None => DEFAULT_LOG_LINES,
                Some(n) => n
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_LINES).contains(n))
                    .ok_or(RequestError::Lines)?,
            };
            Ok(Request::Logs { job, lines })
        }
    }
}

/// A click on a decision button: a targeted decision for one of the configured jobs (the
/// engine checks that its run and report still await one).
pub fn from_button(custom_id: &str, jobs: &[JobName]) -> Result<Request, RequestError> {
    let id = ButtonId::parse(custom_id)?;
    if !jobs.contains(&id.job) {
        return Err(RequestError::ForeignJob(id.job));
    }
    Ok(Request::Engine {
        command: id.command(),
        job: id.job,
    })
}

/// The named configured job, or the only one when none is named.
fn job(raw: Option<&str>, jobs: &[JobName]) -> Result<JobName, RequestError> {
    match raw {
        None if jobs.len() == 1 => Ok(jobs[0].clone()),
        None => Err(RequestError::JobNeeded),
        Some(raw) => JobName::new(raw)
            .ok()
            .filter(|j| jobs.contains(j))
            .ok_or_else(|| RequestError::UnknownJob {
                shown: cut(&defuse_mentions(raw), SHOWN_JOB),
                known: job_list(jobs),
            }),
    }
}

fn job_list(jobs: &[JobName]) -> String {
    if jobs.is_empty() {
        return "none".into();
    }
    jobs.iter().map(JobName::as_str).collect::<Vec<_>>().join(", ")
}

/// How long a continue after a timeout warning extends the run.
fn extension(raw: &str) -> Result<Duration, RequestError> {
    parse_duration(raw).map_err(|e| RequestError::Duration(defuse_mentions(&e)))
}

/// Text typed for the record (a fix summary, a reason): trimmed, cut, never empty.
fn free_text(s: Option<&str>) -> Option<String> {
    let t = s?.trim();
    (!t.is_empty()).then(|| t.chars().take(MAX_TEXT).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DecisionPoint;
    use crate::model::RunId;

    fn jobs() -> Vec<JobName> {
        vec![JobName::new("model_3").unwrap(), JobName::new("bert").unwrap()]
    }

    fn job_args(job: &str) -> Args<'_> {
        Args {
            job: Some(job),
            ..Args::default()
        }
    }

    #[test]
    fn a_missing_job_is_the_only_one_or_must_be_named() {
        let one = vec![JobName::new("solo").unwrap()];
        assert_eq!(
            validate(Verb::Start, Args::default(), &one),
            Ok(Request::Engine {
                job: one[0].clone(),
                command: Command::Start
            })
        );
        assert_eq!(
            validate(Verb::Start, Args::default(), &jobs()),
            Err(RequestError::JobNeeded)
        );
        assert_eq!(
            validate(Verb::Status, Args::default(), &jobs()),
            Ok(Request::StatusAll)
        );
    }

    #[test]
    fn an_unknown_job_is_named_defused_with_the_known_ones() {
        let e = validate(Verb::Start, job_args("@everyone"), &jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown job") && !e.contains("@everyone"), "{e}");
        assert!(e.contains("model_3, bert"), "{e}");
        let long = "x".repeat(1000);
        let e = validate(Verb::Start, job_args(&long), &jobs())
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{e}");
        assert!(validate(Verb::Start, job_args("x"), &[])
            .unwrap_err()
            .to_string()
            .contains("known jobs: none"));
    }

    #[test]
    fn only_the_directors_decisions_and_only_continue_with_a_duration() {
        for raw in ["reboot", "approve", "reject", ""] {
            let e = validate(
                Verb::Decide,
                Args {
                    job: Some("bert"),
                    decision: Some(raw),
                    ..Args::default()
                },
                &jobs(),
            )
            .unwrap_err();
            assert_eq!(e, RequestError::UnknownDecision(raw.into()));
            assert!(e.to_string().contains("decision must be"), "{e}");
        }
        let decide = |decision: &'static str, extend: &'static str| {
            validate(
                Verb::Decide,
                Args {
                    job: Some("bert"),
                    decision: Some(decision),
                    extend: Some(extend),
                    ..Args::default()
                },
                &jobs(),
            )
        };
        assert_eq!(
            decide("kill", "2h"),
            Err(RequestError::NoDuration(Decision::Kill))
        );
        assert!(decide("continue", "soon @here")
            .unwrap_err()
            .to_string()
            .contains("invalid duration"));
        assert!(!decide("continue", "soon @here")
            .unwrap_err()
            .to_string()
            .contains("@here"));
        assert!(matches!(
            decide("continue", "90m"),
            Ok(Request::Engine { command: Command::Decide { extend: Some(d), .. }, .. }) if d == Duration::from_secs(5400)
        ));
    }

    #[test]
    fn free_text_is_trimmed_cut_and_required_for_a_fix() {
        let fix = |text: Option<&str>| {
            validate(
                Verb::FixSubmit,
                Args {
                    job: Some("bert"),
                    text,
                    ..Args::default()
                },
                &jobs(),
            )
        };
        assert_eq!(fix(Some("  ")), Err(RequestError::SummaryRequired));
        assert_eq!(fix(None), Err(RequestError::SummaryRequired));
        let long = "y".repeat(MAX_TEXT + 50);
        let Ok(Request::Engine {
            command: Command::SubmitFix { summary, .. },
            ..
        }) = fix(Some(&long))
        else {
            panic!("a long summary is cut, not refused")
        };
        assert_eq!(summary.chars().count(), MAX_TEXT);
        let r = validate(
            Verb::Validate { approve: false },
            Args {
                job: Some("bert"),
                text: Some("   "),
                ..Args::default()
            },
            &jobs(),
        );
        assert_eq!(
            r,
            Ok(Request::Engine {
                job: JobName::new("bert").unwrap(),
                command: Command::Validate {
                    approve: false,
                    reason: None
                }
            })
        );
    }

    #[test]
    fn log_lines_are_bounded() {
        let logs = |lines: Option<&'static str>| {
            validate(
                Verb::Logs,
                Args {
                    job: Some("bert"),
                    lines,
                    ..Args::default()
                },
                &jobs(),
            )
        };
        let bert = JobName::new("bert").unwrap();
        assert_eq!(
            logs(None),
            Ok(Request::Logs {
                job: bert.clone(),
                lines: DEFAULT_LOG_LINES
            })
        );
        assert_eq!(
            logs(Some("200")),
            Ok(Request::Logs {
                job: bert,
                lines: 200
            })
        );
        for bad in ["0", "201", "100000", "-1", "x"] {
            assert_eq!(logs(Some(bad)), Err(RequestError::Lines), "{bad}");
        }
    }

    #[test]
    fn buttons_carry_their_target() {
        assert_eq!(
            from_button("tw1:kill:bert:7:t1", &jobs()),
            Ok(Request::Engine {
                job: JobName::new("bert").unwrap(),
                command: Command::Decide {
                    decision: Decision::Kill,
                    target: Some((RunId(7), DecisionPoint::Timeout(1))),
                    extend: None
                }
            })
        );
        assert!(from_button("tw1:kill:other:7:t1", &jobs())
            .unwrap_err()
            .to_string()
            .contains("not a job"));
        assert!(from_button("tw1:kill:bert:7", &jobs())
            .unwrap_err()
            .to_string()
            .contains("cannot be used"));
    }
}
