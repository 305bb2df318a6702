//! The hot-path gate: one SIMD pass over a handful of literals tells whether a line could be
//! evidence at all. Ordinary metric lines fail it and cost nothing more. The same pass says
//! *which* groups of literals a line holds ([`lits`]), so that the line rules run only where
//! their literal is: a metric named `MeanSquaredError=` meets the one rule that needs `Error`,
//! not the thirty that need something else. It also counts the newlines it goes over, so the
//! lines between two stops are never counted again.
//!
//! The search is Teddy's (as in Hyperscan and the `aho-corasick` crate), written here for
//! this literal set: each literal is placed in one of eight buckets and fingerprinted by
//! [`M`] of its bytes from an offset chosen for it ([`PLACES`]); 32 positions at a time, a
//! table look-up per nibble and per fingerprint byte says which buckets' fingerprints match
//! there, and only then are that bucket's literals compared. The crate's own Teddy needed
//! its fat form for 41 keys (16 buckets, half the bytes per step) and fingerprints a key by
//! its first bytes only; placing each literal's fingerprint where its bytes are rare lets
//! 64 literals share eight buckets with few false candidates.

use std::sync::OnceLock;

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
pub(crate) const EMPTY_LOADER: Lits = 1 << 20;
pub(crate) const DEBUG_RUN: Lits = 1 << 21;
/// A retried attempt (see `super::attempts`): no rule needs it, the attempts are kept.
pub(crate) const ATTEMPT: Lits = 1 << 22;
/// bash's complaint about a line of the script it runs (`job.sh: line 4: …`).
pub(crate) const SHELL: Lits = 1 << 23;
/// A record logged at the warning level (`12:00:01 WARNING name: msg`, `[WARN] msg`): a
/// job's own check may state there what is wrong with its result.
pub(crate) const WARN_RECORD: Lits = 1 << 24;

/// Every rule in [`super::rules`] needs one of these literals in its line; keep them in sync.
/// A new literal needs nothing else: it is searched from its first byte in the last bucket
/// until [`PLACES`] places it (measure the scan before and after).
const LITERALS: &[(&str, Lits)] = &[
    ("iterations", CONVERGE),
    ("Segmentation fault", CRASH),
    ("Out of memory", MEMORY),
    ("Traceback", TRACEBACK),
    ("rhat", RHAT),
    ("Warning", WARNING),
    ("out of memory", MEMORY),
    ("R-hat", RHAT),
    ("ITERATIONS", CONVERGE),
    ("CRITICAL", LEVEL),
    ("Bus error", CRASH),
    ("nan", NON_FINITE),
    ("NaN", NON_FINITE),
    ("Error", ERROR),
    ("inf", NON_FINITE),
    ("effective sample size", ESS),
    ("Iteration limit", CONVERGE),
    ("exitcode", EXITCODE),
    ("FATAL", LEVEL),
    ("Inf", NON_FINITE),
    ("r_hat", RHAT),
    ("Exception", EXCEPTION),
    ("Killed", KILLED),
    ("terminate called", TERMINATE),
    ("Rhat", RHAT),
    ("converge", CONVERGE),
    // glibc's `prog: file.c:12: func: Assertion `x' failed.`
    ("Assertion `", CRASH),
    ("Fatal", FATAL),
    ("No space left", DISK),
    ("ERROR", LEVEL),
    ("diverg", DIVERG),
    ("R_hat", RHAT),
    // glibc's heap checks before they abort: `double free or corruption (out)`,
    // `free(): invalid pointer`, `malloc(): corrupted top size`, `corrupted size vs. prev_size`
    ("double free", CRASH),
    ("(): invalid", CRASH),
    ("(): corrupted", CRASH),
    ("(): memory corruption", CRASH),
    ("corrupted size vs", CRASH),
    ("corrupted double-linked", CRASH),
    // torchrun's agent: `Received 15 death signal, shutting down workers`
    ("death signal", EXITCODE),
    // a shell's `CPU time limit exceeded`, `File size limit exceeded` (SIGXCPU, SIGXFSZ)
    ("limit exceeded", LIMIT),
    // faulthandler's watchdog (`dump_traceback_later`): `Timeout (0:00:03)!`
    ("Timeout (", WATCHDOG),
    // a run's own word that its model is not learning (rules::NOT_LEARNING)
    ("did not learn", CONVERGE),
    ("is not learning", CONVERGE),
    ("failed to learn", CONVERGE),
    ("stopped learning", CONVERGE),
    ("model did not train", CONVERGE),
    ("plateau at chance", CONVERGE),
    ("on a plateau", CONVERGE),
    ("units are dead", CONVERGE),
    // Lightning's EarlyStopping(divergence_threshold=…): `Divergence threshold reached: …`
    ("Divergence threshold", DIVERG),
    // scipy's curve_fit: `Optimal parameters not found: … reached maxfev = 20.`
    ("Optimal parameters not found", CONVERGE),
    // pydantic's `2 validation errors for TrainConfig`, printed. Its key `error` has the
    // fingerprint of `Error` and `ERROR`: it shares their bucket and adds no false candidate
    // to the others.
    ("validation error", VALIDATION),
    // Lightning's `Time limit reached. Elapsed time is …`.
    ("Time limit reached", LIMIT),
    // a shell's `Alarm clock` (SIGALRM)
    ("Alarm clock", LIMIT),
    // sd-daemon(3) priorities of a systemd service's records: `<3>` err, `<2>` crit
    ("<3>", LEVEL),
    ("<2>", LEVEL),
    // Lightning's `Total length of `DataLoader` across ranks is zero.`
    ("across ranks is zero", EMPTY_LOADER),
    // Lightning's `Running in `fast_dev_run` mode: will run the requested loop using 1 batch(es).`
    ("fast_dev_run` mode", DEBUG_RUN),
    // a client's word on an attempt it retries: `timed out (attempt 1/3), retrying in 1s`
    ("attempt", ATTEMPT),
    ("Attempt", ATTEMPT),
    ("retry", ATTEMPT),
    ("retrying", ATTEMPT),
    // bash's `job.sh: line 4: $'\r': command not found`
    (": line ", SHELL),
    // a record at the warning level (`WARNING`, `WARN`)
    ("WARN", WARN_RECORD),
];

/// Bytes of each literal the SIMD search fingerprints (the shortest literals' length: 4 made
/// the step a fifth longer and saved few candidates).
pub(crate) const M: usize = 3;

/// Where each literal is fingerprinted: the offset of its [`M`] bytes and its bucket. Placing
/// changes no result, only the speed: a position where a bucket's fingerprint matches is a
/// candidate whose literals are compared, and a bucket's fingerprint is the union of its
/// literals' nibbles at each of the [`M`] positions, so literals with unlike bytes in one
/// bucket match many ordinary bytes. Chosen by a greedy placement then local moves that
/// minimise candidates, counted over every 3-byte window of the benchmark's generated log
/// and the real-framework fixtures (weighted 20×): `tests::place_the_literals` prints them
/// anew (run it after adding literals).
const PLACES: &[(&str, usize, u8)] = &[
    ("Optimal parameters not found", 0, 0),
    ("across ranks is zero", 16, 0),
    ("corrupted size vs", 4, 0),
    ("exitcode", 1, 0),
    ("Error", 0, 0),
    ("ERROR", 0, 0),
    ("units are dead", 2, 1),
    ("Bus error", 0, 1),
    ("retrying", 1, 1),
    ("retry", 1, 1),
    ("corrupted double-linked", 12, 2),
    ("effective sample size", 0, 2),
    ("Segmentation fault", 1, 2),
    ("Time limit reached", 5, 2),
    ("fast_dev_run` mode", 10, 2),
    ("Iteration limit", 10, 2),
    ("limit exceeded", 0, 2),
    ("double free", 2, 2),
    ("Killed", 0, 2),
    ("inf", 0, 2),
    ("Inf", 0, 2),
    ("(): memory corruption", 0, 3),
    ("Divergence threshold", 0, 3),
    ("(): corrupted", 0, 3),
    ("(): invalid", 0, 3),
    ("ITERATIONS", 5, 3),
    ("Exception", 0, 3),
    ("Timeout (", 0, 3),
    ("CRITICAL", 3, 3),
    ("Warning", 0, 3),
    ("R-hat", 1, 3),
    ("FATAL", 2, 3),
    ("plateau at chance", 4, 4),
    ("on a plateau", 9, 4),
    ("attempt", 3, 4),
    ("Attempt", 3, 4),
    ("NaN", 0, 4),
    ("<3>", 0, 4),
    ("<2>", 0, 4),
    ("model did not train", 8, 5),
    ("stopped learning", 6, 5),
    ("validation error", 9, 5),
    ("is not learning", 5, 5),
    ("did not learn", 2, 5),
    ("death signal", 9, 5),
    ("Assertion `", 8, 5),
    ("Fatal", 2, 5),
    ("nan", 0, 5),
    ("terminate called", 1, 6),
    ("Out of memory", 5, 6),
    ("out of memory", 5, 6),
    ("Alarm clock", 4, 6),
    ("iterations", 2, 6),
    ("Traceback", 4, 6),
    ("converge", 4, 6),
    ("diverg", 3, 6),
    ("failed to learn", 8, 7),
    ("No space left", 7, 7),
    (": line ", 0, 7),
    ("r_hat", 1, 7),
    ("R_hat", 1, 7),
    ("rhat", 0, 7),
    ("Rhat", 0, 7),
];

/// The groups of literals `line` holds (0: an ordinary line): every literal occurrence is
/// found once, at its fingerprint's position.
pub(crate) fn lits(line: &[u8]) -> Lits {
    let mut groups = 0;
    Prefilter::shared().scan(line, |_, g, _| groups |= g);
    groups
}

/// One literal as the search compares it.
#[derive(Debug, Clone)]
struct Lit {
    bytes: &'static [u8],
    /// Where its fingerprint starts in it.
    offset: usize,
    /// The fingerprinted bytes, `bytes[offset..offset + M]`.
    key: [u8; M],
    group: Lits,
}

#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    /// `lo[k][n]`: the buckets whose fingerprint byte `k` may have low nibble `n`; `hi` the
    /// same for high nibbles. A position is a candidate for bucket `b` when bit `b` is set for
    /// each of its [`M`] bytes in both tables.
    lo: [[u8; 16]; M],
    hi: [[u8; 16]; M],
    buckets: [Vec<Lit>; 8],
    avx2: bool,
}

impl Default for Prefilter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prefilter {
    pub(crate) fn new() -> Self {
        let mut pre = Prefilter {
            lo: [[0; 16]; M],
            hi: [[0; 16]; M],
            buckets: Default::default(),
            avx2: avx2(),
        };
        for &(lit, group) in LITERALS {
            let (offset, bucket) = PLACES
                .iter()
                .find(|(l, _, _)| *l == lit)
                .map_or((0, 7), |&(_, o, b)| (o, usize::from(b)));
            let bytes = lit.as_bytes();
            // The look-up of a low nibble takes the byte as it is: a byte past 0x7F finds no
            // bucket, which is right only while every fingerprint byte is ASCII.
            assert!(lit.is_ascii() && offset + M <= bytes.len(), "{lit:?} at {offset}");
            let bit = 1u8 << bucket;
            for (k, &c) in bytes[offset..offset + M].iter().enumerate() {
                pre.lo[k][usize::from(c & 15)] |= bit;
                pre.hi[k][usize::from(c >> 4)] |= bit;
            }
            let mut key = [0; M];
            key.copy_from_slice(&bytes[offset..offset + M]);
            pre.buckets[bucket].push(Lit {
                bytes,
                offset,
                key,
                group,
            });
        }
        pre
    }

    /// One prefilter for the whole process (the region scans of every thread).
    pub(crate) fn shared() -> &'static Self {
        static PRE: OnceLock<Prefilter> = OnceLock::new();
        PRE.get_or_init(Prefilter::new)
    }

    /// Visit every literal occurrence in `hay`, in order of its fingerprint's position `p`
    /// (inside the literal, so in the literal's line): `found(p, groups, newlines)`, with the
    /// groups of every literal whose fingerprint is at `p` and the number of `'\n'` in
    /// `hay[..p]`. Returns the number of `'\n'` in `hay`.
    #[inline]
    pub(crate) fn scan(&self, hay: &[u8], mut found: impl FnMut(usize, Lits, u64)) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: AVX2 and POPCNT were detected at run time (`avx2()`).
            return unsafe { self.scan_avx2(hay, &mut found) };
        }
        self.scan_scalar(hay, &mut found)
    }

    /// The buckets whose fingerprint matches at `hay[p..]` (bytes past the end read as 0,
    /// which no fingerprint holds).
    #[inline]
    fn buckets_at(&self, hay: &[u8], p: usize) -> u8 {
        let mut m = 0xFF;
        for k in 0..M {
            let c = hay.get(p + k).copied().unwrap_or(0);
            let lo = if c < 0x80 {
                self.lo[k][usize::from(c & 15)]
            } else {
                0
            };
            m &= lo & self.hi[k][usize::from(c >> 4)];
        }
        m
    }

    /// The literals of `buckets` whose fingerprint is at `p`: their groups, 0 for none.
    #[inline]
    fn confirm(&self, hay: &[u8], p: usize, mut buckets: u8) -> Lits {
        let mut groups = 0;
        while buckets != 0 {
            let b = buckets.trailing_zeros() as usize;
            buckets &= buckets - 1;
            for lit in &self.buckets[b] {
                // The fingerprinted bytes first: most candidates differ there.
                if hay.get(p..p + M) != Some(&lit.key[..]) {
                    continue;
                }
                if let Some(q) = p.checked_sub(lit.offset) {
                    if hay.get(q..q + lit.bytes.len()) == Some(lit.bytes) {
                        groups |= lit.group;
                    }
                }
            }
        }
        groups
    }

    /// The search a byte at a time: for machines without AVX2, and the SIMD one's reference
    /// in the tests.
    fn scan_scalar(&self, hay: &[u8], found: &mut impl FnMut(usize, Lits, u64)) -> u64 {
        let mut newlines = 0;
        for (p, &c) in hay.iter().enumerate() {
            let b = self.buckets_at(hay, p);
            if b != 0 {
                let g = self.confirm(hay, p, b);
                if g != 0 {
                    found(p, g, newlines);
                }
            }
            newlines += u64::from(c == b'\n');
        }
        newlines
    }

    /// 32 positions per step ([`step`]); the newlines are counted from the same loads.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn scan_avx2(&self, hay: &[u8], found: &mut impl FnMut(usize, Lits, u64)) -> u64 {
        let t = Tables::of(self);
        let mut newlines = 0u64;
        let mut p = 0;
        while p + 32 + M - 1 <= hay.len() {
            // SAFETY: M + 31 bytes from p are in `hay`.
            let (acc, nls) = step(&t, hay.as_ptr().add(p));
            if _mm256_testz_si256(acc, acc) == 0 {
                self.candidates(hay, p, acc, 32, (nls, newlines), found);
            }
            newlines += u64::from(nls.count_ones());
            p += 32;
        }
        // The last positions (fewer than 32 + M - 1) from a zero-padded copy: a zero byte is
        // in no fingerprint and no newline.
        let mut pad = [0u8; 64 + M];
        let tail = &hay[p..];
        pad[..tail.len()].copy_from_slice(tail);
        let mut q = 0;
        while q < tail.len() {
            // SAFETY: M + 31 bytes of `pad` from q (q is 0 or 32).
            let (acc, nls) = step(&t, pad.as_ptr().add(q));
            self.candidates(hay, p + q, acc, tail.len() - q, (nls, newlines), found);
            newlines += u64::from(nls.count_ones());
            q += 32;
        }
        newlines
    }

    /// The candidates of the 32 positions from `p0` (of which the first `valid` are in
    /// `hay`) whose buckets are `acc`'s bytes: each confirmed, and reported with the newlines
    /// before it (`nls`: the block's newline mask, `before`: the newlines before the block).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn candidates(
        &self,
        hay: &[u8],
        p0: usize,
        acc: __m256i,
        valid: usize,
        (nls, before): (u32, u64),
        found: &mut impl FnMut(usize, Lits, u64),
    ) {
        let mut cands = !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(acc, _mm256_setzero_si256())) as u32);
        if valid < 32 {
            cands &= (1u32 << valid) - 1;
        }
        let mut buckets = [0u8; 32];
        _mm256_storeu_si256(buckets.as_mut_ptr().cast(), acc);
        while cands != 0 {
            let i = cands.trailing_zeros() as usize;
            cands &= cands - 1;
            let g = self.confirm(hay, p0 + i, buckets[i]);
            if g != 0 {
                found(
                    p0 + i,
                    g,
                    before + u64::from((nls & ((1u32 << i) - 1)).count_ones()),
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The nibble tables in registers, each in both 128-bit lanes (`vpshufb` looks up per lane).
#[cfg(target_arch = "x86_64")]
struct Tables {
    lo: [__m256i; M],
    hi: [__m256i; M],
}

#[cfg(target_arch = "x86_64")]
impl Tables {
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn of(pre: &Prefilter) -> Self {
        let mut t = Tables {
            lo: [_mm256_setzero_si256(); M],
            hi: [_mm256_setzero_si256(); M],
        };
        for k in 0..M {
            t.lo[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128(pre.lo[k].as_ptr().cast()));
            t.hi[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128(pre.hi[k].as_ptr().cast()));
        }
        t
    }
}

/// The buckets whose fingerprint matches at each of the 32 positions from `ptr` (a byte of
/// bucket bits each), and the mask of those positions holding a `'\n'`. For each fingerprint
/// byte `k`, the bytes at `ptr + k..` are split into nibbles and each nibble looks its buckets
/// up; the buckets left in every look-up are the candidates.
///
/// SAFETY: `ptr` must have M + 31 readable bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline]
unsafe fn step(t: &Tables, ptr: *const u8) -> (__m256i, u32) {
    let nibble = _mm256_set1_epi8(0x0F);
    let first = _mm256_loadu_si256(ptr.cast());
    let mut acc = _mm256_set1_epi8(-1);
    for k in 0..M {
        let v = if k == 0 {
            first
        } else {
            _mm256_loadu_si256(ptr.add(k).cast())
        };
        // `vpshufb` reads a byte's low nibble and gives 0 when its top bit is set: the byte
        // itself is the low nibble's index (see `Prefilter::new`).
        let l = _mm256_shuffle_epi8(t.lo[k], v);
        let h = _mm256_shuffle_epi8(t.hi[k], _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
        acc = _mm256_and_si256(acc, _mm256_and_si256(l, h));
    }
    let newlines = _mm256_movemask_epi8(_mm256_cmpeq_epi8(first, _mm256_set1_epi8(b'\n' as i8))) as u32;
    (acc, newlines)
}

/// Whether this machine has AVX2 and POPCNT (the search's SIMD form).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// Every place names a literal, with its fingerprint starting inside it.
    #[test]
    fn every_place_is_a_literal_s() {
        for &(lit, offset, bucket) in PLACES {
            let len = LITERALS.iter().find(|(l, _)| *l == lit).map(|(l, _)| l.len());
            assert!(len.is_some_and(|n| offset < n), "{lit:?}");
            assert!(bucket < 8, "{lit:?}");
        }
    }

    /// Every literal occurrence: (fingerprint position, groups, newlines before), in order.
    fn occurrences(pre: &Prefilter, hay: &[u8], simd: bool) -> (Vec<(usize, Lits, u64)>, u64) {
        let mut v = Vec::new();
        let n = if simd {
            pre.scan(hay, |p, g, nl| v.push((p, g, nl)))
        } else {
            pre.scan_scalar(hay, &mut |p, g, nl| v.push((p, g, nl)))
        };
        (v, n)
    }

    /// The SIMD search finds what the byte-at-a-time one does, with the same newline counts:
    /// literals at every offset from a region's start and end (the padded tail), across the
    /// 32-byte steps, on every fixture log.
    #[test]
    fn the_simd_search_finds_what_the_scalar_one_does() {
        let pre = Prefilter::new();
        let check = |hay: &[u8]| {
            let got = occurrences(&pre, hay, true);
            assert_eq!(
                got,
                occurrences(&pre, hay, false),
                "{:?}",
                String::from_utf8_lossy(hay)
            );
            assert_eq!(got.1, hay.iter().filter(|&&c| c == b'\n').count() as u64);
            got
        };
        for &(lit, _) in LITERALS {
            for pad in 0..80 {
                let mut hay = vec![b'x'; pad];
                for (k, c) in hay.iter_mut().enumerate() {
                    if k % 7 == 3 {
                        *c = b'\n';
                    }
                }
                hay.extend_from_slice(lit.as_bytes());
                let (occ, _) = check(&hay);
                assert_eq!(occ.len(), 1, "{lit:?} after {pad}");
                for after in [1, 5, 31, 33] {
                    let mut more = hay.clone();
                    more.extend(std::iter::repeat(b'\n').take(after));
                    check(&more);
                    check(&more[1..]);
                }
            }
        }
        let mut all = Vec::new();
        for_each_fixture(|log| {
            check(log);
            all.extend_from_slice(log);
        });
        check(&all);
    }

    /// Calls `f` with every fixture log under tests/fixtures (all parts of the corpus).
    pub(crate) fn for_each_fixture(mut f: impl FnMut(&[u8])) {
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("fixtures") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "log") {
                    f(&std::fs::read(&path).expect("fixture"));
                }
            }
        }
    }

    /// On every line of the fixture corpus, the groups are those a plain search for each
    /// literal finds.
    #[test]
    fn lits_match_a_plain_search_on_every_fixture_line() {
        let plain = |line: &[u8]| {
            LITERALS
                .iter()
                .filter(|(l, _)| line.windows(l.len()).any(|w| w == l.as_bytes()))
                .fold(0, |m, (_, g)| m | g)
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

    /// A literal's fingerprint found without the rest of it is no literal; with it, it is.
    #[test]
    fn a_literal_counts_only_whole() {
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
                .filter(|(l, _)| line.contains(l))
                .fold(0, |m, (_, g)| m | g);
            assert_eq!(lits(line.as_bytes()), want, "{line}");
            assert_ne!(want, 0, "{line}");
        }
    }

    /// Not a check: prints a placement for [`PLACES`], greedy then local moves that minimise
    /// the candidates (weighted by the literals compared at each) over every 3-byte window of
    /// the fixtures (weighted 20×) and of the log named by `TW_PLACE_LOG` (a `twbench gen-log`
    /// log). `cargo test --release --lib place_the_literals -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn place_the_literals() {
        use std::collections::HashMap;
        let mut counts: HashMap<[u8; M], u64> = HashMap::new();
        let mut add = |bytes: &[u8], weight: u64| {
            for w in bytes.windows(M) {
                *counts.entry(w.try_into().expect("M bytes")).or_default() += weight;
            }
        };
        for_each_fixture(|log| add(log, 20));
        if let Ok(path) = std::env::var("TW_PLACE_LOG") {
            add(&std::fs::read(path).expect("TW_PLACE_LOG"), 1);
        }
        // The windows by first byte: a bucket only looks at those its first position admits.
        let mut by_first: Vec<Vec<([u8; M], u64)>> = vec![Vec::new(); 256];
        for (w, c) in counts {
            by_first[usize::from(w[0])].push((w, c));
        }
        let lits: Vec<&[u8]> = LITERALS.iter().map(|(l, _)| l.as_bytes()).collect();
        let cost = |members: &[(usize, usize)]| -> f64 {
            if members.is_empty() {
                return 0.0;
            }
            let (mut lo, mut hi) = ([0u16; M], [0u16; M]);
            for &(i, o) in members {
                for k in 0..M {
                    lo[k] |= 1 << (lits[i][o + k] & 15);
                    hi[k] |= 1 << (lits[i][o + k] >> 4);
                }
            }
            let pass = |k: usize, c: u8| (lo[k] >> (c & 15)) & 1 == 1 && (hi[k] >> (c >> 4)) & 1 == 1;
            let mut passes = 0;
            for (first, windows) in by_first.iter().enumerate() {
                if pass(0, first as u8) {
                    passes += windows
                        .iter()
                        .filter(|(w, _)| (1..M).all(|k| pass(k, w[k])))
                        .map(|(_, c)| c)
                        .sum::<u64>();
                }
            }
            passes as f64 * (1.0 + 0.5 * members.len() as f64)
        };
        let mut buckets: Vec<Vec<(usize, usize)>> = vec![Vec::new(); 8];
        let mut costs = vec![0.0; 8];
        let best = |i: usize, buckets: &[Vec<(usize, usize)>], costs: &[f64]| {
            let mut best = (f64::MAX, 0, 0, 0.0);
            for b in 0..8 {
                for o in 0..=lits[i].len() - M {
                    let mut m = buckets[b].clone();
                    m.push((i, o));
                    let c = cost(&m);
                    if c - costs[b] < best.0 {
                        best = (c - costs[b], b, o, c);
                    }
                }
            }
            best
        };
        let mut order: Vec<usize> = (0..lits.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lits[i].len()));
        for &i in &order {
            let (_, b, o, c) = best(i, &buckets, &costs);
            buckets[b].push((i, o));
            costs[b] = c;
        }
        for _ in 0..8 {
            let mut moved = 0;
            for &i in &order {
                let b0 = buckets
                    .iter()
                    .position(|m| m.iter().any(|&(j, _)| j == i))
                    .expect("placed");
                let k = buckets[b0].iter().position(|&(j, _)| j == i).expect("placed");
                let (_, o0) = buckets[b0].remove(k);
                costs[b0] = cost(&buckets[b0]);
                let (_, b, o, c) = best(i, &buckets, &costs);
                moved += usize::from((b, o) != (b0, o0));
                buckets[b].push((i, o));
                costs[b] = c;
            }
            if moved == 0 {
                break;
            }
        }
        println!("total cost {:.0}", costs.iter().sum::<f64>());
        for (b, members) in buckets.iter().enumerate() {
            for &(i, o) in members {
                println!("    ({:?}, {o}, {b}),", LITERALS[i].0);
            }
        }
    }
}
