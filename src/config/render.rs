//! The human-readable form of a validated config, printed by `trainwatch check-config`:
//! what trainwatch will actually do (resolved paths, effective defaults, durations), so a
//! user can check it before a 24-hour run. Secrets never appear: for the Discord token only
//! the variable's name and whether it is set.

use std::fmt::Write;
use std::time::Duration;

use super::{format_duration, Config, JobSpec, OnError};
use crate::model::Persona;
use crate::watch::progress::StallAfter;

pub(crate) fn describe(cfg: &Config, is_set: impl Fn(&str) -> bool) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_all(&mut s, cfg, &is_set);
    s
}

fn opt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), format_duration)
}

fn list<T: std::fmt::Debug>(items: &[T]) -> String {
    if items.is_empty() {
        "[]".to_string()
    } else {
        let parts: Vec<String> = items.iter().map(|x| format!("{x:?}")).collect();
        format!("[{}]", parts.join(", "))
    }
}

fn write_all(s: &mut String, cfg: &Config, is_set: &dyn Fn(&str) -> bool) -> std::fmt::Result {
    writeln!(s, "config: {}", cfg.source.display())?;
    writeln!(s, "store: {}", cfg.store_path.display())?;
    writeln!(s, "jobs: {}", cfg.jobs.len())?;
    for job in &cfg.jobs {
        writeln!(s)?;
        write_job(s, job)?;
        write_executor(s, job, &cfg.store_path)?;
    }
    writeln!(s)?;
    writeln!(s, "roles:")?;
    if cfg.roles.is_empty() {
        writeln!(
            s,
            "  (none: nobody may decide from chat; the console user acts as director)"
        )?;
    }
    for p in Persona::ALL {
        let who = cfg.roles.principals(p);
        if !who.is_empty() {
            let names: Vec<String> = who.iter().map(ToString::to_string).collect();
            writeln!(s, "  {:<16} {}", p.as_str(), names.join(", "))?;
        }
    }
    writeln!(s)?;
    match &cfg.discord {
        None => writeln!(s, "discord: not configured (needed only by `trainwatch serve`)")?,
        Some(d) => {
            writeln!(s, "discord:")?;
            let state = if is_set(&d.token_env) { "set" } else { "NOT set" };
            writeln!(s, "  token_env:   {} ({state})", d.token_env)?;
            writeln!(
                s,
                "  guild_id:    {}",
                d.guild_id.as_deref().unwrap_or("- (global commands)")
            )?;
            writeln!(s, "  channel:     {}", d.channel)?;
            writeln!(s, "  status_mode: {}", d.status_mode)?;
            writeln!(s, "  proxy_url:   {}", d.proxy_url.as_deref().unwrap_or("-"))?;
            writeln!(s, "  https_proxy: {}", d.https_proxy.as_deref().unwrap_or("-"))?;
            match &d.ca_cert {
                None => writeln!(s, "  ca_cert:     -")?,
                Some(p) => {
                    let note = if p.is_file() { "" } else { " (file not found)" };
                    writeln!(s, "  ca_cert:     {}{note}", p.display())?
                }
            }
        }
    }
    Ok(())
}

/// Environment variables whose value is probably a credential (API keys, tokens): their
/// values are not printed, so the output can be pasted into a chat or an issue.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "KEY",
        "CREDENTIAL",
        "AUTH",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn write_job(s: &mut String, j: &JobSpec) -> std::fmt::Result {
    writeln!(s, "[{}]", j.engine.job)?;
    writeln!(s, "  argv:            {}", list(&j.engine.argv))?;
    let missing = if j.workdir.is_dir() { "" } else { " (not found)" };
    writeln!(s, "  workdir:         {}{missing}", j.workdir.display())?;
    if j.env.is_empty() {
        writeln!(s, "  env:             -")?;
    } else {
        let pairs: Vec<String> = j
            .env
            .iter()
            .map(|(k, v)| {
                if looks_secret(k) {
                    format!("{k}={}", crate::redact::MARK)
                } else {
                    format!("{k}={v:?}")
                }
            })
            .collect();
        writeln!(s, "  env:             {}", pairs.join(" "))?;
    }
    writeln!(s, "  log:             {}", j.engine.log.display())?;
    writeln!(s, "  expected:        {}", opt_duration(j.engine.expected))?;
    writeln!(s, "  max:             {}", opt_duration(j.engine.max))?;
    let stall = match j.stall_timeout {
        None => "-".to_string(),
        Some(StallAfter::Fixed(d)) => format_duration(d),
        Some(StallAfter::Cadence { until_known }) => format!(
            "auto (from the job's own output cadence; {} until it is learnt)",
            format_duration(until_known)
        ),
    };
    writeln!(s, "  stall_timeout:   {stall}")?;
    writeln!(
        s,
        "  status_interval: {}",
        format_duration(j.engine.status_interval)
    )?;
    writeln!(s, "  results:         {}", j.results.display())?;
    writeln!(s, "  model:           {}", j.model.display())?;
    let outputs: Vec<String> = j.outputs.iter().map(|p| p.display().to_string()).collect();
    writeln!(s, "  outputs:         {}", list(&outputs))?;
    writeln!(s, "  checkpoint:      {}", j.checkpoint.as_deref().unwrap_or("-"))?;
    match &j.resume_argv {
        Some(a) => writeln!(s, "  resume_argv:     {}", list(a))?,
        None => writeln!(s, "  resume_argv:     -")?,
    }
    let on_error = match j.engine.on_error {
        OnError::Wait => "wait (for a decision)".to_string(),
        other => other.to_string(),
    };
    writeln!(s, "  on_error:        {on_error}")?;
    writeln!(s, "  kill_grace:      {}", format_duration(j.kill_grace))?;
    writeln!(
        s,
        "  channel:         {}",
        j.channel.as_deref().unwrap_or("- (default)")
    )?;
    writeln!(s, "  detect:")?;
    writeln!(s, "    rhat_threshold: {:?}", j.detect.rhat_threshold)?;
    let ignore: Vec<&str> = j.detect.ignore.iter().map(regex::Regex::as_str).collect();
    writeln!(s, "    ignore:         {}", list(&ignore))?;
    if j.detect.extra.is_empty() {
        writeln!(s, "    extra:          -")?;
    }
    for (cat, re) in &j.detect.extra {
        writeln!(s, "    extra:          {cat}: {:?}", re.as_str())?;
    }
    let redact: Vec<&str> = j.redact.patterns().collect();
    writeln!(s, "  redact:          {}", list(&redact))?;
    let m = &j.metrics;
    writeln!(s, "  metrics:")?;
    writeln!(s, "    step:           {}", m.step.as_deref().unwrap_or("-"))?;
    writeln!(s, "    total:          {}", m.total.as_deref().unwrap_or("-"))?;
    writeln!(s, "    chart:          {}", list(&m.chart))?;
    writeln!(s, "    diverge_factor: {:?}", m.diverge_factor)?;
    if m.patterns.is_empty() {
        writeln!(s, "    patterns:       -")?;
    }
    for (name, re) in &m.patterns {
        writeln!(s, "    patterns:       {name}: {:?}", re.as_str())?;
    }
    if j.design.is_empty() {
        writeln!(s, "  design:           - (no re-validation gate)")?;
    } else {
        writeln!(s, "  design (Phase 4.5 gate):")?;
    }
    for p in &j.design {
        let from = match &p.source {
            crate::review::ParamSource::File { path, key } => format!("{}, key {key}", path.display()),
            crate::review::ParamSource::Pattern { regex, files } => {
                format!("/{}/ in {}", regex.0.as_str(), files.join(", "))
            }
        };
        writeln!(
            s,
            "    {:<15} {} ({}) from {from}",
            p.name, p.expected, p.tolerance
        )?;
    }
    if let Some(t) = j.engine.approval_ttl {
        writeln!(s, "  approval_ttl:    {}", format_duration(t))?;
    }
    if !j.watch.is_empty() {
        writeln!(s, "  watch:           {}", list(&j.watch))?;
    }
    Ok(())
}

/// Where the job runs; for Slurm, the exact sbatch command line and batch script.
fn write_executor(s: &mut String, j: &JobSpec, store: &std::path::Path) -> std::fmt::Result {
    use crate::exec::slurm::script;
    let path = script::script_path(store, j.engine.job.as_str());
    let Some(sub) = j.slurm_submission(&path) else {
        return writeln!(s, "  executor:        local");
    };
    writeln!(
        s,
        "  executor:        slurm (launch: {}, {} task(s))",
        sub.settings.launch.as_str(),
        sub.settings.tasks()
    )?;
    let shown = |k: &str, v: &str| {
        if looks_secret(k) {
            crate::redact::MARK.to_string()
        } else {
            v.to_string()
        }
    };
    writeln!(s, "  sbatch:          {}", script::command_line(&sub, shown))?;
    if sub.settings.labelled() {
        writeln!(
            s,
            "  ranks:           {} tasks, one log, each line labelled with its rank (srun --label)",
            sub.settings.tasks()
        )?;
    }
    let policy = &j.engine.scheduler;
    writeln!(
        s,
        "  scheduler:       timeout warning {} before the time limit; extend by {}; after a cluster failure: {}",
        format_duration(policy.warn_before),
        format_duration(policy.extend_by),
        policy.on_infrastructure
    )?;
    writeln!(s, "  batch script:    {}", path.display())?;
    for line in sub.script().lines() {
        writeln!(s, "    | {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TEXT: &str = r#"
[roles]
director = ["alice", "role:111"]
[jobs.m]
argv = ["python", "m.py"]
max = "24h"
env = { WANDB_API_KEY = "k-123", PYTHONUNBUFFERED = "1" }
[discord]
token_env = "TW_TEST_TOKEN_VAR"
channel = 222
"#;

    #[test]
    fn shows_token_variable_and_whether_it_is_set() {
        let cfg = Config::parse(TEXT, Path::new("/srv/p/tw.toml")).unwrap();
        let out = describe(&cfg, |v| v == "TW_TEST_TOKEN_VAR");
        assert!(out.contains("token_env:   TW_TEST_TOKEN_VAR (set)"), "{out}");
        let out = describe(&cfg, |_| false);
        assert!(out.contains("TW_TEST_TOKEN_VAR (NOT set)"), "{out}");
        assert!(out.contains("max:             24h"), "{out}");
        assert!(out.contains("status_interval: 30m"), "{out}");
        assert!(
            out.contains("log:             /srv/p/output/implementation/logs/training_m_full.log"),
            "{out}"
        );
        assert!(out.contains("director         alice, role:111"), "{out}");
        assert!(
            out.contains("PYTHONUNBUFFERED=\"1\" WANDB_API_KEY=[REDACTED]"),
            "{out}"
        );
        assert!(!out.contains("k-123"), "{out}");
    }
}
