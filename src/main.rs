//! The binary's edge: parse the command line, set up diagnostics, dispatch to the
//! subcommand in `cmd/`. Errors become one readable message and an exit status here
//! (anyhow lives only in the binary).

mod cmd;

use std::io::IsTerminal;

use anyhow::Result;
use clap::Parser;

use trainwatch::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.log_level.as_deref());
    let code = match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trainwatch: {e:#}");
            cmd::EXIT_USAGE
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
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Run a supervising command to its end. Its state is committed by then; what may still hold
/// the runtime is a blocking read of the terminal, which must not keep `run` from returning
/// once every job has ended.
fn supervise(cmd: impl std::future::Future<Output = Result<i32>>) -> Result<i32> {
    let rt = cmd::runtime()?;
    let code = rt.block_on(cmd);
    rt.shutdown_background();
    code
}

fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => supervise(cmd::run::run(args)),
        Command::Serve(args) => supervise(cmd::serve::run(args)),
        Command::CheckConfig(args) => cmd::check_config::run(&args.file),
        Command::Status(args) => cmd::status::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Triage(args) => Ok(cmd::triage::run(&args)),
        Command::Shim(args) => Ok(trainwatch::exec::shim::run(args)),
        Command::DemoTrain(args) => Ok(trainwatch::demo::run(args)),
    }
}
