//! `trainwatch check-config`: validate a config file and print the resolved jobs.

use std::path::Path;

use anyhow::Result;

use trainwatch::config::Config;

use super::EXIT_USAGE;

pub fn run(file: &Path) -> Result<i32> {
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
