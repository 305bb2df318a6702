//! Phase 4.5's comparison: each design parameter's expected value against the actual one in a
//! snapshot, under its tolerance, and the overall score (share of rows within tolerance).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::design::{DesignParam, ParamValue, Tolerance};
use super::snapshot::Snapshot;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Verdict {
    Within,
    Outside,
    /// The actual value could not be read (counts as not within tolerance).
    CannotRead(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Within => f.write_str("✅ within"),
            Verdict::Outside => f.write_str("❌ outside"),
            Verdict::CannotRead(why) => write!(f, "❌ cannot read: {why}"),
        }
    }
}

/// One row of the table: Design | Actual | Tolerance | Verdict.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ComparisonRow {
    pub name: String,
    pub design: String,
    /// The actual value, or "?" when it could not be read (the verdict says why).
    pub actual: String,
    pub tolerance: String,
    pub verdict: Verdict,
}

impl ComparisonRow {
    pub fn within(&self) -> bool {
        self.verdict == Verdict::Within
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Comparison {
    pub rows: Vec<ComparisonRow>,
    /// Share of rows within tolerance, 0..=1; 1 when there are no design parameters.
    pub score: f64,
}

impl Comparison {
    pub fn all_within(&self) -> bool {
        self.rows.iter().all(ComparisonRow::within)
    }
}

/// Compares every design parameter with its value in `actual`.
pub fn compare(design: &[DesignParam], actual: &Snapshot) -> Comparison {
    let rows: Vec<ComparisonRow> = design
        .iter()
        .map(|p| {
            let (actual_text, verdict) = match actual.params.get(&p.name) {
                None => (
                    "?".to_string(),
                    Verdict::CannotRead(
                        "not in the snapshot (taken before this parameter was configured)".into(),
                    ),
                ),
                Some(Err(why)) => ("?".to_string(), Verdict::CannotRead(why.clone())),
                Some(Ok(v)) => (
                    v.to_string(),
                    if within(&p.expected, v, p.tolerance) {
                        Verdict::Within
                    } else {
                        Verdict::Outside
                    },
                ),
            };
            ComparisonRow {
                name: p.name.clone(),
                design: p.expected.to_string(),
                actual: actual_text,
                tolerance: p.tolerance.to_string(),
                verdict,
            }
        })
        .collect();
    let score = if rows.is_empty() {
        1.0
    } else {
        rows.iter().filter(|r| r.within()).count() as f64 / rows.len() as f64
    };
    Comparison { rows, score }
}

/// Whether `actual` is within `tol` of `expected`.
pub fn within(expected: &ParamValue, actual: &ParamValue, tol: Tolerance) -> bool {
    use ParamValue::*;
    match (expected, actual) {
        (Number(e), Number(a)) => {
            let diff = (a - e).abs();
            // Decimal values in files (0.1 + 0.2) are not exact in binary; forgive rounding.
            let slack = 1e-9 * e.abs().max(1.0);
            match tol {
                Tolerance::Exact => diff <= slack,
                Tolerance::Absolute(b) => diff <= b + slack,
                Tolerance::Relative(pct) => diff <= pct / 100.0 * e.abs() + slack,
                Tolerance::SameSet | Tolerance::Subset => false,
            }
        }
        (Text(e), Text(a)) => e.trim() == a.trim(),
        (Set(e), Set(a)) => match tol {
            Tolerance::Subset => a.is_subset(e),
            _ => a == e,
        },
        _ => false,
    }
}

/// The RE-VALIDATION table as plain text lines: a header, one line per parameter, the score.
pub fn render_table(c: &Comparison) -> Vec<String> {
    let header = ["Parameter", "Design", "Actual", "Tolerance", "Verdict"];
    let cells: Vec<[String; 5]> = c
        .rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.design.clone(),
                r.actual.clone(),
                r.tolerance.clone(),
                r.verdict.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row.iter()).take(4) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            if i < 4 {
                s.push_str(&format!("{col:<w$}", w = widths[i]));
            } else {
                s.push_str(col);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(header)];
    out.push(
        widths[..4]
            .iter()
            .map(|w| "-".repeat(*w))
            .chain(std::iter::once("-".repeat(7)))
            .collect::<Vec<_>>()
            .join("-|-"),
    );
    for row in &cells {
        out.push(line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    let within = c.rows.iter().filter(|r| r.within()).count();
    out.push(format!(
        "Overall score: {:.0}% ({within}/{} within tolerance)",
        c.score * 100.0,
        c.rows.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set(items: &[&str]) -> ParamValue {
        ParamValue::Set(items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>())
    }

    #[test]
    fn each_tolerance_kind_accepts_inside_and_rejects_outside() {
        let n = ParamValue::Number;
        assert!(within(&n(2000.0), &n(2000.0), Tolerance::Exact));
        assert!(!within(&n(2000.0), &n(2001.0), Tolerance::Exact));
        assert!(within(&n(0.3), &n(0.1 + 0.2), Tolerance::Exact));
        assert!(within(&n(1000.0), &n(1050.0), Tolerance::Absolute(50.0)));
        assert!(!within(&n(1000.0), &n(1050.5), Tolerance::Absolute(50.0)));
        assert!(within(&n(2000.0), &n(1800.0), Tolerance::Relative(10.0)));
        assert!(!within(&n(2000.0), &n(1799.0), Tolerance::Relative(10.0)));
        assert!(within(&n(-100.0), &n(-109.0), Tolerance::Relative(10.0)));
        let t = |s: &str| ParamValue::Text(s.into());
        assert!(within(&t("NUTS"), &t("NUTS"), Tolerance::Exact));
        assert!(!within(&t("NUTS"), &t("HMC"), Tolerance::Exact));
        assert!(within(
            &set(&["age", "income"]),
            &set(&["income", "age"]),
            Tolerance::SameSet
        ));
        assert!(!within(
            &set(&["age", "income"]),
            &set(&["age"]),
            Tolerance::SameSet
        ));
        assert!(within(
            &set(&["age", "income"]),
            &set(&["age"]),
            Tolerance::Subset
        ));
        assert!(!within(
            &set(&["age", "income"]),
            &set(&["age", "zip"]),
            Tolerance::Subset
        ));
        // A kind mismatch is never within.
        assert!(!within(&n(4.0), &t("4"), Tolerance::Exact));
    }
}
