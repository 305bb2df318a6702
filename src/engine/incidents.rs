//! Incidents: numbered per run, reported as an error (halts the run) or a warning, updated
//! in place as evidence grows, and resolved by decisions and endings.

use chrono::{DateTime, Utc};

use super::event::{Action, Record};
use super::machine::{dur, JobMachine};
use super::message::{Body, DecisionPoint, IncidentSummary, Message, MessageKey, Resolution};
use super::report::{decision_buttons, point_key};
use super::state::{IncidentEntry, Phase, RunState, StallEpisode};
use super::text;
use crate::model::{Category, Incident, Persona, Severity};

impl JobMachine {
    /// An incident found or grown. Its key decides which: the first sight of a key files a
    /// new incident, a later one (new evidence, or the same one seen again) updates it.
    pub(super) fn incident(
        &mut self,
        at: DateTime<Utc>,
        key: u64,
        incident: Incident,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        match run.incidents.iter().position(|i| i.key == key) {
            Some(idx) => self.update_incident(at, idx, incident, out),
            None => self.file_incident(at, key, incident, out),
        }
    }

    fn file_incident(&mut self, at: DateTime<Utc>, key: u64, incident: Incident, out: &mut Vec<Action>) {
        if let Some(seq) = self.record_incident(at, key, incident, out) {
            self.report_incident(at, seq, out);
        }
    }

    /// Keep `incident` in the active run's attempt under way and record it, not reported yet;
    /// its number in the run.
    pub(super) fn record_incident(
        &mut self,
        at: DateTime<Utc>,
        key: u64,
        incident: Incident,
        out: &mut Vec<Action>,
    ) -> Option<u32> {
        let run = self.active_mut()?;
        let seq = run.incidents.len() as u32 + 1;
        run.incidents.push(IncidentEntry {
            key,
            seq,
            attempt: run.attempt,
            at,
            incident: incident.clone(),
            posted: None,
            resolution: None,
        });
        out.push(Action::Record(Record::Incident {
            run: run.id,
            seq,
            incident,
        }));
        Some(seq)
    }

    /// Post what an incident calls for, given the phase: an error report that halts the
    /// run, or a warning that does not.
    pub(super) fn report_incident(&mut self, at: DateTime<Utc>, seq: u32, out: &mut Vec<Action>) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        let idx = (seq - 1) as usize;
        let entry = &run.incidents[idx];
        let incident = entry.incident.clone();
        let owner = incident.category.owner();
        if incident.severity == Severity::Note {
            // The run said it handled this and went on: listed in the report, never posted.
            return;
        }
        if incident.severity == Severity::Warning {
            if entry.posted.is_some() {
                return;
            }
            run.incidents[idx].posted = Some(MessageKey::Warning(seq));
            let msg = self.message(
                at,
                MessageKey::Warning(seq),
                vec![owner],
                Body::WarningNoticed {
                    seq,
                    log_file,
                    incident,
                },
            );
            out.push(Action::Post(msg));
            return;
        }
        // Fatal: halts the run, unless a decision is already pending or the run is being
        // stopped or restarted anyway (then it is recorded and listed in the final report).
        if !matches!(run.phase, Phase::Running { .. } | Phase::TimeoutWarned { .. }) {
            return;
        }
        // The cluster's failure is judged with the exit it explains (the detector states it
        // just before the exit arrives): the policy may resubmit it without a report.
        if incident.category == Category::Infrastructure && run.alive && run.queue.is_none() {
            return;
        }
        if let Some(point @ (DecisionPoint::Timeout(_) | DecisionPoint::Stall(_))) = run.phase.open() {
            // The error supersedes the timeout or stall question.
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: text::superseded_by_error(seq),
            });
        }
        run.phase = Phase::Halted { incident: seq };
        run.incidents[idx].posted = Some(MessageKey::Incident(seq));
        let msg = self.error_report(at, seq);
        out.push(Action::Post(msg));
        if self.settings.unattended {
            self.apply_policy(at, out);
        }
    }

    pub(super) fn error_report(&self, at: DateTime<Utc>, seq: u32) -> Message {
        let run = self.run().expect("error report needs a run");
        let entry = &run.incidents[(seq - 1) as usize];
        let point = DecisionPoint::Incident(seq);
        let buttons = decision_buttons(point);
        // The director, and the category's owner when that is someone else.
        let mut to = vec![Persona::Director];
        to.extend(Some(entry.incident.category.owner()).filter(|o| *o != Persona::Director));
        let mut msg = self.message(
            entry.at,
            MessageKey::Incident(seq),
            to,
            Body::ErrorDetected {
                seq,
                pid: run.pid,
                log_file: self.settings.log.clone(),
                incident: entry.incident.clone(),
                exit: if run.alive { None } else { run.last_exit },
                elapsed: dur(at - run.attempt_started_at),
            },
        );
        msg.buttons = if run.phase.open() == Some(point) {
            buttons
        } else {
            Vec::new()
        };
        msg
    }

    fn update_incident(&mut self, at: DateTime<Utc>, idx: usize, incident: Incident, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        let was = run.incidents[idx].incident.severity;
        let seq = run.incidents[idx].seq;
        out.push(Action::Record(Record::Incident {
            run: run.id,
            seq,
            incident: incident.clone(),
        }));
        run.incidents[idx].incident = incident;
        let posted = run.incidents[idx].posted;
        let now = run.incidents[idx].incident.severity;
        match posted {
            Some(MessageKey::Incident(_)) if now != Severity::Fatal && was == Severity::Fatal => {
                // It no longer halts the run: the run said it handled it (a note), or it was
                // judged a consequence (of a scheduler's end, of another rank's failure; what
                // explains the end is reported next).
                if run.phase == (Phase::Halted { incident: seq }) {
                    run.phase = Phase::RUNNING;
                    let note = if now == Severity::Note {
                        text::OUTLIVED
                    } else {
                        text::JUDGED_A_CONSEQUENCE
                    };
                    out.push(Action::Resolve {
                        run: run.id,
                        key: MessageKey::Incident(seq),
                        note: note.into(),
                    });
                }
                let msg = self.error_report(at, seq);
                out.push(Action::Update(msg));
            }
            Some(MessageKey::Incident(_))
                if now == Severity::Fatal
                    && was == Severity::Warning
                    && matches!(run.phase, Phase::Running { .. } | Phase::TimeoutWarned { .. }) =>
            {
                // Taken for one the run outlived, then judged the cause after all (the
                // process ended with it): it halts the run again, with its question.
                run.phase = Phase::Halted { incident: seq };
                let msg = self.error_report(at, seq);
                out.push(Action::Update(msg));
                if self.settings.unattended {
                    self.apply_policy(at, out);
                }
            }
            Some(MessageKey::Incident(_)) => {
                let msg = self.error_report(at, seq);
                out.push(Action::Update(msg));
            }
            Some(MessageKey::Warning(_)) if now == Severity::Fatal && was == Severity::Warning => {
                self.report_incident(at, seq, out);
            }
            Some(MessageKey::Warning(_)) => {
                let incident = run.incidents[idx].incident.clone();
                let msg = self.message(
                    at,
                    MessageKey::Warning(seq),
                    vec![incident.category.owner()],
                    Body::WarningNoticed {
                        seq,
                        log_file: self.settings.log.clone(),
                        incident,
                    },
                );
                out.push(Action::Update(msg));
            }
            _ => self.report_incident(at, seq, out),
        }
    }
}

/// Mark unresolved incidents as resolved (one by number, or every fatal one when `seq` is None,
/// plus, for None, every warning left open).
pub(super) fn resolve_incidents(
    run: &mut RunState,
    seq: Option<u32>,
    what: &str,
    by: Option<&str>,
    at: DateTime<Utc>,
    out: &mut Vec<Action>,
) {
    for entry in run.incidents.iter_mut() {
        let selected = match seq {
            Some(s) => entry.seq == s,
            None => true,
        };
        if !selected || entry.resolution.is_some() {
            continue;
        }
        let what = if seq.is_none() && entry.incident.severity != Severity::Fatal {
            text::WARNING_NOTED
        } else {
            what
        };
        entry.resolution = Some(Resolution {
            what: what.to_string(),
            by: by.map(str::to_string),
            at,
        });
        out.push(Action::Record(Record::IncidentResolved {
            run: run.id,
            seq: entry.seq,
            resolution: what.to_string(),
            by: by.map(str::to_string),
        }));
    }
}

pub(super) fn summaries(run: &RunState) -> Vec<IncidentSummary> {
    run.incidents
        .iter()
        .map(|e| IncidentSummary {
            seq: e.seq,
            category: e.incident.category,
            text: e.incident.text.clone(),
            line: e.incident.line,
            count: e.incident.count,
            fatal: e.incident.severity == Severity::Fatal,
            resolution: e.resolution.clone(),
        })
        .collect()
}

// The one exit classifier, shared with the detector (live watching and triage).
pub use crate::watch::detect::exit_incident;

/// What an investigation of a stall is about. A hung process is most often a deadlock in
/// data loading or a collective operation, or a resource wait: the code translator is asked.
pub(super) fn stall_incident(stall: StallEpisode, last_line: Option<String>) -> Incident {
    Incident {
        category: Category::Resource,
        severity: Severity::Warning,
        line: 0,
        text: text::stall_text(stall.kind, stall.since),
        excerpt: last_line.into_iter().collect(),
        count: 1,
        reason: "no output for longer than the stall timeout: most often a deadlock or a wait for a resource (resource)"
            .to_string(),
    }
}
