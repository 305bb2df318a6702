//! The binary's edge: parse the command line, set up diagnostics, run a subcommand.

use clap::Parser;
use trainwatch::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => match trainwatch::config::Config::load(&args.file) {
            Ok(config) => {
                print!("{}", config.describe());
                println!("\nconfig OK");
                Ok(())
            }
            Err(e) => {
                // Exit 2: a config error, as for every subcommand that reads one.
                eprintln!("trainwatch: {e}");
                std::process::exit(2);
            }
        },
        other => anyhow::bail!("{other:?}: not wired yet"),
    }
}
