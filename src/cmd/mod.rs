//! The subcommands, one file each: each reads its parsed arguments, calls the library for
//! the work, prints what the user reads and returns the process exit status. These modules
//! belong to the binary, not the library: they are the edge where `anyhow` and printing
//! live, so nothing here is reachable from library code or its tests.

pub mod audit;
pub mod check_config;
pub mod run;
pub mod send;
pub mod serve;
pub mod status;
pub mod triage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use trainwatch::chat::console;
use trainwatch::config::{Config, JobSpec, Roles};
use trainwatch::model::Persona;
use trainwatch::store::{self, LockError, Store, SupervisorLocks};

/// Exit status for usage and config errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when trainwatch was interrupted (jobs keep running).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit status when writes the store never took were lost at stop (said on stderr).
pub const EXIT_STORE_LOST: i32 = 3;

/// Say on stderr what the store never took (one block per job); whether anything was lost.
pub fn say_lost(lost: &[trainwatch::store::pending::Unwritten]) -> bool {
    for u in lost {
        eprint!("{}", trainwatch::chat::sanitize::for_terminal(&u.to_string()));
    }
    !lost.is_empty()
}

/// The async runtime of the supervising commands (`run`, `serve`).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Default store location when neither the command line nor a config names one.
pub fn default_store() -> PathBuf {
    PathBuf::from(".trainwatch").join("state.db")
}

/// `{trainwatch}` in a job's argv stands for this executable (the demo uses it).
pub fn expand_self(specs: &mut [JobSpec]) -> Result<()> {
    let exe = std::env::current_exe().context("locating the trainwatch executable")?;
    for spec in specs {
        for arg in spec
            .engine
            .argv
            .iter_mut()
            .chain(spec.resume_argv.iter_mut().flatten())
        {
            if arg == "{trainwatch}" {
                *arg = exe.display().to_string();
            }
        }
    }
    Ok(())
}

/// The protocol's log folders (`output/implementation/logs/`) may not exist yet.
pub fn create_log_folders(specs: &[JobSpec]) -> Result<()> {
    for spec in specs {
        if let Some(dir) = spec.engine.log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the log folder {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Where the shims keep each attempt's state: beside the store.
fn state_root_of(store_path: &Path) -> PathBuf {
    store_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("runs")
}

/// The store of a supervising command (`run`, `serve`), opened under the locks that make
/// this process its only supervisor. Dropping it releases them.
pub struct OwnedStore {
    pub store: Arc<Mutex<Store>>,
    /// Where the shims keep each attempt's state (`state_root_of` the store).
    pub state_root: PathBuf,
    _locks: SupervisorLocks,
}

/// Take the store at `store_path` for this supervisor: lock it and its run state (flock, so a
/// crash releases them), then open it, refusing a store it could not write to (read-only, not
/// a database, no space). `None` when another supervisor holds it or the store is unusable;
/// the reason, naming the holder or the path and why, is printed.
pub fn take_store(store_path: &Path) -> Result<Option<OwnedStore>> {
    let state_root = state_root_of(store_path);
    let locks = match SupervisorLocks::acquire(store_path, &state_root) {
        Ok(l) => l,
        Err(e @ LockError::Held { .. }) => {
            eprintln!("trainwatch: {e}");
            return Ok(None);
        }
        Err(LockError::Io { path, source }) => {
            eprintln!(
                "trainwatch: the store {} cannot be used: cannot create its lock file {}: {}",
                store_path.display(),
                path.display(),
                store::plain_io_error(&source)
            );
            return Ok(None);
        }
    };
    let store = match Store::open_to_supervise(store_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trainwatch: {e}; nothing was started");
            return Ok(None);
        }
    };
    Ok(Some(OwnedStore {
        store: Arc::new(Mutex::new(store)),
        state_root,
        _locks: locks,
    }))
}

/// Resolves on Ctrl-C or SIGTERM (never, if the signal cannot be watched).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Open the store named on the command line, or the config's, or the default one.
pub fn open_existing_store(store: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<Store> {
    let store_path = match (store, config) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => Config::load(c).map_err(|e| anyhow::anyhow!("{e}"))?.store_path,
        (None, None) => default_store(),
    };
    if !store_path.exists() {
        bail!(
            "no store at {} (nothing has run here yet, or give --store / --config)",
            store_path.display()
        );
    }
    Ok(Store::open(&store_path)?)
}

/// The personas of the person at this terminal, and who holds each persona (for display).
/// With no `[roles]` they hold every persona (single-user use); with `[roles]`, exactly what
/// the config grants their login.
pub fn console_personas(roles: Option<&Roles>) -> (Vec<Persona>, BTreeMap<Persona, String>) {
    use trainwatch::config::Principal;
    let login = console::local_login();
    match roles {
        Some(r) if !r.is_empty() => {
            let personas = r.personas_of(&[Principal::Local(login)]);
            let mut holders = BTreeMap::new();
            for persona in Persona::ALL {
                let names: Vec<String> = r
                    .principals(persona)
                    .iter()
                    .filter_map(|p| match p {
                        Principal::Local(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                if !names.is_empty() {
                    holders.insert(persona, names.join(", "));
                }
            }
            (personas, holders)
        }
        _ => (Persona::ALL.to_vec(), BTreeMap::new()),
    }
}
