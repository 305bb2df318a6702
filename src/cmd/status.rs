//! `trainwatch status`: what the store knows of runs, attempts, incidents and decisions.

use std::fmt::Write as _;

use anyhow::Result;

use trainwatch::chat::sanitize::for_terminal;
use trainwatch::cli::StatusArgs;

use super::open_existing_store;

pub fn run(StatusArgs { query: args }: StatusArgs) -> Result<i32> {
    let store = open_existing_store(&args.store, &args.config)?;
    let runs = store.runs(args.job.as_deref(), 50)?;
    let audit = store.audit(args.job.as_deref())?;
    if args.json {
        let v = serde_json::json!({ "runs": runs, "decisions": audit });
        println!("{}", for_terminal(&serde_json::to_string_pretty(&v)?));
        return Ok(0);
    }
    // Stored lines came from logs and chat: the whole listing is neutralised for the terminal.
    let mut out = String::new();
    if runs.is_empty() {
        let job = args.job.map(|j| format!(" for {j}")).unwrap_or_default();
        println!("no runs recorded{}", for_terminal(&job));
        return Ok(0);
    }
    for r in &runs {
        let ended = r.ended_at.as_deref().unwrap_or("-");
        writeln!(
            out,
            "{} run {}: {} (started {} by {}, ended {ended}){}",
            r.job,
            r.run,
            r.state,
            r.started_at,
            r.started_by,
            r.detail.as_ref().map(|d| format!(" — {d}")).unwrap_or_default()
        )?;
        for a in &r.attempts {
            writeln!(
                out,
                "  attempt {}: {} from {}{}{}",
                a.attempt,
                a.pid,
                a.started_at,
                a.checkpoint
                    .as_ref()
                    .map(|c| format!(" (checkpoint {c})"))
                    .unwrap_or_default(),
                a.outcome.as_ref().map(|o| format!(", {o}")).unwrap_or_default()
            )?;
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
            writeln!(
                out,
                "  incident {} [{} {}] line {}: {}{count} → {res}",
                i.seq, i.category, i.severity, i.line, i.text
            )?;
        }
    }
    if !audit.is_empty() {
        writeln!(out, "decisions:")?;
        for a in &audit {
            let mark = if a.accepted { "✓" } else { "✗ refused" };
            let run = a.run.map(|r| format!(" run {r}")).unwrap_or_default();
            writeln!(
                out,
                "  {} {}{run} {} by {} {mark}: {}",
                a.at, a.job, a.action, a.actor, a.detail
            )?;
        }
    }
    print!("{}", for_terminal(&out));
    Ok(0)
}
