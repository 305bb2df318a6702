//! Plain-text rendering of the protocol's messages, in the protocol's own wording. The
//! console prints it; other adapters reuse the field lines. One module per message family
//! (start, error, status, warnings, review, decision, endings); the helpers they share
//! (log lines, durations, sizes, incident lists, progress) live here, once. Every piece of
//! log text goes through `sanitize::untrusted` here.

use std::path::Path;

use crate::config::format_duration;
use crate::engine::{Body, IncidentSummary, Message, Progress, StallKind};
use crate::model::{metric_value, ExitOutcome, Persona, Severity};

use super::sanitize::{cut, untrusted};

mod decision;
mod endings;
mod error;
#[cfg(test)]
pub(crate) mod large;
mod review;
mod scheduler;
mod start;
mod status;
mod store;
mod warnings;

pub use error::{error_facts, why, ErrorFacts};
#[cfg(test)]
pub(crate) use scheduler::samples as scheduler_samples;

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

impl Rendered {
    /// The whole message as a markdown document: every line, the excerpt, the closing line.
    /// What an adapter attaches when the message is larger than one chat message.
    pub fn markdown(&self) -> String {
        let mut s = format!("# {}\n\n", self.title);
        for l in &self.lines {
            // Two trailing spaces: a markdown line break, so rows stay rows.
            s.push_str(&format!("{l}  \n"));
        }
        if !self.excerpt.is_empty() {
            // Indented, not fenced: log text cannot close an indented block.
            s.push('\n');
            for l in &self.excerpt {
                s.push_str(&format!("    {l}\n"));
            }
        }
        if let Some(f) = &self.footer {
            s.push_str(&format!("\n**{f}**\n"));
        }
        s
    }
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
                format!(" (line {})", e.line)
            } else {
                String::new()
            };
            let res = match &e.resolution {
                Some(r) => match &r.by {
                    Some(by) => format!("{} by {by}", line(&r.what)),
                    None => line(&r.what),
                },
                None => "open".into(),
            };
            // The protocol's `{error} → {resolution}`.
            format!(
                "  {}. {}{at}{count} [{}] → {res}",
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
    // Hung or just slow: the question a status update during a quiet spell must answer.
    let limit = p.stall_watch.map(|w| {
        let how = if w.learnt {
            " (learnt from its own output cadence)"
        } else {
            ""
        };
        format!("called hung after {} without output{how}", dur(w.after))
    });
    if let Some(h) = &p.hung {
        let what = match h.kind {
            StallKind::NoOutput => "no output",
            StallKind::NoProgress => "lines but no new step",
        };
        let limit = limit.map(|l| format!("; {l}")).unwrap_or_default();
        out.push(format!("Pace: looks hung — {what} for {}{limit}", dur(h.quiet)));
    } else if let Some(slow) = &p.slowdown {
        out.push(format!(
            "Pace: slow, not hung — {:.2} steps/s lately against its usual {:.2} steps/s",
            slow.rate_per_sec, slow.usual_per_sec
        ));
    } else if let Some(limit) = &limit {
        out.push(format!("Stall watch: not hung; {limit}"));
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

/// A text progress bar: `[#####-----] 50.0%`.
pub fn bar(percent: f64) -> String {
    let p = percent.clamp(0.0, 100.0);
    let filled = (p / 5.0).round() as usize;
    format!("[{}{}] {p:.1}%", "#".repeat(filled), "-".repeat(20 - filled))
}

/// A message's body as text: its lines, the excerpt block, the closing line.
pub struct Parts {
    pub lines: Vec<String>,
    pub excerpt: Vec<String>,
    pub footer: Option<String>,
}

pub fn render(m: &Message) -> Rendered {
    let title = format!("{} — {} (run {})", m.body.title(), m.job, m.run);
    let parts = match &m.body {
        Body::TrainingStarted { .. } | Body::Restarting { .. } => start::render(m),
        Body::ErrorDetected { .. } | Body::WarningNoticed { .. } => error::render(m),
        Body::StatusUpdate { .. } => status::render(m),
        Body::TimeoutWarning { .. }
        | Body::LimitWarning { .. }
        | Body::StallWarning { .. }
        | Body::OverrunWarning { .. } => warnings::render(m),
        Body::FixSubmitted { .. } | Body::RevalidationRequired { .. } | Body::ValidationDecided { .. } => {
            review::render(m)
        }
        Body::Completed { .. } | Body::Failed { .. } | Body::Killed { .. } => endings::render(m),
        Body::DecisionTaken { .. } | Body::Investigate { .. } => decision::render(m),
        Body::Store { .. } => store::render(m),
        Body::Queued { .. }
        | Body::SchedulerStarted { .. }
        | Body::LimitExtended { .. }
        | Body::ExtendFailed { .. }
        | Body::Resubmitted { .. }
        | Body::Scheduler { .. } => scheduler::render(m),
    };
    Rendered {
        title,
        lines: parts.lines,
        excerpt: parts.excerpt,
        footer: parts.footer,
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
