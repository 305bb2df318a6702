//! The binary's edge: parse the command line, set up diagnostics, run a subcommand.

use clap::Parser;
use trainwatch::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Triage(args) => std::process::exit(trainwatch::watch::triage::run(&args)),
        other => anyhow::bail!("{other:?}: not wired yet"),
    }
}
