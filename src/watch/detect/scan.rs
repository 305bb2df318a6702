//! The detector's byte-level work on a region of whole lines that does not depend on its
//! state: which lines hold a prefilter literal (and which groups of literals). It is a pure
//! function of the bytes, so a second thread can compute it for the windows ahead of the
//! detector ([`ScanSlots`], [`super::Detector::push_scanned`]), as `trainwatch triage` and a
//! live catch-up do; [`super::Detector::push_region`] computes it inline.

use std::sync::{Mutex, MutexGuard};

use super::prefilter::{Lits, Prefilter};

/// The scans of consecutive regions, each made by whichever of two threads comes to it
/// first: a helper scans from the last region back ([`ScanSlots::ahead`]), the detector
/// takes them from the first on ([`ScanSlots::get`]) and scans one itself when it gets there
/// first, so while it is behind each thread scans a share before they meet. The scan costs
/// more than the detector's rules on most logs, so when a core is free this shares it; a
/// region is never scanned twice (the helper skips one whose lock the detector holds).
#[derive(Debug, Default)]
pub(crate) struct ScanSlots(Vec<Mutex<Option<RegionScan>>>);

impl ScanSlots {
    pub(crate) fn new(regions: usize) -> Self {
        Self((0..regions).map(|_| Mutex::new(None)).collect())
    }

    /// The helper: scan region `k` unless the detector holds it or it is done; false when
    /// it was not free (the detector has come this far: the regions before are its own).
    pub(crate) fn ahead(&self, k: usize, region: &[u8]) -> bool {
        let Ok(mut scan) = self.0[k].try_lock() else {
            return false;
        };
        if scan.is_some() {
            return false;
        }
        *scan = Some(RegionScan::of(region));
        true
    }

    /// The detector: region `k`'s scan, waiting for the helper if it is scanning it,
    /// scanned here if nobody has.
    pub(crate) fn get(&self, k: usize, region: &[u8]) -> impl std::ops::Deref<Target = RegionScan> + '_ {
        struct Scanned<'a>(MutexGuard<'a, Option<RegionScan>>);
        impl std::ops::Deref for Scanned<'_> {
            type Target = RegionScan;
            fn deref(&self) -> &RegionScan {
                self.0.as_ref().expect("filled before it is lent")
            }
        }
        let mut scan = self.0[k].lock().unwrap_or_else(|e| e.into_inner());
        if scan.is_none() {
            *scan = Some(RegionScan::of(region));
        }
        Scanned(scan)
    }
}

/// The lines of a region that hold a prefilter literal (so could be evidence), each with its
/// line number in the region. Only valid for the region it was computed from. The search
/// counts the newlines it goes over, so the detector knows how many lines lie between two
/// stops without reading them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionScan {
    /// The lines that hold a literal, in order, then the region's end.
    stops: Vec<Stop>,
}

/// A line that holds a literal, or the end of the region (offsets in the region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stop {
    /// Offset of its first byte (the region's length for the end).
    pub(crate) start: usize,
    /// Offset of its `'\n'`, or the region's end when it has none.
    pub(crate) end: usize,
    /// The groups of literals the line holds (`prefilter::lits` of it; 0 for the end).
    pub(crate) lits: Lits,
    /// The lines of the region before it (for the end: all of them, [`lines_in`]).
    pub(crate) line: u64,
}

impl RegionScan {
    /// Scan `region`: lines, each ending with `'\n'` (the last may not).
    pub fn of(region: &[u8]) -> Self {
        Self::with(Prefilter::shared(), region)
    }

    pub(crate) fn with(pre: &Prefilter, region: &[u8]) -> Self {
        let mut stops: Vec<Stop> = Vec::new();
        // Where the line after the last stop starts.
        let mut pos = 0usize;
        // No literal holds a '\n', so an occurrence lies in the line of its fingerprint `at`,
        // and the occurrences come in the order of their lines.
        let newlines = pre.scan(region, |at, group, newlines| {
            if let Some(last) = stops.last_mut().filter(|s| at < s.end) {
                last.lits |= group;
                return;
            }
            let start = memchr::memrchr(b'\n', &region[pos..at]).map_or(pos, |i| pos + i + 1);
            let end = memchr::memchr(b'\n', &region[at..]).map_or(region.len(), |i| at + i);
            // No newline lies between the line's start and `at`.
            stops.push(Stop {
                start,
                end,
                lits: group,
                line: newlines,
            });
            pos = (end + 1).min(region.len());
        });
        let len = region.len();
        stops.push(Stop {
            start: len,
            end: len,
            lits: 0,
            line: newlines + u64::from(!region.is_empty() && !region.ends_with(b"\n")),
        });
        Self { stops }
    }

    /// Length of the region scanned.
    pub(crate) fn len(&self) -> usize {
        self.end().start
    }

    fn end(&self) -> &Stop {
        self.stops.last().expect("a scan ends with the region's end")
    }

    /// The first line holding a literal at or after offset `pos` (a line start), from
    /// `*next` on (advanced to it); the region's end when there is none.
    pub(crate) fn next_stop(&self, pos: usize, next: &mut usize) -> &Stop {
        while self.stops[*next].start < pos {
            *next += 1;
        }
        &self.stops[*next]
    }
}

/// Where the last lines of `span` (whole lines, each ending with `'\n'`, the last may not)
/// start and end, newest first: at most `k` (what the context ring or the tail keeps of
/// them; a SIMD search back from the end).
pub(crate) fn last_lines(span: &[u8], k: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let body = span.strip_suffix(b"\n").unwrap_or(span);
    let mut newlines = memchr::memrchr_iter(b'\n', body);
    let mut end = Some(body.len()).filter(|_| !span.is_empty());
    std::iter::from_fn(move || {
        let e = end?;
        let start = match newlines.next() {
            Some(nl) => {
                end = Some(nl);
                nl + 1
            }
            None => {
                end = None;
                0
            }
        };
        Some((start, e))
    })
    .take(k)
}

/// The lines of `run`, whole lines each ending with `'\n'` (the last may not): a SIMD count.
pub(crate) fn lines_in(run: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', run).count() as u64 + u64::from(!run.is_empty() && !run.ends_with(b"\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::detect::RING;

    fn starts(s: &RegionScan) -> Vec<usize> {
        s.stops.iter().map(|s| s.start).collect()
    }

    #[test]
    fn it_finds_the_lines_that_hold_a_literal() {
        let region = b"step 1\nstep 2 Error here\nstep 3\nstep 4\nTraceback\nKilled";
        let s = RegionScan::of(region);
        assert_eq!(starts(&s), vec![7, 39, 49, 55]);
        let mut next = 0;
        assert_eq!(s.next_stop(0, &mut next).start, 7);
        let stop = s.next_stop(25, &mut next);
        assert_eq!(stop.start, 39);
        assert_eq!(next, 1);
        let plain = RegionScan::of(b"a\nb\n");
        assert_eq!(starts(&plain), vec![4]);
        assert_eq!(starts(&RegionScan::of(b"")), vec![0]);
        assert_eq!(starts(&RegionScan::of(b"x Error\n")), vec![0, 8]);
    }

    /// Every line that holds a literal is a stop, with its end and the groups `lits` finds in
    /// it; no other line is: on tricky lines and on every fixture log of the corpus.
    fn check_stops(region: &[u8]) {
        let scan = RegionScan::of(region);
        let mut want = Vec::new();
        let mut start = 0;
        for line in region.split_inclusive(|&b| b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let m = super::super::prefilter::lits(body);
            if m != 0 {
                want.push((start, start + body.len(), m, lines_in(&region[..start])));
            }
            start += line.len();
        }
        let got: Vec<_> = scan.stops[..scan.stops.len() - 1]
            .iter()
            .map(|s| (s.start, s.end, s.lits, s.line))
            .collect();
        assert_eq!(got, want);
        let end = scan.end();
        assert_eq!(
            (end.start, end.end, end.lits, end.line),
            (region.len(), region.len(), 0, lines_in(region))
        );
    }

    #[test]
    fn each_stop_has_its_lines_end_and_literal_groups() {
        check_stops(b"");
        check_stops(b"plain\nxErrorhat NaNaN Rhat\n\nERROR: loss is nan, r_hat 1.3\nstep 2\n");
        check_stops(b"a\rWarning\nTracebackTraceback\n\n\nunended Killed");
        check_stops(b"Error\nError\ninf\n");
        let mut logs = 0;
        crate::watch::detect::prefilter::tests::for_each_fixture(|log| {
            check_stops(log);
            logs += 1;
        });
        assert!(logs > 100, "{logs} fixture logs");
    }

    #[test]
    fn a_run_counts_its_lines_ended_or_not() {
        assert_eq!(lines_in(b""), 0);
        assert_eq!(lines_in(b"\n"), 1);
        assert_eq!(lines_in(b"a\nb"), 2);
        assert_eq!(lines_in(b"a\nb\n\n"), 3);
    }

    #[test]
    fn the_ring_keeps_the_last_lines_of_a_span() {
        let mut span = Vec::new();
        for k in 0..9 {
            span.extend_from_slice(format!("line {k}\n").as_bytes());
        }
        span.extend_from_slice(b"unended");
        assert_eq!(lines_in(&span), 10);
        let want = vec![(63, 70), (56, 62), (49, 55), (42, 48), (35, 41)];
        assert_eq!(last_lines(&span, RING).collect::<Vec<_>>(), want);
        let want: Vec<_> = (4..9).rev().map(|k| (7 * k, 7 * k + 6)).collect();
        assert_eq!(last_lines(&span[..63], RING).collect::<Vec<_>>(), want);
        assert_eq!(
            last_lines(b"a\nb\n", RING).collect::<Vec<_>>(),
            vec![(2, 3), (0, 1)]
        );
        assert_eq!(
            last_lines(b"\n\n", RING).collect::<Vec<_>>(),
            vec![(1, 1), (0, 0)]
        );
        assert_eq!(last_lines(b"x", RING).collect::<Vec<_>>(), vec![(0, 1)]);
        assert_eq!(last_lines(b"", RING).count(), 0);
    }
}
