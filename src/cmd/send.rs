//! `trainwatch send`: hand a console command to the trainwatch supervising a job, over its
//! control socket, and print the answer. The supervisor learns who sent it from the kernel
//! and gives that login the roles of *its own* config; nothing the sender writes or
//! configures changes who they are. The sender's config only locates the supervisor.

use std::time::Duration;

use anyhow::Result;

use trainwatch::chat::sanitize::for_terminal;
use trainwatch::cli::SendArgs;
use trainwatch::config::Config;
use trainwatch::control::{self, ControlError};

use super::{state_root_of, EXIT_USAGE};

pub fn run(args: SendArgs) -> Result<i32> {
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trainwatch: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let store_path = args.store.clone().unwrap_or_else(|| cfg.store_path.clone());
    let socket = control::socket_path(&state_root_of(&store_path));
    let line = args.command.join(" ");
    let wait = args.wait.max(Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(control::send(&socket, &line, wait)) {
        Ok(answers) => {
            let mut ok = !answers.is_empty();
            for a in &answers {
                // The answer quotes chat input and log text: neutralised for the terminal.
                println!("{} {}", if a.accepted { "✓" } else { "✗" }, for_terminal(&a.text));
                ok &= a.accepted;
            }
            Ok(if ok { 0 } else { 1 })
        }
        Err(e @ (ControlError::NotRunning { .. } | ControlError::Denied { .. })) => {
            eprintln!("trainwatch send: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
