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
