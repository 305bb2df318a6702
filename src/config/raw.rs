//! The config file as written: serde structs mirroring the TOML, every value kept with its
//! byte span so that validation after parsing can still point at the line. Unknown keys are
//! refused here (`deny_unknown_fields`), so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;
pub(crate) type SList = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub store: Option<RawStore>,
    #[serde(default)]
    pub roles: BTreeMap<S<String>, SList>,
    // Job tables carry no span of their own: toml cannot give one to a table defined
    // implicitly (`[defaults.metrics]` with no `[defaults]`), and errors point at values.
    pub defaults: Option<RawJob>,
    #[serde(default)]
    pub jobs: BTreeMap<S<String>, RawJob>,
    pub discord: Option<S<RawDiscord>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub path: Option<S<String>>,
}

/// A job table, and `[defaults]` (same keys; `argv` refused there).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    pub argv: Option<SList>,
    pub workdir: Option<S<String>>,
    pub env: Option<S<BTreeMap<S<String>, S<String>>>>,
    pub log: Option<S<String>>,
    pub expected: Option<S<String>>,
    pub max: Option<S<String>>,
    pub stall_timeout: Option<S<String>>,
    pub status_interval: Option<S<String>>,
    pub results: Option<S<String>>,
    pub model: Option<S<String>>,
    pub outputs: Option<SList>,
    pub checkpoint: Option<S<String>>,
    pub resume_argv: Option<SList>,
    pub on_error: Option<S<String>>,
    pub restart_limit: Option<S<i64>>,
    /// `"resubmit"` (the default) or `"ask"`: after a scheduler's infrastructure failure.
    pub on_infrastructure: Option<S<String>>,
    pub resubmit_limit: Option<S<i64>>,
    pub kill_grace: Option<S<String>>,
    pub channel: Option<S<DiscordId>>,
    pub detect: Option<RawDetect>,
    pub metrics: Option<RawMetrics>,
    /// The design expectations table (Phase 4.5): `[[jobs.NAME.design]]` entries.
    pub design: Option<S<Vec<crate::review::RawDesignParam>>>,
    /// Extra files (globs, relative to the workdir) whose changes a fix summary lists.
    pub watch: Option<SList>,
    /// How long a validator's approval stays valid.
    pub approval_ttl: Option<S<String>>,
    /// The job's own secrets: regexes whose matches are redacted like the built-in ones.
    pub redact: Option<SList>,
    /// `"local"` (the default) or `"slurm"`.
    pub executor: Option<S<String>>,
    /// `[jobs.NAME.slurm]`: how the job is submitted when `executor = "slurm"`.
    pub slurm: Option<RawSlurm>,
}

/// `[jobs.NAME.slurm]` (and `[defaults.slurm]`). `gpus` and `mem` take a number or Slurm's
/// own spelling (`"a100:4"`, `"16G"`), checked when resolved.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlurm {
    pub partition: Option<S<String>>,
    pub account: Option<S<String>>,
    pub qos: Option<S<String>>,
    pub time_limit: Option<S<String>>,
    pub nodes: Option<S<i64>>,
    pub ntasks: Option<S<i64>>,
    pub ntasks_per_node: Option<S<i64>>,
    pub gpus: Option<S<toml::Value>>,
    pub cpus_per_task: Option<S<i64>>,
    pub mem: Option<S<toml::Value>>,
    pub extra_args: Option<SList>,
    pub launch: Option<S<String>>,
    /// How long before the time limit the timeout warning comes.
    pub warn_before: Option<S<String>>,
    /// How much more time "extend" asks for.
    pub extend_by: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDetect {
    pub rhat_threshold: Option<S<f64>>,
    pub ignore: Option<SList>,
    pub extra: Option<BTreeMap<S<String>, SList>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub step: Option<S<String>>,
    pub total: Option<S<String>>,
    pub chart: Option<SList>,
    pub diverge_factor: Option<S<f64>>,
    pub patterns: Option<BTreeMap<S<String>, S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiscord {
    pub token_env: Option<S<String>>,
    /// Accepted by the reader only to refuse it with a useful message; never kept.
    pub token: Option<S<IgnoredAny>>,
    pub guild_id: Option<S<DiscordId>>,
    pub channel: Option<S<DiscordId>>,
    pub status_mode: Option<S<String>>,
    pub proxy_url: Option<S<String>>,
    pub https_proxy: Option<S<String>>,
    pub ca_cert: Option<S<String>>,
}

/// A Discord id as written: a string, or a TOML integer (checked for digits later, with
/// its span, so the error can point at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiscordId(pub String);

impl<'de> Deserialize<'de> for DiscordId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DiscordId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Discord id (a string of digits, or an integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DiscordId, E> {
                Ok(DiscordId(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DiscordId, E> {
                Ok(DiscordId(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DiscordId, E> {
                Ok(DiscordId(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
