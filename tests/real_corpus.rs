//! The real-framework fixture corpus (tests/fixtures/real, issue 12) is consistent: each
//! manifest entry names a script and a log that exist, the labelled first error line is
//! really that line of the log, labels use the known words, and the forty-eight parts (tuned,
//! held-out; tuned-2 to tuned-44, each written blind later, measured once, then tuned on;
//! held-out-45 to held-out-47, written blind after those, measured only) do not share a case.
//! It does not score the detector: `bench/triage_score.sh` measures that, because the corpus
//! exists to show what triage still gets wrong.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Manifest {
    part: String,
    python: String,
    packages: serde_json::Map<String, serde_json::Value>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    family: String,
    launch: String,
    script: String,
    log: String,
    exit_status: i32,
    verdict: String,
    category: Option<String>,
    first_error: Option<First>,
    why: String,
}

#[derive(Debug, Deserialize)]
struct First {
    line: usize,
    text: String,
}

const PARTS: [&str; 48] = [
    "tuned",
    "held-out",
    "tuned-2",
    "tuned-3",
    "tuned-4",
    "tuned-5",
    "tuned-6",
    "tuned-7",
    "tuned-8",
    "tuned-9",
    "tuned-10",
    "tuned-11",
    "tuned-12",
    "tuned-13",
    "tuned-14",
    "tuned-15",
    "tuned-16",
    "tuned-17",
    "tuned-18",
    "tuned-19",
    "tuned-20",
    "tuned-21",
    "tuned-22",
    "tuned-23",
    "tuned-24",
    "tuned-25",
    "tuned-26",
    "tuned-27",
    "tuned-28",
    "tuned-29",
    "tuned-30",
    "tuned-31",
    "tuned-32",
    "tuned-33",
    "tuned-34",
    "tuned-35",
    "tuned-36",
    "tuned-37",
    "tuned-38",
    "tuned-39",
    "tuned-40",
    "tuned-41",
    "tuned-42",
    "tuned-43",
    "tuned-44",
    "held-out-45",
    "held-out-46",
    "held-out-47",
];
const CATEGORIES: [&str; 5] = [
    "implementation",
    "data",
    "resource",
    "convergence",
    "infrastructure",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real")
}

fn manifest(part: &str) -> Manifest {
    let path = root().join(part).join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn every_part_is_there_and_no_case_is_in_two() {
    let mut names = HashSet::new();
    let mut total = 0;
    for part in PARTS {
        let m = manifest(part);
        assert_eq!(m.part, part);
        assert!(m.python.starts_with('3'), "python {}", m.python);
        assert!(
            m.packages.contains_key("torch"),
            "{part}: torch's version is recorded"
        );
        assert!(!m.cases.is_empty(), "{part} is empty");
        for c in &m.cases {
            assert!(names.insert(c.name.clone()), "{} is in two parts", c.name);
        }
        total += m.cases.len();
    }
    assert!(total >= 30, "{total} real fixtures");
    // The split rule (every third case of a family) covers tuned and held-out only.
    let held = manifest("held-out").cases.len();
    let split = manifest("tuned").cases.len() + held;
    assert!(
        held * 5 >= split && held * 5 <= split * 2,
        "{held} of {split} held out: about a third"
    );
    // The batches written blind (tuned on after their one measurement, or measured only),
    // every part after the first batch's two, keep their size: at least 12 cases (the last
    // round's three batches hold 12 each, the earlier ones 15 to 31), 4 of them clean.
    for part in &PARTS[2..] {
        let batch = manifest(part).cases;
        let clean = batch.iter().filter(|c| c.verdict == "ok").count();
        assert!(
            batch.len() >= 12 && clean >= 4,
            "{part}: {} cases, {clean} clean",
            batch.len()
        );
    }
}

#[test]
fn every_label_points_at_the_log_it_describes() {
    for part in PARTS {
        let base = root().join(part);
        for c in manifest(part).cases {
            let name = &c.name;
            assert!(base.join(&c.script).is_file(), "{name}: no script {}", c.script);
            assert!(
                c.name.starts_with(&format!("{}_", c.family)),
                "{name}: family {}",
                c.family
            );
            assert!(!c.why.trim().is_empty(), "{name}: no why");
            assert!(
                c.launch == "python" || c.launch == "bash" || c.launch.starts_with("torchrun:"),
                "{name}: launch {}",
                c.launch
            );
            let log = std::fs::read(base.join(&c.log)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(log.len() < 1 << 20, "{name}: log of {} bytes", log.len());
            assert!(
                (0..=255).contains(&c.exit_status),
                "{name}: exit {}",
                c.exit_status
            );
            match c.verdict.as_str() {
                "ok" => {
                    assert!(c.category.is_none(), "{name}: a clean run has no category");
                    assert!(c.first_error.is_none(), "{name}: a clean run has no error line");
                    assert_eq!(c.exit_status, 0, "{name}: a clean run exits 0");
                }
                "warning" | "error" => {
                    let cat = c
                        .category
                        .as_deref()
                        .unwrap_or_else(|| panic!("{name}: category"));
                    assert!(CATEGORIES.contains(&cat), "{name}: category {cat}");
                }
                v => panic!("{name}: verdict {v}"),
            }
            if let Some(f) = &c.first_error {
                let text = String::from_utf8_lossy(&log);
                let line = text
                    .split('\n')
                    .nth(f.line - 1)
                    .unwrap_or_else(|| panic!("{name}: the log has no line {}", f.line));
                // What a terminal shows: the text after the line's last carriage return.
                let line = line.trim_end_matches('\r');
                let shown = line.rsplit('\r').next().unwrap_or(line);
                assert_eq!(shown.trim(), f.text, "{name}: line {} of the log", f.line);
            }
        }
    }
}
