//! Rules for single lines outside a traceback: Python warnings (which ones matter, which are
//! noise), native libraries' fatal lines, sampler diagnostics (divergences, R-hat, effective
//! sample size), solver messages and a NaN loss. Only called on lines the prefilter let by.

use std::sync::OnceLock;

use regex::Regex;

use super::classify::{self, TbContext};
use crate::model::Category;

/// What one line is, for the detector's state machine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LineKind<'a> {
    /// `Traceback (most recent call last):` (possibly glued after a progress bar).
    TracebackHeader,
    /// PyTorch DataLoader's `Original Traceback (most recent call last):`.
    OriginalHeader,
    /// `…_RemoteTraceback: ` / `RemoteTraceback:`: a worker's traceback follows, quoted.
    RemoteWrapper,
    /// `Exception ignored in: …`: the traceback that follows was swallowed.
    ExceptionIgnored,
    /// A Python warning whose class says nothing about the run (FutureWarning, …): skip its
    /// message lines too, they are prose that may contain any word.
    NoiseWarning,
    /// A line that is evidence on its own.
    Hit(Hit<'a>),
    /// A summary table header with an `r_hat` column (ArviZ / PyMC `az.summary`).
    RhatTable { col: usize, ncols: usize },
    /// Nothing (the prefilter's literal was a false alarm: `train_error`, `0 diverging`, …).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HitKind {
    /// A Python warning line `file:N: XWarning: msg` (its message and source line follow).
    PyWarning,
    /// `Fatal Python error: …` (faulthandler's thread dump follows).
    Faulthandler,
    /// A native library's fatal line (LightGBM `[Fatal]`, a C++ `terminate called …`).
    Native,
    /// Any other single line.
    Plain,
    /// A Python exception line outside a traceback (only SyntaxError & co., which the
    /// interpreter prints without the `Traceback` header for the main script).
    Exception,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit<'a> {
    pub category: Category,
    /// Ends the run unless output shows it did not (then it is a warning).
    pub looks_fatal: bool,
    pub kind: HitKind,
    /// The part of the line that identifies it for burst folding (digits are masked later).
    pub key: &'a str,
    /// For [`HitKind::Native`]: the message a Python exception will repeat.
    pub message: &'a str,
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

/// A Python warning as the `warnings` module prints it: `path:N: ClassWarning: message`
/// (maybe behind a logging prefix). Returns the class, the message and where the class
/// starts. Hand-parsed: this runs on every line that mentions a warning.
fn parse_warning_line(t: &str) -> Option<(&str, &str, usize)> {
    let p = t.find("Warning: ")?;
    let end = p + "Warning".len();
    let b = t.as_bytes();
    let mut start = p;
    while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'_' | b'.')) {
        start -= 1;
    }
    if !(b[start].is_ascii_alphabetic() || b[start] == b'_') {
        return None;
    }
    let before = t[..start].strip_suffix(": ")?;
    let path = before.trim_end_matches(|c: char| c.is_ascii_digit());
    if path.len() == before.len() || !path.ends_with(':') {
        return None;
    }
    Some((&t[start..end], &t[end + 2..], start))
}

fn divergence_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        // The sampler's wording, not "step 12 divergence=0.3" (a KL divergence metric).
        r"(?i)\b(\d+)\s+(?:divergences\b|divergence\s+after|divergent\s+(?:transitions|samples))",
    )
}

fn rhat_value_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b(?:max(?:imum)?[ _])?r[-_ ]?hat\b[^0-9\n]{0,24}?(\d+(?:\.\d+)?|nan|inf)",
    )
}

fn rhat_pymc_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"rhat statistic is larger than (\d+(?:\.\d+)?)")
}

fn hit(category: Category, looks_fatal: bool, kind: HitKind, key: &str) -> LineKind<'_> {
    LineKind::Hit(Hit {
        category,
        looks_fatal,
        kind,
        key,
        message: "",
    })
}

/// Convergence wording shared by warnings and plain lines.
fn says_not_converged(s: &str) -> bool {
    const P: [&str; 9] = [
        "failed to converge",
        "did not converge",
        "not converged",
        "no convergence",
        "Maximum number of iterations",
        "maximum number of iterations",
        "ITERATIONS REACHED LIMIT",
        "Iteration limit reached",
        "max iterations reached",
    ];
    P.iter().any(|p| s.contains(p)) && !s.contains("SVD did not converge")
}

/// Classify a line the prefilter let by. `line` is the visible text (after the last `\r`).
pub(crate) fn classify_line(line: &str, rhat_threshold: f64) -> LineKind<'_> {
    let t = line.trim();
    if t.ends_with("Traceback (most recent call last):") {
        return if t.ends_with("Original Traceback (most recent call last):") {
            LineKind::OriginalHeader
        } else {
            LineKind::TracebackHeader
        };
    }
    if t.ends_with("RemoteTraceback:") {
        return LineKind::RemoteWrapper;
    }
    if t.starts_with("Exception ignored in") {
        return LineKind::ExceptionIgnored;
    }
    // Cheap literal guards first: the regexes below capture, which costs far more.
    let hat = t.contains("hat") || t.contains("HAT") || t.contains("Hat");
    if let Some((class, msg, start)) = parse_warning_line(t) {
        let short = classify::short_name(class);
        let key = &t[start..];
        if matches!(
            short,
            "ConvergenceWarning"
                | "IterationLimitWarning"
                | "HessianInversionWarning"
                | "PerfectSeparationWarning"
        ) || says_not_converged(msg)
        {
            return hit(Category::Convergence, false, HitKind::PyWarning, key);
        }
        if msg.contains("worker stopped while some jobs were given to the executor") {
            return hit(Category::Resource, false, HitKind::PyWarning, key);
        }
        return LineKind::NoiseWarning;
    }
    if let Some(rest) = t.strip_prefix("Fatal Python error:") {
        let lower = rest.to_ascii_lowercase();
        let cat = if lower.contains("memory") {
            Category::Resource
        } else {
            Category::Implementation
        };
        return hit(cat, true, HitKind::Faulthandler, t);
    }
    if let Some(i) = t.find("[Fatal]") {
        let msg = t[i + "[Fatal]".len()..].trim();
        let v = classify::classify_exception("", msg, &TbContext::default());
        return LineKind::Hit(Hit {
            category: v.category,
            looks_fatal: true,
            kind: HitKind::Native,
            key: t,
            message: msg,
        });
    }
    if t.starts_with("terminate called") {
        let cat = if t.contains("bad_alloc") {
            Category::Resource
        } else {
            Category::Implementation
        };
        return hit(cat, true, HitKind::Native, t);
    }
    if t == "Killed" || t.starts_with("Killed ") && t.len() < 80 {
        return hit(Category::Resource, true, HitKind::Plain, t);
    }
    if t.starts_with("Segmentation fault") || t.starts_with("Bus error") {
        return hit(Category::Implementation, true, HitKind::Plain, t);
    }
    if let Some(e) = classify::parse_exception_line(t) {
        if matches!(
            classify::short_name(e.name),
            "SyntaxError" | "IndentationError" | "TabError"
        ) {
            return hit(Category::Implementation, true, HitKind::Exception, t);
        }
    }
    let lower_has = |p: &str| t.contains(p);
    if lower_has("out of memory") || lower_has("Out of memory") {
        return hit(Category::Resource, true, HitKind::Plain, t);
    }
    if lower_has("No space left on device") {
        return hit(Category::Resource, true, HitKind::Plain, t);
    }
    // Sampler diagnostics.
    if t.contains("diverg") {
        if t.contains("only diverging samples") {
            return hit(Category::Convergence, false, HitKind::Plain, t);
        }
        if let Some(c) = divergence_re().captures(t) {
            let n: u64 = c[1].parse().unwrap_or(0);
            if n > 0 {
                return hit(Category::Convergence, false, HitKind::Plain, t);
            }
        }
    }
    if let Some(c) = (hat && t.contains("rhat statistic"))
        .then(|| rhat_pymc_re().captures(t))
        .flatten()
    {
        // PyMC warns above 1.01; the protocol's bar is the configured threshold.
        let bar: f64 = c[1].parse().unwrap_or(0.0);
        return if bar >= rhat_threshold {
            hit(Category::Convergence, false, HitKind::Plain, t)
        } else {
            LineKind::Nothing
        };
    }
    if let Some(k) = t.contains("r_hat").then(|| rhat_table_header(t)).flatten() {
        return k;
    }
    if let Some(c) = hat.then(|| rhat_value_re().captures(t)).flatten() {
        let v = &c[1];
        let bad = v
            .parse::<f64>()
            .map_or(true, |x| x.is_nan() || x > rhat_threshold);
        if bad {
            return hit(Category::Convergence, false, HitKind::Plain, t);
        }
    }
    if t.contains("effective sample size") && t.contains("smaller than") {
        return hit(Category::Convergence, false, HitKind::Plain, t);
    }
    if says_not_converged(t) {
        return hit(Category::Convergence, false, HitKind::Plain, t);
    }
    if classify::loss_not_finite(t) {
        return hit(Category::Convergence, false, HitKind::Plain, t);
    }
    LineKind::Nothing
}

/// `        mean     sd  …  ess_tail  r_hat` → the column of r_hat.
fn rhat_table_header(t: &str) -> Option<LineKind<'static>> {
    let cols: Vec<&str> = t.split_whitespace().collect();
    let col = cols.iter().position(|c| *c == "r_hat")?;
    // A header has only column names, no numbers.
    if cols.iter().any(|c| c.parse::<f64>().is_ok()) || cols.len() < 2 {
        return None;
    }
    Some(LineKind::RhatTable {
        col,
        ncols: cols.len(),
    })
}

/// A row of an R-hat table: its r_hat value, or None when the line is not a row.
pub(crate) fn rhat_row(t: &str, col: usize, ncols: usize) -> Option<f64> {
    let cells: Vec<&str> = t.split_whitespace().collect();
    if cells.len() != ncols + 1 {
        return None;
    }
    let v = cells[col + 1];
    if v.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(line: &str) -> Option<(Category, bool)> {
        match classify_line(line, 1.1) {
            LineKind::Hit(h) => Some((h.category, h.looks_fatal)),
            _ => None,
        }
    }

    #[test]
    fn noise_is_not_evidence() {
        assert_eq!(cat("epoch 3 train_error=0.12 val_error=0.15"), None);
        assert_eq!(cat("tests: 12 passed, 0 failed"), None);
        assert_eq!(cat("There were 0 divergences after tuning."), None);
        assert_eq!(cat("step 12 divergence=0.31 kl_divergence 0.2"), None);
        assert_eq!(cat("max r_hat = 1.004"), None);
        assert_eq!(cat("INFO loading data from disk"), None);
        assert_eq!(
            classify_line("/x/y.py:3: FutureWarning: the default will change", 1.1),
            LineKind::NoiseWarning
        );
        assert_eq!(
            classify_line("The rhat statistic is larger than 1.01 for some parameters.", 1.1),
            LineKind::Nothing
        );
    }

    #[test]
    fn evidence_lines_are_classified() {
        use Category::*;
        assert_eq!(
            cat("There were 37 divergences after tuning. Increase `target_accept`."),
            Some((Convergence, false))
        );
        assert_eq!(
            cat("There was 1 divergence after tuning."),
            Some((Convergence, false))
        );
        assert_eq!(cat("max r_hat = 1.42"), Some((Convergence, false)));
        assert_eq!(cat("step 300 | loss=nan | lr 0.1"), Some((Convergence, false)));
        assert_eq!(cat("Killed"), Some((Resource, true)));
        assert_eq!(
            cat("Fatal Python error: Segmentation fault"),
            Some((Implementation, true))
        );
        assert_eq!(
            cat("[LightGBM] [Fatal] Label must be in [0, 3), but found 7 in label"),
            Some((Data, true))
        );
        assert_eq!(
            cat("/v/sklearn/linear_model/_logistic.py:473: ConvergenceWarning: lbfgs failed to converge after 5 iteration(s)"),
            Some((Convergence, false))
        );
        assert_eq!(
            cat("terminate called after throwing an instance of 'std::bad_alloc'"),
            Some((Resource, true))
        );
    }

    #[test]
    fn rhat_threshold_is_configurable() {
        assert!(matches!(classify_line("R-hat: 1.05", 1.01), LineKind::Hit(_)));
        assert!(matches!(classify_line("R-hat: 1.05", 1.1), LineKind::Nothing));
    }
}
