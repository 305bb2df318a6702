//! What the suite reads from the kernel: a clock shared by every process (CLOCK_MONOTONIC,
//! so a stamp taken in the job and one taken by the reader compare directly), a process's
//! peak and current RSS (`/proc/PID/status`), and its CPU time summed over all its threads
//! with nanosecond resolution (`/proc/PID/task/*/schedstat`; `utime`/`stime` in
//! `/proc/PID/stat` tick at 10 ms, too coarse for an idle process).

use std::fs;

/// Nanoseconds on CLOCK_MONOTONIC (system-wide, comparable across processes).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A `kB` field of `/proc/PID/status` (VmHWM, VmRSS), in KiB.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time of every thread of `pid`, in ns (threads that already exited are not counted).
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for e in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let path = e.path().join("schedstat");
        if let Ok(s) = fs::read_to_string(path) {
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

/// utime + stime of `pid` from `/proc/PID/stat`, in clock ticks (a cross-check).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(status_kb(me, "VmHWM").unwrap_or(0) > 0);
        assert!(cpu_ns(me).is_some());
        assert!(cpu_ticks(me).is_some());
        let a = mono_ns();
        assert!(mono_ns() >= a);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 100.0);
        assert_eq!(percentile(&v, 99.0), 198.0);
        assert_eq!(percentile(&v, 100.0), 200.0);
    }
}
