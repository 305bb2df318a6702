//! `trainwatch check-config`: validate a config file and print the resolved jobs.

use std::path::Path;

use anyhow::Result;

use trainwatch::config::Config;

use super::EXIT_USAGE;

pub fn run(file: &Path) -> Result<i32> {
    // The same checks `run` and `serve` make: a config accepted here is accepted there.
    match Config::load(file).and_then(|cfg| cfg.check_supervisable(&cfg.store_path).map(|()| cfg)) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("trainwatch: warning: {w}");
            }
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
