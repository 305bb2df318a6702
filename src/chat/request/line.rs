//! Text commands as typed in the console (`/decide model_3 restart`), parsed into the
//! engine's commands. Chat input is untrusted: anything unexpected is an error message,
//! never a guess.

use std::time::Duration;

use crate::config::parse_duration;
use crate::engine::{Command, Decision};

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum TextCommand {
    /// A command for one job (`job` None: the only job, if there is exactly one).
    Job {
        job: Option<String>,
        command: Command,
    },
    /// Status of every job.
    StatusAll,
    Help,
}

pub const HELP: &str = "commands:
  /status [JOB]                               where the job (or every job) stands
  /decide JOB restart|kill|continue|investigate [EXTEND]
  /restart JOB    /kill JOB    /investigate JOB
  /continue JOB [EXTEND]                      EXTEND: after a timeout warning, e.g. 2h
  /fix submit JOB SUMMARY...                  a fix is ready: trainwatch computes the CHANGES SUMMARY
  /validate approve|reject JOB [REASON...]    the validator's verdict on the latest fix (Phase 4.5)
  /start JOB                                  start a new run of a job that has ended
  /help";

pub fn parse(line: &str) -> Result<TextCommand, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return Err("empty command; type /help".into());
    };
    let verb = verb.strip_prefix('/').unwrap_or(verb);
    let decide =
        |decision: Decision, job: Option<&str>, extend: Option<&str>| -> Result<TextCommand, String> {
            let extend = extend.map(parse_duration).transpose()?;
            if extend.is_some() && decision != Decision::Continue {
                return Err(format!("{decision} takes no duration"));
            }
            Ok(TextCommand::Job {
                job: job.map(str::to_string),
                command: Command::Decide {
                    decision,
                    target: None,
                    extend,
                },
            })
        };
    let too_many = |max: usize| -> Result<(), String> {
        if args.len() > max {
            Err(format!("too many arguments for /{verb}; type /help"))
        } else {
            Ok(())
        }
    };
    match verb {
        "help" | "?" => Ok(TextCommand::Help),
        "fix" => {
            // `/fix submit JOB summary…`: the summary is the rest of the line, as typed.
            let usage = "usage: /fix submit JOB SUMMARY (what was fixed, in a few words)";
            match args {
                ["submit", job, first, ..] => {
                    let summary = rest_after(line, &["fix", "submit", job]).unwrap_or(first).trim();
                    Ok(TextCommand::Job {
                        job: Some(job.to_string()),
                        command: Command::SubmitFix {
                            summary: summary.chars().take(500).collect(),
                            evidence: None,
                        },
                    })
                }
                _ => Err(usage.into()),
            }
        }
        "validate" => {
            let usage = "usage: /validate approve|reject JOB [REASON]";
            let (approve, job) = match args {
                ["approve", job, ..] => (true, *job),
                ["reject", job, ..] => (false, *job),
                _ => return Err(usage.into()),
            };
            let verb2 = if approve { "approve" } else { "reject" };
            let reason = rest_after(line, &["validate", verb2, job])
                .map(|r| r.trim().chars().take(500).collect::<String>())
                .filter(|r| !r.is_empty());
            Ok(TextCommand::Job {
                job: Some(job.to_string()),
                command: Command::Validate { approve, reason },
            })
        }
        "status" => {
            too_many(1)?;
            Ok(match args.first() {
                Some(job) => TextCommand::Job {
                    job: Some(job.to_string()),
                    command: Command::Status,
                },
                None => TextCommand::StatusAll,
            })
        }
        "start" => {
            too_many(1)?;
            Ok(TextCommand::Job {
                job: args.first().map(|s| s.to_string()),
                command: Command::Start,
            })
        }
        "decide" => {
            too_many(3)?;
            let (job, decision, extend) = match args {
                [d] => (None, *d, None),
                [j, d] if d.parse::<Decision>().is_ok() => (Some(*j), *d, None),
                [d, e] if d.parse::<Decision>().is_ok() => (None, *d, Some(*e)),
                [j, d, e] => (Some(*j), *d, Some(*e)),
                [j, d] => (Some(*j), *d, None),
                _ => return Err("usage: /decide JOB restart|kill|continue|investigate [EXTEND]".into()),
            };
            decide(decision.parse()?, job, extend)
        }
        "restart" | "kill" | "investigate" => {
            too_many(1)?;
            decide(verb.parse()?, args.first().copied(), None)
        }
        "continue" => {
            too_many(2)?;
            match args {
                [] => decide(Decision::Continue, None, None),
                [x] if parse_duration(x).is_ok() && !x.chars().all(|c| c.is_ascii_alphabetic()) => {
                    decide(Decision::Continue, None, Some(*x))
                }
                [j] => decide(Decision::Continue, Some(*j), None),
                [j, e] => decide(Decision::Continue, Some(*j), Some(*e)),
                _ => unreachable!("bounded by too_many"),
            }
        }
        other => Err(format!("unknown command /{other}; type /help")),
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

/// Convenience for tests and scripts.
pub fn extend_of(c: &TextCommand) -> Option<Duration> {
    match c {
        TextCommand::Job {
            command: Command::Decide { extend, .. },
            ..
        } => *extend,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_cmd(line: &str) -> (Option<String>, Command) {
        match parse(line).unwrap() {
            TextCommand::Job { job, command } => (job, command),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_decisions() {
        let (job, cmd) = job_cmd("/decide model_3 restart");
        assert_eq!(job.as_deref(), Some("model_3"));
        assert!(matches!(
            cmd,
            Command::Decide {
                decision: Decision::Restart,
                extend: None,
                ..
            }
        ));
        let (job, cmd) = job_cmd("kill model_3");
        assert_eq!(job.as_deref(), Some("model_3"));
        assert!(matches!(
            cmd,
            Command::Decide {
                decision: Decision::Kill,
                ..
            }
        ));
        let (job, _) = job_cmd("/decide investigate");
        assert_eq!(job, None);
        let c = parse("/continue model_3 2h").unwrap();
        assert_eq!(extend_of(&c), Some(Duration::from_secs(7200)));
        let c = parse("/continue 90m").unwrap();
        assert_eq!(extend_of(&c), Some(Duration::from_secs(5400)));
        assert!(matches!(parse("/status").unwrap(), TextCommand::StatusAll));
    }

    #[test]
    fn parses_fix_and_validate_with_free_text() {
        let (job, cmd) = job_cmd("/fix submit model_3 use fit() instead of fit_transform(), lines 80-90");
        assert_eq!(job.as_deref(), Some("model_3"));
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
        assert!(parse("/fix submit model_3").unwrap_err().contains("usage"));
        assert!(parse("/validate maybe model_3").unwrap_err().contains("usage"));
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("/rm -rf /").unwrap_err().contains("unknown command"));
        assert!(parse("/decide model_3 explode")
            .unwrap_err()
            .contains("unknown decision"));
        assert!(parse("/kill a b").unwrap_err().contains("too many"));
        assert!(parse("/decide m restart 2h")
            .unwrap_err()
            .contains("takes no duration"));
        assert!(parse("/continue m soon")
            .unwrap_err()
            .contains("invalid duration"));
    }
}
