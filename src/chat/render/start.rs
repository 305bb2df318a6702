//! The start of a run and its restarts: "Training started", "Restarting training".

use super::*;
use crate::model::ProcessId;
use crate::redact::Redactor;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let mut lines = Vec::new();
    let excerpt = Vec::new();
    let footer = match &m.body {
        Body::TrainingStarted {
            pid,
            log_file,
            argv,
            expected,
            max,
            previous_log,
            queued,
        } => {
            match pid {
                // A scheduler's job starts when the scheduler says: submitted is what is true.
                ProcessId::Slurm { .. } => {
                    lines.push(format!("Training submitted as {pid}"));
                    match queued {
                        Some(reason) => lines.push(format!("Waiting in queue: {}", line(reason))),
                        None => lines.push("Waiting for the scheduler to start it".into()),
                    }
                }
                ProcessId::Local(_) => {
                    lines.push(format!("Training started with {}: {}", pid.label(), pid.number()))
                }
            }
            lines.push(format!("📄 Log file: {}", path(log_file)));
            // Secrets passed on the command line (`--token x`, `HF_TOKEN=x`) are not shown.
            lines.push(format!(
                "Command: {}",
                untrusted(&Redactor::default().command_line(argv))
            ));
            if expected.is_some() || max.is_some() {
                let e = expected.map(dur).unwrap_or_else(|| "?".into());
                let x = max.map(dur).unwrap_or_else(|| "none".into());
                lines.push(format!("Expected: ~{e} · Maximum: {x}"));
            }
            if let Some(prev) = previous_log {
                lines.push(format!("Previous log kept as {}", path(prev)));
            }
            Some("🔄 Entering watch mode. Will report completion or errors.".into())
        }
        Body::Restarting {
            old_pid,
            old_ended,
            new_pid,
            log_file,
            checkpoint,
            decided_by,
            attempt,
        } => {
            lines.push(format!(
                "Restarting training (attempt {attempt}, decided by {decided_by})..."
            ));
            match old_pid {
                Some(p) if !*old_ended => lines.push(format!("Old process killed: {p}")),
                Some(p) => lines.push(format!("Old process: {p} had already ended")),
                None => lines.push("Old process: already ended".into()),
            }
            lines.push(format!("New process started: {new_pid}"));
            match checkpoint {
                Some(c) => lines.push(format!("Resumed from checkpoint: {}", path(c))),
                None => lines.push("Started from scratch (no checkpoint)".into()),
            }
            lines.push(format!("Log file: {} (appending)", path(log_file)));
            lines.push(format!(
                "Training resumed at: {}",
                m.at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
            Some("🔄 Entering watch mode...".into())
        }
        _ => unreachable!("render() routes only this family here"),
    };
    Parts {
        lines,
        excerpt,
        footer,
    }
}
