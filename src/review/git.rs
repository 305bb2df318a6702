//! Read-only `git` queries for the changes summary: the commit a run started from, which watched
//! files were identical to it then, and the line ranges a file changed since. `git` runs from
//! argv (no shell) with a timeout and bounded output; any failure (no git, not a repository, a
//! repository git refuses) means "no line stats", never an error.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_OUTPUT: u64 = 4 << 20;

/// What git said about the workdir when a snapshot was taken.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GitBase {
    /// The commit checked out (HEAD).
    pub head: String,
    /// Watched files (relative to the workdir) that were tracked and identical to `head`: only
    /// for these does `git diff head -- file` show exactly what changed since the snapshot.
    pub clean: BTreeSet<PathBuf>,
}

/// Lines a file changed, from `git diff -U0`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LineStat {
    pub added: u32,
    pub removed: u32,
    /// Changed line ranges in the new file, inclusive; a pure deletion shows as the line it
    /// happened after.
    pub ranges: Vec<(u32, u32)>,
}

/// The git state of `workdir` for `files`, or None when git cannot tell.
pub(crate) fn base(workdir: &Path, files: &[PathBuf]) -> Option<GitBase> {
    let head = run(workdir, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
    let head = head.trim().to_string();
    if head.is_empty() || !head.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    if files.is_empty() {
        return Some(GitBase {
            head,
            clean: BTreeSet::new(),
        });
    }
    let tracked = paths(&run_paths(workdir, &["ls-files", "-z"], files)?);
    let dirty = paths(&run_paths(
        workdir,
        &["diff", "--name-only", "-z", "--relative", "--no-renames", &head],
        files,
    )?);
    Some(GitBase {
        head,
        clean: tracked.difference(&dirty).cloned().collect(),
    })
}

/// Line stats of `file` between `head` and the working tree; None for binary files or when git
/// cannot answer.
pub(crate) fn line_stat(workdir: &Path, head: &str, file: &Path) -> Option<LineStat> {
    let out = run_paths(
        workdir,
        &[
            "diff",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            head,
        ],
        &[file.to_path_buf()],
    )?;
    parse_unified_zero(&out)
}

/// Parses `git diff -U0` output for one file.
pub(crate) fn parse_unified_zero(out: &str) -> Option<LineStat> {
    let mut stat = LineStat {
        added: 0,
        removed: 0,
        ranges: Vec::new(),
    };
    let mut in_hunk = false;
    for line in out.lines() {
        if line.starts_with("diff --git ") {
            in_hunk = false;
        } else if line.starts_with("Binary files ") && !in_hunk {
            return None;
        } else if let Some(rest) = line.strip_prefix("@@ ") {
            in_hunk = true;
            let plus = rest.split_whitespace().find(|w| w.starts_with('+'))?;
            let mut nums = plus[1..].splitn(2, ',');
            let start: u32 = nums.next()?.parse().ok()?;
            let count: u32 = match nums.next() {
                Some(c) => c.parse().ok()?,
                None => 1,
            };
            stat.ranges.push(if count == 0 {
                (start.max(1), start.max(1))
            } else {
                (start, start + count - 1)
            });
        } else if in_hunk {
            if line.starts_with('+') {
                stat.added += 1;
            } else if line.starts_with('-') {
                stat.removed += 1;
            }
        }
    }
    Some(stat)
}

fn paths(z: &str) -> BTreeSet<PathBuf> {
    z.split('\0')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

fn run(workdir: &Path, args: &[&str]) -> Option<String> {
    run_paths(workdir, args, &[])
}

fn run_paths(workdir: &Path, args: &[&str], files: &[PathBuf]) -> Option<String> {
    let mut argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    if !files.is_empty() {
        argv.push("--".into());
        argv.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    }
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(workdir)
        // Read-only and inert: no index refresh writes, no fsmonitor hook, no pager, paths taken
        // literally (a file named "*.py" is not a glob).
        .args(["-c", "core.fsmonitor=false", "-c", "core.quotePath=false"])
        .args(["--no-pager", "--literal-pathspecs"])
        .args(&argv)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "git not available; changes use hashes only");
            return None;
        }
    };
    let stdout = child.stdout.take()?;
    // Read on a thread so the timeout below also covers a git that never closes its output.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut limited = stdout.take(MAX_OUTPUT + 1);
        let ok = limited.read_to_end(&mut buf).is_ok();
        (ok, buf)
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            // git mostly answers in a few milliseconds: look again soon.
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) | Err(_) => {
                tracing::warn!(?args, "git did not answer in time; changes use hashes only");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (ok, buf) = reader.join().ok()?;
    let status = status?;
    if !ok || !status.success() || buf.len() as u64 > MAX_OUTPUT {
        return None;
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_zero_hunks_give_ranges_and_counts() {
        let out = "diff --git a/m.py b/m.py\nindex 1..2 100644\n--- a/m.py\n+++ b/m.py\n\
@@ -3 +3 @@ def f():\n-    draws = 1000\n+    draws = 2000\n\
@@ -10,0 +11,2 @@\n+a\n+++b\n@@ -20,2 +22,0 @@\n--x\n-y\n";
        let s = parse_unified_zero(out).unwrap();
        assert_eq!(s.ranges, vec![(3, 3), (11, 12), (22, 22)]);
        assert_eq!((s.added, s.removed), (3, 3));
    }

    #[test]
    fn binary_diffs_have_no_line_stats() {
        let out = "diff --git a/w.bin b/w.bin\nindex 1..2 100644\nBinary files a/w.bin and b/w.bin differ\n";
        assert_eq!(parse_unified_zero(out), None);
    }
}
