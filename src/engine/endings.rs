//! How a run ends: completed, failed or killed, with the final report.

use chrono::{DateTime, Utc};

use super::event::{Action, Record};
use super::incidents::{resolve_incidents, summaries};
use super::machine::{dur, JobMachine};
use super::message::Decision;
use super::message::{Body, MessageKey, OutputFile};
use super::report::point_key;
use super::state::{Phase, RunState};
use super::text;
use crate::model::{ExitOutcome, Persona};

impl JobMachine {
    pub(super) fn finish_completed(
        &mut self,
        at: DateTime<Utc>,
        outputs: Vec<OutputFile>,
        out: &mut Vec<Action>,
    ) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        close_question(run, text::WENT_ON_AND_COMPLETED.into(), out);
        resolve_incidents(run, None, text::WENT_ON_AND_COMPLETED, None, at, out);
        let body = Body::Completed {
            total: dur(at - run.started_at),
            attempts: run.attempt,
            outputs,
            log_file,
            errors: summaries(run),
            convergence: run.convergence.clone(),
        };
        self.end(
            at,
            Phase::Completed { at },
            text::COMPLETED.into(),
            body,
            vec![Persona::Director],
            out,
        );
    }

    pub(super) fn finish_failed(
        &mut self,
        at: DateTime<Utc>,
        exit: Option<ExitOutcome>,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        close_question(run, text::run_failed_note(&reason), out);
        resolve_incidents(run, None, text::UNRESOLVED_FAILED, None, at, out);
        let body = Body::Failed {
            exit,
            reason: reason.clone(),
            total: dur(at - run.started_at),
            log_file,
            last_line: run.last_line.clone(),
            errors: summaries(run),
        };
        self.end(
            at,
            Phase::Failed { at },
            reason,
            body,
            vec![Persona::Director],
            out,
        );
    }

    pub(super) fn finish_killed(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        let by = match &run.phase {
            Phase::Stopping { by } => by.clone(),
            _ => text::SOMEONE.into(),
        };
        close_question(run, text::decided_note(Decision::Kill, &by, at), out);
        resolve_incidents(run, None, text::KILLED, Some(&by), at, out);
        let body = Body::Killed {
            by: by.clone(),
            pid: run.pid,
            total: dur(at - run.started_at),
            log_file,
            errors: summaries(run),
        };
        self.end(
            at,
            Phase::Killed { at },
            text::killed_by(&by),
            body,
            vec![Persona::Director],
            out,
        );
    }

    pub(super) fn end(
        &mut self,
        at: DateTime<Utc>,
        phase: Phase,
        detail: String,
        body: Body,
        to: Vec<Persona>,
        out: &mut Vec<Action>,
    ) {
        let msg = self.message(at, MessageKey::Final, to, body);
        let Some(run) = self.active_mut() else { return };
        let (state, success) = (phase.as_str(), matches!(phase, Phase::Completed { .. }));
        run.phase = phase;
        run.alive = false;
        let id = run.id;
        out.push(Action::Post(msg));
        out.push(Action::Record(Record::RunEnded {
            run: id,
            state: state.into(),
            detail,
        }));
        out.push(Action::RunEnded { run: id, success });
    }
}

/// The question still open when the run ends is closed, with why.
fn close_question(run: &mut RunState, note: String, out: &mut Vec<Action>) {
    if let Some(point) = run.phase.open() {
        out.push(Action::Resolve {
            run: run.id,
            key: point_key(point),
            note,
        });
    }
}
