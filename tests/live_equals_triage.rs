//! The live watcher reports the same incidents as `trainwatch triage` on the same log: every
//! fixture log of the triage corpus — the original one and every part of the real-framework
//! corpus (`tests/fixtures/real/*/manifest.json`, held-out parts included) — is replayed by a
//! real job under `trainwatch run` (the job prints the log and ends as the original program
//! did), and the incidents the store recorded are compared with triage's — category,
//! severity, line and text.
//!
//! One addition is expected and excluded: live watching also follows the metrics, and warns
//! when the loss diverges (a factor above its running minimum, issue 6); a finished log's
//! triage has no such trend warning. Everything the detectors find must be identical.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");

fn json(args: &[&str], cwd: &Path) -> serde_json::Value {
    let out = Command::new(BIN).args(args).current_dir(cwd).output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// (category, severity, line, text) of each incident, in order.
fn key(v: &serde_json::Value) -> (String, String, u64, String) {
    (
        v["category"].as_str().unwrap_or_default().to_string(),
        v["severity"].as_str().unwrap_or_default().to_string(),
        v["line"].as_u64().unwrap_or_default(),
        v["text"].as_str().unwrap_or_default().to_string(),
    )
}

/// The cases of the manifest in `dir` (a bare list, or a real-corpus part's `cases`).
fn cases_of(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    match manifest {
        serde_json::Value::Array(cases) => cases,
        other => other["cases"].as_array().cloned().unwrap_or_default(),
    }
}

#[test]
fn every_fixture_gives_the_same_incidents_live_and_in_triage() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let original = cases_of(&fixtures);
    assert!(original.len() >= 30);
    replay(&fixtures, &original);
}

#[test]
fn every_real_corpus_fixture_gives_the_same_incidents_live_and_in_triage() {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    let mut parts: Vec<_> = std::fs::read_dir(&real)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    parts.sort();
    assert!(parts.len() >= 2, "{parts:?}");
    for part in parts {
        let cases = cases_of(&part);
        assert!(!cases.is_empty(), "{}", part.display());
        replay(&part, &cases);
    }
}

/// How long one case may take before it counts as hung: a replay is well under a second, so
/// this only turns a hang into a failure that names the case instead of stalling the suite.
const CASE_LIMIT: Duration = Duration::from_secs(120);

/// Replay each case of `cases` (paths relative to `fixtures`) live and compare with triage,
/// on as many threads as the machine has cores: every case is its own job in its own folder.
fn replay(fixtures: &Path, cases: &[serde_json::Value]) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = AtomicUsize::new(0);
    let mismatches = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                if let Some(mismatch) = replay_one(fixtures, case) {
                    mismatches.lock().unwrap().push(mismatch);
                }
            });
        }
    });
    let mut mismatches = mismatches.into_inner().unwrap();
    mismatches.sort();
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

/// Replay one case; a description of how live and triage differ, or None when they agree.
fn replay_one(fixtures: &Path, case: &serde_json::Value) -> Option<String> {
    let name = case["name"].as_str().unwrap();
    let log = fixtures.join(case["log"].as_str().unwrap());
    let exit = case["exit_status"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The job replays the log, then ends like the original: a code, or a signal for 128+n.
    let script = "cat \"$1\"; c=$2; if [ \"$c\" -gt 128 ]; then kill -$((c - 128)) $$; fi; exit \"$c\"";
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--unattended",
            "--color",
            "never",
            "--store",
            "s.db",
            "--log",
            "job.log",
            "--",
        ])
        .args([
            "sh",
            "-c",
            script,
            "replay",
            log.to_str().unwrap(),
            &exit.to_string(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!(
                "{name}: `trainwatch run` still running after {CASE_LIMIT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.success(), exit == 0, "{name}: trainwatch exit status");
    let live = json(&["status", "--store", "s.db", "--json"], dir.path());
    let live: Vec<_> = live["runs"][0]["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .filter(|(_, _, _, text)| !text.contains(" is diverging: "))
        .collect();
    let triage = json(
        &[
            "triage",
            log.to_str().unwrap(),
            "--exit-code",
            &exit.to_string(),
            "--json",
        ],
        dir.path(),
    );
    let triage: Vec<_> = triage["incidents"].as_array().unwrap().iter().map(key).collect();
    (live != triage).then(|| format!("{name}:\n  live:   {live:?}\n  triage: {triage:?}"))
}
