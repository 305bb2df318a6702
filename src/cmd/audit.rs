//! `trainwatch audit`: print the append-only audit log of decisions from the store.

use anyhow::Result;

use trainwatch::cli::AuditArgs;

use super::open_existing_store;

pub fn run(AuditArgs { query: args }: AuditArgs) -> Result<i32> {
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
