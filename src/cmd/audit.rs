//! `trainwatch audit`: print the append-only audit log of decisions from the store.

use std::fmt::Write as _;

use anyhow::Result;

use trainwatch::chat::sanitize::for_terminal;
use trainwatch::cli::AuditArgs;

use super::open_existing_store;

pub fn run(AuditArgs { query: args }: AuditArgs) -> Result<i32> {
    let store = open_existing_store(&args.store, &args.config)?;
    let rows = store.audit(args.job.as_deref())?;
    if args.json {
        println!("{}", for_terminal(&serde_json::to_string_pretty(&rows)?));
        return Ok(0);
    }
    if rows.is_empty() {
        let job = args.job.map(|j| format!(" for {j}")).unwrap_or_default();
        println!("the audit log is empty{}", for_terminal(&job));
    }
    // Details quote chat input and log text: neutralised for the terminal.
    let mut out = String::new();
    for a in &rows {
        let verdict = if a.accepted { "accepted" } else { "REFUSED" };
        let run = a.run.map(|r| format!(" run {r}")).unwrap_or_default();
        writeln!(
            out,
            "#{} {} {}{run} {} by {} ({}) {verdict}: {}",
            a.id, a.at, a.job, a.action, a.actor, a.actor_id, a.detail
        )?;
    }
    print!("{}", for_terminal(&out));
    Ok(0)
}
