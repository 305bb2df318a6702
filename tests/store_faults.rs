//! Store faults are never silent: `trainwatch run` with real processes on real file systems
//! that misbehave — a store it cannot write at start (read-only file system, immutable file or
//! folder, not a database, no space), a store deleted mid-run, the store's file system filling
//! up mid-run and then freed, and a job killed by its log's file system filling up.
//!
//! The tiny file systems are tmpfs mounts (and immutable files `chattr +i`): that needs root.
//! Where the machine does not allow it the test says why on stderr and returns (it is not a
//! pass of what it would have shown). Waits are bounded liveness limits, never timings; every
//! process is killed and every mount undone when a test ends, even when it fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use trainwatch::store::Store;

mod support;
use support::tmpfs::Tmpfs;
use support::{exit_within, lines_of, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
const WAIT: Duration = Duration::from_secs(60);

/// A file made immutable (`chattr +i`: even root cannot write it); made mutable on drop.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path, test: &str) -> Option<Immutable> {
        match Command::new("chattr").arg("+i").arg(path).output() {
            Ok(o) if o.status.success() => Some(Immutable(path.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED {test}: cannot make {} immutable here: {}",
                    path.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: no chattr: {e}");
                None
            }
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A running `trainwatch run`, killed on drop if still running.
struct Run {
    child: Child,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `trainwatch run --unattended --store STORE --log LOG -- sh -c SCRIPT` in `cwd`.
fn spawn_run(cwd: &Path, store: &Path, log: &Path, script: &str) -> Run {
    let child = Command::new(BIN)
        .args(["run", "--unattended", "--store"])
        .arg(store)
        .arg("--log")
        .arg(log)
        .args(["--", "sh", "-c", script])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Run { child }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Start a run on `store` and expect a refusal: exit status 2, a message naming the store
/// and containing `why`, and the job never started (its marker file never written).
fn assert_refused(dir: &Path, store: &Path, why: &str) {
    let marker = dir.join("job-started");
    let script = format!("touch '{}'", marker.display());
    let mut run = spawn_run(dir, store, &dir.join("job.log"), &script);
    let status = exit_within(&mut run.child, WAIT, "a refused trainwatch run");
    let err = stderr_of(&mut run.child);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains(&store.display().to_string()),
        "names the store: {err}"
    );
    assert!(err.contains("cannot be used"), "{err}");
    assert!(err.contains(why), "says {why:?}: {err}");
    assert!(!marker.exists(), "the job must not start on an unusable store");
}

/// A store with the schema, closed (no WAL files left beside it).
fn make_store(path: &Path) {
    drop(Store::open(path).unwrap());
}

#[test]
fn a_store_on_a_read_only_file_system_is_refused_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let test = "a_store_on_a_read_only_file_system_is_refused_and_nothing_starts";
    let Some(fs) = Tmpfs::mount(&dir.path().join("ro"), "4m", test) else {
        return;
    };
    let store = fs.path.join("state.db");
    make_store(&store);
    fs.remount_read_only();
    assert_refused(dir.path(), &store, "read-only");
}

#[test]
fn a_read_only_store_file_or_folder_is_refused_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let test = "a_read_only_store_file_or_folder_is_refused_and_nothing_starts";
    // The file: immutable (root ignores file modes, not this).
    let store = dir.path().join("f/state.db");
    make_store(&store);
    let Some(_ro) = Immutable::set(&store, test) else {
        return;
    };
    assert_refused(dir.path(), &store, "read-only");

    // The folder: the store cannot have its lock and journal files beside it.
    let folder = dir.path().join("d");
    let store = folder.join("state.db");
    make_store(&store);
    let Some(_ro) = Immutable::set(&folder, test) else {
        return;
    };
    assert_refused(dir.path(), &store, "read-only or immutable");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("notes.db");
    let text = "my notes, not a database\n".repeat(100);
    std::fs::write(&store, &text).unwrap();
    assert_refused(dir.path(), &store, "not a SQLite database");
    assert_eq!(std::fs::read_to_string(&store).unwrap(), text);
}

#[test]
fn a_store_on_a_full_file_system_is_refused_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let test = "a_store_on_a_full_file_system_is_refused_and_nothing_starts";
    let Some(fs) = Tmpfs::mount(&dir.path().join("full"), "2m", test) else {
        return;
    };
    let store = fs.path.join("state.db");
    make_store(&store);
    fs.fill();
    assert_refused(dir.path(), &store, "no space");
}

/// A job that prints a step, then waits for `go1`, prints two distinct warnings, waits for
/// `go2`, prints a third and ends well. A wait also ends when the test's folder is gone, so a
/// job its shim kept after the test stopped the supervisor does not wait forever.
fn gated_job(dir: &Path) -> String {
    let go1 = dir.join("go1");
    let go2 = dir.join("go2");
    format!(
        "echo 'step 1 of 3'; \
         while [ ! -e '{go1}' ] && [ -d '{dir}' ]; do sleep 0.05; done; \
         echo '/t/train.py:10: ConvergenceWarning: alpha did not converge'; \
         echo '/t/train.py:20: ConvergenceWarning: beta did not converge'; \
         echo 'step 2 of 3'; \
         while [ ! -e '{go2}' ] && [ -d '{dir}' ]; do sleep 0.05; done; \
         echo '/t/train.py:30: ConvergenceWarning: gamma did not converge'; \
         echo 'step 3 of 3'",
        go1 = go1.display(),
        go2 = go2.display(),
        dir = dir.display()
    )
}

fn count(seen: &[String], needle: &str) -> usize {
    seen.iter().filter(|l| l.contains(needle)).count()
}

/// Read the rest of a run's output until it exits; its status.
fn finish(run: &mut Run, rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) -> i32 {
    let status = exit_within(&mut run.child, WAIT, "trainwatch run");
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push(l);
    }
    status.code().unwrap_or(-1)
}

/// Every warning of the gated job stored once, in the run, which is stored as completed.
fn assert_history(store: &Path, seen: &[String]) {
    let runs = Store::open(store).unwrap().runs(None, 10).unwrap();
    let [run] = runs.as_slice() else {
        panic!("one run stored, found {runs:?}\n{}", seen.join("\n"))
    };
    assert_eq!(run.state, "completed", "{run:?}");
    let mut texts: Vec<&str> = run.incidents.iter().map(|i| i.text.as_str()).collect();
    texts.sort();
    assert_eq!(texts.len(), 3, "{texts:?}");
    for (text, word) in texts.iter().zip(["alpha", "beta", "gamma"]) {
        assert!(text.contains(word), "{texts:?}");
    }
}

#[test]
fn a_full_store_mid_run_holds_every_step_says_so_once_and_writes_it_all_once_freed() {
    let dir = tempfile::tempdir().unwrap();
    let test = "a_full_store_mid_run_holds_every_step_says_so_once_and_writes_it_all_once_freed";
    let Some(fs) = Tmpfs::mount(&dir.path().join("s"), "3m", test) else {
        return;
    };
    let store = fs.path.join("state.db");
    let mut run = spawn_run(
        dir.path(),
        &store,
        &dir.path().join("job.log"),
        &gated_job(dir.path()),
    );
    let rx = lines_of(&mut run.child);
    let mut seen = Vec::new();
    wait_for(&rx, "Training started", WAIT, &mut seen);

    let filler = fs.fill();
    std::fs::write(dir.path().join("go1"), "").unwrap();
    wait_for(&rx, "store unwritable: no space left", WAIT, &mut seen);
    // The job is still watched while the store is full.
    wait_for(&rx, "beta did not converge", WAIT, &mut seen);

    std::fs::remove_file(filler).unwrap();
    wait_for(&rx, "Store writable again", WAIT, &mut seen);
    std::fs::write(dir.path().join("go2"), "").unwrap();
    wait_for(&rx, "Training Complete", WAIT, &mut seen);
    let code = finish(&mut run, &rx, &mut seen);
    assert_eq!(code, 0, "{}", seen.join("\n"));

    assert_eq!(
        count(&seen, "Store unwritable"),
        1,
        "said once:\n{}",
        seen.join("\n")
    );
    assert_eq!(count(&seen, "Store writable again"), 1, "{}", seen.join("\n"));
    assert_history(&store, &seen);
}

#[test]
fn a_store_deleted_mid_run_is_said_once_re_created_with_the_run_and_the_job_stays_watched() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s/state.db");
    let mut run = spawn_run(
        dir.path(),
        &store,
        &dir.path().join("job.log"),
        &gated_job(dir.path()),
    );
    let rx = lines_of(&mut run.child);
    let mut seen = Vec::new();
    wait_for(&rx, "Training started", WAIT, &mut seen);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
    }
    std::fs::write(dir.path().join("go1"), "").unwrap();
    wait_for(&rx, "Store deleted or replaced", WAIT, &mut seen);
    std::fs::write(dir.path().join("go2"), "").unwrap();
    wait_for(&rx, "Training Complete", WAIT, &mut seen);
    let code = finish(&mut run, &rx, &mut seen);
    assert_eq!(code, 0, "{}", seen.join("\n"));
    assert_eq!(
        count(&seen, "Store deleted or replaced"),
        1,
        "{}",
        seen.join("\n")
    );
    // The new store holds the run (re-written from what the supervisor held) and every
    // warning, found before the deletion or after.
    assert_history(&store, &seen);

    // The next supervisor finds no run under way: it starts a new one (no "already running").
    let mut again = spawn_run(dir.path(), &store, &dir.path().join("job2.log"), "echo done");
    let rx = lines_of(&mut again.child);
    let mut seen = Vec::new();
    wait_for(&rx, "Training Complete", WAIT, &mut seen);
    assert_eq!(finish(&mut again, &rx, &mut seen), 0, "{}", seen.join("\n"));
}

#[test]
fn a_job_ended_by_its_logs_file_system_filling_up_is_a_resource_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let test = "a_job_ended_by_its_logs_file_system_filling_up_is_a_resource_error_naming_it";
    let Some(fs) = Tmpfs::mount(&dir.path().join("logs"), "1m", test) else {
        return;
    };
    // `yes` writes until the file system is full, then fails; its complaint cannot be
    // written either, so the log states no error.
    let mut run = spawn_run(
        dir.path(),
        &dir.path().join("s/state.db"),
        &fs.path.join("train.log"),
        "yes 'step'",
    );
    let rx = lines_of(&mut run.child);
    let mut seen = Vec::new();
    wait_for(&rx, "Training Failed", WAIT, &mut seen);
    let code = finish(&mut run, &rx, &mut seen);
    assert_eq!(code, 1, "{}", seen.join("\n"));
    let all = seen.join("\n");
    let named = format!("no space left on the file system of {}", fs.path.display());
    assert!(all.contains(&named), "{all}");
    assert!(all.contains("resource"), "{all}");
    assert!(!all.contains("log states no error"), "{all}");
}

/// `trainwatch run` stopped (SIGTERM) while its store is full: it tries again for a bounded
/// time, then names on stderr every write the store never took and exits 3, not 130.
#[test]
fn writes_the_store_never_took_by_the_stop_are_named_on_stderr_and_the_exit_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let test = "writes_the_store_never_took_by_the_stop_are_named_on_stderr_and_the_exit_says_so";
    let Some(fs) = Tmpfs::mount(&dir.path().join("s"), "3m", test) else {
        return;
    };
    let store = fs.path.join("state.db");
    let mut run = spawn_run(
        dir.path(),
        &store,
        &dir.path().join("job.log"),
        &gated_job(dir.path()),
    );
    let rx = lines_of(&mut run.child);
    let mut seen = Vec::new();
    wait_for(&rx, "Training started", WAIT, &mut seen);
    let _filler = fs.fill();
    std::fs::write(dir.path().join("go1"), "").unwrap();
    wait_for(&rx, "store unwritable: no space left", WAIT, &mut seen);
    wait_for(&rx, "beta did not converge", WAIT, &mut seen);
    // Stopped while the store is still full (and stays so).
    unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) };
    let code = finish(&mut run, &rx, &mut seen);
    let err = stderr_of(&mut run.child);
    // The job itself may go on (its shim holds it): let it end.
    std::fs::write(dir.path().join("go2"), "").unwrap();
    assert_eq!(code, 3, "{err}\n{}", seen.join("\n"));
    let lost = err
        .lines()
        .skip_while(|l| !l.starts_with("trainwatch: LOST"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        lost.contains(&store.display().to_string()) && lost.contains("no space left"),
        "names the store and why: {err}"
    );
    for needle in [
        "incident run 1 #1: /t/train.py:10: ConvergenceWarning: alpha did not converge",
        "incident run 1 #2: /t/train.py:20: ConvergenceWarning: beta did not converge",
        // The console showed every message already: none is lost.
        "2 incident(s), 0 other history record(s), 0 chat message(s) never queued",
    ] {
        assert!(lost.contains(needle), "{needle:?} named as lost:\n{err}");
    }
}
