//! The writer with a scripted store and time as data: what is held, when it retries, what
//! it says, and what survives the bound.

use std::collections::VecDeque;

use chrono::TimeZone;

use super::*;
use crate::engine::JobState;
use crate::model::{Category, Incident, RunId, Severity};
use crate::store::{OutboxItem, OutboxKind};

fn job() -> JobName {
    JobName::new("m").unwrap()
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

fn full() -> StoreError {
    StoreError::Sql(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
        None,
    ))
}

/// A store that answers from a script (Ok(generation) or a failure) and keeps what it was
/// given when it accepted.
#[derive(Default)]
struct Scripted {
    answers: VecDeque<Result<u64, StoreError>>,
    written: Vec<StepWrite>,
    commits: usize,
    tries: usize,
}

impl Scripted {
    fn failing(n: usize) -> Scripted {
        Scripted {
            answers: (0..n).map(|_| Err(full())).collect(),
            ..Scripted::default()
        }
    }
}

impl StepSink for Scripted {
    fn commit(&mut self, _job: &JobName, steps: &[StepWrite], _now: JobNow<'_>) -> Result<u64, StoreError> {
        self.tries += 1;
        let answer = self.answers.pop_front().unwrap_or(Ok(0))?;
        self.written.extend(steps.iter().cloned());
        self.commits += 1;
        Ok(answer)
    }
    fn path(&self) -> &Path {
        Path::new("state.db")
    }
}

fn incident(seq: u32, count: u32) -> Record {
    Record::Incident {
        run: RunId(1),
        seq,
        incident: Incident {
            category: Category::Implementation,
            severity: Severity::Fatal,
            line: u64::from(seq),
            text: format!("KeyError {seq}"),
            excerpt: Vec::new(),
            count,
            reason: String::new(),
        },
    }
}

fn run_ended() -> Record {
    Record::RunEnded {
        run: RunId(1),
        state: "failed".into(),
        detail: String::new(),
    }
}

fn message(n: u32) -> OutboxItem {
    OutboxItem {
        channel: "1".into(),
        run: RunId(1),
        key: format!("status-{n}"),
        kind: OutboxKind::Post,
        payload: serde_json::json!({ "n": n }),
    }
}

fn step(at: i64, records: Vec<Record>, outbox: Vec<OutboxItem>) -> StepWrite {
    StepWrite {
        at: t(at),
        records,
        outbox,
    }
}

fn now(at: i64, state: &JobState) -> JobNow<'_> {
    JobNow {
        at: t(at),
        state,
        follow: None,
    }
}

#[test]
fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
    let b = Backoff::STORE;
    let waits: Vec<u64> = (1..=9).map(|n| b.after(n).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(b.after(u32::MAX), b.max);
    assert_eq!(b.after(0), b.first);
}

#[test]
fn a_healthy_store_gets_each_step_at_once_and_nothing_is_said() {
    let state = JobState::default();
    let mut sink = Scripted::default();
    let mut w = Writer::new(job(), 0);
    assert!(w
        .write(
            &mut sink,
            step(0, vec![incident(1, 1)], vec![message(1)]),
            now(0, &state)
        )
        .is_empty());
    assert_eq!(sink.commits, 1);
    assert_eq!(w.held(), (0, 0, 0));
    assert_eq!(w.next_try(), None);
}

#[test]
fn a_failing_store_holds_steps_retries_on_schedule_and_says_so_once_each_way() {
    let state = JobState::default();
    let mut sink = Scripted::failing(3);
    let mut w = Writer::new(job(), 0);

    let said = w.write(
        &mut sink,
        step(0, vec![incident(1, 1)], vec![message(1)]),
        now(0, &state),
    );
    let [StoreNotice::Unwritable { why, retry_in, .. }] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert!(why.starts_with("no space left"), "{why}");
    assert_eq!(*retry_in, Duration::from_secs(1));
    assert_eq!(w.next_try(), Some(t(1)));

    // Before the retry is due, new steps are only held: the store is not hammered.
    assert!(w
        .write(
            &mut sink,
            step(0, vec![incident(2, 1)], vec![message(2)]),
            now(0, &state)
        )
        .is_empty());
    assert!(w.retry(&mut sink, now(0, &state)).is_empty());
    assert_eq!(sink.tries, 1);
    assert_eq!(w.held(), (2, 2, 2));

    // Due: tried, fails again, silently; the wait doubles.
    assert!(w.retry(&mut sink, now(1, &state)).is_empty());
    assert_eq!(w.next_try(), Some(t(3)));
    assert!(w.retry(&mut sink, now(3, &state)).is_empty());
    assert_eq!(w.next_try(), Some(t(7)));
    assert_eq!(sink.tries, 3);

    // A step arriving once the try is due is written with all the held ones, in order.
    let said = w.write(
        &mut sink,
        step(8, vec![run_ended()], vec![message(3)]),
        now(8, &state),
    );
    let [StoreNotice::Recovered {
        after,
        steps,
        dropped,
        ..
    }] = said.as_slice()
    else {
        panic!("{said:?}")
    };
    assert_eq!((*after, *steps, *dropped), (Duration::from_secs(8), 3, 0));
    let keys: Vec<&str> = sink
        .written
        .iter()
        .flat_map(|s| &s.outbox)
        .map(|o| o.key.as_str())
        .collect();
    assert_eq!(keys, ["status-1", "status-2", "status-3"]);
    assert_eq!(sink.written.iter().map(|s| s.records.len()).sum::<usize>(), 3);
    assert_eq!((w.held(), w.next_try()), ((0, 0, 0), None));

    // A later fault is a new episode: said again.
    sink.answers.push_back(Err(full()));
    let said = w.write(&mut sink, step(9, vec![], vec![message(4)]), now(9, &state));
    assert!(
        matches!(said.as_slice(), [StoreNotice::Unwritable { .. }]),
        "{said:?}"
    );
}

#[test]
fn beyond_the_bound_history_is_dropped_and_counted_but_never_a_chat_message() {
    let state = JobState::default();
    let mut sink = Scripted::failing(1);
    let bound = 5;
    let mut w = Writer::with(job(), 0, Backoff::STORE, bound);
    w.write(
        &mut sink,
        step(0, vec![run_ended()], vec![message(0)]),
        now(0, &state),
    );
    for n in 1..=20 {
        w.write(
            &mut sink,
            step(0, vec![incident(n, 1)], vec![message(n)]),
            now(0, &state),
        );
    }
    let (_, records, outbox) = w.held();
    assert_eq!(records, bound);
    assert_eq!(outbox, 21, "every chat message is held");
    assert_eq!(w.dropped(), 16);
    let said = w.retry(&mut sink, now(1, &state));
    let [StoreNotice::Recovered { dropped: 16, .. }] = said.as_slice() else {
        panic!("{said:?}")
    };
    // The oldest incidents went first; the run's end (not an incident) and the newest stay.
    let kept: Vec<&Record> = sink.written.iter().flat_map(|s| &s.records).collect();
    assert!(matches!(kept[0], Record::RunEnded { .. }), "{kept:?}");
    let seqs: Vec<u32> = kept
        .iter()
        .filter_map(|r| match r {
            Record::Incident { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [17, 18, 19, 20]);
    assert_eq!(sink.written.iter().map(|s| s.outbox.len()).sum::<usize>(), 21);
}

#[test]
fn a_newer_version_of_a_held_incident_replaces_it_in_place() {
    let state = JobState::default();
    let mut sink = Scripted::failing(1);
    let mut w = Writer::new(job(), 0);
    w.write(&mut sink, step(0, vec![incident(1, 1)], vec![]), now(0, &state));
    let resolved = Record::IncidentResolved {
        run: RunId(1),
        seq: 1,
        resolution: "restarted".into(),
        by: None,
    };
    w.write(&mut sink, step(0, vec![resolved.clone()], vec![]), now(0, &state));
    w.write(&mut sink, step(0, vec![incident(1, 7)], vec![]), now(0, &state));
    assert_eq!(w.held().1, 2);
    w.retry(&mut sink, now(1, &state));
    let written: Vec<Record> = sink.written.iter().flat_map(|s| s.records.clone()).collect();
    assert_eq!(written, [incident(1, 7), resolved]);
    assert_eq!(w.dropped(), 0);
}

#[test]
fn a_re_created_store_is_said_once() {
    let state = JobState::default();
    let mut sink = Scripted {
        answers: VecDeque::from([Ok(1), Ok(1)]),
        ..Scripted::default()
    };
    let mut w = Writer::new(job(), 0);
    let said = w.write(&mut sink, step(0, vec![incident(1, 1)], vec![]), now(0, &state));
    assert!(
        matches!(said.as_slice(), [StoreNotice::Replaced { .. }]),
        "{said:?}"
    );
    assert!(w
        .write(&mut sink, step(1, vec![incident(2, 1)], vec![]), now(1, &state))
        .is_empty());
}

#[test]
fn what_the_store_never_took_is_named_incident_by_incident_and_message_by_message() {
    let state = JobState::default();
    let mut sink = Scripted::failing(10);
    let mut w = Writer::new(job(), 0);
    assert_eq!(
        w.unwritten(),
        None,
        "nothing to lose while the store takes writes"
    );
    w.write(
        &mut sink,
        step(0, vec![incident(1, 1), run_ended()], vec![message(1)]),
        now(0, &state),
    );
    w.write(
        &mut sink,
        step(0, vec![incident(2, 1)], vec![message(2)]),
        now(0, &state),
    );
    let lost = w.unwritten().expect("the store refuses");
    assert_eq!(lost.steps, 2);
    assert_eq!(
        lost.incidents,
        [
            (RunId(1), 1, "KeyError 1".to_string()),
            (RunId(1), 2, "KeyError 2".to_string())
        ]
    );
    assert_eq!(lost.other_records, 1);
    assert_eq!(
        lost.messages,
        [
            (RunId(1), "status-1".to_string(), OutboxKind::Post),
            (RunId(1), "status-2".to_string(), OutboxKind::Post)
        ]
    );
    assert!(lost.why.starts_with("no space left"), "{}", lost.why);
    let text = lost.to_string();
    for needle in ["LOST", "state.db", "2 incident(s)", "#2: KeyError 2", "status-1"] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }

    // Taken at last: nothing is lost.
    sink.answers.clear();
    w.flush_now(&mut sink, now(0, &state));
    assert_eq!(w.unwritten(), None);
}
