//! `trainwatch triage`: the report of `watch::triage` for a log given on the command line,
//! printed in the human or the JSON form; the verdict is the exit status.

use std::io::{self, Write};

use trainwatch::chat::sanitize::for_terminal_with;
use trainwatch::cli::TriageArgs;
use trainwatch::model::ExitOutcome;
use trainwatch::redact::Redactor;
use trainwatch::watch::detect::DetectConfig;
use trainwatch::watch::triage::triage_file;

/// Print the report, return the process exit status
/// (0 ok, 1 an error found, 3 warnings only; 2 when the log cannot be read).
pub fn run(args: &TriageArgs) -> i32 {
    let cfg = match DetectConfig::from_patterns(args.rhat_threshold, &args.patterns, &args.ignore) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("trainwatch triage: {e}");
            return 2;
        }
    };
    let redactor = match args
        .redact
        .iter()
        .map(|p| regex::Regex::new(p))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(patterns) => Redactor::new(patterns),
        Err(e) => {
            eprintln!("trainwatch triage: invalid --redact pattern: {e}");
            return 2;
        }
    };
    let exit = args.exit_code.map(ExitOutcome::from_shell_status);
    match triage_file(&args.log, cfg, exit) {
        Ok(report) => {
            let text = if args.json {
                report.to_json() + "\n"
            } else {
                report.to_human()
            };
            // The report quotes the log: neutralised and redacted for the terminal (JSON too:
            // serde escapes C0 controls but not DEL or C1 ones such as U+009B, a CSI).
            let text = for_terminal_with(&redactor, &text);
            let mut out = io::stdout().lock();
            // A closed pipe (`| head`) is not an error of ours.
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            report.verdict.exit_status()
        }
        Err(e) => {
            eprintln!("trainwatch triage: {e}");
            2
        }
    }
}
