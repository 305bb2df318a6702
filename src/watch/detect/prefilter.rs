//! The hot-path gate: one Aho-Corasick scan over a handful of literals tells whether a line
//! could be evidence at all. Ordinary metric lines fail it and cost nothing more.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Every rule in [`super::rules`] needs one of these literals in its line; keep them in sync.
const LITERALS: &[&str] = &[
    "Traceback",
    "Error",
    "Exception",
    "Warning",
    "Fatal",
    "Killed",
    "Segmentation fault",
    "Bus error",
    "out of memory",
    "Out of memory",
    "No space left",
    "terminate called",
    "diverg",
    "rhat",
    "r_hat",
    "R-hat",
    "R_hat",
    "Rhat",
    "effective sample size",
    "converge",
    "iterations",
    "ITERATIONS",
    "Iteration limit",
    "nan",
    "NaN",
    "inf",
    "Inf",
    "ERROR",
    "CRITICAL",
    "FATAL",
    "exitcode",
];

#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    ac: AhoCorasick,
}

impl Prefilter {
    pub(crate) fn new() -> Self {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(LITERALS)
            .expect("static literals build");
        Self { ac }
    }

    /// Could this line be evidence? (False for the vast majority of a training log.)
    #[inline]
    pub(crate) fn maybe(&self, line: &[u8]) -> bool {
        self.ac.is_match(line)
    }

    /// Offset of the first possible evidence in `hay` (a whole buffer of lines), for the
    /// bulk path that skips ordinary lines without looking at them one by one.
    #[inline]
    pub(crate) fn find(&self, hay: &[u8]) -> Option<usize> {
        self.ac.find(hay).map(|m| m.start())
    }
}
