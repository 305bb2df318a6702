//! A job's `executor` and its `[jobs.NAME.slurm]` table, resolved into [`Executor`]. Each
//! Slurm key falls back on `[defaults.slurm]` on its own (a cluster's partition and account
//! once, for every job). Values become sbatch options as argv elements, never shell text;
//! what sbatch would refuse, or what would change the submission trainwatch relies on (its
//! own `--output`, `--chdir`…), is refused here with the file, line and key.

use std::time::Duration;

use toml::Value;

use crate::engine::SchedulerPolicy;
use crate::exec::slurm::{Launch, SlurmSettings};
use crate::model::OnInfrastructure;

use super::super::raw::{RawJob, RawSlurm, S};
use super::super::{format_duration, parse_duration, Executor};
use super::job::JobCtx;
use super::R;

/// sbatch options trainwatch sets itself: the log it follows, where the job runs, the id it
/// reads back, the script it generated.
const OWN_OPTIONS: &[&str] = &[
    "--output",
    "--error",
    "--open-mode",
    "--chdir",
    "--job-name",
    "--parsable",
    "--wrap",
    "--array",
];

/// Slurm counts time limits in minutes.
const MIN_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The job's executor: `executor` (default `"local"`) and, for Slurm, its settings.
pub(super) fn executor(ctx: &JobCtx<'_>) -> R<Executor> {
    let o = ctx.o;
    let slurm = match ctx.pick("executor", |j| j.executor.as_ref()) {
        None => false,
        Some((v, key)) => match v.get_ref().as_str() {
            "local" => false,
            "slurm" => true,
            other => {
                return Err(o.at(
                    v.span(),
                    key,
                    format!("unknown executor {other:?}: expected \"local\" or \"slurm\""),
                ))
            }
        },
    };
    if !slurm {
        // A job's own Slurm table under a local executor is a mistake; `[defaults.slurm]`
        // only serves the jobs that use Slurm.
        if let Some(first) = ctx.job.slurm.as_ref().and_then(first_span) {
            return Err(o.at(
                first,
                format!("{}.slurm", ctx.prefix),
                "a [slurm] table needs executor = \"slurm\" in the same job (or in [defaults])",
            ));
        }
        return Ok(Executor::Local);
    }
    Ok(Executor::Slurm(settings(ctx)?))
}

fn first_span(t: &RawSlurm) -> Option<std::ops::Range<usize>> {
    [
        t.partition.as_ref().map(S::span),
        t.account.as_ref().map(S::span),
        t.qos.as_ref().map(S::span),
        t.time_limit.as_ref().map(S::span),
        t.nodes.as_ref().map(S::span),
        t.ntasks.as_ref().map(S::span),
        t.ntasks_per_node.as_ref().map(S::span),
        t.gpus.as_ref().map(S::span),
        t.cpus_per_task.as_ref().map(S::span),
        t.mem.as_ref().map(S::span),
        t.extra_args.as_ref().map(S::span),
        t.launch.as_ref().map(S::span),
        t.warn_before.as_ref().map(S::span),
        t.extend_by.as_ref().map(S::span),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|s| s.start)
}

type Get<'a, T> = fn(&'a RawSlurm) -> Option<&'a T>;

fn settings<'a>(ctx: &JobCtx<'a>) -> R<SlurmSettings> {
    let o = ctx.o;
    // One key of the Slurm table, the job's own or the default's, with the key it was
    // written under.
    fn pick<'a, T>(ctx: &JobCtx<'a>, field: &str, get: Get<'a, T>) -> Option<(&'a T, String)> {
        ctx.pick(&format!("slurm.{field}"), move |j: &'a RawJob| {
            j.slurm.as_ref().and_then(get)
        })
    }
    let name = |field: &str, get: Get<'a, S<String>>| -> R<Option<String>> {
        match pick(ctx, field, get) {
            None => Ok(None),
            Some((v, key)) => {
                let s = v.get_ref();
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err(o.at(
                        v.span(),
                        key,
                        format!("{field} must be one word (a Slurm name), got {s:?}"),
                    ))
                } else {
                    Ok(Some(s.clone()))
                }
            }
        }
    };
    let count = |field: &str, get: Get<'a, S<i64>>| -> R<Option<u32>> {
        match pick(ctx, field, get) {
            None => Ok(None),
            Some((v, key)) => match u32::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(o.at(
                    v.span(),
                    key,
                    format!("{field} must be a whole number from 1 to {}", u32::MAX),
                )),
            },
        }
    };

    let time_limit = match pick(ctx, "time_limit", |t| t.time_limit.as_ref()) {
        None => None,
        Some((v, key)) => {
            let d = parse_duration(v.get_ref()).map_err(|m| o.at(v.span(), &key, m))?;
            if d < MIN_TIME_LIMIT {
                return Err(o.at(
                    v.span(),
                    key,
                    format!(
                        "time_limit {} is below Slurm's smallest, one minute",
                        format_duration(d)
                    ),
                ));
            }
            Some(d)
        }
    };
    let nodes = count("nodes", |t| t.nodes.as_ref())?;
    let ntasks = count("ntasks", |t| t.ntasks.as_ref())?;
    let ntasks_per_node = count("ntasks_per_node", |t| t.ntasks_per_node.as_ref())?;
    if let (Some(n), Some(tasks)) = (nodes, ntasks) {
        if tasks < n {
            let (v, key) = pick(ctx, "ntasks", |t| t.ntasks.as_ref()).expect("ntasks was read");
            return Err(o.at(
                v.span(),
                key,
                format!("ntasks ({tasks}) is fewer than nodes ({n}): each node runs at least one task"),
            ));
        }
    }

    let gpus = match pick(ctx, "gpus", |t| t.gpus.as_ref()) {
        None => None,
        Some((v, key)) => Some(size(v.get_ref(), is_gpu_spec).ok_or_else(|| {
            o.at(
                v.span(),
                key,
                "gpus must be a count (4) or type:count (\"a100:4\")",
            )
        })?),
    };
    let mem = match pick(ctx, "mem", |t| t.mem.as_ref()) {
        None => None,
        Some((v, key)) => Some(size(v.get_ref(), is_mem_spec).ok_or_else(|| {
            o.at(
                v.span(),
                key,
                "mem must be megabytes (16000) or a size with a unit K, M, G or T (\"16G\")",
            )
        })?),
    };

    let extra_args = match pick(ctx, "extra_args", |t| t.extra_args.as_ref()) {
        None => Vec::new(),
        Some((list, key)) => list
            .get_ref()
            .iter()
            .map(|a| extra_arg(ctx, a, &key))
            .collect::<R<Vec<_>>>()?,
    };

    let launch = match pick(ctx, "launch", |t| t.launch.as_ref()) {
        None => Launch::default(),
        Some((v, key)) => match v.get_ref().as_str() {
            "srun" => Launch::Srun,
            "script" => Launch::Script,
            other => {
                return Err(o.at(
                    v.span(),
                    key,
                    format!("unknown launch {other:?}: expected \"srun\" (one task per rank) or \"script\" (a launcher such as torchrun, run once)"),
                ))
            }
        },
    };

    Ok(SlurmSettings {
        partition: name("partition", |t| t.partition.as_ref())?,
        account: name("account", |t| t.account.as_ref())?,
        qos: name("qos", |t| t.qos.as_ref())?,
        time_limit,
        nodes,
        ntasks,
        ntasks_per_node,
        gpus,
        cpus_per_task: count("cpus_per_task", |t| t.cpus_per_task.as_ref())?,
        mem,
        extra_args,
        launch,
    })
}

/// What the engine does about the scheduler: `[jobs.NAME.slurm]`'s `warn_before` and
/// `extend_by`, and `on_infrastructure` with `resubmit_limit` (each the job's own, else
/// `[defaults]`'s). Resolved for every job (a local job never meets a scheduler's limit or
/// failure, so its values are never used), so a bad value is an error wherever it is written.
pub(super) fn scheduler_policy<'a>(ctx: &JobCtx<'a>) -> R<SchedulerPolicy> {
    let o = ctx.o;
    fn duration<'a>(
        ctx: &JobCtx<'a>,
        field: &str,
        get: Get<'a, S<String>>,
        least: Duration,
    ) -> R<Option<Duration>> {
        let picked = ctx.pick(&format!("slurm.{field}"), move |j: &'a RawJob| {
            j.slurm.as_ref().and_then(get)
        });
        let Some((v, key)) = picked else { return Ok(None) };
        let d = parse_duration(v.get_ref()).map_err(|m| ctx.o.at(v.span(), &key, m))?;
        if d < least {
            return Err(ctx.o.at(
                v.span(),
                key,
                format!("{field} must be at least {}", format_duration(least)),
            ));
        }
        Ok(Some(d))
    }
    let warn_before = duration(
        ctx,
        "warn_before",
        |t| t.warn_before.as_ref(),
        Duration::from_secs(1),
    )?;
    // Slurm counts time limits in minutes: less cannot be asked for.
    let extend_by = duration(ctx, "extend_by", |t| t.extend_by.as_ref(), MIN_TIME_LIMIT)?;

    let policy = match ctx.pick("on_infrastructure", |j| j.on_infrastructure.as_ref()) {
        None => "resubmit",
        Some((v, key)) => match v.get_ref().as_str() {
            s @ ("resubmit" | "ask") => s,
            other => {
                return Err(o.at(
                    v.span(),
                    key,
                    format!("unknown on_infrastructure {other:?}: expected \"resubmit\" or \"ask\""),
                ))
            }
        },
    };
    let limit = ctx.pick("resubmit_limit", |j| j.resubmit_limit.as_ref());
    let on_infrastructure = match (policy, limit) {
        ("ask", Some((v, key))) if ctx.job.resubmit_limit.is_some() || ctx.job.on_infrastructure.is_none() => {
            return Err(o.at(
                v.span(),
                key,
                "resubmit_limit applies only with on_infrastructure = \"resubmit\" (on_infrastructure is \"ask\")",
            ))
        }
        ("ask", _) => OnInfrastructure::Ask,
        (_, None) => OnInfrastructure::default(),
        (_, Some((v, key))) => match u32::try_from(*v.get_ref()) {
            Ok(limit) if limit >= 1 => OnInfrastructure::Resubmit { limit },
            _ => {
                return Err(o.at(
                    v.span(),
                    key,
                    format!(
                        "resubmit_limit must be a whole number from 1 to {} (to never resubmit, use on_infrastructure = \"ask\")",
                        u32::MAX
                    ),
                ))
            }
        },
    };
    Ok(SchedulerPolicy {
        warn_before: warn_before.unwrap_or(SchedulerPolicy::DEFAULT_WARN_BEFORE),
        extend_by: extend_by.unwrap_or(SchedulerPolicy::DEFAULT_EXTEND_BY),
        on_infrastructure,
    })
}

/// A positive integer, or a string `valid` accepts.
fn size(v: &Value, valid: fn(&str) -> bool) -> Option<String> {
    match v {
        Value::Integer(n) if *n >= 1 => Some(n.to_string()),
        Value::String(s) if valid(s) => Some(s.clone()),
        _ => None,
    }
}

fn is_gpu_spec(s: &str) -> bool {
    let (kind, n) = s.rsplit_once(':').unwrap_or(("", s));
    let kind_ok = kind
        .split(':')
        .all(|k| k.is_empty() || k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)));
    kind_ok && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n != "0"
}

fn is_mem_spec(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    !digits.is_empty() && digits.len() + 1 >= s.len() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// One extra sbatch argument: a long option (`--name` or `--name=value`), so that nothing
/// can stand where sbatch reads the script's path; not one trainwatch sets itself.
fn extra_arg(ctx: &JobCtx<'_>, a: &S<String>, key: &str) -> R<String> {
    let s = a.get_ref();
    let fail = |m: String| Err(ctx.o.at(a.span(), key, m));
    if !s.starts_with("--") || s.len() < 3 {
        return fail(format!(
            "extra_args takes sbatch long options, one per element (\"--constraint=gpu\"), got {s:?}"
        ));
    }
    if s.contains('\0') {
        return fail("arguments must not contain a NUL character".into());
    }
    let opt = s.split_once('=').map_or(s.as_str(), |(o, _)| o);
    if OWN_OPTIONS.contains(&opt) {
        return fail(format!(
            "{opt} is set by trainwatch (it follows the job's log and reads its id back): remove it"
        ));
    }
    Ok(s.clone())
}

#[cfg(test)]
mod tests;
