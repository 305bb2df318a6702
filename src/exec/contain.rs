//! Holding all of a job's processes together, so that a kill reaches every one of them and
//! none outlives the job unnoticed — including a worker that left the job's session and
//! process group (`setsid`, a double fork). The shim uses the first way the machine allows:
//!
//! - **a cgroup v2 per job** (`trainwatch-job-<shim pid>` under the shim's own cgroup): the
//!   kernel keeps every descendant in it whatever it does with sessions, and `cgroup.kill`
//!   ends them all at once. Needs a cgroup2 mount whose shim's cgroup is writable (root, or a
//!   delegated subtree);
//! - **else the shim as child subreaper**: orphaned descendants are re-parented to the shim
//!   instead of init, so the job's processes are exactly the shim's descendants in `/proc`.
//!
//! Either way the job's process group is counted too: it costs nothing and still covers the
//! job if its shim was killed. Which way holds a job is recorded in its state folder.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::state::{self, ProcStat};

/// How a job's processes are held together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Containment {
    /// Every process of the job is in this cgroup v2 folder.
    Cgroup(PathBuf),
    /// The job's processes are the shim's descendants (the shim is their subreaper).
    #[default]
    Subreaper,
}

impl std::fmt::Display for Containment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Containment::Cgroup(p) => write!(f, "cgroup v2 {}", p.display()),
            Containment::Subreaper => f.write_str("shim as child subreaper"),
        }
    }
}

/// Make a fresh cgroup named `name` under this process's own cgroup v2, or say why not.
pub(crate) fn make_cgroup(name: &str) -> Result<PathBuf, String> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading mountinfo: {e}"))?;
    let (root, mount) = cgroup2_mount(&mounts).ok_or("no cgroup2 file system is mounted")?;
    let own =
        fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2")?;
    let rel = Path::new(own.trim())
        .strip_prefix(&root)
        .map_err(|_| format!("our cgroup {own} is outside the mounted cgroup2 tree"))?;
    let dir = mount.join(rel).join(name);
    fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The root and the mount point of the first cgroup2 mount in a `mountinfo` text.
fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = left.split_whitespace().collect();
        Some((
            PathBuf::from(unescape(f.get(3)?)),
            PathBuf::from(unescape(f.get(4)?)),
        ))
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The path of `cgroup.procs` in `dir`, ready for [`enter_cgroup`] after a fork.
pub(crate) fn procs_file(dir: &Path) -> Option<CString> {
    CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()
}

/// Move the calling process into the cgroup whose `cgroup.procs` is `procs`. Only
/// async-signal-safe calls: it runs between fork and exec. A failure is not reported here:
/// the shim checks membership afterwards and falls back to the subreaper.
pub(crate) fn enter_cgroup(procs: &CString) {
    // SAFETY: open/write/close on a NUL-terminated path; no allocation.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
}

/// The PIDs listed in a cgroup (empty when it is gone).
fn cgroup_pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// True when `pid` is in the cgroup `dir`.
pub(crate) fn in_cgroup(dir: &Path, pid: u32) -> bool {
    cgroup_pids(dir).contains(&pid)
}

/// Remove a job's cgroup once it is empty (a no-op for a subreaper or a cgroup in use).
pub(crate) fn remove(c: &Containment) {
    if let Containment::Cgroup(dir) = c {
        if let Err(e) = fs::remove_dir(dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(cgroup = %dir.display(), error = %e, "removing the job's cgroup");
            }
        }
    }
}

/// Who to look for: the job's holder and its group, each only if known to be the original
/// (a PID reused by an unrelated process is passed as `None`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Roots {
    /// The live shim: its descendants are the job's.
    pub shim: Option<u32>,
    /// The job's process group.
    pub pgid: Option<u32>,
}

/// The job's live processes (zombies left out, the shim itself never included): its cgroup's
/// members, the shim's descendants and its process group's members.
pub(crate) fn members(c: &Containment, roots: Roots) -> Vec<u32> {
    let table: Vec<(u32, ProcStat)> = fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| Some((pid, state::proc_stat(pid)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut found: Vec<u32> = match c {
        Containment::Cgroup(dir) => cgroup_pids(dir),
        Containment::Subreaper => Vec::new(),
    };
    if let Some(pgid) = roots.pgid {
        found.extend(
            table
                .iter()
                .filter(|(_, s)| s.pgrp as i64 == pgid as i64)
                .map(|(p, _)| *p),
        );
    }
    if let Some(shim) = roots.shim {
        found.extend(descendants(&table, shim));
    }
    found.sort_unstable();
    found.dedup();
    found.retain(|p| Some(*p) != roots.shim && table.iter().any(|(q, s)| q == p && s.is_live()));
    found
}

/// Every process below `root` in a `/proc` table, by parent links.
fn descendants(table: &[(u32, ProcStat)], root: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, s) in table {
            if s.ppid as i64 == parent as i64 && *pid != root && !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

/// Send `sig` to the job's group and to each of `pids`; a SIGKILL also goes through
/// `cgroup.kill` where there is one (which catches a process forked meanwhile).
pub(crate) fn signal(c: &Containment, roots: Roots, pids: &[u32], sig: Signal) {
    if let (Containment::Cgroup(dir), Signal::SIGKILL) = (c, sig) {
        let _ = fs::write(dir.join("cgroup.kill"), "1");
    }
    if let Some(pgid) = roots.pgid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
        let _ = kill(Pid::from_raw(-pgid), sig);
    }
    for pid in pids {
        if let Ok(raw) = i32::try_from(*pid) {
            if raw > 1 && Some(*pid) != roots.shim {
                let _ = kill(Pid::from_raw(raw), sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_among_v1_mounts() {
        let info = "\
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
35 25 0:31 / /sys/fs/cgroup/unified rw,relatime shared:14 - cgroup2 cgroup2 rw
36 25 0:32 / /mnt/with\\040space rw - cgroup2 none rw";
        assert_eq!(
            cgroup2_mount(info),
            Some((PathBuf::from("/"), PathBuf::from("/sys/fs/cgroup/unified")))
        );
        assert_eq!(cgroup2_mount("30 25 0:26 / /x rw - ext4 /dev/sda rw"), None);
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
    }

    #[test]
    fn descendants_follow_parent_links_down_the_tree() {
        let st = |ppid: i32| ProcStat {
            state: 'S',
            ppid,
            pgrp: 1,
            starttime: 0,
        };
        // 10 is the shim; 11 its child; 12 a grandchild; 13 an unrelated process.
        let table = vec![(10, st(1)), (11, st(10)), (12, st(11)), (13, st(1))];
        let mut d = descendants(&table, 10);
        d.sort_unstable();
        assert_eq!(d, vec![11, 12]);
        assert!(descendants(&table, 12).is_empty());
    }
}
