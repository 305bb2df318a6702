//! The clock's questions and warnings: timeout (at the maximum, or ahead of a scheduler's
//! time limit), "hung?", projected overrun.

use super::*;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let excerpt = Vec::new();
    let footer = match &m.body {
        Body::TimeoutWarning {
            pid,
            expected,
            max,
            elapsed,
            last_line,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("{}: {}", pid.label(), pid.number()));
            if let Some(e) = expected {
                lines.push(format!("Expected time: ~{}", dur(*e)));
            }
            lines.push(format!(
                "Elapsed time: {} (above maximum of {})",
                dur(*elapsed),
                dur(*max)
            ));
            lines.push("Status: Still running".into());
            if let Some(l) = last_line {
                lines.push(format!("Last log: {}", line(l)));
            }
            Some(format!(
                "Action: Continue monitoring, investigate, or terminate and restart? Awaiting {} decision.",
                persona_tag(Persona::Director)
            ))
        }
        Body::LimitWarning {
            pid,
            limit_at,
            left: _,
            elapsed,
            extend_by,
            last_line,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("{}: {}", pid.label(), pid.number()));
            lines.push(format!(
                "Time limit: the scheduler ends it at {}",
                super::scheduler::limit(*limit_at, m.at)
            ));
            lines.push(format!("Elapsed time: {}", dur(*elapsed)));
            lines.push("Status: Still running".into());
            if let Some(l) = last_line {
                lines.push(format!("Last log: {}", line(l)));
            }
            Some(format!(
                "Action: Continue monitoring, investigate, terminate and restart, or extend (+{})? Awaiting {} decision.",
                dur(*extend_by),
                persona_tag(Persona::Director)
            ))
        }
        Body::StallWarning {
            seq,
            pid,
            stall,
            since,
            stalled_for,
            step,
            last_line,
        } => {
            lines.push(format!("Model: {job} · stall #{seq}"));
            lines.push(format!("{}: {} (alive)", pid.label(), pid.number()));
            let since = since.format("%H:%M:%S UTC");
            let stalled_for = dur(*stalled_for);
            match stall {
                StallKind::NoOutput => lines.push(format!("No new log line since {since} ({stalled_for})")),
                StallKind::NoProgress => {
                    let at = step.map(|s| format!(" (step {s})")).unwrap_or_default();
                    lines.push(format!(
                        "Log lines still come, but no progress since {since}{at} ({stalled_for})"
                    ))
                }
            }
            if let Some(l) = last_line {
                lines.push(format!("Last log line: {}", line(l)));
            }
            Some(format!(
                "Is it hung? Restart, kill, continue monitoring or investigate? Awaiting {} decision.",
                persona_tag(Persona::Director)
            ))
        }
        Body::OverrunWarning {
            pid,
            elapsed,
            projected_total,
            max,
            eta,
            progress,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("{}: {}", pid.label(), pid.number()));
            let pct = progress
                .percent
                .map(|p| format!(" ({p:.1}% complete)"))
                .unwrap_or_default();
            lines.push(format!("Elapsed: {}{pct}", dur(*elapsed)));
            if let Some(p) = progress.percent {
                lines.push(bar(p));
            }
            lines.push(format!(
                "Projected total: {} — above the maximum of {} (ETA {})",
                dur(*projected_total),
                dur(*max),
                dur(*eta)
            ));
            Some(format!(
                "Early warning: the run will likely hit its timeout. {} may act now or wait for the timeout warning.",
                persona_tag(Persona::Director)
            ))
        }
        _ => unreachable!("render() routes only this family here"),
    };
    Parts {
        lines,
        excerpt,
        footer,
    }
}
