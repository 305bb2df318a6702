//! The live watcher reports the same incidents as `trainwatch triage` on the same log: every
//! fixture log of the triage corpus is replayed by a real job under `trainwatch run` (the
//! job prints the log and ends as the original program did), and the incidents the store
//! recorded are compared with triage's — category, severity, line and text.

use std::path::Path;
use std::process::{Command, Stdio};

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

#[test]
fn every_fixture_gives_the_same_incidents_live_and_in_triage() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest.as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut mismatches = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let log = fixtures.join(case["log"].as_str().unwrap());
        let exit = case["exit_status"].as_i64().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The job replays the log, then ends like the original: a code, or a signal for 128+n.
        let script = "cat \"$1\"; c=$2; if [ \"$c\" -gt 128 ]; then kill -$((c - 128)) $$; fi; exit \"$c\"";
        let status = Command::new(BIN)
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
            .status()
            .unwrap();
        assert_eq!(status.success(), exit == 0, "{name}: trainwatch exit status");
        let live = json(&["status", "--store", "s.db", "--json"], dir.path());
        let live: Vec<_> = live["runs"][0]["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
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
        if live != triage {
            mismatches.push(format!("{name}:\n  live:   {live:?}\n  triage: {triage:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}
