//! Messages of realistic size that no chat message holds whole — a gate with 30 design
//! rows, a CHANGES SUMMARY of 30 parameters, a completion report with 42 outputs — shared
//! by the tests that check every adapter shows all of them, verdict first.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::engine::{Body, Message, MessageKey, OutputFile};
use crate::model::{JobName, Persona, RunId};
use crate::review::{ChangesSummary, Comparison, ComparisonRow, ParamChange, ParamValue, Verdict};

/// The name of design row `i`.
pub fn row_name(i: usize) -> String {
    format!("hierarchical_prior_scale_{i:02}")
}

/// Row `i`'s verdict: a third within, a third outside, a third unreadable (long reason).
fn verdict(i: usize) -> Verdict {
    match i % 3 {
        0 => Verdict::Within,
        1 => Verdict::Outside,
        _ => Verdict::CannotRead(format!(
            "not in the snapshot (taken before this parameter was configured), row {i}"
        )),
    }
}

/// `n` design rows as the comparison would hold them.
pub fn comparison(n: usize) -> Comparison {
    let rows: Vec<ComparisonRow> = (0..n)
        .map(|i| ComparisonRow {
            name: row_name(i),
            design: format!("{}.25", 1000 + i),
            actual: if i % 3 == 2 {
                "?".into()
            } else {
                format!("{}.75", 1100 + i)
            },
            tolerance: "±5%".into(),
            verdict: verdict(i),
        })
        .collect();
    let within = rows.iter().filter(|r| r.within()).count();
    Comparison {
        score: within as f64 / n.max(1) as f64,
        rows,
    }
}

/// A set value of a dozen long feature names, distinct per parameter and side.
fn features(i: usize, side: &str) -> ParamValue {
    ParamValue::Set(
        (0..12)
            .map(|k| format!("{side}_feature_{i:02}_{k:02}_rolling_mean"))
            .collect::<BTreeSet<_>>(),
    )
}

/// `n` changed parameters, each with long before and after values.
pub fn changes(n: usize) -> ChangesSummary {
    ChangesSummary {
        files_modified: Vec::new(),
        params_changed: (0..n)
            .map(|i| ParamChange {
                name: row_name(i),
                before: Ok(features(i, "before")),
                after: Ok(features(i, "after")),
            })
            .collect(),
        algorithm_changed: false,
        features_added: Vec::new(),
        features_removed: Vec::new(),
        design_changed: n > 0,
        compliance: "NOT compliant".into(),
    }
}

/// The path of output `i`.
pub fn output_path(i: usize) -> PathBuf {
    PathBuf::from(format!(
        "/data/experiments/2026-11-29/model_3/output/results/chain_{i:02}/posterior_draws_full.parquet"
    ))
}

pub fn gate(rows: usize) -> Body {
    Body::RevalidationRequired {
        seq: 1,
        submitted_by: "@bob".into(),
        changes: changes(rows),
        comparison: comparison(rows),
    }
}

pub fn fix(params: usize) -> Body {
    Body::FixSubmitted {
        seq: 1,
        by: "@bob".into(),
        summary: "retune the priors".into(),
        changes: changes(params),
    }
}

pub fn completed(outputs: usize) -> Body {
    Body::Completed {
        total: Duration::from_secs(12 * 3600),
        attempts: 1,
        outputs: (0..outputs)
            .map(|i| OutputFile {
                path: output_path(i),
                size: Some(12_345_678 + i as u64),
            })
            .collect(),
        log_file: PathBuf::from("output/implementation/logs/training_3_full.log"),
        errors: Vec::new(),
        convergence: None,
    }
}

/// `body` as a message of job `model_3`, run 1.
pub fn message(body: Body) -> Message {
    let key = match &body {
        Body::RevalidationRequired { seq, .. } => MessageKey::Gate(*seq),
        Body::FixSubmitted { seq, .. } => MessageKey::Fix(*seq),
        _ => MessageKey::Final,
    };
    Message {
        job: JobName::new("model_3").unwrap(),
        run: RunId(1),
        key,
        at: Utc.with_ymd_and_hms(2026, 11, 29, 13, 10, 0).unwrap(),
        to: vec![Persona::TimeValidator],
        body,
        buttons: Vec::new(),
        attachments: Vec::new(),
    }
}

/// What each message must show somewhere, in full: every row with its values, every
/// parameter's before → after, every output path.
pub fn must_show(body: &Body) -> Vec<String> {
    match body {
        Body::RevalidationRequired { comparison, .. } => {
            crate::review::render_table(comparison)[2..].to_vec()
        }
        Body::FixSubmitted { changes, .. } => crate::review::render_changes(changes)
            .into_iter()
            .filter(|l| l.contains("Before:"))
            .collect(),
        Body::Completed { outputs, .. } => outputs.iter().map(|o| o.path.display().to_string()).collect(),
        _ => Vec::new(),
    }
}
