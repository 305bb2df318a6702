//! The periodic status update.

use super::*;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let mut excerpt = Vec::new();
    let footer = match &m.body {
        Body::StatusUpdate {
            pid,
            log_file,
            elapsed,
            attempt,
            expected,
            progress,
            last_line,
            open,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("{}: {}", pid.label(), pid.number()));
            let exp = expected.map(|e| format!(" / ~{}", dur(e))).unwrap_or_default();
            let pct = progress
                .percent
                .map(|p| format!(" ({p:.1}% complete)"))
                .unwrap_or_default();
            let att = attempt
                .map(|a| format!(" — attempt {} running for {}", a.attempt, dur(a.running_for)))
                .unwrap_or_default();
            lines.push(format!("Elapsed: {}{exp}{pct}{att}", dur(*elapsed)));
            if let Some(p) = progress.percent {
                lines.push(bar(p));
            }
            progress_lines(progress, &mut lines);
            lines.push(format!("Log file: {}", path(log_file)));
            // Hung or just slow, said where a phone shows it first.
            lines.push(
                if progress.hung.is_some() {
                    "Status: ⚠️ Looks hung (alive, but see Pace)"
                } else if progress.slowdown.is_some() {
                    "Status: ✅ Running, slower than usual"
                } else {
                    "Status: ✅ Running normally"
                }
                .into(),
            );
            if let Some(l) = last_line {
                lines.push(format!("Last log line: {}", line(l)));
            }
            Some(if open.is_empty() {
                "No errors detected. Continuing monitoring...".into()
            } else {
                excerpt = incident_list(open);
                format!(
                    "{} warning(s) noted (above). Continuing monitoring...",
                    open.len()
                )
            })
        }
        _ => unreachable!("render() routes only this family here"),
    };
    Parts {
        lines,
        excerpt,
        footer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobName, ProcessId, RunId};
    use crate::watch::progress::{Hung, Slowdown, StallWatch};
    use chrono::Utc;
    use std::time::Duration;

    fn lines(progress: Progress) -> Vec<String> {
        let body = Body::StatusUpdate {
            pid: ProcessId::Local(42),
            log_file: "train.log".into(),
            elapsed: Duration::from_secs(3600),
            attempt: None,
            expected: None,
            progress,
            last_line: None,
            open: Vec::new(),
        };
        let m = Message {
            job: JobName::new("model_3").unwrap(),
            run: RunId(1),
            key: crate::engine::MessageKey::Notice(1),
            at: Utc::now(),
            to: vec![],
            body,
            buttons: vec![],
            attachments: vec![],
        };
        render(&m).lines
    }

    /// The status update says whether the job looks hung or is only slow, and how long a
    /// silence it takes (learnt from the job's cadence or fixed).
    #[test]
    fn a_status_update_says_hung_slow_or_neither() {
        let watch = Some(StallWatch {
            after: Duration::from_secs(12 * 60),
            learnt: true,
        });
        let quiet = lines(Progress {
            stall_watch: watch,
            ..Progress::default()
        });
        assert!(
            quiet.contains(&"Status: ✅ Running normally".to_string()),
            "{quiet:?}"
        );
        assert!(
            quiet.contains(
                &"Stall watch: not hung; called hung after 12m without output (learnt from its own output cadence)"
                    .to_string()
            ),
            "{quiet:?}"
        );
        let hung = lines(Progress {
            stall_watch: watch,
            hung: Some(Hung {
                quiet: Duration::from_secs(25 * 60),
                kind: StallKind::NoOutput,
            }),
            ..Progress::default()
        });
        assert!(
            hung.contains(&"Status: ⚠️ Looks hung (alive, but see Pace)".to_string()),
            "{hung:?}"
        );
        assert!(
            hung.iter()
                .any(|l| l.starts_with("Pace: looks hung — no output for 25m; called hung after 12m")),
            "{hung:?}"
        );
        let slow = lines(Progress {
            stall_watch: watch,
            slowdown: Some(Slowdown {
                rate_per_sec: 0.1,
                usual_per_sec: 1.0,
            }),
            ..Progress::default()
        });
        assert!(
            slow.contains(&"Status: ✅ Running, slower than usual".to_string()),
            "{slow:?}"
        );
        assert!(
            slow.iter().any(|l| l.starts_with("Pace: slow, not hung")),
            "{slow:?}"
        );
    }
}
