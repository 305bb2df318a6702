//! The error report ("⚠️ ERROR DETECTED") and the warnings that do not halt the run.

use super::*;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let excerpt;
    let footer = match &m.body {
        Body::ErrorDetected {
            seq,
            pid,
            log_file,
            incident,
            exit,
            elapsed,
        } => {
            lines.push(format!("Model: {job} · error #{seq}"));
            let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            match exit {
                Some(e) => lines.push(format!("Process ID: {pid} ({e})")),
                None => lines.push(format!("Process ID: {pid}")),
            }
            lines.push(format!("Log file: {}", path(log_file)));
            lines.push(format!("Error: {}", line(&incident.text)));
            if incident.line > 0 {
                lines.push(format!("Line: {}", incident.line));
            }
            lines.push(format!("Timestamp: {}", m.at.format("%Y-%m-%d %H:%M:%S UTC")));
            lines.push(format!("Elapsed: {}", dur(*elapsed)));
            lines.push(format!("Error Type: {}", incident.category));
            let severity = match (incident.severity, exit) {
                (Severity::Fatal, Some(_)) => "CRITICAL (training halted)",
                (Severity::Fatal, None) => "CRITICAL",
                (Severity::Warning, _) => "warning (the run goes on)",
            };
            lines.push(format!("Severity: {severity}"));
            if incident.count > 1 {
                lines.push(format!("Occurrences: {}", incident.count));
            }
            excerpt = excerpt_lines(&incident.excerpt);
            Some(format!(
                "Action Required: Fix and resume training. Awaiting {} guidance (restart / kill / continue / investigate).",
                persona_tag(Persona::Director)
            ))
        }
        Body::WarningNoticed {
            seq,
            log_file,
            incident,
        } => {
            lines.push(format!("Model: {job} · warning #{seq}"));
            lines.push(format!("Log file: {}", path(log_file)));
            lines.push(format!("Warning: {}", line(&incident.text)));
            if incident.line > 0 {
                lines.push(format!("Line: {}", incident.line));
            }
            lines.push(format!("Type: {} · the run goes on", incident.category));
            if incident.count > 1 {
                lines.push(format!("Occurrences: {}", incident.count));
            }
            excerpt = excerpt_lines(&incident.excerpt);
            None
        }
        _ => unreachable!("render() routes only this family here"),
    };
    Parts {
        lines,
        excerpt,
        footer,
    }
}
