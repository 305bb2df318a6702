//! The hot-path gate: one Aho-Corasick scan over a handful of literals tells whether a line
//! could be evidence at all. Ordinary metric lines fail it and cost nothing more. A line
//! that passes is scanned once more for *which* literals it holds ([`lits`]), so that the
//! line rules run only where their literal is: a metric named `MeanSquaredError=` meets the
//! one rule that needs `Error`, not the thirty that need something else.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Groups of literals: a rule in [`super::rules`] can only fire when its group is present.
pub(crate) type Lits = u32;
pub(crate) const TRACEBACK: Lits = 1;
pub(crate) const EXCEPTION: Lits = 1 << 1;
pub(crate) const ERROR: Lits = 1 << 2;
pub(crate) const WARNING: Lits = 1 << 3;
pub(crate) const FATAL: Lits = 1 << 4;
pub(crate) const KILLED: Lits = 1 << 5;
pub(crate) const CRASH: Lits = 1 << 6;
pub(crate) const MEMORY: Lits = 1 << 7;
pub(crate) const DISK: Lits = 1 << 8;
pub(crate) const TERMINATE: Lits = 1 << 9;
pub(crate) const DIVERG: Lits = 1 << 10;
pub(crate) const RHAT: Lits = 1 << 11;
pub(crate) const ESS: Lits = 1 << 12;
pub(crate) const CONVERGE: Lits = 1 << 13;
pub(crate) const NON_FINITE: Lits = 1 << 14;
pub(crate) const LEVEL: Lits = 1 << 15;
pub(crate) const EXITCODE: Lits = 1 << 16;

/// Every rule in [`super::rules`] needs one of these literals in its line; keep them in sync.
///
/// The order changes no result (no literal is a prefix of another, so at most one starts at
/// a position) but it sets the speed of the SIMD search: Teddy puts literals whose first
/// three bytes have the same low nibbles (`Error`/`ERROR`) in one bucket, and each other
/// one in bucket `7 - index % 8`; a bucket's fingerprint is the union of its literals'
/// nibbles, so a bucket of unlike literals matches many ordinary bytes and each false
/// candidate costs a verification. This order was searched to minimise false candidates on
/// the benchmark's generated log and the real-framework fixtures together (counted over
/// every 3-byte window with Teddy's rule): a scan of 32 MiB of that log went from 66 to 47
/// million instructions (callgrind).
/// A new literal may go anywhere; measure the scan before and after.
const LITERALS: &[(&str, Lits)] = &[
    ("iterations", CONVERGE),
    ("ITERATIONS", CONVERGE),
    ("Warning", WARNING),
    ("Out of memory", MEMORY),
    ("rhat", RHAT),
    ("Error", ERROR),
    ("NaN", NON_FINITE),
    ("Segmentation fault", CRASH),
    ("diverg", DIVERG),
    ("effective sample size", ESS),
    ("Exception", EXCEPTION),
    ("nan", NON_FINITE),
    ("Killed", KILLED),
    ("Traceback", TRACEBACK),
    ("inf", NON_FINITE),
    ("CRITICAL", LEVEL),
    ("out of memory", MEMORY),
    ("exitcode", EXITCODE),
    ("FATAL", LEVEL),
    ("Inf", NON_FINITE),
    ("r_hat", RHAT),
    ("Bus error", CRASH),
    ("R-hat", RHAT),
    ("terminate called", TERMINATE),
    ("Rhat", RHAT),
    ("converge", CONVERGE),
    // glibc's `prog: file.c:12: func: Assertion `x' failed.`
    ("Assertion `", CRASH),
    ("Fatal", FATAL),
    ("No space left", DISK),
    ("ERROR", LEVEL),
    ("Iteration limit", CONVERGE),
    ("R_hat", RHAT),
];

fn build(kind: MatchKind) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .match_kind(kind)
        .build(LITERALS.iter().map(|(l, _)| l))
        .expect("static literals build")
}

/// The groups of literals `line` holds (0: an ordinary line). Every position where a
/// literal starts is visited with the prefilter's SIMD search (several times faster than an
/// overlapping automaton): as no literal is a prefix of another, one literal at most starts
/// at a position, so these are all the literals the line holds.
pub(crate) fn lits(line: &[u8]) -> Lits {
    let pre = Prefilter::shared();
    let mut groups = 0;
    let mut from = 0;
    while let Some((at, group)) = pre.find_from(line, from) {
        groups |= group;
        from = at + 1;
    }
    groups
}

#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    ac: AhoCorasick,
}

impl Prefilter {
    pub(crate) fn new() -> Self {
        Self {
            ac: build(MatchKind::LeftmostFirst),
        }
    }

    /// One prefilter for the whole process (the region scans of every thread).
    pub(crate) fn shared() -> &'static Self {
        static PRE: OnceLock<Prefilter> = OnceLock::new();
        PRE.get_or_init(Prefilter::new)
    }

    /// The leftmost literal starting at or after `from` in `hay` (a line, or a whole buffer
    /// of lines for the bulk path that skips ordinary lines without looking at them one by
    /// one): its offset and its group.
    #[inline]
    pub(crate) fn find_from(&self, hay: &[u8], from: usize) -> Option<(usize, Lits)> {
        let m = self.ac.find(aho_corasick::Input::new(hay).range(from..))?;
        Some((m.start(), LITERALS[m.pattern().as_usize()].1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_groups_it_holds() {
        assert_eq!(lits(b"step 3 loss 0.5"), 0);
        assert_eq!(lits(b"eval | MeanSquaredError=0.02"), ERROR);
        assert_eq!(lits(b"ERROR: loss is nan, r_hat 1.3"), LEVEL | NON_FINITE | RHAT);
        assert_eq!(lits(b"Traceback (most recent call last):"), TRACEBACK);
        // Literals that overlap: each is found.
        assert_eq!(lits(b"xErrorhat NaNaN"), ERROR | RHAT | NON_FINITE);
    }

    /// [`lits`] visits each start position once: that finds every literal only while no
    /// literal is a prefix of another (a new literal must keep it so).
    #[test]
    fn no_literal_is_a_prefix_of_another() {
        for (a, _) in LITERALS {
            for (b, _) in LITERALS {
                assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
        }
    }

    /// The groups are those of every literal the line contains, however they overlap.
    #[test]
    fn lits_are_those_of_every_literal_contained() {
        let lines = [
            "Rhat_hat rhatrhat R-hatR_hatr_hat",
            "FATAL Fatal ERRORError CRITICAL exitcode=1 Killed",
            "Out of memoryout of memory No space left terminate called",
            "divergence converged ITERATIONS iterations Iteration limit",
            "effective sample size Inf inf NaNnan Segmentation fault Bus error",
            "WarningException Traceback",
        ];
        for line in lines {
            let want = LITERALS
                .iter()
                .filter(|(l, _)| line.contains(l))
                .fold(0, |m, (_, g)| m | g);
            assert_eq!(lits(line.as_bytes()), want, "{line}");
            assert_ne!(want, 0, "{line}");
        }
    }
}
