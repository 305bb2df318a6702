//! How a run ended: completed, failed, killed.

use super::*;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let excerpt = Vec::new();
    let footer = match &m.body {
        Body::Completed {
            total,
            attempts,
            outputs,
            log_file,
            errors,
            convergence,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push("Status: SUCCESS".into());
            lines.push("Training Summary:".into());
            lines.push(format!("- Total time: {}", dur(*total)));
            if *attempts > 1 {
                lines.push(format!("- Attempts: {attempts}"));
            }
            if let Some(c) = convergence {
                if let Some(s) = c.samples() {
                    lines.push(format!("- Samples: {s}"));
                }
                if let Some(ch) = c.chains {
                    lines.push(format!("- Chains: {ch}"));
                }
                let mut conv = Vec::new();
                if let Some(r) = c.max_rhat {
                    conv.push(format!("max R-hat {r:.3}"));
                }
                if let Some(e) = c.min_ess {
                    conv.push(format!("min ESS {e:.0}"));
                }
                if let Some(d) = c.divergences {
                    conv.push(format!("{d} divergences"));
                }
                if !conv.is_empty() {
                    lines.push(format!("- Convergence: {}", conv.join(", ")));
                }
            }
            lines.push("Output Files:".into());
            for o in outputs {
                let s = o.size.map(size).unwrap_or_else(|| "MISSING".into());
                lines.push(format!("- {} ({s})", path(&o.path)));
            }
            lines.push(format!("- Log: {}", path(log_file)));
            lines.push("Errors Encountered and Resolved:".into());
            lines.extend(incident_list(errors));
            Some("Ready for Phase 5.5 validation".into())
        }
        Body::Failed {
            exit,
            reason,
            total,
            log_file,
            last_line,
            errors,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("Status: FAILED — {reason}"));
            if let Some(e) = exit {
                lines.push(format!("Process: {e}"));
            }
            lines.push(format!("Total time: {}", dur(*total)));
            lines.push(format!("Log file: {}", path(log_file)));
            if let Some(l) = last_line {
                lines.push(format!("Last log line: {}", line(l)));
            }
            lines.push("Errors Encountered:".into());
            lines.extend(incident_list(errors));
            None
        }
        Body::Killed {
            by,
            pid,
            total,
            log_file,
            errors,
        } => {
            lines.push(format!("Model: {job}"));
            let pid = pid.map(|p| format!(" ({p})")).unwrap_or_default();
            lines.push(format!("Killed by {by}{pid}"));
            lines.push(format!("Total time: {}", dur(*total)));
            lines.push(format!("Log file: {}", path(log_file)));
            lines.push("Errors Encountered:".into());
            lines.extend(incident_list(errors));
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
