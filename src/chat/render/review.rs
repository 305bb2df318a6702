//! The Phase 4.5 gate in chat: the fix and its CHANGES SUMMARY, the re-validation request, the verdict.

use super::*;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let excerpt = Vec::new();
    let footer;
    match &m.body {
        Body::FixSubmitted {
            seq,
            by,
            summary,
            changes,
        } => {
            lines.push(format!(
                "Fix #{seq} for {job}, submitted by {by}: {}",
                line(summary)
            ));
            // The protocol's CHANGES SUMMARY, computed from the job's files; its heading
            // is printed once, as the first line (the title names the fix).
            // Uncut (`untrusted`, not `line`): every before → after is part of the decision.
            lines.extend(
                crate::review::render_changes(changes)
                    .iter()
                    .map(|l| untrusted(l)),
            );
            footer = Some(if changes.design_changed {
                format!(
                    "Design parameters changed: {} must re-validate (Phase 4.5).",
                    persona_tag(Persona::TimeValidator)
                )
            } else {
                format!(
                    "Simple bug fix (no design parameter changed): {} may resume training.",
                    persona_tag(Persona::Director)
                )
            });
        }
        Body::RevalidationRequired {
            seq,
            submitted_by,
            changes,
            comparison,
        } => {
            lines.push(format!(
                "{}: RE-VALIDATION REQUIRED — {submitted_by} has modified {job} (fix #{seq}).",
                persona_tag(Persona::TimeValidator)
            ));
            // The verdict first (score, then every row outside tolerance with its values),
            // so a reader who sees only the top of the message sees what decides it; then
            // the whole table. Nothing here is cut: a validator approves every row.
            let outside: Vec<&crate::review::ComparisonRow> =
                comparison.rows.iter().filter(|r| !r.within()).collect();
            let within = comparison.rows.len() - outside.len();
            let verdict = if outside.is_empty() {
                "every row within tolerance".to_string()
            } else {
                format!("{} row(s) NOT within tolerance:", outside.len())
            };
            lines.push(format!(
                "Overall score: {:.0}% ({within}/{} within tolerance) — {verdict}",
                comparison.score * 100.0,
                comparison.rows.len()
            ));
            for r in &outside {
                lines.push(untrusted(&format!(
                    "  {}: actual {} (design {}, tolerance {}) — {}",
                    r.name, r.actual, r.design, r.tolerance, r.verdict
                )));
            }
            let changed: Vec<String> = changes.params_changed.iter().map(|p| p.name.clone()).collect();
            lines.push(untrusted(&format!("Changes: {}", changed.join(", "))));
            lines.push(format!(
                "Comparison with the Design Expectations Table (all {} rows):",
                comparison.rows.len()
            ));
            lines.extend(
                crate::review::render_table(comparison)
                    .iter()
                    .map(|l| untrusted(l)),
            );
            footer = Some(
                "Return APPROVE or REJECT. Do NOT allow training to resume until validation is complete."
                    .into(),
            );
        }
        Body::ValidationDecided {
            seq,
            approved,
            by,
            reason,
            expires,
        } => {
            if *approved {
                lines.push(format!(
                    "{by} approved fix #{seq} of {job}: changes within tolerance."
                ));
                if let Some(e) = expires {
                    lines.push(format!(
                        "The approval holds until {}.",
                        e.format("%Y-%m-%d %H:%M UTC")
                    ));
                }
                footer = Some(format!(
                    "{}: fix applied and validated — resume training (restart).",
                    persona_tag(Persona::Director)
                ));
            } else {
                lines.push(format!("Fix #{seq} of {job} REJECTED by {by}."));
                if let Some(r) = reason {
                    lines.push(format!("Reason: {}", line(r)));
                }
                footer = Some(format!(
                    "{}: full rework required to match the design exactly. Training stays blocked until a new fix is submitted.",
                    persona_tag(Persona::CodeTranslator)
                ));
            }
        }
        _ => unreachable!("render() routes only this family here"),
    }
    Parts {
        lines,
        excerpt,
        footer,
    }
}
