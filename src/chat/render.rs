//! Plain-text rendering of the protocol's messages, in the protocol's own wording. The
//! console prints it; other adapters reuse the field lines. Every piece of log text goes
//! through `sanitize::untrusted` here.

use std::path::Path;

use crate::config::format_duration;
use crate::engine::{Body, IncidentSummary, Message, Progress, StallKind};
use crate::model::{ExitOutcome, Persona, Severity};

use super::sanitize::{cut, untrusted};

/// Longest log line shown in a message (the full line is in the log file).
pub const MAX_LINE: usize = 500;
/// Most traceback lines shown in an excerpt.
pub const MAX_EXCERPT_LINES: usize = 30;

/// The message as a title and body lines.
pub struct Rendered {
    pub title: String,
    pub lines: Vec<String>,
    /// Traceback or context lines (shown as a block).
    pub excerpt: Vec<String>,
    /// The closing line: what happens next / what is asked.
    pub footer: Option<String>,
}

pub fn persona_tag(p: Persona) -> String {
    format!("@{p}")
}

pub fn line(s: &str) -> String {
    cut(&untrusted(s), MAX_LINE)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn dur(d: std::time::Duration) -> String {
    format_duration(d)
}

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn incident_list(errors: &[IncidentSummary]) -> Vec<String> {
    if errors.is_empty() {
        return vec!["  none".into()];
    }
    errors
        .iter()
        .map(|e| {
            let count = if e.count > 1 {
                format!(" (×{})", e.count)
            } else {
                String::new()
            };
            let at = if e.line > 0 {
                format!(" [line {}]", e.line)
            } else {
                String::new()
            };
            let res = match &e.resolution {
                Some(r) => match &r.by {
                    Some(by) => format!("{} by {by}", r.what),
                    None => r.what.clone(),
                },
                None => "open".into(),
            };
            format!(
                "  {}. {} ({}){at}{count} → {res}",
                e.seq,
                line(&e.text),
                e.category
            )
        })
        .collect()
}

fn progress_lines(p: &Progress, out: &mut Vec<String>) {
    if let (Some(step), Some(total)) = (p.step, p.total) {
        out.push(format!("Progress: step {step} / {total}"));
    } else if let Some(step) = p.step {
        out.push(format!("Progress: step {step}"));
    }
    match (p.rate_per_sec, p.eta) {
        (Some(rate), eta) => {
            let eta = eta.map(|e| format!(", ETA {}", dur(e))).unwrap_or_default();
            out.push(format!("Rate: {rate:.2} steps/s{eta}"));
        }
        (None, Some(eta)) => out.push(format!("ETA: {}", dur(eta))),
        (None, None) => {}
    }
    if let Some(slow) = &p.slowdown {
        out.push(format!(
            "Pace: slow, not hung — {:.2} steps/s lately against its usual {:.2} steps/s",
            slow.rate_per_sec, slow.usual_per_sec
        ));
    }
    if !p.metrics.is_empty() {
        let m: Vec<String> = p
            .metrics
            .iter()
            .map(|(k, v)| format!("{}={}", untrusted(k), metric_value(*v)))
            .collect();
        out.push(format!("Metrics: {}", m.join(" ")));
    }
    if let Some(over) = p.overrun {
        out.push(format!(
            "⚠️ Projected to finish {} after the maximum duration",
            dur(over)
        ));
    }
}

/// A metric as read: 0.6931, 5.000e-5, NaN.
pub fn metric_value(v: f64) -> String {
    let a = v.abs();
    if v.fract() == 0.0 && a < 1e12 {
        // Counts (epochs, examples, steps) read as integers.
        format!("{v:.0}")
    } else if !v.is_finite() || (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// A text progress bar: `[#####-----] 50.0%`.
pub fn bar(percent: f64) -> String {
    let p = percent.clamp(0.0, 100.0);
    let filled = (p / 5.0).round() as usize;
    format!("[{}{}] {p:.1}%", "#".repeat(filled), "-".repeat(20 - filled))
}

pub fn render(m: &Message) -> Rendered {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let mut excerpt = Vec::new();
    let footer;
    let title = format!("{} — {job} (run {})", m.body.title(), m.run);
    match &m.body {
        Body::TrainingStarted {
            pid,
            log_file,
            argv,
            expected,
            max,
            previous_log,
        } => {
            lines.push(format!("Training started with PID: {pid}"));
            lines.push(format!("📄 Log file: {}", path(log_file)));
            lines.push(format!("Command: {}", argv.join(" ")));
            if expected.is_some() || max.is_some() {
                let e = expected.map(dur).unwrap_or_else(|| "?".into());
                let x = max.map(dur).unwrap_or_else(|| "none".into());
                lines.push(format!("Expected: ~{e} · Maximum: {x}"));
            }
            if let Some(prev) = previous_log {
                lines.push(format!("Previous log kept as {}", path(prev)));
            }
            footer = Some("🔄 Entering watch mode. Will report completion or errors.".into());
        }
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
            footer = Some(format!(
                "Action Required: Fix and resume training. Awaiting {} guidance (restart / kill / continue / investigate).",
                persona_tag(Persona::Director)
            ));
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
            footer = None;
        }
        Body::StatusUpdate {
            pid,
            log_file,
            elapsed,
            expected,
            progress,
            last_line,
            open,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("PID: {pid}"));
            let exp = expected.map(|e| format!(" / ~{}", dur(e))).unwrap_or_default();
            let pct = progress
                .percent
                .map(|p| format!(" ({p:.1}% complete)"))
                .unwrap_or_default();
            lines.push(format!("Elapsed: {}{exp}{pct}", dur(*elapsed)));
            if let Some(p) = progress.percent {
                lines.push(bar(p));
            }
            progress_lines(progress, &mut lines);
            lines.push(format!("Log file: {}", path(log_file)));
            lines.push("Status: ✅ Running normally".into());
            if let Some(l) = last_line {
                lines.push(format!("Last log line: {}", line(l)));
            }
            footer = Some(if open.is_empty() {
                "No errors detected. Continuing monitoring...".into()
            } else {
                excerpt = incident_list(open);
                format!(
                    "{} warning(s) noted (above). Continuing monitoring...",
                    open.len()
                )
            });
        }
        Body::TimeoutWarning {
            pid,
            expected,
            max,
            elapsed,
            last_line,
        } => {
            lines.push(format!("Model: {job}"));
            lines.push(format!("PID: {pid}"));
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
            footer = Some(format!(
                "Action: Continue monitoring, investigate, or terminate and restart? Awaiting {} decision.",
                persona_tag(Persona::Director)
            ));
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
            lines.push(format!("PID: {pid} (alive)"));
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
            footer = Some(format!(
                "Is it hung? Restart, kill, continue monitoring or investigate? Awaiting {} decision.",
                persona_tag(Persona::Director)
            ));
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
            lines.push(format!("PID: {pid}"));
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
            footer = Some(format!(
                "Early warning: the run will likely hit its timeout. {} may act now or wait for the timeout warning.",
                persona_tag(Persona::Director)
            ));
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
                Some(p) if !*old_ended => lines.push(format!("Old process killed: PID {p}")),
                Some(p) => lines.push(format!("Old process: PID {p} had already ended")),
                None => lines.push("Old process: already ended".into()),
            }
            lines.push(format!("New process started: PID {new_pid}"));
            match checkpoint {
                Some(c) => lines.push(format!("Resumed from checkpoint: {}", path(c))),
                None => lines.push("Started from scratch (no checkpoint)".into()),
            }
            lines.push(format!("Log file: {} (appending)", path(log_file)));
            lines.push(format!(
                "Training resumed at: {}",
                m.at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
            footer = Some("🔄 Entering watch mode...".into());
        }
        Body::DecisionTaken { decision, by, detail } => {
            lines.push(format!("{by} decided: {decision}"));
            lines.push(detail.clone());
            footer = None;
        }
        Body::Investigate {
            owner,
            requested_by,
            incident,
            log_file,
            last_line,
        } => {
            lines.push(format!(
                "{}: please investigate {job} (asked by {requested_by}).",
                persona_tag(*owner)
            ));
            match incident {
                Some(i) => {
                    lines.push(format!("Error: {}", line(&i.text)));
                    if i.line > 0 {
                        lines.push(format!("Line: {}", i.line));
                    }
                    lines.push(format!("This is a {} error.", i.category));
                    excerpt = excerpt_lines(&i.excerpt);
                }
                None => {
                    lines.push("The run is past its maximum duration: check the log for issues.".into());
                    if let Some(l) = last_line {
                        lines.push(format!("Last log line: {}", line(l)));
                    }
                }
            }
            lines.push(format!("Log file: {}", path(log_file)));
            footer = Some("Please investigate and provide a fix (with a CHANGES SUMMARY).".into());
        }
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
            lines.push("📋 CHANGES SUMMARY (computed from the job's files):".into());
            lines.extend(crate::review::render_changes(changes).iter().map(|l| line(l)));
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
            let changed: Vec<String> = changes.params_changed.iter().map(|p| p.name.clone()).collect();
            lines.push(format!("Changes: {}", changed.join(", ")));
            lines.push("Comparison with the Design Expectations Table:".into());
            lines.extend(crate::review::render_table(comparison).iter().map(|l| line(l)));
            lines.push(format!(
                "Overall score: {:.0}% of rows within tolerance",
                comparison.score * 100.0
            ));
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
            footer = Some("Ready for Phase 5.5 validation".into());
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
            footer = None;
        }
        Body::Killed {
            by,
            pid,
            total,
            log_file,
            errors,
        } => {
            lines.push(format!("Model: {job}"));
            let pid = pid.map(|p| format!(" (PID {p})")).unwrap_or_default();
            lines.push(format!("Killed by {by}{pid}"));
            lines.push(format!("Total time: {}", dur(*total)));
            lines.push(format!("Log file: {}", path(log_file)));
            lines.push("Errors Encountered:".into());
            lines.extend(incident_list(errors));
            footer = None;
        }
    }
    Rendered {
        title,
        lines,
        excerpt,
        footer,
    }
}

fn excerpt_lines(lines: &[String]) -> Vec<String> {
    let n = lines.len();
    let mut out: Vec<String> = if n > MAX_EXCERPT_LINES {
        // Keep the head (where the traceback starts) and the tail (where the error is).
        let head = MAX_EXCERPT_LINES / 3;
        let tail = MAX_EXCERPT_LINES - head - 1;
        let mut v: Vec<String> = lines[..head].iter().map(|l| line(l)).collect();
        v.push(format!("… {} lines …", n - head - tail));
        v.extend(lines[n - tail..].iter().map(|l| line(l)));
        v
    } else {
        lines.iter().map(|l| line(l)).collect()
    };
    out.retain(|l| !l.is_empty() || n < 3);
    out
}

/// Exit status in words, for summaries.
pub fn outcome(o: Option<ExitOutcome>) -> String {
    o.map(|o| o.to_string()).unwrap_or_else(|| "-".into())
}
