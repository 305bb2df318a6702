//! From the file as written to the typed config: applies `[defaults]` and built-in defaults,
//! expands `{name}`, makes paths absolute, compiles regexes, and checks every value — each
//! error carrying the span of the value (or key) at fault, so it names the line.

mod chat;
mod detect;
mod job;
mod slurm;

use std::path::{Path, PathBuf};

use crate::model::JobName;

use super::error::{join, ConfigError, Origin};
use super::paths::{absolute, join_clean, template};
use super::raw::{RawConfig, RawJob};
use super::{Config, DEFAULT_STORE};
use chat::{resolve_discord, resolve_roles};
use job::JobCtx;

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

    let (roles, warnings) = resolve_roles(&o, &raw.roles)?;

    let defaults = raw.defaults.as_ref();
    if let Some(argv) = defaults.and_then(|d| d.argv.as_ref()) {
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
            def: Some(d),
            prefix: "defaults".into(),
            name: &name,
        };
        ctx.resolve(&base, Vec::new())?;
    }

    let mut jobs = Vec::with_capacity(raw.jobs.len());
    for (key, job) in &raw.jobs {
        let name = JobName::new(key.get_ref().as_str())
            .map_err(|e| o.at(key.span(), join("jobs", key.get_ref()), e.to_string()))?;
        let j = JobCtx {
            o: &o,
            job,
            def: defaults,
            prefix: join("jobs", key.get_ref()),
            name: &name,
        };
        let argv = j.required_argv(key.span())?;
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
        warnings,
    })
}
