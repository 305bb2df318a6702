//! The Phase 4.5 re-validation gate: a fix that changes design parameters needs the
//! validator's approval, bound to the reviewed code, before training may resume.

use chrono::{DateTime, Utc};

use super::decisions::stale_target;
use super::event::{Action, FixEvidence, Record};
use super::machine::{chrono_dur, JobMachine};
use super::message::{Body, Decision, DecisionPoint, MessageKey, Reply};
use super::report::buttons;
use super::state::{AppliedFix, Decided, FixEntry, FixStatus, Phase};
use super::text;
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
        let Some(run) = self.state.run.as_ref().filter(|r| !r.phase.is_over()) else {
            return self.refuse(&by, "fix_submit", text::no_run_to_fix(&job), out);
        };
        if matches!(run.phase, Phase::Stopping { .. }) {
            return self.refuse(&by, "fix_submit", text::being_killed(&job), out);
        }
        let Some(evidence) = evidence else {
            return self.refuse(&by, "fix_submit", text::NO_EVIDENCE.into(), out);
        };
        if evidence.changes.files_modified.is_empty() && evidence.changes.params_changed.is_empty() {
            // Refused, not recorded: a fix that changes nothing is most often one not yet
            // saved, and recording it would supersede a fix that awaits validation.
            return self.refuse(&by, "fix_submit", text::nothing_changed(&job, run.id), out);
        }
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
                note: text::superseded_by_fix(seq),
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
        let detail = text::fix_audit(seq, &summary, &changed, &evidence.reviewed);
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
            msg.buttons = buttons(point, &text::GATE_BUTTONS);
            out.push(Action::Post(msg));
            out.push(Action::Reply(Reply {
                to: by,
                accepted: true,
                text: text::fix_needs_validation(seq, &job, &changed),
            }));
        } else {
            out.push(Action::Reply(Reply {
                to: by,
                accepted: true,
                text: text::fix_is_simple(seq, &job),
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
        let Some(run) = self.state.run.as_ref() else {
            return self.refuse(&by, what, text::no_run(&job), out);
        };
        if let Some((target_run, n)) = target {
            if let Some(reason) = stale_target(run, target_run, DecisionPoint::Fix(n), "fix", &job) {
                return self.refuse(&by, what, reason, out);
            }
            if run.fixes.last().map(|f| f.seq) != Some(n) {
                let reason = text::fix_superseded(n, &job);
                return self.refuse(&by, what, reason, out);
            }
        }
        if run.phase.is_over() {
            return self.refuse(&by, what, text::run_over(&job, run.id), out);
        }
        let Some(fix) = run.fixes.last() else {
            return self.refuse(&by, what, text::no_fix_awaits(&job), out);
        };
        let seq = fix.seq;
        if fix.status != FixStatus::AwaitingValidation {
            let reason = text::fix_does_not_await(seq, &job, &fix.status);
            return self.refuse(&by, what, reason, out);
        }
        if fix.by.id == by.id {
            let reason = text::four_eyes(&by.display, seq);
            return self.refuse(&by, what, reason, out);
        }
        if let Some(current) = &code {
            if !current.same_code_as(&fix.evidence.reviewed) {
                let reason = text::code_changed_since_submitted(&job, seq);
                return self.refuse(&by, what, reason, out);
            }
        }
        let run_id = run.id;
        let reviewed = fix.evidence.reviewed.clone();
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
        let note = text::verdict_note(approve, &by.display, at);
        out.push(Action::Resolve {
            run: run_id,
            key: MessageKey::Gate(seq),
            note,
        });
        let detail = text::verdict_audit(seq, approve, reason.as_deref(), &reviewed);
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
                Some(text::gate_awaits_validation(n, job, &changed))
            }
            FixStatus::Rejected { by, reason, .. } => {
                Some(text::gate_rejected(n, job, by, reason.as_deref()))
            }
            FixStatus::Approved { expires, .. } => {
                if let Some(e) = expires.filter(|e| at > *e) {
                    return Some(text::approval_expired(n, e));
                }
                match code {
                    Some(c) if !c.same_code_as(&fix.evidence.reviewed) => Some(text::approval_void(n, job)),
                    _ => None,
                }
            }
            FixStatus::Simple | FixStatus::Superseded | FixStatus::Applied { .. } => None,
        }
    }

    /// The latest fix is what training now resumes with; returns it, to name it in the
    /// resolution of the error it fixed.
    pub(super) fn mark_fix_applied(&mut self, at: DateTime<Utc>) -> Option<AppliedFix> {
        let fix = self.active_mut()?.fixes.last_mut()?;
        if !matches!(fix.status, FixStatus::Approved { .. } | FixStatus::Simple) {
            return None;
        }
        fix.status = FixStatus::Applied { at };
        Some(AppliedFix {
            seq: fix.seq,
            summary: fix.summary.clone(),
        })
    }
}
