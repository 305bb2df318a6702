//! `triage-score`: runs the real `trainwatch triage --json` on every fixture of one or more
//! corpus manifests (tests/fixtures/real/{tuned,held-out}/manifest.json) and prints, per
//! manifest, how often it names the expected category, points at the expected first error
//! line, and raises an alarm on a run that was clean — then a table, expected against got.
//! It measures; it never fails because a score is low (the detector work reads the figures).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use serde::Deserialize;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The trainwatch binary to measure.
    #[arg(long)]
    trainwatch: PathBuf,
    /// Manifests to score, each on its own (a part of the corpus: tuned, held-out).
    #[arg(required = true)]
    manifests: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    part: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    log: String,
    exit_status: i32,
    verdict: String,
    category: Option<String>,
    first_error: Option<Line>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
struct Line {
    line: u64,
    text: String,
}

/// What `trainwatch triage --json` says about one log (the fields scored).
#[derive(Debug, Deserialize)]
struct Got {
    verdict: String,
    category: Option<String>,
    first_error: Option<Line>,
}

/// One fixture's outcome.
struct Row<'a> {
    case: &'a Case,
    got: Got,
}

impl Row<'_> {
    fn category_ok(&self) -> bool {
        self.got.category == self.case.category
    }
    fn verdict_ok(&self) -> bool {
        self.got.verdict == self.case.verdict
    }
    /// Scored only where a line is expected: the same line number, and the same text (or its
    /// start, where triage cut it for display with an ellipsis).
    fn line_ok(&self) -> Option<bool> {
        let want = self.case.first_error.as_ref()?;
        Some(match &self.got.first_error {
            Some(got) => got.line == want.line && same_text(&got.text, &want.text),
            None => false,
        })
    }
    fn clean(&self) -> bool {
        self.case.verdict == "ok"
    }
    fn false_alarm(&self) -> bool {
        self.clean() && self.got.verdict != "ok"
    }
}

fn same_text(got: &str, want: &str) -> bool {
    match got.strip_suffix('…') {
        Some(head) => want.starts_with(head),
        None => got == want,
    }
}

fn triage(bin: &Path, log: &Path, exit_status: i32) -> io::Result<Got> {
    let out = Command::new(bin)
        .args(["triage", "--json", "--exit-code"])
        .arg(exit_status.to_string())
        .arg(log)
        .output()?;
    // Exit 0/1/3 carry a verdict; 2 (or anything else) means the log could not be read.
    if !matches!(out.status.code(), Some(0 | 1 | 3)) {
        return Err(io::Error::other(format!(
            "triage {}: {}\n{}",
            log.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| io::Error::other(format!("triage {}: bad JSON: {e}", log.display())))
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "n/a".to_string()
    } else {
        format!("{n}/{d} = {:.0} %", 100.0 * n as f64 / d as f64)
    }
}

fn show(category: &Option<String>, verdict: &str, line: &Option<Line>) -> String {
    let cat = category.as_deref().unwrap_or("-");
    match line {
        Some(l) => format!("{verdict} {cat} @{}", l.line),
        None => format!("{verdict} {cat}"),
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "WRONG"
    }
}

fn score_one(bin: &Path, path: &Path) -> io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    for case in &manifest.cases {
        let got = triage(bin, &base.join(&case.log), case.exit_status)?;
        rows.push(Row { case, got });
    }
    let n = rows.len();
    let cat = rows.iter().filter(|r| r.category_ok()).count();
    let verdict = rows.iter().filter(|r| r.verdict_ok()).count();
    let lines: Vec<bool> = rows.iter().filter_map(|r| r.line_ok()).collect();
    let line_hits = lines.iter().filter(|&&b| b).count();
    let clean = rows.iter().filter(|r| r.clean()).count();
    let alarms = rows.iter().filter(|r| r.false_alarm()).count();

    println!("== {} ({n} fixtures, {})", manifest.part, path.display());
    println!("category accuracy         {}", pct(cat, n));
    println!("verdict accuracy          {}", pct(verdict, n));
    println!("first error line accuracy {}", pct(line_hits, lines.len()));
    println!("false alarms on clean runs {alarms} of {clean} (verdict other than ok)");
    println!();
    println!(
        "{:<30} {:>4}  {:<30} {:<30} {:<7} {:<8} {:<5}",
        "fixture", "exit", "expected", "got", "verdict", "category", "line"
    );
    for r in &rows {
        let want = show(&r.case.category, &r.case.verdict, &r.case.first_error);
        let got = show(&r.got.category, &r.got.verdict, &r.got.first_error);
        let line = match r.line_ok() {
            Some(b) => mark(b),
            None => "-",
        };
        let verdict = if r.false_alarm() {
            "ALARM"
        } else {
            mark(r.verdict_ok())
        };
        println!(
            "{:<30} {:>4}  {:<30} {:<30} {:<7} {:<8} {:<5}",
            r.case.name,
            r.case.exit_status,
            want,
            got,
            verdict,
            mark(r.category_ok()),
            line
        );
    }
    println!();
    Ok(())
}

pub fn run(a: &ScoreArgs) -> io::Result<()> {
    for m in &a.manifests {
        score_one(&a.trainwatch, m)?;
    }
    Ok(())
}
