//! `trainwatch run`: supervise jobs with the terminal as the chat until every job has ended
//! — the jobs of a config, or one command wrapped with no config at all.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::mpsc;

use trainwatch::chat::console::{self, Console};
use trainwatch::chat::ChatSink;
use trainwatch::cli::{ColorChoice, RunArgs};
use trainwatch::config::{check_store_path, Config, JobSpec};
use trainwatch::model::{JobName, Persona};
use trainwatch::runtime::{Options, Supervisor};

use super::{
    console_personas, create_log_folders, default_store, expand_self, say_lost, shutdown_signal, take_store,
    EXIT_INTERRUPTED, EXIT_STORE_LOST, EXIT_USAGE,
};

pub async fn run(args: RunArgs) -> Result<i32> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let (mut specs, store_path, roles) = if !args.command.is_empty() {
        if !args.jobs.is_empty() {
            bail!("give either job names (with --config) or a command after --, not both");
        }
        let spec = JobSpec::wrap(
            args.command.clone(),
            &cwd,
            args.log.clone(),
            args.expected,
            args.max,
            args.status_interval,
            args.stall,
        )?;
        let store = args.store.clone().unwrap_or_else(default_store);
        check_store_path(&store).map_err(|m| anyhow!(m))?;
        (vec![spec], store, None)
    } else {
        let Some(path) = &args.config else {
            bail!("nothing to run: give --config FILE (jobs from a config) or a command after -- (e.g. trainwatch run -- python train.py)");
        };
        let cfg = match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return Ok(EXIT_USAGE);
            }
        };
        let mut specs = Vec::new();
        if args.jobs.is_empty() {
            specs = cfg.jobs.clone();
        } else {
            for name in &args.jobs {
                match cfg.job(name) {
                    Some(j) => specs.push(j.clone()),
                    None => {
                        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.engine.job.as_str()).collect();
                        bail!(
                            "no job {name:?} in {}; jobs there: {}",
                            path.display(),
                            names.join(", ")
                        );
                    }
                }
            }
        }
        if let Some(s) = args.status_interval {
            for spec in &mut specs {
                spec.engine.status_interval = s;
            }
        }
        let store = args.store.clone().unwrap_or_else(|| cfg.store_path.clone());
        if let Err(e) = cfg.check_supervisable(&store) {
            eprintln!("{e}");
            return Ok(EXIT_USAGE);
        }
        (specs, store, Some(cfg.roles))
    };
    expand_self(&mut specs)?;
    create_log_folders(&specs)?;

    let stdin_tty = std::io::stdin().is_terminal();
    let unattended = args.unattended || (!args.attended && !stdin_tty);
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };

    let (personas, holders) = console_personas(roles.as_ref());
    let actor = console::local_actor(personas.clone());
    // Whoever runs `trainwatch run` starts the jobs they named.
    let mut starter = actor.clone();
    if !starter.has(Persona::Starter) {
        starter.personas.push(Persona::Starter);
    }

    // Held until we return; a crash releases the locks, so the next start takes over.
    let Some(owned) = take_store(&store_path)? else {
        return Ok(EXIT_USAGE);
    };
    let console = Arc::new(Console::new(Box::new(std::io::stdout()), color, holders));
    let chat: Arc<dyn ChatSink> = console.clone();
    let mut sup = Supervisor::start(
        specs,
        owned.store.clone(),
        chat,
        Options {
            unattended,
            policy_when_set: false,
            state_root: owned.state_root.clone(),
            shim: std::env::current_exe().context("locating the trainwatch executable")?,
            roles: roles.clone(),
        },
    )?;
    let names = sup.job_names();
    for job in sup.readopted() {
        console.print_line(&format!(
            "🔄 {job}: re-adopted the run that was under way; back in watch mode."
        ));
    }
    if unattended {
        console.print_line("(unattended: each job's on_error policy decides)");
    } else {
        console.print_line(
            "(type /help for commands; decisions: /decide JOB restart|kill|continue|investigate)",
        );
    }
    for job in &names {
        sup.start_if_idle(job, starter.clone()).await?;
    }

    let (tx, mut rx) = mpsc::channel(16);
    if !unattended {
        tokio::spawn(console::read_commands(console.clone(), actor, names.clone(), tx));
    } else {
        drop(tx);
    }
    let watch: BTreeSet<JobName> = names.iter().cloned().collect();
    let mut interrupted = false;
    let results = {
        let stop = async {
            shutdown_signal().await;
        };
        let r = sup.until_ended(&watch, &mut rx, stop).await;
        if r.len() < watch.len() {
            interrupted = true;
        }
        r
    };
    let lost = say_lost(&sup.shutdown().await);
    if interrupted {
        let running: Vec<&str> = watch
            .iter()
            .filter(|j| !results.contains_key(*j))
            .map(|j| j.as_str())
            .collect();
        eprintln!(
            "trainwatch: stopped watching; {} keep(s) running under the shim. Run the same command again to re-adopt.",
            running.join(", ")
        );
        return Ok(if lost { EXIT_STORE_LOST } else { EXIT_INTERRUPTED });
    }
    if lost {
        return Ok(EXIT_STORE_LOST);
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok)| !**ok)
        .map(|(j, _)| j.as_str())
        .collect();
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!("trainwatch: not successful: {}", failed.join(", "));
        Ok(1)
    }
}
