//! A snapshot of a job's code at one moment: the SHA-256 of each watched file and the actual
//! value of each design parameter. One is taken when a run starts and another when a fix is
//! submitted; their difference is the CHANGES SUMMARY, and the gate's decision binds to the
//! hashes of the reviewed snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::design::{DesignParam, ParamValue};
use super::git::{self, GitBase};
use super::read::read_param;
use super::GateError;

/// More matched files than this is a glob gone wide (a data or checkpoint folder), not source.
pub const MAX_WATCHED_FILES: usize = 5000;

/// A parameter's actual value, or why it could not be read.
pub type ParamReading = Result<ParamValue, String>;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub taken_at: DateTime<Utc>,
    /// Watched files relative to the workdir → SHA-256 (lower-case hex) of their content.
    pub files: BTreeMap<PathBuf, String>,
    /// Design parameter name → its actual value, or why it could not be read.
    pub params: BTreeMap<String, ParamReading>,
    /// The git state when the workdir is in a repository (for line stats); None otherwise.
    pub git: Option<GitBase>,
}

impl Snapshot {
    /// True when every file of `reviewed` still has the same content here and no file was
    /// added: an approval given on `reviewed` still holds for this code.
    pub fn same_code_as(&self, reviewed: &Snapshot) -> bool {
        self.files == reviewed.files
    }
}

/// The argv entries that name existing files under `workdir`, as escaped globs for
/// [`take_snapshot`]'s `watch` (the job's script, its config file, …).
pub fn watch_from_argv(workdir: &Path, argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let root = workdir.canonicalize().ok();
    for arg in argv {
        // `--config=params.yaml` names a file too.
        let candidate = arg.split_once('=').map(|(_, v)| v).unwrap_or(arg);
        if candidate.is_empty() || candidate.starts_with('-') {
            continue;
        }
        let path = workdir.join(candidate);
        if !path.is_file() {
            continue;
        }
        let (Some(root), Ok(full)) = (&root, path.canonicalize()) else {
            continue;
        };
        if let Ok(rel) = full.strip_prefix(root) {
            let g = glob::Pattern::escape(&rel.to_string_lossy());
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

/// Hashes the watched files — those matching `watch` (globs relative to `workdir`) and every
/// design parameter's source files —, reads each design parameter's actual value, and asks
/// git which commit the work tree is at.
pub fn take_snapshot(
    workdir: &Path,
    watch: &[String],
    design: &[DesignParam],
) -> Result<Snapshot, GateError> {
    let mut snapshot = take_snapshot_without_git(workdir, watch, design)?;
    let listed: Vec<PathBuf> = snapshot.files.keys().cloned().collect();
    snapshot.git = git::base(workdir, &listed);
    Ok(snapshot)
}

/// [`take_snapshot`] but for git (`git: None`): what must be read before a job starts. The
/// commit lookup can follow while the job starts ([`add_git`]).
pub fn take_snapshot_without_git(
    workdir: &Path,
    watch: &[String],
    design: &[DesignParam],
) -> Result<Snapshot, GateError> {
    let meta = std::fs::metadata(workdir).map_err(|e| GateError::Workdir {
        path: workdir.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(GateError::Workdir {
            path: workdir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let mut all: BTreeSet<PathBuf> = BTreeSet::new();
    for g in watch {
        all.extend(expand(workdir, g)?);
    }
    let mut params = BTreeMap::new();
    for p in design {
        let mut matched = BTreeSet::new();
        for g in p.source.globs() {
            matched.extend(expand(workdir, &g)?);
        }
        all.extend(matched.iter().cloned());
        let matched: Vec<PathBuf> = matched.into_iter().collect();
        params.insert(
            p.name.clone(),
            read_param(workdir, &p.source, &p.expected, &matched),
        );
    }
    if all.len() > MAX_WATCHED_FILES {
        return Err(GateError::TooManyFiles {
            count: all.len(),
            limit: MAX_WATCHED_FILES,
        });
    }
    let mut files = BTreeMap::new();
    for rel in &all {
        match hash_file(&workdir.join(rel)) {
            Ok(h) => {
                files.insert(rel.clone(), h);
            }
            // Vanished or unreadable between listing and hashing: it is simply not in this
            // snapshot (a design param read from it says why on its own).
            Err(e) => tracing::warn!(file = %rel.display(), error = %e, "cannot hash watched file"),
        }
    }
    Ok(Snapshot {
        taken_at: Utc::now(),
        git: None,
        files,
        params,
    })
}

/// The git state of a snapshot taken by [`take_snapshot_without_git`] (its files hashed
/// before the job started, git asked while it starts). A file whose content is no longer
/// what was hashed — the job wrote it in between — is not counted as identical to the
/// commit: line stats are given only where `git diff` shows exactly what changed since
/// the hashes.
pub fn add_git(snapshot: &mut Snapshot, workdir: &Path) {
    let listed: Vec<PathBuf> = snapshot.files.keys().cloned().collect();
    let mut base = git::base(workdir, &listed);
    if let Some(b) = &mut base {
        b.clean
            .retain(|rel| hash_file(&workdir.join(rel)).ok().as_ref() == snapshot.files.get(rel));
    }
    snapshot.git = base;
}

/// The regular files a glob (relative to `workdir`) matches, relative to `workdir`.
fn expand(workdir: &Path, pattern: &str) -> Result<BTreeSet<PathBuf>, GateError> {
    let bad = |reason: String| GateError::BadGlob {
        glob: pattern.to_string(),
        reason,
    };
    let rel = Path::new(pattern);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad("must be relative to the workdir, without \"..\"".into()));
    }
    // The workdir's own name may hold glob characters; only the pattern part is a glob.
    let full = format!(
        "{}/{}",
        glob::Pattern::escape(&workdir.to_string_lossy()).trim_end_matches('/'),
        pattern
    );
    let paths = glob::glob(&full).map_err(|e| bad(e.to_string()))?;
    let root = workdir.canonicalize().map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeSet::new();
    for entry in paths {
        let Ok(path) = entry else { continue };
        if !path.is_file() {
            continue;
        }
        // A symlink out of the workdir is not the job's code; do not read what it points at.
        match path.canonicalize() {
            Ok(real) if real.starts_with(&root) => {}
            _ => {
                tracing::debug!(file = %path.display(), "skipping a file that resolves outside the workdir");
                continue;
            }
        }
        if let Ok(r) = path.strip_prefix(workdir) {
            out.insert(r.to_path_buf());
        }
        if out.len() > MAX_WATCHED_FILES {
            return Err(GateError::TooManyFiles {
                count: out.len(),
                limit: MAX_WATCHED_FILES,
            });
        }
    }
    Ok(out)
}

/// SHA-256 of a file's content, streamed (checkpoints can be large), lower-case hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
