//! The protocol's CHANGES SUMMARY, computed from two snapshots instead of typed by hand: files
//! modified (with line ranges when git can tell), design parameters before → after, algorithm
//! changed, features added / removed, and the compliance assessment. `design_changed` decides
//! between the re-validation gate and a simple bug fix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compare::{compare, Verdict};
use super::design::{DesignParam, ParamValue, ALGORITHM, FEATURES};
use super::git::{self, LineStat};
use super::snapshot::{ParamReading, Snapshot};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChangesSummary {
    pub files_modified: Vec<FileChange>,
    pub params_changed: Vec<ParamChange>,
    pub algorithm_changed: bool,
    pub features_added: Vec<String>,
    pub features_removed: Vec<String>,
    /// Any design parameter's value (or readability) differs: re-validation is required.
    /// When false the fix is a simple bug fix and the director may resume directly (the
    /// engine's gate decides on this field).
    pub design_changed: bool,
    pub compliance: String,
}

/// One watched file whose content differs. `before` / `after` are SHA-256 hashes; None means
/// the file was absent (added / removed).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileChange {
    pub path: PathBuf,
    pub before: Option<String>,
    pub after: Option<String>,
    /// From git, when the workdir is a repository and the file matched its commit at the first
    /// snapshot; None otherwise (hashes only).
    pub lines: Option<LineStat>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ParamChange {
    pub name: String,
    pub before: ParamReading,
    pub after: ParamReading,
}

/// What changed from `before` (the run's start) to `after` (the submitted fix).
pub fn changes(
    before: &Snapshot,
    after: &Snapshot,
    design: &[DesignParam],
    workdir: &Path,
) -> ChangesSummary {
    let paths: BTreeSet<&PathBuf> = before.files.keys().chain(after.files.keys()).collect();
    let mut files_modified = Vec::new();
    for path in paths {
        let b = before.files.get(path);
        let a = after.files.get(path);
        if b == a {
            continue;
        }
        let lines = before.git.as_ref().and_then(|g| {
            g.clean
                .contains(path)
                .then(|| git::line_stat(workdir, &g.head, path))
                .flatten()
        });
        files_modified.push(FileChange {
            path: path.clone(),
            before: b.cloned(),
            after: a.cloned(),
            lines,
        });
    }

    let reading = |s: &Snapshot, name: &str| -> ParamReading {
        s.params
            .get(name)
            .cloned()
            .unwrap_or_else(|| Err("not in the snapshot".into()))
    };
    let params_changed: Vec<ParamChange> = design
        .iter()
        .map(|p| ParamChange {
            name: p.name.clone(),
            before: reading(before, &p.name),
            after: reading(after, &p.name),
        })
        .filter(|c| c.before != c.after)
        .collect();
    let algorithm_changed = params_changed.iter().any(|c| c.name == ALGORITHM);
    let (features_added, features_removed) = match (before.params.get(FEATURES), after.params.get(FEATURES)) {
        (Some(Ok(ParamValue::Set(b))), Some(Ok(ParamValue::Set(a)))) => (
            a.difference(b).cloned().collect(),
            b.difference(a).cloned().collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    ChangesSummary {
        files_modified,
        design_changed: !params_changed.is_empty(),
        params_changed,
        algorithm_changed,
        features_added,
        features_removed,
        compliance: compliance(design, after),
    }
}

fn compliance(design: &[DesignParam], after: &Snapshot) -> String {
    if design.is_empty() {
        return "no design expectations configured for this job".into();
    }
    let c = compare(design, after);
    let n = c.rows.len();
    let ok = c.rows.iter().filter(|r| r.within()).count();
    let pct = c.score * 100.0;
    if ok == n {
        return format!("compliant: all {n} design parameters within tolerance (score {pct:.0}%)");
    }
    let mut problems = Vec::new();
    for r in &c.rows {
        match &r.verdict {
            Verdict::Within => {}
            Verdict::Outside => problems.push(format!(
                "{} is {} (design {}, tolerance {})",
                r.name, r.actual, r.design, r.tolerance
            )),
            Verdict::CannotRead(why) => problems.push(format!("{} cannot be read ({why})", r.name)),
        }
    }
    format!(
        "NOT compliant: {ok} of {n} design parameters within tolerance (score {pct:.0}%); {}",
        problems.join("; ")
    )
}

/// The CHANGES SUMMARY as plain text lines, in the protocol's wording.
pub fn render_changes(s: &ChangesSummary) -> Vec<String> {
    let mut out = vec!["📋 CHANGES SUMMARY:".to_string()];
    let files = if s.files_modified.is_empty() {
        "none".to_string()
    } else {
        s.files_modified
            .iter()
            .map(file_text)
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push(format!("- Files modified: {files}"));
    if s.params_changed.is_empty() {
        out.push("- Parameters changed: none".into());
    } else {
        let names: Vec<&str> = s.params_changed.iter().map(|c| c.name.as_str()).collect();
        out.push(format!("- Parameters changed: {}", names.join(", ")));
        for c in &s.params_changed {
            out.push(format!(
                "  - {}: Before: {} → After: {}",
                c.name,
                reading_text(&c.before),
                reading_text(&c.after)
            ));
        }
    }
    let algo = s
        .params_changed
        .iter()
        .find(|c| c.name == ALGORITHM)
        .map(|c| format!("YES ({} → {})", reading_text(&c.before), reading_text(&c.after)))
        .unwrap_or_else(|| "NO".into());
    out.push(format!("- Algorithm changed: {algo}"));
    let features = if s.features_added.is_empty() && s.features_removed.is_empty() {
        "NO".to_string()
    } else {
        let mut parts = Vec::new();
        if !s.features_added.is_empty() {
            parts.push(format!("added: {}", s.features_added.join(", ")));
        }
        if !s.features_removed.is_empty() {
            parts.push(format!("removed: {}", s.features_removed.join(", ")));
        }
        format!("YES ({})", parts.join("; "))
    };
    out.push(format!("- Features added/removed: {features}"));
    out.push(format!("- Design expectations compliance: {}", s.compliance));
    out
}

fn reading_text(r: &ParamReading) -> String {
    match r {
        Ok(v) => v.to_string(),
        Err(why) => format!("(cannot read: {why})"),
    }
}

fn file_text(f: &FileChange) -> String {
    let p = f.path.display();
    match (&f.before, &f.after, &f.lines) {
        (None, Some(_), _) => format!("{p} (added)"),
        (Some(_), None, _) => format!("{p} (removed)"),
        (_, _, Some(l)) if !l.ranges.is_empty() => {
            let ranges: Vec<String> = l
                .ranges
                .iter()
                .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                .collect();
            let word = if ranges.len() == 1 && l.ranges[0].0 == l.ranges[0].1 {
                "line"
            } else {
                "lines"
            };
            format!("{p} ({word} {}; +{} −{})", ranges.join(", "), l.added, l.removed)
        }
        _ => format!("{p} (content changed)"),
    }
}
