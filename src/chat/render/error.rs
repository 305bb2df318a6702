//! The error report ("⚠️ ERROR DETECTED") and the warnings that do not halt the run.

use super::*;
use crate::model::Incident;

/// What an error report states, worded once for every adapter: the console prints it as
/// lines, Discord as embed fields.
pub struct ErrorFacts<'a> {
    pub seq: u32,
    /// `1234 (killed by SIGKILL (137))` once the process ended; `-` when there was none.
    pub process: String,
    /// What `process` numbers: "PID" (also when there was none) or "Slurm job".
    pub process_label: &'static str,
    pub log_file: String,
    pub incident: &'a Incident,
    pub elapsed: String,
    pub severity: &'static str,
}

/// The facts of an error report; None for any other message.
pub fn error_facts(body: &Body) -> Option<ErrorFacts<'_>> {
    let Body::ErrorDetected {
        seq,
        pid,
        log_file,
        incident,
        exit,
        elapsed,
    } = body
    else {
        return None;
    };
    let process_label = pid.map_or("PID", |p| p.label());
    let pid = pid.map(|p| p.number().to_string()).unwrap_or_else(|| "-".into());
    let severity = match (incident.severity, exit) {
        (Severity::Fatal, Some(_)) => "CRITICAL (training halted)",
        (Severity::Fatal, None) => "CRITICAL",
        (Severity::Warning, _) => "warning (the run goes on)",
        (Severity::Note, _) => "note (the run said it handled this and went on)",
    };
    Some(ErrorFacts {
        seq: *seq,
        process: match exit {
            Some(e) => format!("{pid} ({e})"),
            None => pid,
        },
        process_label,
        log_file: path(log_file),
        incident,
        elapsed: dur(*elapsed),
        severity,
    })
}

/// The line that states the incident, and where it stands in the log when it is a log line.
fn stated(label: &str, incident: &Incident, lines: &mut Vec<String>) {
    lines.push(format!("{label}: {}", line(&incident.text)));
    if incident.line > 0 {
        lines.push(format!("Line: {}", incident.line));
    }
}

/// Why the incident got its category, as one line ("Why: …"); None for an incident stored
/// before incidents said why. Ours, but it may quote a name from the log: neutralised.
pub fn why(incident: &Incident) -> Option<String> {
    let r = incident.reason.trim();
    (!r.is_empty()).then(|| format!("Why: {}", line(r)))
}

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let (incident, footer) = match &m.body {
        Body::ErrorDetected { .. } => {
            let f = error_facts(&m.body).expect("an error report has its facts");
            lines.push(format!("Model: {job} · error #{}", f.seq));
            lines.push(match f.process_label {
                "PID" => format!("Process ID: {}", f.process),
                label => format!("{label}: {}", f.process),
            });
            lines.push(format!("Log file: {}", f.log_file));
            stated("Error", f.incident, &mut lines);
            lines.push(format!("Timestamp: {}", m.at.format("%Y-%m-%d %H:%M:%S UTC")));
            lines.push(format!("Elapsed: {}", f.elapsed));
            lines.push(format!("Error Type: {}", f.incident.category));
            lines.extend(why(f.incident));
            lines.push(format!("Severity: {}", f.severity));
            let footer = format!(
                "Action Required: Fix and resume training. Awaiting {} guidance (restart / kill / continue / investigate).",
                persona_tag(Persona::Director)
            );
            (f.incident, Some(footer))
        }
        Body::WarningNoticed {
            seq,
            log_file,
            incident,
        } => {
            lines.push(format!("Model: {job} · warning #{seq}"));
            lines.push(format!("Log file: {}", path(log_file)));
            stated("Warning", incident, &mut lines);
            lines.push(format!("Type: {} · the run goes on", incident.category));
            lines.extend(why(incident));
            (incident, None)
        }
        _ => unreachable!("render() routes only this family here"),
    };
    if incident.count > 1 {
        lines.push(format!("Occurrences: {}", incident.count));
    }
    Parts {
        lines,
        excerpt: excerpt_lines(&incident.excerpt),
        footer,
    }
}
