//! Choosing the checkpoint a restart resumes from: the newest file matching the job's
//! checkpoint glob, substituted into the job's resume argv (element by element, no shell).

use std::path::PathBuf;
use std::time::SystemTime;

use super::ExecError;

/// The placeholder in a resume argv that is replaced by the checkpoint's path.
pub const CHECKPOINT_PLACEHOLDER: &str = "{checkpoint}";

/// Pick the newest regular file (by modification time; ties broken by the greater path, so
/// the choice is stable) matching the absolute glob `pattern`, and return it with
/// `resume_argv` where every `{checkpoint}` is replaced by its path. `Ok(None)` when no
/// file matches.
pub fn resolve_resume(
    pattern: &str,
    resume_argv: &[String],
) -> Result<Option<(PathBuf, Vec<String>)>, ExecError> {
    let bad = |reason: &str| ExecError::Pattern {
        pattern: pattern.to_string(),
        reason: reason.to_string(),
    };
    if !pattern.starts_with('/') {
        return Err(bad("must be an absolute path"));
    }
    if resume_argv.is_empty() {
        return Err(ExecError::InvalidSpec("the resume argv is empty".into()));
    }
    if !resume_argv.iter().any(|a| a.contains(CHECKPOINT_PLACEHOLDER)) {
        return Err(ExecError::InvalidSpec(format!(
            "the resume argv has no {CHECKPOINT_PLACEHOLDER} placeholder"
        )));
    }
    let paths = glob::glob(pattern).map_err(|e| bad(e.msg))?;
    let mut best: Option<(SystemTime, PathBuf)> = None;
    // Unreadable entries (permissions, races with a trainer deleting old checkpoints) are
    // skipped: they cannot be resumed from anyway.
    for path in paths.flatten() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let Ok(mtime) = meta.modified() else {
            continue;
        };
        let newer = match &best {
            None => true,
            Some((t, p)) => (mtime, &path) > (*t, p),
        };
        if newer {
            best = Some((mtime, path));
        }
    }
    let Some((_, path)) = best else {
        return Ok(None);
    };
    let Some(s) = path.to_str() else {
        return Err(ExecError::InvalidSpec(format!(
            "checkpoint path {} is not valid UTF-8",
            path.display()
        )));
    };
    let argv = resume_argv
        .iter()
        .map(|a| a.replace(CHECKPOINT_PLACEHOLDER, s))
        .collect();
    Ok(Some((path, argv)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_relative_patterns_and_missing_placeholders() {
        let argv = vec!["train".to_string(), "--resume={checkpoint}".to_string()];
        assert!(matches!(
            resolve_resume("ckpt/*.pt", &argv),
            Err(ExecError::Pattern { .. })
        ));
        assert!(matches!(
            resolve_resume("/nonexistent-dir/*.pt", &["train".to_string()]),
            Err(ExecError::InvalidSpec(_))
        ));
        assert!(matches!(
            resolve_resume("/x/[", &argv),
            Err(ExecError::Pattern { .. })
        ));
    }
}
