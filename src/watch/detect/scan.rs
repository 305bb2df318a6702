//! The detector's byte-level work on a region of whole lines that does not depend on its
//! state: which lines hold a prefilter literal, how many lines lie before each, and where
//! the last few lines before each start (what the context ring keeps of the ordinary lines
//! in between). It is a pure function of the bytes, so `trainwatch triage` computes it for
//! the next window on a second thread while the detector reads the current one
//! ([`super::Detector::push_scanned`]); [`super::Detector::push_region`] computes it inline.

use super::prefilter::Prefilter;
use super::RING;

/// The lines of a region that hold a prefilter literal (so could be evidence), with the
/// region's line count. Only valid for the region it was computed from.
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
    /// Its 0-based line index in the region (the region's line count for the end).
    pub(crate) idx: u64,
    /// Where the lines before it start, newest first, back to the previous stop: at most
    /// [`RING`].
    ring: [usize; RING],
    kept: usize,
}

impl Stop {
    /// Where the last lines before this stop that start at or after `from` start, newest
    /// first (at most [`RING`]).
    pub(crate) fn ring_from(&self, from: usize) -> impl Iterator<Item = usize> + '_ {
        self.ring[..self.kept]
            .iter()
            .copied()
            .take_while(move |&s| s >= from)
    }
}

impl RegionScan {
    /// Scan `region`: lines, each ending with `'\n'` (the last may not).
    pub fn of(region: &[u8]) -> Self {
        Self::with(Prefilter::shared(), region)
    }

    pub(crate) fn with(pre: &Prefilter, region: &[u8]) -> Self {
        let mut stops = Vec::new();
        let (mut pos, mut idx) = (0usize, 0u64);
        // No literal holds a '\n', so the leftmost match after a line start lies in the
        // first line after it that holds any literal.
        while let Some(off) = pre.find(&region[pos..]) {
            let at = pos + off;
            let start = memchr::memrchr(b'\n', &region[pos..at]).map_or(pos, |i| pos + i + 1);
            idx += newlines(&region[pos..start]);
            stops.push(Stop::new(region, pos, start, idx));
            idx += 1;
            pos = memchr::memchr(b'\n', &region[at..]).map_or(region.len(), |i| at + i + 1);
        }
        let rest = &region[pos..];
        idx += newlines(rest) + u64::from(!rest.is_empty() && !rest.ends_with(b"\n"));
        stops.push(Stop::new(region, pos, region.len(), idx));
        Self { stops }
    }

    /// Lines in the region.
    pub fn lines(&self) -> u64 {
        self.end().idx
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

impl Stop {
    /// The stop at `start`, `idx`, after the ordinary lines `from..start`.
    fn new(region: &[u8], from: usize, start: usize, idx: u64) -> Self {
        let mut ring = [0usize; RING];
        let mut kept = 0;
        if start > from {
            // The lines' starts, newest first: after each '\n' before the last line's own,
            // then `from` when fewer than RING (a SIMD search back from the end).
            let body = &region[from..start - 1];
            let mut newlines = memchr::memrchr_iter(b'\n', body);
            while kept < RING {
                match newlines.next() {
                    Some(nl) => ring[kept] = from + nl + 1,
                    None => {
                        ring[kept] = from;
                        kept += 1;
                        break;
                    }
                }
                kept += 1;
            }
        }
        Self {
            start,
            idx,
            ring,
            kept,
        }
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(s: &RegionScan) -> Vec<(usize, u64)> {
        s.stops.iter().map(|s| (s.start, s.idx)).collect()
    }

    #[test]
    fn it_finds_the_lines_that_hold_a_literal_and_counts_the_rest() {
        let region = b"step 1\nstep 2 Error here\nstep 3\nstep 4\nTraceback\nKilled";
        let s = RegionScan::of(region);
        assert_eq!(starts(&s), vec![(7, 1), (39, 4), (49, 5), (55, 6)]);
        assert_eq!(s.lines(), 6);
        let mut next = 0;
        assert_eq!(s.next_stop(0, &mut next).start, 7);
        let stop = s.next_stop(25, &mut next);
        assert_eq!((stop.start, stop.idx), (39, 4));
        assert_eq!(stop.ring_from(25).collect::<Vec<_>>(), vec![32, 25]);
        assert_eq!(stop.ring_from(32).collect::<Vec<_>>(), vec![32]);
        assert_eq!(next, 1);
        let plain = RegionScan::of(b"a\nb\n");
        assert_eq!(starts(&plain), vec![(4, 2)]);
        assert_eq!(
            plain.next_stop(0, &mut 0).ring_from(0).collect::<Vec<_>>(),
            vec![2, 0]
        );
        assert_eq!(RegionScan::of(b"").lines(), 0);
        assert_eq!(starts(&RegionScan::of(b"x Error\n")), vec![(0, 0), (8, 1)]);
    }

    #[test]
    fn the_ring_keeps_the_last_lines_before_a_stop() {
        let mut region = Vec::new();
        for k in 0..9 {
            region.extend_from_slice(format!("line {k}\n").as_bytes());
        }
        region.extend_from_slice(b"unended");
        let s = RegionScan::of(&region);
        assert_eq!(s.lines(), 10);
        let end = s.next_stop(0, &mut 0);
        let want: Vec<usize> = (5..10).rev().map(|k| 7 * k).collect();
        assert_eq!(end.ring_from(0).collect::<Vec<_>>(), want);
    }
}
