//! The scheduler rules of a job as the config gives them: `warn_before` and `extend_by` in
//! `[jobs.NAME.slurm]`, `on_infrastructure` and `resubmit_limit` per job and in `[defaults]`,
//! their defaults, and each bad value reported at its file, line and key.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::engine::SchedulerPolicy;
use crate::model::OnInfrastructure;

fn policy(text: &str, job: &str) -> SchedulerPolicy {
    let cfg = Config::parse(text, Path::new("/proj/tw.toml")).unwrap_or_else(|e| panic!("{e}"));
    cfg.job(job).unwrap().engine.scheduler
}

/// The error a config must give: "file:line:col: key: message".
fn fail(text: &str) -> (usize, String, String) {
    let e = match Config::parse(text, Path::new("conf/bad.toml")) {
        Ok(_) => panic!("should have been rejected:\n{text}"),
        Err(e) => e,
    };
    let loc = e
        .location()
        .unwrap_or_else(|| panic!("no location in {e}"))
        .clone();
    let shown = e.to_string();
    let key = loc.key.clone().unwrap();
    assert!(
        shown.starts_with(&format!(
            "conf/bad.toml:{}:{}: {key}: ",
            loc.line.unwrap(),
            loc.column.unwrap()
        )),
        "{shown}"
    );
    (loc.line.unwrap(), key, shown)
}

const SLURM_JOB: &str = "[jobs.a]\nargv = [\"x\"]\nexecutor = \"slurm\"\n";

#[test]
fn defaults_warn_ten_minutes_ahead_extend_by_an_hour_and_resubmit_three_times() {
    let p = policy(SLURM_JOB, "a");
    assert_eq!(p.warn_before, Duration::from_secs(600));
    assert_eq!(p.extend_by, Duration::from_secs(3600));
    assert_eq!(p.on_infrastructure, OnInfrastructure::Resubmit { limit: 3 });
    // A local job gets the same defaults (it never meets a scheduler's limit or failure).
    assert_eq!(
        policy("[jobs.b]\nargv = [\"x\"]\n", "b"),
        SchedulerPolicy::default()
    );
}

#[test]
fn each_key_is_the_jobs_own_else_the_defaults() {
    let text = r#"
[defaults]
on_infrastructure = "ask"
[defaults.slurm]
warn_before = "30m"
[jobs.a]
argv = ["x"]
executor = "slurm"
[jobs.a.slurm]
extend_by = "2h"
[jobs.b]
argv = ["x"]
executor = "slurm"
on_infrastructure = "resubmit"
resubmit_limit = 5
[jobs.b.slurm]
warn_before = "5m"
"#;
    let a = policy(text, "a");
    assert_eq!(a.warn_before, Duration::from_secs(1800));
    assert_eq!(a.extend_by, Duration::from_secs(7200));
    assert_eq!(a.on_infrastructure, OnInfrastructure::Ask);
    let b = policy(text, "b");
    assert_eq!(b.warn_before, Duration::from_secs(300));
    assert_eq!(b.extend_by, Duration::from_secs(3600));
    assert_eq!(b.on_infrastructure, OnInfrastructure::Resubmit { limit: 5 });
}

#[test]
fn each_bad_value_is_reported_at_its_line_and_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[jobs.a.slurm]\nwarn_before = \"soon\"",
            5,
            "jobs.a.slurm.warn_before",
            "",
        ),
        (
            "[jobs.a.slurm]\nwarn_before = \"0s\"",
            5,
            "jobs.a.slurm.warn_before",
            "greater than zero",
        ),
        (
            "[jobs.a.slurm]\nextend_by = \"30s\"",
            5,
            "jobs.a.slurm.extend_by",
            "at least 1m",
        ),
        (
            "on_infrastructure = \"retry\"",
            4,
            "jobs.a.on_infrastructure",
            "\"resubmit\" or \"ask\"",
        ),
        ("resubmit_limit = 0", 4, "jobs.a.resubmit_limit", "from 1"),
        ("resubmit_limit = -1", 4, "jobs.a.resubmit_limit", "from 1"),
        (
            "on_infrastructure = \"ask\"\nresubmit_limit = 2",
            5,
            "jobs.a.resubmit_limit",
            "applies only with on_infrastructure = \"resubmit\"",
        ),
    ];
    for (lines, line, key, words) in cases {
        let (l, k, shown) = fail(&format!("{SLURM_JOB}{lines}\n"));
        assert_eq!((l, k.as_str()), (*line, *key), "{lines}: {shown}");
        assert!(shown.contains(words), "{lines}: {shown}");
    }
    // The Slurm keys belong to a Slurm job.
    let (l, k, shown) = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.slurm]\nwarn_before = \"5m\"\n");
    assert_eq!((l, k.as_str()), (4, "jobs.a.slurm"), "{shown}");
    // In [defaults] too.
    let (l, k, _) = fail(&format!("[defaults]\non_infrastructure = \"never\"\n{SLURM_JOB}"));
    assert_eq!((l, k.as_str()), (2, "defaults.on_infrastructure"));
}
