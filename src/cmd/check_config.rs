//! `trainwatch check-config`: validate a config file and print the resolved jobs.

use std::path::Path;

use anyhow::Result;

use trainwatch::chat::sanitize::for_terminal;
use trainwatch::config::Config;

use super::EXIT_USAGE;

pub fn run(file: &Path) -> Result<i32> {
    // The same checks `run` and `serve` make: a config accepted here is accepted there.
    match Config::load(file).and_then(|cfg| cfg.check_supervisable(&cfg.store_path).map(|()| cfg)) {
        // The file's values are echoed (paths, argv, env): shown inert and redacted, as any
        // text trainwatch did not write itself.
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("trainwatch: warning: {}", for_terminal(&w.to_string()));
            }
            print!("{}", for_terminal(&cfg.describe()));
            println!("\nconfig OK");
            Ok(0)
        }
        Err(e) => {
            eprintln!("trainwatch: {}", for_terminal(&e.to_string()));
            Ok(EXIT_USAGE)
        }
    }
}
