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
pub(crate) const LIMIT: Lits = 1 << 17;
pub(crate) const WATCHDOG: Lits = 1 << 18;
pub(crate) const VALIDATION: Lits = 1 << 19;

/// Every rule in [`super::rules`] needs one of these literals in its line; keep them in sync.
/// Each comes with how many of its first bytes the SIMD search skips: it looks for the rest
/// (the literal's *key*) and checks those bytes before a match, so exactly the literal's
/// occurrences are found either way.
///
/// The skips and the order change no result, only the speed of the search. Teddy fingerprints
/// a key by its first three bytes: a key starting with a common trigram (`out` of `out of
/// memory`, `con` of `converge`, `ite` of `iterations` in `site-packages`) makes a candidate at
/// each occurrence, and each costs a verification. It puts keys whose first three bytes have
/// the same low nibbles in one bucket, any other in bucket `7 - index % 8`, and a bucket's
/// fingerprint is the union of its keys' nibbles, so unlike keys in one bucket match many
/// ordinary bytes. Skips and order were searched to minimise candidates (and keys found
/// without their skipped bytes) on the benchmark's generated log and the real-framework
/// fixtures together, counted over every 3-byte window with Teddy's rule. A new literal may
/// go anywhere with a skip of 0; measure the scan before and after.
const LITERALS: &[(&str, usize, Lits)] = &[
    ("iterations", 1, CONVERGE),
    ("Segmentation fault", 0, CRASH),
    ("Out of memory", 0, MEMORY),
    ("Traceback", 0, TRACEBACK),
    ("rhat", 0, RHAT),
    ("Warning", 0, WARNING),
    ("out of memory", 9, MEMORY),
    ("R-hat", 0, RHAT),
    ("ITERATIONS", 2, CONVERGE),
    ("CRITICAL", 0, LEVEL),
    ("Bus error", 0, CRASH),
    ("nan", 0, NON_FINITE),
    ("NaN", 0, NON_FINITE),
    ("Error", 0, ERROR),
    ("inf", 0, NON_FINITE),
    ("effective sample size", 0, ESS),
    ("Iteration limit", 1, CONVERGE),
    ("exitcode", 0, EXITCODE),
    ("FATAL", 0, LEVEL),
    ("Inf", 0, NON_FINITE),
    ("r_hat", 0, RHAT),
    ("Exception", 0, EXCEPTION),
    ("Killed", 0, KILLED),
    ("terminate called", 2, TERMINATE),
    ("Rhat", 0, RHAT),
    ("converge", 4, CONVERGE),
    // glibc's `prog: file.c:12: func: Assertion `x' failed.`
    ("Assertion `", 0, CRASH),
    ("Fatal", 0, FATAL),
    ("No space left", 0, DISK),
    ("ERROR", 0, LEVEL),
    ("diverg", 0, DIVERG),
    ("R_hat", 0, RHAT),
    // glibc's heap checks before they abort: `double free or corruption (out)`,
    // `free(): invalid pointer`, `malloc(): corrupted top size`, `corrupted size vs. prev_size`
    ("double free", 0, CRASH),
    ("(): invalid", 0, CRASH),
    ("(): corrupted", 0, CRASH),
    ("(): memory corruption", 0, CRASH),
    ("corrupted size vs", 0, CRASH),
    ("corrupted double-linked", 0, CRASH),
    // torchrun's agent: `Received 15 death signal, shutting down workers`
    ("death signal", 0, EXITCODE),
    // a shell's `CPU time limit exceeded`, `File size limit exceeded` (SIGXCPU, SIGXFSZ)
    ("limit exceeded", 0, LIMIT),
    // faulthandler's watchdog (`dump_traceback_later`): `Timeout (0:00:03)!`
    ("Timeout (", 0, WATCHDOG),
    // a run's own word that its model is not learning (rules::NOT_LEARNING)
    ("did not learn", 0, CONVERGE),
    ("is not learning", 0, CONVERGE),
    ("failed to learn", 0, CONVERGE),
    ("stopped learning", 0, CONVERGE),
    ("model did not train", 0, CONVERGE),
    ("plateau at chance", 0, CONVERGE),
    ("on a plateau", 0, CONVERGE),
    ("units are dead", 0, CONVERGE),
    // Lightning's EarlyStopping(divergence_threshold=…): `Divergence threshold reached: …`
    ("Divergence threshold", 0, DIVERG),
    // scipy's curve_fit: `Optimal parameters not found: … reached maxfev = 20.`
    ("Optimal parameters not found", 0, CONVERGE),
    // pydantic's `2 validation errors for TrainConfig`, printed. Its key `error` has the
    // fingerprint of `Error` and `ERROR`: it shares their bucket and adds no false candidate
    // to the others.
    ("validation error", 11, VALIDATION),
    // Lightning's `Time limit reached. Elapsed time is …`: its key `limit reached` has the
    // fingerprint of `limit exceeded` and shares its bucket.
    ("Time limit reached", 5, LIMIT),
];

/// The groups of literals `line` holds (0: an ordinary line). Every position where a key
/// starts is visited with the prefilter's SIMD search (several times faster than an
/// overlapping automaton): as no key is a prefix of another, one key at most starts at a
/// position, and each occurrence of a literal is one of its key, so these are all the
/// literals the line holds.
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

/// The bytes a key's literals skip, each with its literal's group.
type Heads = Vec<(&'static [u8], Lits)>;

/// The distinct keys of [`LITERALS`], in order, each with the skipped bytes and the group of
/// every literal it is the key of.
fn keys() -> Vec<(&'static [u8], Heads)> {
    let mut keys: Vec<(&'static [u8], Heads)> = Vec::new();
    for &(lit, skip, group) in LITERALS {
        let (head, key) = lit.as_bytes().split_at(skip);
        match keys.iter_mut().find(|(k, _)| *k == key) {
            Some((_, heads)) => heads.push((head, group)),
            None => keys.push((key, vec![(head, group)])),
        }
    }
    keys
}

#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    ac: AhoCorasick,
    /// For each key (the automaton's pattern), the bytes that must precede it and the group.
    heads: Vec<Heads>,
}

impl Prefilter {
    pub(crate) fn new() -> Self {
        let (keys, heads): (Vec<_>, Vec<_>) = keys().into_iter().unzip();
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(keys)
            .expect("static literals build");
        Self { ac, heads }
    }

    /// One prefilter for the whole process (the region scans of every thread).
    pub(crate) fn shared() -> &'static Self {
        static PRE: OnceLock<Prefilter> = OnceLock::new();
        PRE.get_or_init(Prefilter::new)
    }

    /// The leftmost key of a literal starting at or after `from` in `hay` (a line, or a
    /// whole buffer of lines for the bulk path that skips ordinary lines without looking at
    /// them one by one): its offset, in the literal's line, and the literal's group.
    #[inline]
    pub(crate) fn find_from(&self, hay: &[u8], from: usize) -> Option<(usize, Lits)> {
        let mut input = aho_corasick::Input::new(hay).range(from..);
        loop {
            let m = self.ac.find(input.clone())?;
            let at = m.start();
            let groups = self.heads[m.pattern().as_usize()]
                .iter()
                .filter(|(head, _)| hay[..at].ends_with(head))
                .fold(0, |g, &(_, group)| g | group);
            if groups != 0 {
                return Some((at, groups));
            }
            // The key without its literal's first bytes: not a literal.
            input.set_start(at + 1);
        }
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
    /// key is a prefix of another (a new literal must keep it so).
    #[test]
    fn no_key_is_a_prefix_of_another() {
        let keys = keys();
        for (a, _) in &keys {
            for (b, _) in &keys {
                assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
            // Teddy's fingerprint is three bytes; a shorter key would shorten every one.
            assert!(a.len() >= 3, "{a:?}");
        }
    }

    /// On every line of the fixture corpus, the groups are those a plain search for each
    /// literal finds.
    #[test]
    fn lits_match_a_plain_search_on_every_fixture_line() {
        let plain = |line: &[u8]| {
            LITERALS
                .iter()
                .filter(|(l, _, _)| line.windows(l.len()).any(|w| w == l.as_bytes()))
                .fold(0, |m, (_, _, g)| m | g)
        };
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")];
        let (mut lines, mut hits) = (0, 0);
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("fixtures") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "log") {
                    for line in std::fs::read(&path).expect("fixture").split(|&b| b == b'\n') {
                        let want = plain(line);
                        assert_eq!(lits(line), want, "{}", String::from_utf8_lossy(line));
                        lines += 1;
                        hits += usize::from(want != 0);
                    }
                }
            }
        }
        assert!(lines > 1000 && hits > 100, "{lines} lines, {hits} with literals");
    }

    /// A key found without its literal's first bytes is no literal; found with them, it is.
    #[test]
    fn a_key_counts_only_with_its_skipped_bytes() {
        assert_eq!(lits(b"the memory of it; mergers, determined"), 0);
        assert_eq!(lits(b"CUDA out of memory."), MEMORY);
        assert_eq!(lits(b"x out of memoryout of memory"), MEMORY);
        assert_eq!(lits(b"did not converge, terminate called"), CONVERGE | TERMINATE);
        assert_eq!(lits(b"ERATIONS REACHED"), 0);
        assert_eq!(lits(b"ITERATIONS REACHED"), CONVERGE);
    }

    /// The groups are those of every literal the line contains, however they overlap.
    #[test]
    fn lits_are_those_of_every_literal_contained() {
        let lines = [
            "Rhat_hat rhatrhat R-hatR_hatr_hat",
            "FATAL Fatal ERRORError CRITICAL exitcode=1 Killed death signal",
            "Out of memoryout of memory No space left terminate called",
            "divergence converged ITERATIONS iterations Iteration limit",
            "effective sample size Inf inf NaNnan Segmentation fault Bus error",
            "WarningException Traceback",
            "double free free(): invalid malloc(): corrupted CPU time limit exceeded Timeout (0:01:00)!",
        ];
        for line in lines {
            let want = LITERALS
                .iter()
                .filter(|(l, _, _)| line.contains(l))
                .fold(0, |m, (_, _, g)| m | g);
            assert_eq!(lits(line.as_bytes()), want, "{line}");
            assert_ne!(want, 0, "{line}");
        }
    }
}
