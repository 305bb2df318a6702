//! Requests as typed at the console or with `trainwatch send` (`/decide model_3 restart`):
//! the line's words become a verb and its arguments, which the request module validates
//! like any other transport's. Only the syntax lives here.

use super::{validate, Args, Request, RequestError, Verb};
use crate::config::parse_duration;
use crate::engine::Decision;
use crate::model::JobName;

pub const HELP: &str = "commands:
  /status [JOB]                               where the job (or every job) stands
  /decide JOB restart|kill|continue|investigate|extend [EXTEND]
  /restart JOB    /kill JOB    /investigate JOB
  /continue JOB [EXTEND]                      EXTEND: after a timeout warning, e.g. 2h
  /extend JOB                                 ask the scheduler for more time (a Slurm job's limit)
  /fix submit JOB SUMMARY...                  a fix is ready: trainwatch computes the CHANGES SUMMARY
  /validate approve|reject JOB [REASON...]    the validator's verdict on the latest fix (Phase 4.5)
  /start JOB                                  start a new run of a job that has ended
  /help";

/// Parse a line and validate it against the configured `jobs`.
pub fn parse(line: &str, jobs: &[JobName]) -> Result<Request, RequestError> {
    let (verb, args) = words(line)?;
    validate(verb, args, jobs)
}

/// The verb and arguments a line spells.
fn words(line: &str) -> Result<(Verb, Args<'_>), RequestError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return Err(RequestError::Empty);
    };
    let verb = verb.strip_prefix('/').unwrap_or(verb);
    let too_many = |max: usize| -> Result<(), RequestError> {
        if args.len() > max {
            Err(RequestError::TooManyArguments(verb.to_string()))
        } else {
            Ok(())
        }
    };
    let is_decision = |w: &str| w.parse::<Decision>().is_ok();
    match verb {
        "help" | "?" => Ok((Verb::Help, Args::default())),
        "fix" => {
            // `/fix submit JOB summary…`: the summary is the rest of the line, as typed.
            let ["submit", job, ..] = args else {
                return Err(RequestError::Usage(
                    "/fix submit JOB SUMMARY (what was fixed, in a few words)",
                ));
            };
            Ok((
                Verb::FixSubmit,
                Args {
                    job: Some(job),
                    text: rest_after(line, &["fix", "submit", job]),
                    ..Args::default()
                },
            ))
        }
        "validate" => {
            let (approve, verb2, job) = match args {
                ["approve", job, ..] => (true, "approve", *job),
                ["reject", job, ..] => (false, "reject", *job),
                _ => return Err(RequestError::Usage("/validate approve|reject JOB [REASON]")),
            };
            Ok((
                Verb::Validate { approve },
                Args {
                    job: Some(job),
                    text: rest_after(line, &["validate", verb2, job]),
                    ..Args::default()
                },
            ))
        }
        "status" | "start" => {
            too_many(1)?;
            let job = args.first().copied();
            let verb = if verb == "status" {
                Verb::Status
            } else {
                Verb::Start
            };
            Ok((
                verb,
                Args {
                    job,
                    ..Args::default()
                },
            ))
        }
        "decide" => {
            too_many(3)?;
            let args = match args {
                [d] => decide(None, d, None),
                [j, d] if is_decision(d) => decide(Some(j), d, None),
                [d, e] if is_decision(d) => decide(None, d, Some(e)),
                [j, d, e] => decide(Some(j), d, Some(e)),
                [j, d] => decide(Some(j), d, None),
                _ => {
                    return Err(RequestError::Usage(
                        "/decide JOB restart|kill|continue|investigate|extend [EXTEND]",
                    ))
                }
            };
            Ok((Verb::Decide, args))
        }
        "restart" | "kill" | "investigate" | "extend" => {
            too_many(1)?;
            Ok((Verb::Decide, decide(args.first().copied(), verb, None)))
        }
        "continue" => {
            too_many(2)?;
            let args = match args {
                [] => decide(None, verb, None),
                // `/continue 2h`: a duration, not a job named like one.
                [x] if parse_duration(x).is_ok() && !x.chars().all(|c| c.is_ascii_alphabetic()) => {
                    decide(None, verb, Some(x))
                }
                [j] => decide(Some(j), verb, None),
                [j, e] => decide(Some(j), verb, Some(e)),
                _ => unreachable!("bounded by too_many"),
            };
            Ok((Verb::Decide, args))
        }
        other => Err(RequestError::UnknownCommand(other.to_string())),
    }
}

/// The arguments of a decision.
fn decide<'a>(job: Option<&'a str>, decision: &'a str, extend: Option<&'a str>) -> Args<'a> {
    Args {
        job,
        decision: Some(decision),
        extend,
        ..Args::default()
    }
}

/// The text of `line` after the given leading words (a leading `/` allowed), verbatim.
fn rest_after<'a>(line: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = line.trim_start();
    rest = rest.strip_prefix('/').unwrap_or(rest);
    for w in words {
        rest = rest.trim_start().strip_prefix(w)?;
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Command;
    use std::time::Duration;

    fn jobs() -> Vec<JobName> {
        ["model_3", "m", "bert"]
            .map(|j| JobName::new(j).unwrap())
            .to_vec()
    }

    fn job_cmd(line: &str) -> (JobName, Command) {
        match parse(line, &jobs()).unwrap() {
            Request::Engine { job, command } => (job, command),
            other => panic!("{other:?}"),
        }
    }

    fn extend_of(r: &Request) -> Option<Duration> {
        match r {
            Request::Engine {
                command: Command::Decide { extend, .. },
                ..
            } => *extend,
            _ => None,
        }
    }

    #[test]
    fn parses_decisions() {
        let (job, cmd) = job_cmd("/decide model_3 restart");
        assert_eq!(job.as_str(), "model_3");
        assert!(matches!(
            cmd,
            Command::Decide {
                decision: Decision::Restart,
                extend: None,
                ..
            }
        ));
        let (job, cmd) = job_cmd("kill model_3");
        assert_eq!(job.as_str(), "model_3");
        assert!(matches!(
            cmd,
            Command::Decide {
                decision: Decision::Kill,
                ..
            }
        ));
        let (_, args) = words("/decide investigate").unwrap();
        assert_eq!(args.job, None);
        let solo = [JobName::new("solo").unwrap()];
        assert!(matches!(
            parse("/decide investigate", &solo).unwrap(),
            Request::Engine { job, .. } if job == solo[0]
        ));
        let c = parse("/continue model_3 2h", &jobs()).unwrap();
        assert_eq!(extend_of(&c), Some(Duration::from_secs(7200)));
        let c = parse("/continue 90m", &solo).unwrap();
        assert_eq!(extend_of(&c), Some(Duration::from_secs(5400)));
        assert!(matches!(parse("/status", &jobs()).unwrap(), Request::StatusAll));
    }

    /// "extend" asks the scheduler for more time: `/decide JOB extend` or `/extend JOB`; the
    /// duration is the job's `extend_by`, never typed.
    #[test]
    fn parses_extend() {
        for line in ["/decide model_3 extend", "/extend model_3"] {
            let (job, cmd) = job_cmd(line);
            assert_eq!(job.as_str(), "model_3");
            assert_eq!(
                cmd,
                Command::Decide {
                    decision: Decision::Extend,
                    target: None,
                    extend: None,
                },
                "{line}"
            );
        }
        assert_eq!(
            parse("/decide model_3 extend 2h", &jobs()),
            Err(RequestError::NoDuration(Decision::Extend))
        );
        assert!(HELP.contains("/extend JOB"));
    }

    #[test]
    fn parses_fix_and_validate_with_free_text() {
        let (job, cmd) = job_cmd("/fix submit model_3 use fit() instead of fit_transform(), lines 80-90");
        assert_eq!(job.as_str(), "model_3");
        assert_eq!(
            cmd,
            Command::SubmitFix {
                summary: "use fit() instead of fit_transform(), lines 80-90".into(),
                evidence: None
            }
        );
        let (_, cmd) = job_cmd("/validate reject model_3 draws below the design's 2000");
        assert_eq!(
            cmd,
            Command::Validate {
                approve: false,
                reason: Some("draws below the design's 2000".into())
            }
        );
        let (_, cmd) = job_cmd("validate approve model_3");
        assert_eq!(
            cmd,
            Command::Validate {
                approve: true,
                reason: None
            }
        );
        let err = |line: &str| parse(line, &jobs()).unwrap_err().to_string();
        assert!(err("/fix submit model_3").contains("usage"));
        assert!(err("/fix model_3").contains("usage"));
        assert!(err("/validate maybe model_3").contains("usage"));
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        let err = |line: &str| parse(line, &jobs()).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("/rm -rf /").contains("unknown command"));
        assert!(err("/decide model_3 explode").contains("unknown decision"));
        assert!(err("/decide model_3 approve").contains("unknown decision"));
        assert!(err("/kill a b").contains("too many"));
        assert!(err("/decide m restart 2h").contains("takes no duration"));
        assert!(err("/continue m soon").contains("invalid duration"));
        assert!(err("/kill nope").contains("unknown job \"nope\"; known jobs: model_3, m, bert"));
        assert!(err("/kill").contains("several jobs"));
    }
}
