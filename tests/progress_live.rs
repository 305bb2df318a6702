//! Progress, metrics, charts and stall detection end to end: `trainwatch run` supervising
//! real processes that print step lines, replay real tqdm / Hugging Face / PyMC logs
//! (`tests/fixtures/metrics/`), or hang. Waits are bounded (liveness limits, never timing
//! assertions).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{lines_of, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/metrics")
        .join(name)
}

/// A config with one job `m` (unattended runs decide by `on_error = "wait"`).
fn config(dir: &Path, script: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("tw.toml");
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    write(
        &cfg,
        &format!(
            r#"
[store]
path = "state/state.db"

[jobs.m]
argv = ["sh", "-c", "{script}"]
status_interval = "300ms"
on_error = "wait"
{extra}
"#
        ),
    );
    cfg
}

/// Run trainwatch to completion (bounded), returning (status, stdout).
fn run_to_end(cfg: &Path, cwd: &Path, limit: Duration) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(["run", "--unattended", "--config", cfg.to_str().unwrap()])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "trainwatch did not finish within {limit:?}:\n{}",
                t_out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code().unwrap_or(-1), t_out.join().unwrap())
}

/// The paths printed as `Chart: <path>` in the output.
fn charts(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Chart: "))
        .map(PathBuf::from)
        .collect()
}

/// Decodes a PNG file: (width, height, number of distinct colours).
fn decode(path: &Path) -> (u32, u32, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(bytes.as_slice());
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let px = info.color_type.samples();
    let colours: std::collections::BTreeSet<&[u8]> = buf[..info.buffer_size()].chunks_exact(px).collect();
    (info.width, info.height, colours.len())
}

/// The text of the first message whose title contains `title` (up to the next message).
fn message<'a>(out: &'a str, title: &str) -> &'a str {
    let start = out
        .find(title)
        .unwrap_or_else(|| panic!("{title:?} missing in:\n{out}"));
    let rest = &out[start..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[test]
fn step_lines_give_progress_in_status_updates_and_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "for i in $(seq 1 40); do echo \"epoch 1 step=$i total=40 loss=0.$((99 - i)) acc=0.$((50 + i))\"; sleep 0.05; done",
        "[jobs.m.metrics]\nstep = \"step\"\ntotal = \"total\"\nchart = [\"acc\"]",
    );
    let (code, out) = run_to_end(&cfg, dir.path(), Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    // Some status update saw the run under way, with step/total, percent and metrics.
    let status = out
        .split("Training Status Update")
        .skip(1)
        .find(|s| s.contains("Progress: step"))
        .unwrap_or_else(|| panic!("no status update with progress in:\n{out}"));
    assert!(status.contains(" / 40"), "{status}");
    assert!(status.contains("% complete"), "{status}");
    assert!(status.contains("Metrics: loss=0."), "{status}");
    assert!(status.contains("acc=0."), "{status}");
    assert!(status.contains("Last log line: epoch 1 step="), "{status}");
    assert!(status.contains("No errors detected"), "{status}");

    let charts = charts(&out);
    let status_chart = charts
        .iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("status-"))
        .unwrap_or_else(|| panic!("no status chart in:\n{out}"));
    let (w, h, colours) = decode(status_chart);
    assert_eq!((w, h), (800, 400));
    assert!(colours > 2, "the chart is blank");
    // The completion report carries the final chart.
    let done = message(&out, "Training Complete");
    let final_chart = charts
        .iter()
        .find(|p| p.ends_with("final.png"))
        .unwrap_or_else(|| panic!("no final chart in:\n{out}"));
    assert!(done.contains(&final_chart.display().to_string()), "{done}");
    let (w, h, colours) = decode(final_chart);
    assert_eq!((w, h), (800, 400));
    assert!(colours > 2, "the chart is blank");
}

#[test]
fn a_tqdm_bar_gives_step_of_total() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("cat '{}'; sleep 1.5", fixture("tqdm_bar.log").display());
    let cfg = config(dir.path(), &script, "");
    let (code, out) = run_to_end(&cfg, dir.path(), Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Progress: step 200 / 200"), "{out}");
    assert!(out.contains("[####################] 100.0%"), "{out}");
}

#[test]
fn a_pymc_log_fills_the_convergence_fields_of_the_completion_report() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("cat '{}'", fixture("pymc_sample.log").display());
    let cfg = config(dir.path(), &script, "");
    let (code, out) = run_to_end(&cfg, dir.path(), Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    let done = message(&out, "Training Complete");
    assert!(done.contains("- Chains: 2"), "{done}");
    assert!(done.contains("- Samples: "), "{done}");
    assert!(done.contains("max R-hat 1.071"), "{done}");
    assert!(done.contains("min ESS 20"), "{done}");
}

#[test]
fn a_nan_loss_is_one_convergence_incident() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("cat '{}'; sleep 0.5", fixture("hf_trainer_style.log").display());
    let cfg = config(dir.path(), &script, "");
    let (_, out) = run_to_end(&cfg, dir.path(), Duration::from_secs(60));
    // The log detector and the metrics both see the NaN: one report, not two.
    let reports = out.matches("ERROR DETECTED").count() + out.matches("Warning noticed").count();
    assert_eq!(reports, 1, "the NaN loss is reported once:\n{out}");
    let title = if out.contains("ERROR DETECTED") {
        "ERROR DETECTED"
    } else {
        "Warning noticed"
    };
    let report = message(&out, title);
    assert!(report.to_lowercase().contains("nan"), "{report}");
    assert!(report.contains("convergence"), "{report}");
}

#[test]
fn a_run_too_slow_for_its_maximum_is_warned_once_before_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // 1000 steps at ~20/s need ~50 s; the maximum is 30 s. It stops early at step 60.
    let cfg = config(
        dir.path(),
        "for i in $(seq 1 60); do echo \"step=$i total=1000 loss=0.5\"; sleep 0.05; done",
        "max = \"30s\"\n[jobs.m.metrics]\ntotal = \"total\"",
    );
    let (code, out) = run_to_end(&cfg, dir.path(), Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("Projected to overrun").count(), 1, "{out}");
    let warning = message(&out, "Projected to overrun");
    assert!(warning.contains("above the maximum of 30s"), "{warning}");
    assert!(!out.contains("TIMEOUT WARNING"), "{out}");
}

#[test]
fn a_job_that_hangs_gets_one_hung_warning_and_it_closes_when_output_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("go");
    let end = dir.path().join("end");
    // Prints, then goes silent until the test creates the marker; then keeps printing until
    // the test has seen the stall close (so a loaded machine cannot make a second one).
    let script = format!(
        "echo 'step=1 loss=0.5'; while [ ! -e '{}' ]; do sleep 0.05; done; echo 'step=2 loss=0.4'; i=0; while [ ! -e '{}' ] && [ $i -lt 600 ]; do echo 'step=3 loss=0.3'; sleep 0.1; i=$((i+1)); done",
        marker.display(),
        end.display()
    );
    let cfg = config(
        dir.path(),
        &script,
        "stall_timeout = \"2s\"\nstatus_interval = \"1h\"",
    );
    // status_interval is given twice otherwise: keep the later one only.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("status_interval = \"300ms\"\n", "");
    write(&cfg, &text);
    let mut child = Command::new(BIN)
        .args(["run", "--unattended", "--config", cfg.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&rx, "HUNG?", Duration::from_secs(30), &mut seen);
    wait_for(&rx, "decide:", Duration::from_secs(10), &mut seen);
    write(&marker, "");
    wait_for(&rx, "output resumed", Duration::from_secs(30), &mut seen);
    write(&end, "");
    wait_for(&rx, "Training Complete", Duration::from_secs(30), &mut seen);
    let status = support::exit_within(&mut child, Duration::from_secs(20), "trainwatch");
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push(l);
    }
    let out = seen.join("\n");
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(out.matches("HUNG?").count(), 1, "one warning per stall:\n{out}");
    let warning = message(&out, "HUNG?");
    assert!(warning.contains("No new log line since"), "{warning}");
    assert!(warning.contains("Last log line: step=1 loss=0.5"), "{warning}");
    for d in ["restart", "kill", "continue", "investigate"] {
        assert!(warning.contains(&format!("/decide m {d}")), "{warning}");
    }
}
