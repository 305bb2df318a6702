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
            lines.push("Status: ✅ Running normally".into());
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
