//! Behaviour of the log follower against real files: what a supervisor watching a
//! training log sees as the log grows, is rotated, truncated, or outlives trainwatch.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use trainwatch::watch::follower::{
    display_segment, FollowOptions, FollowState, Follower, LogLine, ReadAhead, HEAD_KEEP, TAIL_KEEP,
};

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn read(f: &mut Follower) -> Vec<LogLine> {
    let mut out = Vec::new();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    assert!(!stats.more);
    out
}

fn pairs(lines: &[LogLine]) -> Vec<(u64, &str)> {
    lines.iter().map(|l| (l.no, l.text.as_str())).collect()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training_1_full.log");
    (dir, path)
}

#[test]
fn appends_are_read_incrementally_with_line_numbers() {
    let (_dir, path) = setup();
    append(&path, b"epoch 1\nepoch 2\n");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(pairs(&read(&mut f)), [(1, "epoch 1"), (2, "epoch 2")]);
    assert!(read(&mut f).is_empty(), "nothing new, nothing read");

    append(&path, b"epoch 3\n\nepoch 5\r\n");
    assert_eq!(
        pairs(&read(&mut f)),
        [(3, "epoch 3"), (4, ""), (5, "epoch 5")],
        "empty lines count, CRLF is a terminator"
    );
    let st = f.state();
    assert_eq!(st.line_no, 5);
    assert_eq!(st.offset, fs::metadata(&path).unwrap().len());
}

#[test]
fn partial_line_is_held_until_its_newline_arrives() {
    let (_dir, path) = setup();
    append(&path, b"step 1 ok\nTraceback (most rec");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(pairs(&read(&mut f)), [(1, "step 1 ok")]);
    assert_eq!(f.pending_tail().as_deref(), Some("Traceback (most rec"));
    assert_eq!(
        f.state().offset,
        10,
        "the committed offset stops before the partial line"
    );

    append(&path, b"ent call last):\n");
    assert_eq!(pairs(&read(&mut f)), [(2, "Traceback (most recent call last):")]);
    assert_eq!(f.pending_tail(), None);
}

#[test]
fn carriage_return_progress_bars_are_one_line_shown_by_their_last_redraw() {
    let (_dir, path) = setup();
    append(&path, b"\r  0%|          | 0/10\r 50%|#####     | 5/10");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert!(read(&mut f).is_empty());
    assert_eq!(f.pending_tail().as_deref(), Some(" 50%|#####     | 5/10"));

    append(&path, b"\r100%|##########| 10/10\nloss=0.1\n");
    let lines = read(&mut f);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].no, 1);
    assert!(lines[0].text.contains(" 50%|"), "the line keeps every redraw");
    assert_eq!(display_segment(&lines[0].text), "100%|##########| 10/10");
    assert_eq!(
        pairs(&lines[1..]),
        [(2, "loss=0.1")],
        "\\r does not count as a line"
    );
}

#[test]
fn invalid_utf8_is_replaced_and_following_goes_on() {
    let (_dir, path) = setup();
    append(&path, b"ok\nbroken \xff\xfe\xc3 bytes\nafter\n");
    let mut f = Follower::new(path, FollowState::default());
    assert_eq!(
        pairs(&read(&mut f)),
        [
            (1, "ok"),
            (2, "broken \u{FFFD}\u{FFFD}\u{FFFD} bytes"),
            (3, "after")
        ]
    );
}

#[test]
fn a_100_mb_line_is_cut_for_display_keeping_both_ends() {
    let (_dir, path) = setup();
    let mut f = Follower::new(path.clone(), FollowState::default());
    let mut file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    file.write_all(b"before\nTraceback at the start ").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut seen = Vec::new();
    for i in 0..100 {
        file.write_all(&chunk).unwrap();
        if i % 10 == 0 {
            // Reading mid-line keeps only a bounded head and tail of it.
            f.read_available(|l| seen.push(l)).unwrap();
            let tail = f.pending_tail().unwrap();
            assert!(tail.len() <= HEAD_KEEP + TAIL_KEEP + 64);
        }
    }
    file.write_all(b" RuntimeError: CUDA out of memory\nafter\n")
        .unwrap();
    drop(file);
    f.read_available(|l| seen.push(l)).unwrap();

    assert_eq!(seen.len(), 3);
    assert_eq!(pairs(&seen[..1]), [(1, "before")]);
    let big = &seen[1];
    assert_eq!(big.no, 2);
    assert!(big.cut);
    assert!(big.text.starts_with("Traceback at the start"));
    assert!(big.text.ends_with("RuntimeError: CUDA out of memory"));
    let line_len =
        "Traceback at the start ".len() + 100 * (1 << 20) + " RuntimeError: CUDA out of memory".len();
    let cut = line_len - HEAD_KEEP - TAIL_KEEP;
    assert!(
        big.text.contains(&format!("…[{cut} bytes cut]…")),
        "the marker says how much is missing"
    );
    assert!(big.text.len() <= HEAD_KEEP + TAIL_KEEP + 64);
    assert_eq!(pairs(&seen[2..]), [(3, "after")]);
}

/// Lines about as long as a line can be and still be handed out whole (with and without a
/// CRLF's `\r`), among short ones and lines of every length, read at once and a few bytes at
/// a time: each is whole or cut by its own length alone, and numbered in order.
#[test]
fn lines_at_the_whole_line_limit_are_whole_or_cut_by_their_length() {
    let limit = HEAD_KEEP + TAIL_KEEP;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for (k, len) in [limit - 1, limit, limit + 1, limit + 2, 3, 0, 2 * limit + 7, limit]
        .into_iter()
        .enumerate()
    {
        let mut l: Vec<u8> = (0..len).map(|i| b'a' + ((i + k) % 26) as u8).collect();
        lines.push(l.clone());
        // The same length with a CRLF: its `\r` is no part of the line.
        l.push(b'\r');
        lines.push(l);
        for j in 0..k * 40 {
            lines.push(format!("step {j}").into_bytes());
        }
    }
    let mut log = Vec::new();
    for l in &lines {
        log.extend_from_slice(l);
        log.push(b'\n');
    }
    let check = |seen: &[LogLine]| {
        assert_eq!(seen.len(), lines.len());
        for (k, (got, raw)) in seen.iter().zip(&lines).enumerate() {
            let body = raw.strip_suffix(b"\r").unwrap_or(raw);
            assert_eq!(got.no, k as u64 + 1);
            assert_eq!(
                got.cut,
                body.len() > limit,
                "line {} of {} bytes",
                k + 1,
                body.len()
            );
            if !got.cut {
                assert_eq!(got.text.as_bytes(), body, "line {}", k + 1);
            }
        }
    };
    let (_dir, path) = setup();
    append(&path, &log);
    let mut f = Follower::new(path.clone(), FollowState::default());
    let mut seen = Vec::new();
    f.finish(|l| seen.push(l)).unwrap();
    check(&seen);
    // Appended in pieces that end anywhere, read after each.
    let (_dir, path) = setup();
    let mut f = Follower::new(path.clone(), FollowState::default());
    let mut seen = Vec::new();
    for piece in log.chunks(limit / 3 + 11) {
        append(&path, piece);
        f.read_available(|l| seen.push(l)).unwrap();
    }
    check(&seen);
    assert_eq!(f.state().offset, log.len() as u64);
}

#[test]
fn copytruncate_restarts_from_the_beginning() {
    let (_dir, path) = setup();
    append(&path, b"old 1\nold 2\nold 3\n");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(read(&mut f).len(), 3);

    // logrotate copytruncate: copy away, then cut the file to zero in place.
    fs::copy(&path, path.with_extension("log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, b"new 1\n");

    let mut out = Vec::new();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    assert!(stats.truncated);
    assert_eq!(pairs(&out), [(1, "new 1")]);
    assert_eq!(f.state().offset, 6);
}

#[test]
fn rename_rotation_finishes_the_old_file_then_follows_the_new_one() {
    let (dir, path) = setup();
    append(&path, b"a 1\na 2\n");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(read(&mut f).len(), 2);

    // The writer keeps writing to the renamed file before reopening the path; its last
    // line has no newline.
    append(&path, b"a 3\na 4 unterminated");
    fs::rename(&path, dir.path().join("training_1_full.log.1")).unwrap();
    let mut out = Vec::new();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    assert!(!stats.rotated, "no new file yet: keep following the old one");
    assert_eq!(pairs(&out), [(3, "a 3")]);

    append(&path, b"b 1\nb 2\n");
    out.clear();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    assert!(stats.rotated);
    assert_eq!(pairs(&out), [(4, "a 4 unterminated"), (1, "b 1"), (2, "b 2")]);
    let new_ino = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&path).unwrap().ino()
    };
    assert_eq!(f.state().ino, Some(new_ino));
}

#[test]
fn a_log_that_does_not_exist_yet_is_waited_for() {
    let (dir, _) = setup();
    let path = dir.path().join("logs/later.log");
    let mut f = Follower::new(path.clone(), FollowState::default());
    let stats = f.read_available(|_| panic!("no file, no lines")).unwrap();
    assert!(stats.missing);

    fs::create_dir(dir.path().join("logs")).unwrap();
    append(&path, b"hello\n");
    assert_eq!(pairs(&read(&mut f)), [(1, "hello")]);
}

#[test]
fn resuming_from_a_saved_state_continues_with_the_same_line_numbers() {
    let (_dir, path) = setup();
    append(&path, b"l1\nl2\nl3 partial");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(read(&mut f).len(), 2);
    let saved = serde_json::to_string(&f.state()).unwrap();
    drop(f); // trainwatch restarts; the job keeps writing

    append(&path, b" done\nl4\n");
    let state: FollowState = serde_json::from_str(&saved).unwrap();
    let mut f = Follower::new(path.clone(), state);
    assert_eq!(pairs(&read(&mut f)), [(3, "l3 partial done"), (4, "l4")]);
}

#[test]
fn resuming_after_a_rotation_while_away_finishes_the_old_file_first() {
    let (dir, path) = setup();
    append(&path, b"old 1\n");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(read(&mut f).len(), 1);
    let state = f.state();
    drop(f);

    append(&path, b"old 2\n");
    fs::rename(&path, dir.path().join("training_1_full.log.1")).unwrap();
    append(&path, b"new 1\n");

    let mut f = Follower::new(path.clone(), state);
    let mut out = Vec::new();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    assert!(stats.rotated);
    assert_eq!(pairs(&out), [(2, "old 2"), (1, "new 1")]);
}

#[test]
fn resuming_when_the_old_file_is_gone_starts_the_new_one_from_zero() {
    let (_dir, path) = setup();
    append(&path, b"old 1\nold 2\n");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(read(&mut f).len(), 2);
    let state = f.state();
    drop(f);

    fs::remove_file(&path).unwrap();
    // Make it less likely that the new file reuses the old inode number.
    let _hold = File::create(path.with_extension("other")).unwrap();
    append(&path, b"fresh 1\n");
    let mut f = Follower::new(path.clone(), state);
    let mut out = Vec::new();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    // A recycled inode number looks like the same file, shrunk: a truncation.
    assert!(stats.rotated || stats.truncated);
    assert_eq!(pairs(&out), [(1, "fresh 1")]);
}

#[test]
fn finish_hands_out_a_line_cut_short_by_the_process_dying() {
    let (_dir, path) = setup();
    append(&path, b"step 7\nKilled while writi");
    let mut f = Follower::new(path.clone(), FollowState::default());
    let mut out = Vec::new();
    f.finish(|l| out.push(l)).unwrap();
    assert_eq!(pairs(&out), [(1, "step 7"), (2, "Killed while writi")]);
    assert_eq!(f.pending_tail(), None);

    // A restarted attempt appends to the same log: the file's line 2 continues.
    append(&path, b"ng\nrestarted\n");
    assert_eq!(pairs(&read(&mut f)), [(2, "ng"), (3, "restarted")]);
}

#[test]
fn a_small_read_budget_spreads_a_backlog_over_calls_without_losing_lines() {
    let (_dir, path) = setup();
    let mut text = String::new();
    for i in 1..=5000 {
        text.push_str(&format!("line {i}\n"));
    }
    append(&path, text.as_bytes());
    let opts = FollowOptions {
        read_budget: 4096,
        ..FollowOptions::default()
    };
    let mut f = Follower::with_options(path, FollowState::default(), opts);
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 1000, "must reach the end");
        let stats = f.read_available(|l| out.push(l)).unwrap();
        if !stats.more {
            break;
        }
    }
    assert!(calls > 1);
    assert_eq!(out.len(), 5000);
    assert!(out
        .iter()
        .enumerate()
        .all(|(i, l)| l.no == i as u64 + 1 && l.text == format!("line {}", i + 1)));
}

/// Polls so slow that only an inotify event can wake `changed()` within the test's bound.
#[cfg(target_os = "linux")]
fn inotify_only() -> FollowOptions {
    FollowOptions {
        poll_armed: Duration::from_secs(3600),
        poll_unarmed: Duration::from_secs(3600),
        ..FollowOptions::default()
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn changed_wakes_on_an_append() {
    let (_dir, path) = setup();
    append(&path, b"start\n");
    let mut f = Follower::with_options(path.clone(), FollowState::default(), inotify_only());
    assert_eq!(read(&mut f).len(), 1);
    // The first call sets the watches up and returns so the caller re-reads.
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("returns after arming");
    assert!(read(&mut f).is_empty());

    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            append(&path, b"loss=nan\n");
        })
    };
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("an append wakes the follower");
    writer.await.unwrap();
    assert_eq!(pairs(&read(&mut f)), [(2, "loss=nan")]);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn changed_wakes_when_the_log_is_created_and_when_it_is_rotated() {
    let (dir, path) = setup();
    let mut f = Follower::with_options(path.clone(), FollowState::default(), inotify_only());
    assert!(f.read_available(|_| {}).unwrap().missing);
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("returns after arming");

    append(&path, b"first\n");
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("creation wakes the follower");
    assert_eq!(pairs(&read(&mut f)), [(1, "first")]);
    // Arms the watch on the now open file.
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("returns after arming");

    fs::rename(&path, dir.path().join("rotated.log")).unwrap();
    append(&path, b"second\n");
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("rotation wakes the follower");
    assert_eq!(pairs(&read(&mut f)), [(1, "second")]);
}

#[tokio::test]
async fn changed_returns_at_once_while_a_backlog_remains() {
    let (_dir, path) = setup();
    append(&path, "x\n".repeat(10_000).as_bytes());
    let opts = FollowOptions {
        read_budget: 1024,
        poll_armed: Duration::from_secs(3600),
        poll_unarmed: Duration::from_secs(3600),
        ..FollowOptions::default()
    };
    let mut f = Follower::with_options(path, FollowState::default(), opts);
    assert!(f.read_available(|_| {}).unwrap().more);
    tokio::time::timeout(Duration::from_secs(5), f.changed())
        .await
        .expect("backlog: no waiting");
}

/// Without inotify (or when events never come, as on NFS) the poll still picks appends up.
/// Time is paused, so the poll interval elapses without real waiting.
#[tokio::test(start_paused = true)]
async fn polling_alone_still_follows_the_log() {
    let (_dir, path) = setup();
    let opts = FollowOptions {
        inotify: false,
        poll_unarmed: Duration::from_millis(500),
        ..FollowOptions::default()
    };
    let mut f = Follower::with_options(path.clone(), FollowState::default(), opts);
    let mut lines = Vec::new();
    for round in 0..3 {
        append(&path, format!("poll {round}\n").as_bytes());
        let before = tokio::time::Instant::now();
        f.changed().await;
        assert!(
            tokio::time::Instant::now() >= before + Duration::from_millis(500),
            "with inotify off, changed() is the poll interval"
        );
        f.read_available(|l| lines.push(l)).unwrap();
    }
    assert_eq!(pairs(&lines), [(1, "poll 0"), (2, "poll 1"), (3, "poll 2")]);
}

#[test]
fn resuming_after_a_truncate_and_rewrite_while_away_starts_over() {
    let (_dir, path) = setup();
    append(&path, b"first run line 1\nfirst run line 2\n");
    let mut f = Follower::new(path.clone(), FollowState::default());
    assert_eq!(read(&mut f).len(), 2);
    let state = f.state();
    drop(f);

    // Same inode, cut to zero and written again past the saved offset.
    fs::write(&path, b"second run, a longer line 1\nsecond run line 2\nline 3\n").unwrap();
    let mut f = Follower::new(path.clone(), state);
    let mut out = Vec::new();
    let stats = f.read_available(|l| out.push(l)).unwrap();
    assert!(stats.truncated);
    assert_eq!(
        pairs(&out),
        [
            (1, "second run, a longer line 1"),
            (2, "second run line 2"),
            (3, "line 3")
        ]
    );
}

/// With the job's process known (here the test itself holds the files), a new file at the
/// path that the process does not hold open is a swap: refused, never read, while the file it
/// does hold goes on being followed; a new file it holds is a rotation as before.
#[test]
fn with_a_writer_a_file_it_does_not_hold_is_refused_and_one_it_holds_is_a_rotation() {
    let (_dir, path) = setup();
    let mut job_file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    job_file.write_all(b"one\n").unwrap();
    let mut f = Follower::new(path.clone(), FollowState::default());
    f.set_writer(Some(std::process::id()));
    assert_eq!(pairs(&read(&mut f)), vec![(1, "one")]);

    // Swapped: the name now points at a planted file; the job still writes its own.
    fs::remove_file(&path).unwrap();
    fs::write(&path, "planted\n").unwrap();
    job_file.write_all(b"two\n").unwrap();
    let mut lines = Vec::new();
    let stats = f.read_available(|l| lines.push(l)).unwrap();
    assert!(stats.refused && !stats.rotated, "{stats:?}");
    assert_eq!(pairs(&lines), vec![(2, "two")]);
    // Still refused once the writer can no longer be asked.
    f.set_writer(None);
    let mut lines = Vec::new();
    let stats = f.read_available(|l| lines.push(l)).unwrap();
    assert!(stats.refused && lines.is_empty(), "{stats:?} {lines:?}");

    // A new file the job itself opened (a restart appending to the path) is followed.
    f.set_writer(Some(std::process::id()));
    fs::remove_file(&path).unwrap();
    let mut next = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    next.write_all(b"three\n").unwrap();
    let mut lines = Vec::new();
    let stats = f.read_available(|l| lines.push(l)).unwrap();
    assert!(stats.rotated && !stats.refused, "{stats:?}");
    assert_eq!(pairs(&lines), vec![(1, "three")]);
}

/// Read-ahead jobs run on a thread of their own, in order (as on the scanning thread).
struct OnThread {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
    ran: Arc<AtomicUsize>,
}

type Job = Box<dyn FnOnce() + Send>;

impl OnThread {
    fn start() -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        std::thread::spawn(move || {
            for job in rx {
                job();
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Arc::new(Self {
            jobs: std::sync::Mutex::new(tx),
            ran,
        })
    }
}

impl ReadAhead for OnThread {
    fn submit(&self, job: Job) {
        let _ = self.jobs.lock().unwrap().send(job);
    }
}

/// Read-ahead jobs held until the test runs them (or never: the follower then reads in
/// place).
#[derive(Default)]
struct Held(std::sync::Mutex<Vec<Job>>);

impl Held {
    fn run_all(&self) -> usize {
        let jobs = std::mem::take(&mut *self.0.lock().unwrap());
        let n = jobs.len();
        for job in jobs {
            job();
        }
        n
    }
}

impl ReadAhead for Held {
    fn submit(&self, job: Job) {
        self.0.lock().unwrap().push(job);
    }
}

/// Read-ahead jobs run at once, on the follower's own thread.
#[derive(Default)]
struct Inline(AtomicUsize);

impl ReadAhead for Inline {
    fn submit(&self, job: Job) {
        job();
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads are made in windows of multiples of 128 KiB: a log whose lines end at, just
/// before and just after every such boundary (a CRLF cut between its `\r` and `\n`, lines
/// over the whole-line limit reaching across windows, invalid UTF-8, `\r` redraws), ending
/// without a newline.
fn window_edges_log(size: usize) -> Vec<u8> {
    const STEP: usize = 128 << 10;
    let mut log = Vec::new();
    let mut k = 0usize;
    while log.len() < size {
        k += 1;
        let next = (log.len() / STEP + 1) * STEP;
        let line: Vec<u8> = match (next - log.len(), k % 2003) {
            // Close to a boundary: end the line at it, one short of it, one past it, or cut
            // a CRLF there, in turn.
            (gap, _) if gap < 300 => {
                let end = match (log.len() / STEP) % 4 {
                    0 => next - 1,
                    1 => next,
                    2 => next + 1,
                    _ => next,
                };
                let mut l = vec![b'e'; end - log.len()];
                if (log.len() / STEP) % 4 == 3 {
                    l.pop();
                    l.push(b'\r');
                }
                l
            }
            (_, 0) => {
                let mut l = b"config dump ".to_vec();
                l.resize(HEAD_KEEP + TAIL_KEEP + 1 + k % 3 * (200 << 10), b'c');
                l.extend_from_slice(b" end of dump\r");
                l
            }
            (_, 1) => b"bad \xff\xfe bytes\r\n".to_vec(),
            (_, 2) => format!(" {k}%|#  | {k}/99\r {k}%|## | {k}/99").into_bytes(),
            (_, 3) => Vec::new(),
            _ => format!("step {k} loss=0.{} {}", k * 7 % 1000, "x".repeat(k * 37 % 400)).into_bytes(),
        };
        log.extend_from_slice(&line);
        log.push(b'\n');
    }
    log.extend_from_slice(b"unterminated last line");
    log
}

fn read_all(f: &mut Follower) -> Vec<LogLine> {
    let mut out = Vec::new();
    f.finish(|l| out.push(l)).unwrap();
    out
}

/// A backlog read with its next windows read ahead on another thread — run there, run at
/// once, or never run — gives the same lines, numbers, cuts and position as read in place:
/// lines cut across every read-ahead window's boundary, CRLF cut between its bytes, lines
/// over the limit reaching across windows; in one call, over calls on a small budget, and
/// while a writer is still appending.
#[test]
fn reading_ahead_hands_out_what_reading_in_place_does() {
    let (_dir, path) = setup();
    let log = window_edges_log(5 << 20);
    append(&path, &log);
    let mut plain = Follower::new(path.clone(), FollowState::default());
    let want = read_all(&mut plain);
    assert!(want.len() > 3000 && want.iter().any(|l| l.cut), "{}", want.len());
    assert!(want.iter().any(|l| l.text.contains('\u{fffd}')));

    let on_thread = OnThread::start();
    let inline = Arc::new(Inline::default());
    let never = Arc::new(Held::default());
    let aheads: [Arc<dyn ReadAhead>; 3] = [on_thread.clone(), inline.clone(), never.clone()];
    for (k, ahead) in aheads.into_iter().enumerate() {
        let mut f = Follower::new(path.clone(), FollowState::default());
        f.set_read_ahead(ahead.clone());
        assert_eq!(read_all(&mut f), want, "read-ahead {k}");
        assert_eq!(f.state(), plain.state(), "read-ahead {k}");

        // Over calls, each stopping on a budget that ends mid-line and mid-window.
        let opts = FollowOptions {
            read_budget: (1 << 20) + 12345,
            ..FollowOptions::default()
        };
        let mut f = Follower::with_options(path.clone(), FollowState::default(), opts);
        f.set_read_ahead(ahead);
        let mut got = Vec::new();
        let mut calls = 0;
        while f.read_available(|l| got.push(l)).unwrap().more {
            calls += 1;
        }
        f.flush_partial(|l| got.push(l));
        assert!(calls >= 4, "{calls}");
        assert_eq!(got, want, "read-ahead {k}, small budget");
    }
    assert!(on_thread.ran.load(Ordering::Relaxed) > 10);
    assert!(inline.0.load(Ordering::Relaxed) > 10);
    // Jobs given up unrun do nothing when they run at last.
    assert!(never.run_all() > 10);

    // A writer appending as the follower reads.
    let (_dir, path) = setup();
    let writer = {
        let (path, log) = (path.clone(), log.clone());
        std::thread::spawn(move || {
            for piece in log.chunks(300_007) {
                append(&path, piece);
            }
        })
    };
    let mut f = Follower::new(path.clone(), FollowState::default());
    f.set_read_ahead(on_thread.clone());
    let mut got = Vec::new();
    while got.len() < want.len() - 1 {
        f.read_available(|l| got.push(l)).unwrap();
    }
    writer.join().unwrap();
    got.extend(read_all(&mut f));
    assert_eq!(got, want);
}

/// A follower reading a backlog whose next window is being read ahead when the log is
/// truncated (copytruncate) and written again: the window read before the truncation is
/// handed out (those lines were in the file), one read after it finds the file short; either
/// way following restarts at the start of the new content, as a follower reading in place
/// does when the truncation comes between its reads.
#[test]
fn a_truncation_while_a_window_is_read_ahead_restarts_from_the_start() {
    let mut old = Vec::new();
    for k in 1..=200_000 {
        old.extend_from_slice(format!("old {k}\n").as_bytes());
    }
    // The lines that end within the first `end` bytes.
    let lines_to = |end: usize| old[..end].iter().filter(|&&b| b == b'\n').count();
    for (ahead_first, reading_ahead) in [(false, true), (true, true), (false, false)] {
        let (_dir, path) = setup();
        append(&path, &old);
        let held = Arc::new(Held::default());
        let mut f = Follower::new(path.clone(), FollowState::default());
        if reading_ahead {
            f.set_read_ahead(held.clone());
        }
        let mut got = Vec::new();
        let mut cut = false;
        let stats = f
            .read_available(|l| {
                if !cut {
                    // The first window's first line: the next window's read is in flight.
                    cut = true;
                    if ahead_first {
                        assert_eq!(held.run_all(), 1);
                    }
                    let file = OpenOptions::new().write(true).open(&path).unwrap();
                    file.set_len(0).unwrap();
                    append(&path, b"new 1\nnew 2\n");
                    held.run_all();
                }
                got.push(l);
            })
            .unwrap();
        assert!(stats.truncated, "{stats:?}");
        // The first window is 128 KiB; the one read ahead before the truncation, 512 KiB.
        let old_lines = lines_to(if ahead_first { 640 << 10 } else { 128 << 10 });
        assert_eq!(got.len(), old_lines + 2, "read ahead first: {ahead_first}");
        for (k, l) in got[..old_lines].iter().enumerate() {
            assert_eq!(
                (l.no, l.text.as_str()),
                (k as u64 + 1, format!("old {}", k + 1).as_str())
            );
        }
        assert_eq!(pairs(&got[old_lines..]), [(1, "new 1"), (2, "new 2")]);
        assert_eq!(f.state().offset, 12);
        assert_eq!(f.state().line_no, 2);
    }
}

/// The log renamed away (rotation) or deleted, and a new file put at its path, while a
/// window is being read ahead: the old file is read to its end through the descriptor the
/// read-ahead shares (its unterminated last line handed out), then the new one from its start
/// — whether the read-ahead ran before the change, after it, or never.
#[test]
fn the_log_replaced_while_a_window_is_read_ahead_is_finished_then_the_new_one_followed() {
    let mut old = Vec::new();
    for k in 1..=150_000 {
        old.extend_from_slice(format!("a {k}\n").as_bytes());
    }
    old.extend_from_slice(b"a last, unterminated");
    for (renamed, when) in [(true, 0), (true, 1), (false, 0), (false, 2), (true, 2)] {
        let (dir, path) = setup();
        append(&path, &old);
        let held = Arc::new(Held::default());
        let mut f = Follower::new(path.clone(), FollowState::default());
        f.set_read_ahead(held.clone());
        let mut got = Vec::new();
        let mut replaced = false;
        let mut stats = f
            .read_available(|l| {
                if !replaced {
                    replaced = true;
                    if when == 1 {
                        held.run_all();
                    }
                    if renamed {
                        fs::rename(&path, dir.path().join("training_1_full.log.1")).unwrap();
                    } else {
                        fs::remove_file(&path).unwrap();
                    }
                    append(&path, b"b 1\nb 2\n");
                    if when == 0 {
                        held.run_all();
                    }
                }
                got.push(l);
            })
            .unwrap();
        while stats.more {
            stats = f.read_available(|l| got.push(l)).unwrap();
        }
        assert!(stats.rotated, "{stats:?}");
        let n = 150_000;
        assert_eq!(got.len(), n + 3, "renamed {renamed}, when {when}");
        assert!(got[..n]
            .iter()
            .enumerate()
            .all(|(k, l)| l.no == k as u64 + 1 && l.text == format!("a {}", k + 1)));
        assert_eq!(
            pairs(&got[n..]),
            [(n as u64 + 1, "a last, unterminated"), (1, "b 1"), (2, "b 2")]
        );
    }
}
