//! `trainwatch send`: hand a console command to the trainwatch supervising a job, through
//! the store's inbox, and print its answer.

use anyhow::{bail, Context, Result};

use trainwatch::chat::console;
use trainwatch::chat::request::{line, Request};
use trainwatch::cli::SendArgs;
use trainwatch::config::Config;
use trainwatch::model::JobName;
use trainwatch::store::Store;

use super::{console_personas, EXIT_USAGE};

pub fn run(args: SendArgs) -> Result<i32> {
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trainwatch: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let jobs: Vec<JobName> = cfg.jobs.iter().map(|j| j.engine.job.clone()).collect();
    let (job, command) = match line::parse(&args.command.join(" "), &jobs)? {
        Request::Engine { job, command } => (job, command),
        Request::StatusAll => bail!("name a job: /status JOB"),
        Request::Help => {
            println!("{}", line::HELP);
            return Ok(0);
        }
        Request::Logs { .. } | Request::List => bail!("that is a Discord command"),
    };
    let spec = cfg.job(job.as_str()).context("a validated job is configured")?;
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
    let id = store.inbox_push(chrono::Utc::now(), &spec.engine.job, &command, &actor)?;
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
