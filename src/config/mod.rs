//! Configuration: jobs, roles and chat settings read from a TOML file, validated into
//! typed values. A bad config is reported with the file, the line and the key.
//!
//! `raw` mirrors the file (with spans), `resolve` checks it and builds the types below (one
//! submodule per part of the file: a job table, its `detect`/`metrics` tables, `[roles]` and
//! `[discord]`), `paths` expands and tidies the paths it names, and `render` prints the
//! result for `trainwatch check-config`. `wrap` (`JobSpec::wrap`) builds a job from a bare
//! command line for the no-config mode. What supervising needs beyond a valid file (at
//! least one job, a usable store path) is one check, `Config::check_supervisable`, made by
//! `check-config`, `run` and `serve` alike. A job's settings are built as the types their
//! consumers use (`engine::JobSettings`, `watch::detect::DetectConfig`): nothing is mapped.

mod duration;
mod error;
mod paths;
mod raw;
mod render;
mod resolve;
mod roles;
mod wrap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{format_duration, parse_duration, parse_duration_arg};
pub use error::{ConfigError, Located};
pub use roles::{Principal, Roles};

use crate::engine::JobSettings;
use crate::watch::detect::DetectConfig;
use crate::watch::progress::StallAfter;

/// Status updates every 30 minutes unless a job says otherwise (the protocol's interval).
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Time between SIGTERM and SIGKILL when a job is stopped.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(30);
/// Restarts allowed by `on_error = "restart"` when `restart_limit` is not given.
pub const DEFAULT_RESTART_LIMIT: u32 = 3;
/// R-hat above this is a convergence problem (the protocol's threshold).
pub const DEFAULT_RHAT_THRESHOLD: f64 = 1.1;
/// A loss this many times its best value counts as diverging.
pub const DEFAULT_DIVERGE_FACTOR: f64 = 3.0;
/// The protocol's file layout, relative to the job's workdir; `{name}` is the job name.
pub const DEFAULT_LOG: &str = "output/implementation/logs/training_{name}_full.log";
pub const DEFAULT_RESULTS: &str = "output/results/results_{name}.csv";
pub const DEFAULT_MODEL: &str = "output/implementation/models/model_{name}_full.pkl";
/// The store, relative to the config file's folder.
pub const DEFAULT_STORE: &str = ".trainwatch/state.db";
/// The environment variable read for the Discord token when `token_env` is not given.
pub const DEFAULT_TOKEN_ENV: &str = "DISCORD_TOKEN";

/// A validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file (absolute).
    pub source: PathBuf,
    /// The SQLite store (absolute).
    pub store_path: PathBuf,
    pub roles: Roles,
    /// Sorted by name.
    pub jobs: Vec<JobSpec>,
    /// Present only when the file has a `[discord]` section.
    pub discord: Option<DiscordConfig>,
    /// What is valid but will not work as written (`check-config` prints them).
    pub warnings: Vec<Located>,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Validate config text; `source` is where it came from: errors name it, and relative
    /// paths in the config resolve against its folder.
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
        resolve::resolve(text, source)
    }

    pub fn job(&self, name: &str) -> Option<&JobSpec> {
        self.jobs.iter().find(|j| j.engine.job.as_str() == name)
    }

    /// What supervising needs beyond a well-formed file: at least one job, and a store
    /// path (`store`: the config's own, or the one given on the command line) that can be
    /// a database file. `trainwatch check-config`, `run` and `serve` all call this, so a
    /// config the check accepts is one they accept.
    pub fn check_supervisable(&self, store: &Path) -> Result<(), ConfigError> {
        let at = |key: &str, message: String| {
            ConfigError::Invalid(Box::new(Located {
                file: self.source.clone(),
                line: None,
                column: None,
                key: Some(key.to_string()),
                message,
            }))
        };
        if self.jobs.is_empty() {
            return Err(at(
                "jobs",
                "the config declares no jobs: add one, e.g. [jobs.model_3] with argv = [\"python\", \"train.py\"]"
                    .into(),
            ));
        }
        check_store_path(store).map_err(|m| {
            if store == self.store_path {
                at("store.path", m)
            } else {
                ConfigError::Usage(format!("--store: {m}"))
            }
        })
    }

    /// The report printed by `trainwatch check-config`: every job with every resolved field,
    /// the roles and the Discord section. Never a token: only its variable's name and
    /// whether that variable is set.
    pub fn describe(&self) -> String {
        render::describe(self, |var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
    }
}

/// A store path must name a file that can be created or opened: not a folder, and not
/// below something that is not a folder. Checked without creating anything.
pub fn check_store_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "the store {} is a folder, not a file: name the database file, e.g. {}",
            path.display(),
            path.join("state.db").display()
        ));
    }
    // The nearest existing ancestor must be a folder (a file there blocks creating the rest).
    if let Some(blocker) = path
        .ancestors()
        .skip(1)
        .find(|a| a.exists())
        .filter(|a| !a.is_dir())
    {
        return Err(format!(
            "the store {} cannot be created: {} is not a folder",
            path.display(),
            blocker.display()
        ));
    }
    Ok(())
}

/// One job, every field resolved: absolute paths with `{name}` expanded, defaults applied.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// What the engine runs the protocol with — the job's name, its command (an argv, never
    /// a shell string), its log, expected and maximum durations, status interval, `on_error`
    /// policy and approval lifetime — built here, handed to the engine as it is.
    /// `engine.unattended` is always false in a config: whether anyone can decide is the
    /// runtime's call (`trainwatch run --unattended`, `serve`'s policy), not the file's.
    pub engine: JobSettings,
    pub workdir: PathBuf,
    pub env: BTreeMap<String, String>,
    /// No new log output for this long: a stall (fixed, or learnt from the job's cadence).
    pub stall_timeout: Option<StallAfter>,
    pub results: PathBuf,
    pub model: PathBuf,
    /// Extra expected output files.
    pub outputs: Vec<PathBuf>,
    /// Absolute glob of the checkpoint files; the newest match is resumed from.
    pub checkpoint: Option<String>,
    /// The command that resumes from a checkpoint; one element contains `{checkpoint}`,
    /// to be replaced by the checkpoint's path.
    pub resume_argv: Option<Vec<String>>,
    /// SIGTERM → SIGKILL grace.
    pub kill_grace: Duration,
    /// Discord channel id for this job's messages (else the default channel).
    pub channel: Option<String>,
    pub detect: DetectConfig,
    pub metrics: MetricsSettings,
    /// The design expectations table (Phase 4.5 gate), bound to this job's name.
    pub design: Vec<crate::review::DesignParam>,
    /// Extra files (globs relative to the workdir) a fix summary covers, besides the files
    /// named in argv and the design's sources.
    pub watch: Vec<String>,
    /// Built-in redaction plus the job's own `redact` patterns: what every surface the
    /// job's text reaches hides.
    pub redact: crate::redact::Redactor,
    /// Where the job runs: this machine, or a Slurm cluster.
    pub executor: Executor,
}

/// Where a job runs (`executor = "local" | "slurm"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Executor {
    /// A process group on this machine, held by the shim.
    #[default]
    Local,
    /// A batch job on a Slurm cluster, submitted with sbatch.
    Slurm(crate::exec::slurm::SlurmSettings),
}

impl JobSpec {
    /// The job's Slurm submission, when it runs on Slurm; its batch script lives at
    /// `script_path` (see [`crate::exec::slurm::script::script_path`]).
    pub fn slurm_submission<'a>(
        &'a self,
        script_path: &'a Path,
    ) -> Option<crate::exec::slurm::Submission<'a>> {
        match &self.executor {
            Executor::Local => None,
            Executor::Slurm(settings) => Some(crate::exec::slurm::Submission {
                name: self.engine.job.as_str(),
                argv: &self.engine.argv,
                env: &self.env,
                workdir: &self.workdir,
                log: &self.engine.log,
                script_path,
                settings,
            }),
        }
    }

    /// Every expected output file (results, model, outputs), for the completion report.
    pub fn output_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.results.clone(), self.model.clone()];
        for o in &self.outputs {
            if !files.contains(o) {
                files.push(o.clone());
            }
        }
        files
    }
}

/// What the unattended policy does when the job fails (shared with the engine).
pub use crate::model::OnError;

/// Settings of the metrics extraction.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Which metric is the step counter.
    pub step: Option<String>,
    /// Which metric is the total number of steps.
    pub total: Option<String>,
    /// Metrics drawn in the status chart.
    pub chart: Vec<String>,
    pub diverge_factor: f64,
    /// Extra named metrics, each regex with exactly one capture group (the value).
    pub patterns: Vec<(String, regex::Regex)>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            step: None,
            total: None,
            chart: Vec::new(),
            diverge_factor: DEFAULT_DIVERGE_FACTOR,
            patterns: Vec::new(),
        }
    }
}

/// The `[discord]` section, needed by `trainwatch serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscordConfig {
    /// Name of the environment variable holding the bot token.
    pub token_env: String,
    /// Guild for guild-scoped commands; global commands when absent.
    pub guild_id: Option<String>,
    /// Default channel id.
    pub channel: String,
    pub status_mode: StatusMode,
    /// serenity's HTTP proxy mode (all REST calls go to this base URL).
    pub proxy_url: Option<String>,
    /// An HTTPS proxy (CONNECT) for REST and the gateway.
    pub https_proxy: Option<String>,
    /// An extra root CA (PEM, absolute path) to trust, e.g. a corporate proxy's.
    pub ca_cert: Option<PathBuf>,
}

impl DiscordConfig {
    /// The token from the environment; the error names the variable (never a value).
    pub fn token(&self) -> Result<String, ConfigError> {
        match std::env::var(&self.token_env) {
            Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => Err(ConfigError::Usage(format!(
                "the Discord token is not set: put it in the environment variable {} (named by [discord].token_env)",
                self.token_env
            ))),
        }
    }
}

/// How status updates appear in Discord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusMode {
    /// One status message per run, edited in place.
    #[default]
    Edit,
    /// A new message each time.
    New,
}

impl std::fmt::Display for StatusMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StatusMode::Edit => "edit",
            StatusMode::New => "new",
        })
    }
}
