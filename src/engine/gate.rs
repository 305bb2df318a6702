//! The Phase 4.5 re-validation gate: a fix that changes design parameters needs the
//! validator's approval, bound to the reviewed code, before training may resume.

use chrono::{DateTime, Utc};

use super::decisions::stale_target;
use super::event::{Action, FixEvidence, Record};
use super::machine::{chrono_dur, hhmm, JobMachine};
use super::message::{Body, Button, Decision, DecisionPoint, MessageKey, Reply};
use super::state::{Decided, FixEntry, FixStatus, Phase};
use crate::model::{Actor, Persona, RunId};
use crate::review::Snapshot;

impl JobMachine {
    pub(super) fn submit_fix(
        &mut self,
        at: DateTime<Utc>,
        summary: String,
        evidence: Option<Box<FixEvidence>>,
        by: Actor,
        out: &mut Vec<Action>,
    ) {
        let job = self.settings.job.clone();
        let fixers = [
            Persona::Director,
            Persona::CodeTranslator,
            Persona::DataEngineer,
            Persona::Modeler,
        ];
        if !fixers.iter().any(|p| by.has(*p)) {
            let reason = format!(
                "{} may not submit fixes: that needs the code_translator, data_engineer, modeler or director role",
                by.display
            );
            return self.refuse(&by, "fix_submit", reason, out);
        }
        let Some(run) = self.state.run.as_ref().filter(|r| !r.phase.is_over()) else {
            return self.refuse(
                &by,
                "fix_submit",
                format!("{job} has no run under way to fix"),
                out,
            );
        };
        if run.phase == Phase::Stopping {
            return self.refuse(&by, "fix_submit", format!("{job} is being killed"), out);
        }
        let Some(evidence) = evidence else {
            let reason = "the changes could not be computed from the job's files".to_string();
            return self.refuse(&by, "fix_submit", reason, out);
        };
        let evidence = *evidence;
        let seq = run.fixes.len() as u32 + 1;
        let run_id = run.id;
        // A newer fix replaces any earlier one that was not used yet.
        let mut superseded = Vec::new();
        let run = self.active_mut().expect("active run checked above");
        for f in run.fixes.iter_mut() {
            if matches!(
                f.status,
                FixStatus::AwaitingValidation
                    | FixStatus::Rejected { .. }
                    | FixStatus::Approved { .. }
                    | FixStatus::Simple
            ) {
                if f.status == FixStatus::AwaitingValidation {
                    superseded.push(f.seq);
                }
                f.status = FixStatus::Superseded;
            }
        }
        for n in superseded {
            out.push(Action::Resolve {
                run: run_id,
                key: MessageKey::Gate(n),
                note: format!("superseded by fix #{seq}"),
            });
        }
        let design_changed = evidence.changes.design_changed;
        let status = if design_changed {
            FixStatus::AwaitingValidation
        } else {
            FixStatus::Simple
        };
        run.fixes.push(FixEntry {
            seq,
            by: by.clone(),
            at,
            summary: summary.clone(),
            evidence: evidence.clone(),
            status,
        });
        let changed: Vec<String> = evidence
            .changes
            .params_changed
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let detail = format!(
            "fix #{seq}: {summary}; design changed: {}; {}",
            if design_changed {
                format!("yes ({})", changed.join(", "))
            } else {
                "no".into()
            },
            hashes_text(&evidence.reviewed)
        );
        out.push(Action::Record(Record::Decision {
            run: Some(run_id),
            decision: "fix_submit".into(),
            by: by.clone(),
            accepted: true,
            detail,
        }));
        let msg = self.message(
            at,
            MessageKey::Fix(seq),
            vec![Persona::Director],
            Body::FixSubmitted {
                seq,
                by: by.display.clone(),
                summary,
                changes: evidence.changes.clone(),
            },
        );
        out.push(Action::Post(msg));
        if design_changed {
            let point = DecisionPoint::Fix(seq);
            let mut msg = self.message(
                at,
                MessageKey::Gate(seq),
                vec![Persona::TimeValidator],
                Body::RevalidationRequired {
                    seq,
                    submitted_by: by.display.clone(),
                    changes: evidence.changes,
                    comparison: evidence.comparison,
                },
            );
            msg.buttons = vec![
                Button {
                    decision: Decision::Approve,
                    point,
                    label: "Approve".into(),
                },
                Button {
                    decision: Decision::Reject,
                    point,
                    label: "Reject".into(),
                },
            ];
            out.push(Action::Post(msg));
            out.push(Action::Reply(Reply {
                to: by,
                accepted: true,
                text: format!(
                    "fix #{seq} submitted; it changes design parameters ({}): @time_validator must approve it before {job} may resume",
                    changed.join(", ")
                ),
            }));
        } else {
            out.push(Action::Reply(Reply {
                to: by,
                accepted: true,
                text: format!(
                    "fix #{seq} submitted: a simple bug fix (no design parameter changed); @director may resume {job} directly"
                ),
            }));
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn validate(
        &mut self,
        at: DateTime<Utc>,
        approve: bool,
        reason: Option<String>,
        target: Option<(RunId, u32)>,
        by: Actor,
        code: Option<Snapshot>,
        out: &mut Vec<Action>,
    ) {
        let what = if approve { "approve" } else { "reject" };
        let job = self.settings.job.clone();
        if !by.has(Persona::TimeValidator) {
            let reason = format!(
                "{} may not {what} fixes: that needs the time_validator role",
                by.display
            );
            return self.refuse(&by, what, reason, out);
        }
        let Some(run) = self.state.run.as_ref() else {
            return self.refuse(&by, what, format!("{job} has no run"), out);
        };
        if let Some((target_run, n)) = target {
            if let Some(reason) = stale_target(run, target_run, DecisionPoint::Fix(n), "fix", &job) {
                return self.refuse(&by, what, reason, out);
            }
            if run.fixes.last().map(|f| f.seq) != Some(n) {
                let reason = format!("fix #{n} was superseded by a newer fix of {job}");
                return self.refuse(&by, what, reason, out);
            }
        }
        if run.phase.is_over() {
            return self.refuse(&by, what, format!("run {} of {job} is over", run.id), out);
        }
        let Some(fix) = run.fixes.last() else {
            return self.refuse(&by, what, format!("no fix of {job} awaits validation"), out);
        };
        let seq = fix.seq;
        if fix.status != FixStatus::AwaitingValidation {
            let reason = format!(
                "fix #{seq} of {job} does not await validation ({})",
                status_text(&fix.status)
            );
            return self.refuse(&by, what, reason, out);
        }
        if fix.by.id == by.id {
            let reason = format!(
                "{} submitted fix #{seq}: someone else must validate it (four eyes)",
                by.display
            );
            return self.refuse(&by, what, reason, out);
        }
        if let Some(current) = &code {
            if !current.same_code_as(&fix.evidence.reviewed) {
                let reason = format!(
                    "the code of {job} changed after fix #{seq} was submitted: submit the fix again so the review covers what will run"
                );
                return self.refuse(&by, what, reason, out);
            }
        }
        let run_id = run.id;
        let hashes = hashes_text(&fix.evidence.reviewed);
        let expires = if approve {
            self.settings.approval_ttl.map(|t| at + chrono_dur(t))
        } else {
            None
        };
        let run = self.active_mut().expect("checked above");
        let fix = run.fixes.last_mut().expect("checked above");
        fix.status = if approve {
            FixStatus::Approved {
                by: by.display.clone(),
                at,
                expires,
            }
        } else {
            FixStatus::Rejected {
                by: by.display.clone(),
                at,
                reason: reason.clone(),
            }
        };
        run.decided.push(Decided {
            point: DecisionPoint::Fix(seq),
            decision: if approve {
                Decision::Approve
            } else {
                Decision::Reject
            },
            by: by.display.clone(),
            at,
        });
        let note = format!(
            "{} by {} at {}",
            if approve { "Approved" } else { "Rejected" },
            by.display,
            hhmm(at)
        );
        out.push(Action::Resolve {
            run: run_id,
            key: MessageKey::Gate(seq),
            note,
        });
        let reason_text = reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        let detail = format!(
            "fix #{seq} {}{reason_text}; bound to {hashes}",
            if approve { "approved" } else { "rejected" }
        );
        self.accept(&by, what, detail, out);
        let to = if approve {
            vec![Persona::Director]
        } else {
            vec![Persona::CodeTranslator]
        };
        let msg = self.message(
            at,
            MessageKey::Verdict(seq),
            to,
            Body::ValidationDecided {
                seq,
                approved: approve,
                by: by.display.clone(),
                reason,
                expires,
            },
        );
        out.push(Action::Post(msg));
    }

    /// Why training may not resume now, if the gate says so.
    pub(super) fn gate_blocks(&self, at: DateTime<Utc>, code: Option<&Snapshot>) -> Option<String> {
        let job = &self.settings.job;
        let fix = self.run()?.fixes.last()?;
        let n = fix.seq;
        match &fix.status {
            FixStatus::AwaitingValidation => {
                let changed: Vec<&str> = fix
                    .evidence
                    .changes
                    .params_changed
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                Some(format!(
                    "fix #{n} changes design parameters ({}): training may not resume until @time_validator approves it (/validate approve {job})",
                    changed.join(", ")
                ))
            }
            FixStatus::Rejected { by, reason, .. } => {
                let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                Some(format!(
                    "fix #{n} was rejected by {by}{why}; full rework required — submit a new fix (/fix submit {job} ...)"
                ))
            }
            FixStatus::Approved { expires, .. } => {
                if let Some(e) = expires.filter(|e| at > *e) {
                    return Some(format!(
                        "the approval of fix #{n} expired at {}; a new review is required (submit the fix again)",
                        hhmm(e)
                    ));
                }
                match code {
                    Some(c) if !c.same_code_as(&fix.evidence.reviewed) => Some(format!(
                        "the code of {job} changed after fix #{n} was approved: the approval is void; submit the fix again for review"
                    )),
                    _ => None,
                }
            }
            FixStatus::Simple | FixStatus::Superseded | FixStatus::Applied { .. } => None,
        }
    }

    /// The latest fix is what training now resumes with.
    pub(super) fn mark_fix_applied(&mut self, at: DateTime<Utc>) {
        let Some(run) = self.active_mut() else { return };
        if let Some(fix) = run.fixes.last_mut() {
            if matches!(fix.status, FixStatus::Approved { .. } | FixStatus::Simple) {
                fix.status = FixStatus::Applied { at };
            }
        }
    }
}

pub(super) fn status_text(s: &FixStatus) -> String {
    match s {
        FixStatus::Simple => "a simple bug fix".into(),
        FixStatus::AwaitingValidation => "awaiting validation".into(),
        FixStatus::Approved { by, at, .. } => format!("approved by {by} at {}", hhmm(*at)),
        FixStatus::Rejected { by, at, .. } => format!("rejected by {by} at {}", hhmm(*at)),
        FixStatus::Superseded => "superseded".into(),
        FixStatus::Applied { at } => format!("applied at {}", hhmm(*at)),
    }
}

/// The reviewed files and their hashes, short, for the audit log.
pub(super) fn hashes_text(s: &Snapshot) -> String {
    let files: Vec<String> = s
        .files
        .iter()
        .map(|(p, h)| format!("{}={}", p.display(), &h[..h.len().min(12)]))
        .collect();
    format!("files [{}]", files.join(", "))
}
