//! A job's detection settings: the R-hat threshold and its own patterns, checked once.

use regex::Regex;
use thiserror::Error;

use crate::model::Category;

/// Per-job detection settings.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// R-hat above this is a convergence problem (the protocol's 1.1 by default).
    pub rhat_threshold: f64,
    /// Extra patterns: a line matching one is an incident of that category (checked before
    /// the built-in rules, so a job can name its own fatal lines).
    pub extra: Vec<(Category, Regex)>,
    /// Lines matching one of these are never evidence.
    pub ignore: Vec<Regex>,
    /// Each line starts with the number of the task (rank) that printed it, as `srun --label`
    /// writes it (`1: Traceback …`, padded: ` 3: …`): read the line the rank printed, and
    /// quote it with its rank. Off by default: a bare `N: ` is too common to be read as a rank.
    pub rank_labels: bool,
}

/// A pattern of a job's detection settings that cannot be used.
#[derive(Debug, Error)]
pub enum PatternError {
    #[error("pattern {0:?}: expected CATEGORY=REGEX")]
    NoCategory(String),
    #[error("pattern {pattern:?}: {reason}")]
    Category { pattern: String, reason: String },
    #[error("pattern {pattern:?}: invalid regex: {source}")]
    Regex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("R-hat threshold {0} must be a number above 1")]
    Rhat(f64),
}

impl DetectConfig {
    /// Build from text settings (a job's config, the command line): `extra` items are
    /// `CATEGORY=REGEX`, `ignore` items are regexes.
    pub fn from_patterns<S: AsRef<str>>(
        rhat_threshold: f64,
        extra: &[S],
        ignore: &[S],
    ) -> Result<Self, PatternError> {
        if !(rhat_threshold.is_finite() && rhat_threshold > 1.0) {
            return Err(PatternError::Rhat(rhat_threshold));
        }
        let regex = |p: &str, full: &str| {
            Regex::new(p).map_err(|source| PatternError::Regex {
                pattern: full.to_string(),
                source,
            })
        };
        let extra = extra
            .iter()
            .map(|e| {
                let e = e.as_ref();
                let (cat, re) = e
                    .split_once('=')
                    .ok_or_else(|| PatternError::NoCategory(e.to_string()))?;
                let cat: Category = cat.trim().parse().map_err(|reason| PatternError::Category {
                    pattern: e.to_string(),
                    reason,
                })?;
                Ok((cat, regex(re, e)?))
            })
            .collect::<Result<_, PatternError>>()?;
        let ignore = ignore
            .iter()
            .map(|p| regex(p.as_ref(), p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rhat_threshold,
            extra,
            ignore,
            rank_labels: false,
        })
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            rhat_threshold: 1.1,
            extra: Vec::new(),
            ignore: Vec::new(),
            rank_labels: false,
        }
    }
}
