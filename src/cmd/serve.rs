//! `trainwatch serve`: the Discord bot — supervise the configured jobs and take decisions
//! from Discord until stopped (the jobs keep running).

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc;

use trainwatch::chat::discord::{self, DiscordSetup};
use trainwatch::cli::ServeArgs;
use trainwatch::config::Config;
use trainwatch::runtime::{Options, Supervisor};

use super::{
    create_log_folders, expand_self, say_lost, shutdown_signal, take_store, EXIT_STORE_LOST, EXIT_USAGE,
};

pub async fn run(args: ServeArgs) -> Result<i32> {
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trainwatch: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let Some(d) = &cfg.discord else {
        bail!(
            "{} has no [discord] section: trainwatch serve needs one (see config/discord.toml)",
            args.config.display()
        );
    };
    let store_path = args.store.clone().unwrap_or_else(|| cfg.store_path.clone());
    if let Err(e) = cfg.check_supervisable(&store_path) {
        eprintln!("trainwatch: {e}");
        return Ok(EXIT_USAGE);
    }
    let token = d.token().map_err(|e| anyhow::anyhow!("{e}"))?;
    let setup = DiscordSetup::from_config(&cfg, token)?;
    let mut specs = cfg.jobs.clone();
    expand_self(&mut specs)?;
    create_log_folders(&specs)?;
    // Held until we return; a crash releases the locks, so the next start takes over.
    let Some(owned) = take_store(&store_path)? else {
        return Ok(EXIT_USAGE);
    };
    let (tx, mut rx) = mpsc::channel(64);
    let (chat, running) = discord::connect(setup, owned.store.clone(), tx)
        .await
        .context("connecting to Discord")?;
    let mut sup = Supervisor::start(
        specs,
        owned.store.clone(),
        chat,
        Options {
            unattended: false,
            policy_when_set: true,
            state_root: owned.state_root.clone(),
            shim: std::env::current_exe().context("locating the trainwatch executable")?,
            roles: Some(cfg.roles.clone()),
        },
    )?;
    for job in sup.readopted() {
        tracing::info!(%job, "re-adopted the run that was under way");
    }
    eprintln!(
        "trainwatch serve: supervising {} job(s) for Discord; stop with Ctrl-C (the jobs keep running)",
        sup.job_names().len()
    );
    sup.serve(&mut rx, shutdown_signal()).await;
    running.shutdown().await;
    if say_lost(&sup.shutdown().await) {
        return Ok(EXIT_STORE_LOST);
    }
    Ok(0)
}
