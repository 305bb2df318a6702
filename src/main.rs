//! The binary's edge: parse the command line, set up diagnostics, run a subcommand.
//! Errors become one readable message and an exit status here (anyhow lives only here).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio::sync::mpsc;

use trainwatch::chat::console::{self, Console};
use trainwatch::chat::ChatSink;
use trainwatch::cli::{AuditArgs, Cli, ColorChoice, Command, RunArgs, SendArgs, StatusArgs};
use trainwatch::config::{Config, JobSpec};
use trainwatch::model::{JobName, Persona};
use trainwatch::runtime::{Options, Supervisor};
use trainwatch::store::Store;

/// Exit status for usage and config errors.
const EXIT_USAGE: i32 = 2;
/// Exit status when trainwatch was interrupted (jobs keep running).
const EXIT_INTERRUPTED: i32 = 130;

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.log_level.as_deref());
    let code = match run_command(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trainwatch: {e:#}");
            EXIT_USAGE
        }
    };
    std::process::exit(code);
}

fn init_tracing(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("TRAINWATCH_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_command(command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => runtime()?.block_on(cmd_run(args)),
        Command::Serve(args) => runtime()?.block_on(cmd_serve(args)),
        Command::CheckConfig(args) => cmd_check_config(&args.file),
        Command::Status(args) => cmd_status(args),
        Command::Audit(args) => cmd_audit(args),
        Command::Send(args) => cmd_send(args),
        Command::Triage(args) => cmd_triage(args),
        Command::Shim(args) => Ok(trainwatch::exec::shim::run(args)),
        Command::DemoTrain(args) => Ok(trainwatch::demo::run(args)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn cmd_check_config(file: &Path) -> Result<i32> {
    match Config::load(file) {
        Ok(cfg) => {
            print!("{}", cfg.describe());
            println!("\nconfig OK");
            Ok(0)
        }
        Err(e) => {
            eprintln!("trainwatch: {e}");
            Ok(EXIT_USAGE)
        }
    }
}

fn cmd_triage(args: trainwatch::cli::TriageArgs) -> Result<i32> {
    Ok(trainwatch::watch::triage::run(&args))
}

/// Default store location when neither the command line nor a config names one.
fn default_store() -> PathBuf {
    PathBuf::from(".trainwatch").join("state.db")
}

/// `{trainwatch}` in a job's argv stands for this executable (the demo uses it).
fn expand_self(specs: &mut [JobSpec]) -> Result<()> {
    let exe = std::env::current_exe().context("locating the trainwatch executable")?;
    for spec in specs {
        for arg in spec.argv.iter_mut().chain(spec.resume_argv.iter_mut().flatten()) {
            if arg == "{trainwatch}" {
                *arg = exe.display().to_string();
            }
        }
    }
    Ok(())
}

/// The protocol's log folders (`output/implementation/logs/`) may not exist yet.
fn create_log_folders(specs: &[JobSpec]) -> Result<()> {
    for spec in specs {
        if let Some(dir) = spec.log.parent() {
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

async fn cmd_serve(args: trainwatch::cli::ServeArgs) -> Result<i32> {
    use trainwatch::chat::discord::{self, DiscordSetup};
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
    let token = d.token().map_err(|e| anyhow::anyhow!("{e}"))?;
    let setup = DiscordSetup::from_config(&cfg, token)?;
    let mut specs = cfg.jobs.clone();
    expand_self(&mut specs)?;
    create_log_folders(&specs)?;
    let store_path = args.store.clone().unwrap_or_else(|| cfg.store_path.clone());
    let store = Arc::new(std::sync::Mutex::new(Store::open(&store_path)?));
    let (tx, mut rx) = mpsc::channel(64);
    let (chat, running) = discord::connect(setup, store.clone(), tx)
        .await
        .context("connecting to Discord")?;
    let mut sup = Supervisor::start(
        specs,
        store,
        chat,
        Options {
            unattended: false,
            policy_when_set: true,
            state_root: state_root_of(&store_path),
            shim: std::env::current_exe().context("locating the trainwatch executable")?,
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
    sup.shutdown().await;
    Ok(0)
}

async fn cmd_run(args: RunArgs) -> Result<i32> {
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
        )?;
        (vec![spec], args.store.clone().unwrap_or_else(default_store), None)
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
                        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
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
                spec.status_interval = s;
            }
        }
        let store = args.store.clone().unwrap_or_else(|| cfg.store_path.clone());
        (specs, store, Some(cfg.roles))
    };
    if specs.is_empty() {
        bail!("the config declares no jobs");
    }
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

    let store = Arc::new(std::sync::Mutex::new(Store::open(&store_path)?));
    let state_root = state_root_of(&store_path);
    let console = Arc::new(Console::new(Box::new(std::io::stdout()), color, holders));
    let chat: Arc<dyn ChatSink> = console.clone();
    let mut sup = Supervisor::start(
        specs,
        store,
        chat,
        Options {
            unattended,
            policy_when_set: false,
            state_root,
            shim: std::env::current_exe().context("locating the trainwatch executable")?,
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
    sup.shutdown().await;
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
        return Ok(EXIT_INTERRUPTED);
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

/// The personas of the person at this terminal, and who holds each persona (for display).
/// With no `[roles]` they hold every persona (single-user use); with `[roles]`, exactly what
/// the config grants their login.
fn console_personas(roles: Option<&trainwatch::config::Roles>) -> (Vec<Persona>, BTreeMap<Persona, String>) {
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

fn cmd_send(args: SendArgs) -> Result<i32> {
    use trainwatch::chat::command::{self, TextCommand};
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trainwatch: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let line = args.command.join(" ");
    let (job, command) = match command::parse(&line).map_err(|e| anyhow::anyhow!(e))? {
        TextCommand::Job { job, command } => (job, command),
        TextCommand::StatusAll => bail!("name a job: /status JOB"),
        TextCommand::Help => {
            println!("{}", command::HELP);
            return Ok(0);
        }
    };
    let job = match job {
        Some(j) => j,
        None if cfg.jobs.len() == 1 => cfg.jobs[0].name.to_string(),
        None => bail!("several jobs are declared: name one"),
    };
    let Some(spec) = cfg.job(&job) else {
        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        bail!(
            "no job {job:?} in {}; jobs there: {}",
            args.config.display(),
            names.join(", ")
        );
    };
    let (personas, _) = console_personas(Some(&cfg.roles));
    let actor = console::local_actor(personas);
    let store_path = args.store.clone().unwrap_or_else(|| cfg.store_path.clone());
    if !store_path.exists() {
        bail!(
            "no store at {}: is trainwatch supervising {job}?",
            store_path.display()
        );
    }
    let mut store = Store::open(&store_path)?;
    let id = store.inbox_push(chrono::Utc::now(), &spec.name, &command, &actor)?;
    let deadline = std::time::Instant::now() + args.wait;
    loop {
        let (taken, answer) = store.inbox_answer(id)?;
        if let Some(replies) = answer {
            let mut ok = true;
            for r in &replies {
                println!("{} {}", if r.accepted { "✓" } else { "✗" }, r.text);
                ok &= r.accepted;
            }
            return Ok(if ok { 0 } else { 1 });
        }
        if std::time::Instant::now() >= deadline {
            if !taken && store.inbox_withdraw(id)? {
                bail!("no trainwatch picked the command up within {:?}: is `trainwatch run`/`serve` supervising {job} with this store?", args.wait);
            }
            bail!("the command was taken but not answered within {:?}", args.wait);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

async fn shutdown_signal() {
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
fn open_existing_store(store: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<Store> {
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

fn cmd_audit(AuditArgs { query: args }: AuditArgs) -> Result<i32> {
    let store = open_existing_store(&args.store, &args.config)?;
    let rows = store.audit(args.job.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!(
            "the audit log is empty{}",
            args.job.map(|j| format!(" for {j}")).unwrap_or_default()
        );
    }
    for a in &rows {
        let verdict = if a.accepted { "accepted" } else { "REFUSED" };
        let run = a.run.map(|r| format!(" run {r}")).unwrap_or_default();
        println!(
            "#{} {} {}{run} {} by {} ({}) {verdict}: {}",
            a.id, a.at, a.job, a.action, a.actor, a.actor_id, a.detail
        );
    }
    Ok(0)
}

fn cmd_status(StatusArgs { query: args }: StatusArgs) -> Result<i32> {
    let store = open_existing_store(&args.store, &args.config)?;
    let runs = store.runs(args.job.as_deref(), 50)?;
    let audit = store.audit(args.job.as_deref())?;
    if args.json {
        let v = serde_json::json!({ "runs": runs, "decisions": audit });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if runs.is_empty() {
        println!(
            "no runs recorded{}",
            args.job.map(|j| format!(" for {j}")).unwrap_or_default()
        );
        return Ok(0);
    }
    for r in &runs {
        let ended = r.ended_at.as_deref().unwrap_or("-");
        println!(
            "{} run {}: {} (started {} by {}, ended {ended}){}",
            r.job,
            r.run,
            r.state,
            r.started_at,
            r.started_by,
            r.detail.as_ref().map(|d| format!(" — {d}")).unwrap_or_default()
        );
        for a in &r.attempts {
            println!(
                "  attempt {}: PID {} from {}{}{}",
                a.attempt,
                a.pid,
                a.started_at,
                a.checkpoint
                    .as_ref()
                    .map(|c| format!(" (checkpoint {c})"))
                    .unwrap_or_default(),
                a.outcome.as_ref().map(|o| format!(", {o}")).unwrap_or_default()
            );
        }
        for i in &r.incidents {
            let res = match (&i.resolution, &i.resolved_by) {
                (Some(r), Some(by)) => format!("{r} by {by}"),
                (Some(r), None) => r.clone(),
                _ => "open".into(),
            };
            let count = if i.count > 1 {
                format!(" ×{}", i.count)
            } else {
                String::new()
            };
            println!(
                "  incident {} [{} {}] line {}: {}{count} → {res}",
                i.seq, i.category, i.severity, i.line, i.text
            );
        }
    }
    if !audit.is_empty() {
        println!("decisions:");
        for a in &audit {
            let mark = if a.accepted { "✓" } else { "✗ refused" };
            let run = a.run.map(|r| format!(" run {r}")).unwrap_or_default();
            println!(
                "  {} {}{run} {} by {} {mark}: {}",
                a.at, a.job, a.action, a.actor, a.detail
            );
        }
    }
    Ok(0)
}
