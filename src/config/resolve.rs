//! From the file as written to the typed config: applies `[defaults]` and built-in defaults,
//! expands `{name}`, makes paths absolute, compiles regexes, and checks every value — each
//! error carrying the span of the value (or key) at fault, so it names the line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::engine::JobSettings;
use crate::model::{Category, JobName, Persona};
use crate::watch::detect::DetectConfig;

use super::error::{join, ConfigError, Origin};
use super::raw::{DiscordId, RawConfig, RawDetect, RawDiscord, RawJob, RawMetrics, SList, S};
use super::roles::{check_discord_id, Principal, Roles};
use super::{
    format_duration, parse_duration, Config, DiscordConfig, JobSpec, MetricsSettings, OnError, StatusMode,
    DEFAULT_DIVERGE_FACTOR, DEFAULT_KILL_GRACE, DEFAULT_LOG, DEFAULT_MODEL, DEFAULT_RESTART_LIMIT,
    DEFAULT_RESULTS, DEFAULT_RHAT_THRESHOLD, DEFAULT_STATUS_INTERVAL, DEFAULT_STORE, DEFAULT_TOKEN_ENV,
};

type R<T> = Result<T, ConfigError>;

pub(crate) fn resolve(text: &str, source: &Path) -> R<Config> {
    let o = Origin { text, file: source };
    let raw: RawConfig = toml::from_str(text).map_err(|e| o.toml_error(&e))?;
    let abs_source = absolute(source)?;
    let base = abs_source
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));

    let store_path = match raw.store.as_ref().and_then(|s| s.path.as_ref()) {
        Some(p) => {
            let t = template(&o, p, "store.path", None)?;
            join_clean(&base, &t)
        }
        None => join_clean(&base, DEFAULT_STORE),
    };

    let roles = resolve_roles(&o, &raw.roles)?;

    let defaults = raw.defaults.as_ref();
    if let Some(argv) = defaults.and_then(|d| d.get_ref().argv.as_ref()) {
        return Err(o.at(
            argv.span(),
            "defaults.argv",
            "argv cannot have a default: each job states its own command",
        ));
    }

    if let Some(d) = defaults {
        // Check [defaults] on its own too: a bad default that every job overrides would
        // otherwise go unnoticed until a new job inherits it.
        let no_job = RawJob::default();
        let name = JobName::new("defaults").expect("a valid job name");
        let ctx = JobCtx {
            o: &o,
            job: &no_job,
            def: Some(d.get_ref()),
            prefix: "defaults".into(),
            name: &name,
            key_span: d.span(),
        };
        ctx.resolve(&base, Vec::new())?;
    }

    let mut jobs = Vec::with_capacity(raw.jobs.len());
    for (key, job) in &raw.jobs {
        let name = JobName::new(key.get_ref().as_str())
            .map_err(|e| o.at(key.span(), join("jobs", key.get_ref()), e.to_string()))?;
        let j = JobCtx {
            o: &o,
            job: job.get_ref(),
            def: defaults.map(|d| d.get_ref()),
            prefix: join("jobs", key.get_ref()),
            name: &name,
            key_span: key.span(),
        };
        let argv = j.required_argv()?;
        jobs.push(j.resolve(&base, argv)?);
    }
    // BTreeMap iteration already gives name order; sort anyway so the promise does not hang
    // on the raw map type.
    jobs.sort_by(|a, b| a.engine.job.cmp(&b.engine.job));

    let discord = match &raw.discord {
        Some(d) => Some(resolve_discord(&o, d, &base)?),
        None => None,
    };

    Ok(Config {
        source: abs_source,
        store_path,
        roles,
        jobs,
        discord,
    })
}

fn absolute(p: &Path) -> R<PathBuf> {
    std::path::absolute(p)
        .map(|p| clean(&p))
        .map_err(|source| ConfigError::Io {
            path: p.to_path_buf(),
            source,
        })
}

/// Drop `.` components (`./a/./b` → `a/b`). `..` is kept: resolving it without the file
/// system would be wrong across symlinks.
/// Lexically tidy a path: drop `.`, and let `..` cancel the folder before it (as Go's
/// `filepath.Clean` does), so `config/../output` is shown and used as `output`.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(c.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn join_clean(base: &Path, p: &str) -> PathBuf {
    clean(&base.join(p))
}

/// Expand `{name}` (when a job name is given); any other `{word}` is an error, so a typo
/// like `{nmae}` is caught instead of creating a file called `{nmae}`.
fn expand(t: &str, name: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let word_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if word_len > 0 && after[word_len..].starts_with('}') {
            let word = &after[..word_len];
            match (word, name) {
                ("name", Some(n)) => out.push_str(n),
                _ => {
                    let allowed = if name.is_some() {
                        "only {name} (the job name) is expanded in paths"
                    } else {
                        "no placeholder is expanded here"
                    };
                    return Err(format!("unknown placeholder {{{word}}} in {t:?}: {allowed}"));
                }
            }
            rest = &after[word_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A path as written: non-empty, no NUL, placeholders expanded.
fn template(o: &Origin, v: &S<String>, key: &str, name: Option<&str>) -> R<String> {
    let s = v.get_ref();
    if s.trim().is_empty() {
        return Err(o.at(v.span(), key, "must not be empty"));
    }
    if s.contains('\0') {
        return Err(o.at(v.span(), key, "must not contain a NUL character"));
    }
    expand(s, name).map_err(|m| o.at(v.span(), key, m))
}

fn resolve_roles(o: &Origin, raw: &BTreeMap<S<String>, SList>) -> R<Roles> {
    let mut map: BTreeMap<Persona, Vec<Principal>> = BTreeMap::new();
    for (k, list) in raw {
        let key = join("roles", k.get_ref());
        let persona: Persona = k.get_ref().parse().map_err(|m: String| o.at(k.span(), &key, m))?;
        let entry = map.entry(persona).or_default();
        for p in list.get_ref() {
            let principal: Principal = p.get_ref().parse().map_err(|m: String| o.at(p.span(), &key, m))?;
            if !entry.contains(&principal) {
                entry.push(principal);
            }
        }
    }
    Ok(Roles::new(map))
}

fn discord_id(o: &Origin, v: &S<DiscordId>, key: &str) -> R<String> {
    let id = &v.get_ref().0;
    check_discord_id(id).map_err(|m| o.at(v.span(), key, m))?;
    Ok(id.clone())
}

fn http_url(o: &Origin, v: &S<String>, key: &str) -> R<String> {
    let s = v.get_ref().trim();
    let ok = reqwest::Url::parse(s)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    if !ok {
        return Err(o.at(
            v.span(),
            key,
            format!("invalid URL {s:?}: expected http://HOST:PORT or https://HOST:PORT"),
        ));
    }
    Ok(s.to_string())
}

fn resolve_discord(o: &Origin, d: &S<RawDiscord>, base: &Path) -> R<DiscordConfig> {
    let span = d.span();
    let d = d.get_ref();
    if let Some(t) = &d.token {
        return Err(o.at(
            t.span(),
            "discord.token",
            "never write the bot token in the config file: put it in an environment variable \
             and give that variable's name as token_env (e.g. token_env = \"DISCORD_TOKEN\")",
        ));
    }
    let token_env = match &d.token_env {
        Some(v) => {
            let s = v.get_ref();
            let is_name = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_name {
                // The value is not echoed: someone may have pasted the token itself here.
                return Err(o.at(
                    v.span(),
                    "discord.token_env",
                    "token_env is the NAME of the environment variable holding the token \
                     (letters, digits, _; e.g. DISCORD_TOKEN), not the token itself",
                ));
            }
            s.clone()
        }
        None => DEFAULT_TOKEN_ENV.to_string(),
    };
    let channel = match &d.channel {
        Some(c) => discord_id(o, c, "discord.channel")?,
        None => {
            return Err(o.at(
                span,
                "discord.channel",
                "missing: the id of the default channel for the bot's messages",
            ))
        }
    };
    let guild_id = d
        .guild_id
        .as_ref()
        .map(|g| discord_id(o, g, "discord.guild_id"))
        .transpose()?;
    let status_mode = match &d.status_mode {
        None => StatusMode::Edit,
        Some(v) => match v.get_ref().as_str() {
            "edit" => StatusMode::Edit,
            "new" => StatusMode::New,
            other => {
                return Err(o.at(
                    v.span(),
                    "discord.status_mode",
                    format!("unknown status_mode {other:?}: expected \"edit\" or \"new\""),
                ))
            }
        },
    };
    let proxy_url = d
        .proxy_url
        .as_ref()
        .map(|v| http_url(o, v, "discord.proxy_url"))
        .transpose()?;
    let https_proxy = d
        .https_proxy
        .as_ref()
        .map(|v| http_url(o, v, "discord.https_proxy"))
        .transpose()?;
    let ca_cert = d
        .ca_cert
        .as_ref()
        .map(|v| template(o, v, "discord.ca_cert", None).map(|t| join_clean(base, &t)))
        .transpose()?;
    Ok(DiscordConfig {
        token_env,
        guild_id,
        channel,
        status_mode,
        proxy_url,
        https_proxy,
        ca_cert,
    })
}

/// One job with the `[defaults]` it falls back on.
struct JobCtx<'a> {
    o: &'a Origin<'a>,
    job: &'a RawJob,
    def: Option<&'a RawJob>,
    /// `jobs.<name>`
    prefix: String,
    name: &'a JobName,
    key_span: Range<usize>,
}

impl<'a> JobCtx<'a> {
    /// The job's own value, else the default's, with the dotted key it was written under.
    fn pick<T: ?Sized>(
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

    fn regex(&self, v: &S<String>, key: &str) -> R<regex::Regex> {
        regex::Regex::new(v.get_ref()).map_err(|e| {
            self.o.at(
                v.span(),
                key,
                format!("invalid regex {:?}: {}", v.get_ref(), regex_message(&e)),
            )
        })
    }

    /// The job's own command (never a default).
    fn required_argv(&self) -> R<Vec<String>> {
        match &self.job.argv {
            Some(v) => self.argv(v, &format!("{}.argv", self.prefix)),
            None => Err(self.o.at(
                self.key_span.clone(),
                &self.prefix,
                "argv is required: the command to run, e.g. argv = [\"python\", \"train.py\"]",
            )),
        }
    }

    fn resolve(&self, config_dir: &Path, argv: Vec<String>) -> R<JobSpec> {
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
        let stall_timeout = self.duration("stall_timeout", |j| j.stall_timeout.as_ref())?;
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
        })
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

    fn detect(&self) -> R<DetectConfig> {
        let o = self.o;
        let d = |j: &'a RawJob| -> Option<&'a RawDetect> { j.detect.as_ref() };
        let rhat_threshold = match self.pick("detect.rhat_threshold", |j| d(j)?.rhat_threshold.as_ref()) {
            None => DEFAULT_RHAT_THRESHOLD,
            Some((v, key)) => {
                let x = *v.get_ref();
                if !(x.is_finite() && x > 1.0) {
                    return Err(o.at(
                        v.span(),
                        key,
                        format!("rhat_threshold must be a number above 1.0, got {x}"),
                    ));
                }
                x
            }
        };
        let ignore = match self.pick("detect.ignore", |j| d(j)?.ignore.as_ref()) {
            None => Vec::new(),
            Some((list, key)) => list
                .get_ref()
                .iter()
                .map(|v| self.regex(v, &key))
                .collect::<R<Vec<_>>>()?,
        };
        let mut extra = Vec::new();
        if let Some((map, key)) = self.pick("detect.extra", |j| d(j)?.extra.as_ref()) {
            for (cat, list) in map {
                let k = join(&key, cat.get_ref());
                let category: Category = cat
                    .get_ref()
                    .parse()
                    .map_err(|m: String| o.at(cat.span(), &k, m))?;
                for v in list.get_ref() {
                    extra.push((category, self.regex(v, &k)?));
                }
            }
        }
        Ok(DetectConfig {
            rhat_threshold,
            ignore,
            extra,
        })
    }

    fn metrics(&self) -> R<MetricsSettings> {
        let o = self.o;
        let m = |j: &'a RawJob| -> Option<&'a RawMetrics> { j.metrics.as_ref() };
        let metric_name = |v: &S<String>, key: &str| -> R<String> {
            let s = v.get_ref().trim();
            if s.is_empty() {
                Err(o.at(v.span(), key, "a metric name must not be empty"))
            } else {
                Ok(s.to_string())
            }
        };
        let step = self
            .pick("metrics.step", |j| m(j)?.step.as_ref())
            .map(|(v, key)| metric_name(v, &key))
            .transpose()?;
        let total = self
            .pick("metrics.total", |j| m(j)?.total.as_ref())
            .map(|(v, key)| metric_name(v, &key))
            .transpose()?;
        let chart = match self.pick("metrics.chart", |j| m(j)?.chart.as_ref()) {
            None => Vec::new(),
            Some((list, key)) => list
                .get_ref()
                .iter()
                .map(|v| metric_name(v, &key))
                .collect::<R<Vec<_>>>()?,
        };
        let diverge_factor = match self.pick("metrics.diverge_factor", |j| m(j)?.diverge_factor.as_ref()) {
            None => DEFAULT_DIVERGE_FACTOR,
            Some((v, key)) => {
                let x = *v.get_ref();
                if !(x.is_finite() && x > 1.0) {
                    return Err(o.at(
                        v.span(),
                        key,
                        format!("diverge_factor must be a number above 1.0, got {x}"),
                    ));
                }
                x
            }
        };
        let mut patterns = Vec::new();
        if let Some((map, key)) = self.pick("metrics.patterns", |j| m(j)?.patterns.as_ref()) {
            for (name, v) in map {
                let k = join(&key, name.get_ref());
                if name.get_ref().trim().is_empty() {
                    return Err(o.at(name.span(), &k, "a metric name must not be empty"));
                }
                let re = self.regex(v, &k)?;
                let groups = re.captures_len() - 1;
                if groups != 1 {
                    return Err(o.at(
                        v.span(),
                        &k,
                        format!(
                            "the regex must have exactly one capture group (the value), it has {groups}; use (?:...) for grouping that is not the value"
                        ),
                    ));
                }
                patterns.push((name.get_ref().clone(), re));
            }
        }
        Ok(MetricsSettings {
            step,
            total,
            chart,
            diverge_factor,
            patterns,
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

pub(crate) fn wrap(
    argv: Vec<String>,
    cwd: &Path,
    log: Option<PathBuf>,
    expected: Option<Duration>,
    max: Option<Duration>,
    status_interval: Option<Duration>,
) -> R<JobSpec> {
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
        },
        stall_timeout: None,
        results,
        model,
        outputs: Vec::new(),
        checkpoint: None,
        resume_argv: None,
        kill_grace: DEFAULT_KILL_GRACE,
        channel: None,
        detect: DetectConfig::default(),
        design: Vec::new(),
        watch: Vec::new(),
        metrics: MetricsSettings::default(),
        env: BTreeMap::new(),
        workdir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_only_name() {
        assert_eq!(
            expand("logs/{name}_full.log", Some("m3")).unwrap(),
            "logs/m3_full.log"
        );
        assert_eq!(expand("a{b", Some("x")).unwrap(), "a{b");
        assert_eq!(expand("{}{name}", Some("x")).unwrap(), "{}x");
        let e = expand("out/{nmae}.csv", Some("x")).unwrap_err();
        assert!(e.contains("{nmae}"), "{e}");
        assert!(expand("{checkpoint}", Some("x")).is_err());
        assert!(expand("{name}", None).is_err());
    }

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
    fn clean_drops_dot_components_and_resolves_parents_lexically() {
        assert_eq!(clean(Path::new("/a/./b/.")), PathBuf::from("/a/b"));
        assert_eq!(clean(Path::new("/a/../b")), PathBuf::from("/b"));
        assert_eq!(
            clean(Path::new("/srv/config/../output/x.log")),
            PathBuf::from("/srv/output/x.log")
        );
        // Nothing to cancel: a leading `..` of a relative path stays.
        assert_eq!(clean(Path::new("../a")), PathBuf::from("../a"));
        assert_eq!(clean(Path::new("/..")), PathBuf::from("/.."));
    }

    #[test]
    fn regex_messages_are_one_line() {
        let unclosed = String::from("(");
        let e = regex::Regex::new(&unclosed).unwrap_err();
        let m = regex_message(&e);
        assert!(!m.contains('\n'));
        assert!(m.contains("unclosed group"), "{m}");
    }
}
