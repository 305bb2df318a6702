//! One job table with the `[defaults]` it falls back on, resolved into a `JobSpec`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::JobSettings;
use crate::model::JobName;
use crate::redact::Redactor;
use crate::watch::progress::StallAfter;

use super::super::error::{join, Origin};
use super::super::paths::{expand, join_clean, template};
use super::super::raw::{RawJob, SList, S};
use super::super::{
    format_duration, parse_duration, JobSpec, OnError, DEFAULT_KILL_GRACE, DEFAULT_LOG, DEFAULT_MODEL,
    DEFAULT_RESTART_LIMIT, DEFAULT_RESULTS, DEFAULT_STATUS_INTERVAL,
};
use super::chat::discord_id;
use super::R;

/// One job with the `[defaults]` it falls back on.
pub(super) struct JobCtx<'a> {
    pub(super) o: &'a Origin<'a>,
    pub(super) job: &'a RawJob,
    pub(super) def: Option<&'a RawJob>,
    /// `jobs.<name>`
    pub(super) prefix: String,
    pub(super) name: &'a JobName,
}

impl<'a> JobCtx<'a> {
    /// The job's own value, else the default's, with the dotted key it was written under.
    pub(super) fn pick<T: ?Sized>(
        &self,
        field: &str,
        get: impl Fn(&'a RawJob) -> Option<&'a T>,
    ) -> Option<(&'a T, String)> {
        if let Some(v) = get(self.job) {
            return Some((v, format!("{}.{field}", self.prefix)));
        }
        self.def.and_then(get).map(|v| (v, format!("defaults.{field}")))
    }

    fn duration(
        &self,
        field: &str,
        get: impl Fn(&'a RawJob) -> Option<&'a S<String>>,
    ) -> R<Option<Duration>> {
        match self.pick(field, get) {
            None => Ok(None),
            Some((v, key)) => parse_duration(v.get_ref())
                .map(Some)
                .map_err(|m| self.o.at(v.span(), key, m)),
        }
    }

    /// A path relative to `base`, `{name}` expanded; `default` when not given.
    fn path(
        &self,
        field: &str,
        get: impl Fn(&'a RawJob) -> Option<&'a S<String>>,
        default: &str,
        base: &Path,
    ) -> R<PathBuf> {
        let t = match self.pick(field, get) {
            Some((v, key)) => template(self.o, v, &key, Some(self.name.as_str()))?,
            None => expand(default, Some(self.name.as_str())).unwrap_or_else(|_| default.into()),
        };
        Ok(join_clean(base, &t))
    }

    fn argv(&self, v: &SList, key: &str) -> R<Vec<String>> {
        if v.get_ref().is_empty() {
            return Err(self.o.at(
                v.span(),
                key,
                "must not be empty: give the program and its arguments, e.g. [\"python\", \"train.py\"]",
            ));
        }
        let first = &v.get_ref()[0];
        if first.get_ref().trim().is_empty() {
            return Err(self
                .o
                .at(first.span(), key, "the program (first element) must not be empty"));
        }
        v.get_ref()
            .iter()
            .map(|a| {
                if a.get_ref().contains('\0') {
                    Err(self
                        .o
                        .at(a.span(), key, "arguments must not contain a NUL character"))
                } else {
                    Ok(a.get_ref().clone())
                }
            })
            .collect()
    }

    pub(super) fn regex(&self, v: &S<String>, key: &str) -> R<regex::Regex> {
        regex::Regex::new(v.get_ref()).map_err(|e| {
            self.o.at(
                v.span(),
                key,
                format!("invalid regex {:?}: {}", v.get_ref(), regex_message(&e)),
            )
        })
    }

    /// The job's own command (never a default); `key_span` is the job's name in the file.
    pub(super) fn required_argv(&self, key_span: Range<usize>) -> R<Vec<String>> {
        match &self.job.argv {
            Some(v) => self.argv(v, &format!("{}.argv", self.prefix)),
            None => Err(self.o.at(
                key_span,
                &self.prefix,
                "argv is required: the command to run, e.g. argv = [\"python\", \"train.py\"]",
            )),
        }
    }

    pub(super) fn resolve(&self, config_dir: &Path, argv: Vec<String>) -> R<JobSpec> {
        let o = self.o;
        let name = self.name.as_str();

        let workdir = self.path("workdir", |j| j.workdir.as_ref(), ".", config_dir)?;

        let env = match self.pick("env", |j| j.env.as_ref()) {
            None => BTreeMap::new(),
            Some((m, key)) => {
                let mut env = BTreeMap::new();
                for (k, v) in m.get_ref() {
                    let kk = join(&key, k.get_ref());
                    let ks = k.get_ref();
                    if ks.is_empty() || ks.contains(['=', '\0']) {
                        return Err(o.at(k.span(), kk, "invalid environment variable name"));
                    }
                    if v.get_ref().contains('\0') {
                        return Err(o.at(
                            v.span(),
                            kk,
                            "environment values must not contain a NUL character",
                        ));
                    }
                    env.insert(ks.clone(), v.get_ref().clone());
                }
                env
            }
        };

        let log = self.path("log", |j| j.log.as_ref(), DEFAULT_LOG, &workdir)?;
        let expected = self.duration("expected", |j| j.expected.as_ref())?;
        let max = self.duration("max", |j| j.max.as_ref())?;
        if let (Some(e), Some(m)) = (expected, max) {
            if m < e {
                let (v, key) = self.pick("max", |j| j.max.as_ref()).expect("max was just read");
                return Err(o.at(
                    v.span(),
                    key,
                    format!(
                        "max ({}) is shorter than expected ({}): the timeout warning would come before the job could finish",
                        format_duration(m),
                        format_duration(e)
                    ),
                ));
            }
        }
        let stall_timeout = match self.pick("stall_timeout", |j| j.stall_timeout.as_ref()) {
            // Learnt from the job's own output cadence, as `trainwatch run` does without --stall.
            Some((v, _)) if v.get_ref().trim() == "auto" => Some(StallAfter::Cadence {
                until_known: crate::config::wrap::wrap_stall(expected),
            }),
            _ => self
                .duration("stall_timeout", |j| j.stall_timeout.as_ref())?
                .map(StallAfter::Fixed),
        };
        let status_interval = self
            .duration("status_interval", |j| j.status_interval.as_ref())?
            .unwrap_or(DEFAULT_STATUS_INTERVAL);
        let kill_grace = self
            .duration("kill_grace", |j| j.kill_grace.as_ref())?
            .unwrap_or(DEFAULT_KILL_GRACE);

        let results = self.path("results", |j| j.results.as_ref(), DEFAULT_RESULTS, &workdir)?;
        let model = self.path("model", |j| j.model.as_ref(), DEFAULT_MODEL, &workdir)?;
        let outputs = match self.pick("outputs", |j| j.outputs.as_ref()) {
            None => Vec::new(),
            Some((list, key)) => list
                .get_ref()
                .iter()
                .map(|v| template(o, v, &key, Some(name)).map(|t| join_clean(&workdir, &t)))
                .collect::<R<Vec<_>>>()?,
        };

        let checkpoint = match self.pick("checkpoint", |j| j.checkpoint.as_ref()) {
            None => None,
            Some((v, key)) => {
                let t = template(o, v, &key, Some(name))?;
                let pattern = if Path::new(&t).is_absolute() {
                    t
                } else {
                    let mut rel = t.as_str();
                    while let Some(r) = rel.strip_prefix("./") {
                        rel = r;
                    }
                    // The workdir is literal text inside the pattern: escape its glob characters.
                    let dir = glob::Pattern::escape(&workdir.to_string_lossy());
                    format!("{}/{rel}", dir.trim_end_matches('/'))
                };
                glob::Pattern::new(&pattern).map_err(|e| {
                    o.at(
                        v.span(),
                        &key,
                        format!("invalid glob {:?}: {}", v.get_ref(), e.msg),
                    )
                })?;
                Some(pattern)
            }
        };

        let resume_argv = match self.pick("resume_argv", |j| j.resume_argv.as_ref()) {
            None => None,
            Some((v, key)) => {
                let argv = self.argv(v, &key)?;
                if !argv.iter().any(|a| a.contains("{checkpoint}")) {
                    return Err(o.at(
                        v.span(),
                        key,
                        "resume_argv must contain {checkpoint} (replaced by the path of the newest checkpoint)",
                    ));
                }
                if checkpoint.is_none() {
                    return Err(o.at(
                        v.span(),
                        key,
                        "resume_argv needs `checkpoint`: a glob of the checkpoint files to resume from",
                    ));
                }
                Some(argv)
            }
        };

        let on_error = self.on_error()?;

        let channel = self
            .pick("channel", |j| j.channel.as_ref())
            .map(|(v, key)| discord_id(o, v, &key))
            .transpose()?;

        let detect = self.detect()?;
        let metrics = self.metrics()?;
        let design = match self.pick("design", |j| j.design.as_ref()) {
            None => Vec::new(),
            Some((v, key)) => {
                let parsed = crate::review::parse_design(v.get_ref())
                    .map_err(|e| o.at(v.span(), key, e.to_string()))?;
                crate::review::bind_job(&parsed, self.name)
            }
        };
        let watch = match self.pick("watch", |j| j.watch.as_ref()) {
            None => Vec::new(),
            Some((list, key)) => list
                .get_ref()
                .iter()
                .map(|v| template(o, v, &key, Some(name)))
                .collect::<R<Vec<_>>>()?,
        };
        let approval_ttl = self.duration("approval_ttl", |j| j.approval_ttl.as_ref())?;
        let redact = self.redact()?;

        Ok(JobSpec {
            engine: JobSettings {
                job: self.name.clone(),
                argv,
                log,
                expected,
                max,
                status_interval,
                on_error,
                // Whether anyone can decide is the runtime's to say, not the file's.
                unattended: false,
                approval_ttl,
                scheduler: super::slurm::scheduler_policy(self)?,
            },
            workdir,
            env,
            stall_timeout,
            results,
            model,
            outputs,
            checkpoint,
            resume_argv,
            kill_grace,
            channel,
            detect,
            metrics,
            design,
            watch,
            redact,
            executor: super::slurm::executor(self)?,
        })
    }

    /// The job's `redact` patterns added to those of `[defaults]`: a secret named for the
    /// whole file stays hidden in a job that names its own.
    fn redact(&self) -> R<Redactor> {
        let mut patterns = Vec::new();
        let lists = [
            self.def
                .and_then(|d| d.redact.as_ref())
                .map(|l| (l, "defaults.redact".to_string())),
            self.job
                .redact
                .as_ref()
                .map(|l| (l, format!("{}.redact", self.prefix))),
        ];
        for (list, key) in lists.into_iter().flatten() {
            for v in list.get_ref() {
                if v.get_ref().is_empty() {
                    return Err(self.o.at(v.span(), &key, "a redact pattern must not be empty"));
                }
                patterns.push(self.regex(v, &key)?);
            }
        }
        Ok(Redactor::new(patterns))
    }

    fn on_error(&self) -> R<OnError> {
        let o = self.o;
        let policy = match self.pick("on_error", |j| j.on_error.as_ref()) {
            None => "wait",
            Some((v, key)) => match v.get_ref().as_str() {
                s @ ("wait" | "kill" | "restart") => s,
                other => {
                    return Err(o.at(
                        v.span(),
                        key,
                        format!("unknown on_error {other:?}: expected \"wait\", \"kill\" or \"restart\""),
                    ))
                }
            },
        };
        // A restart_limit next to an on_error that never restarts is a mistake worth
        // reporting; one inherited from [defaults] is not.
        for table in [Some(self.job), self.def].into_iter().flatten() {
            let Some(limit) = &table.restart_limit else {
                continue;
            };
            let own_policy = table.on_error.as_ref().map(|v| v.get_ref().as_str());
            let effective = if std::ptr::eq(table, self.job) {
                Some(policy)
            } else {
                own_policy
            };
            if matches!(effective, Some(p) if p != "restart") {
                let key = if std::ptr::eq(table, self.job) {
                    format!("{}.restart_limit", self.prefix)
                } else {
                    "defaults.restart_limit".to_string()
                };
                return Err(o.at(
                    limit.span(),
                    key,
                    format!(
                        "restart_limit applies only with on_error = \"restart\" (on_error is {:?})",
                        effective.unwrap_or("wait")
                    ),
                ));
            }
        }
        Ok(match policy {
            "kill" => OnError::Kill,
            "restart" => {
                let limit = match self.pick("restart_limit", |j| j.restart_limit.as_ref()) {
                    None => DEFAULT_RESTART_LIMIT,
                    Some((v, key)) => match u32::try_from(*v.get_ref()) {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            return Err(o.at(
                                v.span(),
                                key,
                                format!(
                                    "restart_limit must be a whole number from 1 to {} (to never restart, use on_error = \"wait\" or \"kill\")",
                                    u32::MAX
                                ),
                            ))
                        }
                    },
                };
                OnError::Restart { limit }
            }
            _ => OnError::Wait,
        })
    }
}

/// The regex crate's message without its multi-line caret drawing.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_messages_are_one_line() {
        let unclosed = String::from("(");
        let e = regex::Regex::new(&unclosed).unwrap_err();
        let m = regex_message(&e);
        assert!(!m.contains('\n'));
        assert!(m.contains("unclosed group"), "{m}");
    }
}
