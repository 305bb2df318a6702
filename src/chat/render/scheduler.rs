//! A job a scheduler holds: waiting in its queue, started by it, its time limit extended or
//! not, resubmitted after the cluster's failure, and the supervisor's word on a controller
//! that does not answer. (The timeout warning ahead of the limit is with the clock's
//! warnings.) What the scheduler says (a reason, an error) is untrusted text.

use chrono::{DateTime, Utc};

use super::*;
use crate::engine::SchedulerNotice;

fn hhmm(at: DateTime<Utc>) -> String {
    at.format("%H:%M UTC").to_string()
}

/// "18:00 UTC (in 4h 0m)", relative to when the message was written.
pub(super) fn limit(limit_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = (limit_at - now).to_std().unwrap_or_default();
    format!("{} (in {})", hhmm(limit_at), dur(left))
}

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let footer = match &m.body {
        Body::Queued {
            pid,
            attempt,
            reason,
            waiting_for,
            log_file,
        } => {
            lines.push(format!("Model: {job} · attempt {attempt}"));
            lines.push(format!("{}: {}", pid.label(), pid.number()));
            lines.push(format!(
                "Waiting in queue for {}: {}",
                dur(*waiting_for),
                line(reason)
            ));
            lines.push(format!("Log file: {}", path(log_file)));
            Some("Its clock starts when the scheduler starts it.".into())
        }
        Body::SchedulerStarted {
            pid,
            attempt,
            waited,
            limit_at,
        } => {
            let after = if waited.is_zero() {
                String::new()
            } else {
                format!(" after {} in queue", dur(*waited))
            };
            lines.push(format!("{pid} started{after} (attempt {attempt})"));
            match limit_at {
                Some(l) => lines.push(format!(
                    "Time limit: the scheduler ends it at {}",
                    limit(*l, m.at)
                )),
                None => lines.push("Time limit: none".into()),
            }
            None
        }
        Body::LimitExtended { by, limit_at } => {
            lines.push(format!("More time granted (asked by {by})."));
            lines.push(format!(
                "Time limit: the scheduler now ends it at {}",
                limit(*limit_at, m.at)
            ));
            Some("A new timeout warning comes ahead of the new limit.".into())
        }
        Body::ExtendFailed { by, error, limit_at } => {
            lines.push(format!(
                "The scheduler did not grant more time (asked by {by}): {}",
                line(error)
            ));
            if let Some(l) = limit_at {
                lines.push(format!(
                    "Time limit: it still ends the job at {}",
                    limit(*l, m.at)
                ));
            }
            Some(format!(
                "Restart from a checkpoint, kill, or let it run to its limit? {} decides.",
                persona_tag(Persona::Director)
            ))
        }
        Body::Resubmitted {
            why,
            requeued,
            n,
            limit,
        } => {
            if *requeued {
                lines.push(format!(
                    "The scheduler took the job back into its queue: {}",
                    line(why)
                ));
                lines.push(format!(
                    "The same scheduler job starts again by itself ({n} of at most {limit} in this run), appending to the same log."
                ));
            } else {
                lines.push(format!("The scheduler ended the job: {}", line(why)));
                lines.push(format!(
                    "Resubmitted by itself ({n} of at most {limit} in this run): appending to the same log, resuming from the newest checkpoint."
                ));
            }
            Some("The cluster's failure, not your code: no decision needed.".into())
        }
        Body::Scheduler { notice } => match notice {
            SchedulerNotice::Unreachable { error } => {
                lines.push(format!(
                    "The scheduler's controller does not answer: {}",
                    line(error)
                ));
                lines.push(
                    "The job is not affected; trainwatch keeps asking, less often, and says so when it answers again."
                        .into(),
                );
                None
            }
            SchedulerNotice::Answering { after } => {
                lines.push(format!(
                    "The scheduler's controller answers again, after {} without an answer.",
                    dur(*after)
                ));
                None
            }
        },
        _ => unreachable!("render() routes only this family here"),
    };
    Parts {
        lines,
        excerpt: Vec::new(),
        footer,
    }
}

/// One message of each scheduler body, worded as a Slurm job meets them (for the renderers'
/// tests), with `said` as the scheduler's words (a reason, an error).
#[cfg(test)]
pub(crate) fn samples(now: DateTime<Utc>, said: &str) -> Vec<Body> {
    use std::time::Duration;

    use crate::model::ProcessId;
    let pid = ProcessId::Slurm { slurm_job: 4242 };
    let hours = |h: i64| now + chrono::Duration::hours(h);
    vec![
        Body::Queued {
            pid,
            attempt: 1,
            reason: said.into(),
            waiting_for: Duration::from_secs(14 * 60),
            log_file: "/runs/logs/model_3.log".into(),
        },
        Body::SchedulerStarted {
            pid,
            attempt: 1,
            waited: Duration::from_secs(14 * 60),
            limit_at: Some(hours(4)),
        },
        Body::LimitWarning {
            pid,
            limit_at: hours(1),
            left: Duration::from_secs(3600),
            elapsed: Duration::from_secs(3 * 3600),
            extend_by: Duration::from_secs(3600),
            last_line: Some(said.into()),
        },
        Body::LimitExtended {
            by: "@dana".into(),
            limit_at: hours(2),
        },
        Body::ExtendFailed {
            by: "@dana".into(),
            error: said.into(),
            limit_at: Some(hours(1)),
        },
        Body::Resubmitted {
            why: said.into(),
            requeued: false,
            n: 1,
            limit: 3,
        },
        Body::Resubmitted {
            why: said.into(),
            requeued: true,
            n: 2,
            limit: 3,
        },
        Body::Scheduler {
            notice: SchedulerNotice::Unreachable { error: said.into() },
        },
        Body::Scheduler {
            notice: SchedulerNotice::Answering {
                after: Duration::from_secs(20 * 60),
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{JobName, RunId};

    fn message(body: Body) -> Message {
        Message {
            job: JobName::new("model_3").unwrap(),
            run: RunId(1),
            key: crate::engine::MessageKey::Notice(1),
            at: Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap(),
            to: vec![],
            body,
            buttons: vec![],
            attachments: vec![],
        }
    }

    fn text(body: Body) -> String {
        let r = super::super::render(&message(body));
        let mut s = r.title;
        for l in r.lines.iter().chain(r.footer.iter()) {
            s.push('\n');
            s.push_str(l);
        }
        s
    }

    #[test]
    fn each_scheduler_message_says_what_happened_in_words() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap();
        let all: Vec<String> = samples(now, "Priority").into_iter().map(text).collect();
        let expect = [
            "Waiting in queue for 14m: Priority",
            "Slurm job 4242 started after 14m in queue (attempt 1)",
            "Time limit: the scheduler ends it at 09:00 UTC (in 1h)",
            "the scheduler now ends it at 10:00 UTC (in 2h)",
            "The scheduler did not grant more time (asked by @dana): Priority",
            "The scheduler ended the job: Priority",
            "The scheduler took the job back into its queue: Priority",
            "The scheduler's controller does not answer: Priority",
            "answers again, after 20m without an answer",
        ];
        for e in expect {
            assert!(all.iter().any(|t| t.contains(e)), "{e:?} not in {all:#?}");
        }
        assert!(all[2].starts_with("⚠️ TIMEOUT WARNING"), "{}", all[2]);
        assert!(
            all[2].contains("or extend (+1h)? Awaiting @director decision."),
            "{}",
            all[2]
        );
        assert!(
            all[5].contains("The cluster's failure, not your code"),
            "{}",
            all[5]
        );
    }

    #[test]
    fn the_schedulers_words_are_untrusted_text() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap();
        for body in samples(now, "held @everyone <@&1> \u{1b}[31m") {
            let t = text(body);
            assert!(!t.contains("@everyone") && !t.contains('\u{1b}'), "{t}");
        }
    }

    #[test]
    fn a_slurm_job_is_submitted_and_waiting_before_it_starts() {
        let start = |queued: Option<&str>| {
            text(Body::TrainingStarted {
                pid: crate::model::ProcessId::Slurm { slurm_job: 4242 },
                log_file: "/runs/l.log".into(),
                argv: vec!["python".into()],
                expected: None,
                max: None,
                previous_log: None,
                queued: queued.map(str::to_string),
            })
        };
        let t = start(None);
        assert!(t.contains("Training submitted as Slurm job 4242"), "{t}");
        assert!(t.contains("Waiting for the scheduler to start it"), "{t}");
        assert!(start(Some("Resources")).contains("Waiting in queue: Resources"));
    }
}
