//! The no-config mode: `JobSpec::wrap` builds a job from a bare command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::{JobSettings, SchedulerPolicy};
use crate::model::JobName;
use crate::watch::detect::DetectConfig;
use crate::watch::progress::StallAfter;

use super::error::ConfigError;
use super::paths::{absolute, clean, join_clean};
use super::{
    format_duration, JobSpec, MetricsSettings, OnError, DEFAULT_KILL_GRACE, DEFAULT_MODEL, DEFAULT_RESULTS,
    DEFAULT_STATUS_INTERVAL,
};

/// Name a wrapped command after its program: the last `*.py` argument's stem
/// (`python -u scripts/train.py --lr 3` → `train`), else the executable's file name.
fn derive_name(argv: &[String]) -> String {
    let script = argv
        .iter()
        .rev()
        .find(|a| a.ends_with(".py") && !a.starts_with('-'))
        .and_then(|a| Path::new(a).file_stem())
        .map(|s| s.to_string_lossy().into_owned());
    let raw = script.unwrap_or_else(|| {
        Path::new(&argv[0])
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    sanitise_name(&raw)
}

/// Map any text to a valid job name: unsafe characters become `_`, no leading `.`/`-`.
fn sanitise_name(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    let mut name: String = trimmed.chars().take(64).collect();
    if name.is_empty() {
        name = "job".to_string();
    }
    name
}

/// The stall timeout until the job's own cadence is learnt (`--stall` not given, or the
/// config's `stall_timeout = "auto"`; see [`StallAfter::Cadence`]): a twelfth of the
/// expected duration (a 12 h run that prints nothing for an hour is worth a look; a 1 h run,
/// after 10 minutes), kept between 10 minutes (epochs, evaluations and checkpoint writes are
/// quiet for minutes) and 2 hours; 30 minutes when nothing is known about the run.
pub fn wrap_stall(expected: Option<Duration>) -> Duration {
    const MIN: Duration = Duration::from_secs(10 * 60);
    const MAX: Duration = Duration::from_secs(2 * 3600);
    match expected {
        Some(e) => (e / 12).clamp(MIN, MAX),
        None => Duration::from_secs(30 * 60),
    }
}

impl JobSpec {
    /// The no-config mode: `trainwatch run [--log F] [--expected D] [--max D] [--stall D] --
    /// CMD ARGS`. The job is named after the program (`python train.py` → `train`); its log
    /// defaults to `./trainwatch-<name>.log`; relative paths resolve against `cwd`; a stall
    /// is watched for always ([`wrap_stall`] without `--stall`).
    pub fn wrap(
        argv: Vec<String>,
        cwd: &Path,
        log: Option<PathBuf>,
        expected: Option<Duration>,
        max: Option<Duration>,
        status_interval: Option<Duration>,
        stall: Option<Duration>,
    ) -> Result<JobSpec, ConfigError> {
        if argv.is_empty() || argv[0].trim().is_empty() {
            return Err(ConfigError::Usage(
                "nothing to run: give the command after --, e.g. trainwatch run -- python train.py".into(),
            ));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(ConfigError::Usage(
                "the command must not contain a NUL character".into(),
            ));
        }
        if let (Some(e), Some(m)) = (expected, max) {
            if m < e {
                return Err(ConfigError::Usage(format!(
                    "--max ({}) is shorter than --expected ({})",
                    format_duration(m),
                    format_duration(e)
                )));
            }
        }
        for (flag, d) in [
            ("--expected", expected),
            ("--max", max),
            ("--status-interval", status_interval),
            ("--stall", stall),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::Usage(format!("{flag} must be greater than zero")));
            }
        }
        let workdir = absolute(cwd)?;
        let name = JobName::new(derive_name(&argv))
            .map_err(|e| ConfigError::Usage(format!("cannot name the job after the command: {e}")))?;
        let log = match log {
            Some(l) => clean(&workdir.join(l)),
            None => workdir.join(format!("trainwatch-{name}.log")),
        };
        let file = |t: &str| join_clean(&workdir, &t.replace("{name}", name.as_str()));
        let (results, model) = (file(DEFAULT_RESULTS), file(DEFAULT_MODEL));
        Ok(JobSpec {
            engine: JobSettings {
                job: name,
                argv,
                log,
                expected,
                max,
                status_interval: status_interval.unwrap_or(DEFAULT_STATUS_INTERVAL),
                on_error: OnError::Wait,
                unattended: false,
                approval_ttl: None,
                scheduler: SchedulerPolicy::default(),
            },
            stall_timeout: Some(match stall {
                Some(d) => StallAfter::Fixed(d),
                None => StallAfter::Cadence {
                    until_known: wrap_stall(expected),
                },
            }),
            results,
            model,
            outputs: Vec::new(),
            checkpoint: None,
            resume_argv: None,
            kill_grace: DEFAULT_KILL_GRACE,
            channel: None,
            detect: DetectConfig::default(),
            redact: crate::redact::Redactor::default(),
            design: Vec::new(),
            watch: Vec::new(),
            metrics: MetricsSettings::default(),
            env: BTreeMap::new(),
            workdir,
            executor: super::Executor::Local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_script_or_the_program() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            derive_name(&v(&["python", "-u", "src/train.py", "--lr", "3"])),
            "train"
        );
        assert_eq!(derive_name(&v(&["/usr/local/bin/my run!"])), "my_run_");
        assert_eq!(derive_name(&v(&["python", "a.py", "b/c.py"])), "c");
        assert_eq!(derive_name(&v(&["./.hidden"])), "hidden");
        assert_eq!(derive_name(&v(&["/"])), "job");
    }

    #[test]
    fn a_wrapped_command_is_always_watched_for_a_stall() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(wrap_stall(None), Duration::from_secs(30 * 60));
        assert_eq!(wrap_stall(Some(h(12))), h(1));
        assert_eq!(wrap_stall(Some(h(1))), Duration::from_secs(10 * 60));
        assert_eq!(wrap_stall(Some(h(48))), h(2));
        let dir = tempfile::tempdir().unwrap();
        let argv = vec!["python".to_string(), "train.py".to_string()];
        let spec = |stall| JobSpec::wrap(argv.clone(), dir.path(), None, Some(h(12)), None, None, stall);
        // Without --stall: learnt from the job's cadence, a twelfth of --expected until then.
        assert_eq!(
            spec(None).unwrap().stall_timeout,
            Some(StallAfter::Cadence { until_known: h(1) })
        );
        let five = Duration::from_secs(300);
        assert_eq!(
            spec(Some(five)).unwrap().stall_timeout,
            Some(StallAfter::Fixed(five))
        );
        assert!(spec(Some(Duration::ZERO)).is_err(), "--stall 0 is refused");
    }
}
