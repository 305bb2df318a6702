//! The detector's byte-level work on a region of whole lines that does not depend on its
//! state: which lines hold a prefilter literal, and how many lines lie before each. It is a
//! pure function of the bytes, so `trainwatch triage` computes it for the next window on a
//! second thread while the detector reads the current one
//! ([`super::Detector::push_scanned`]); [`super::Detector::push_region`] computes it inline.

use super::prefilter::Prefilter;

/// The lines of a region that hold a prefilter literal (so could be evidence), with the
/// region's line count. Only valid for the region it was computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionScan {
    /// Per such line, in order: the offset of its first byte and its 0-based line index.
    hits: Vec<(usize, u64)>,
    /// Lines in the region (an unterminated last line counts).
    lines: u64,
    /// Length of the region scanned (a check that a scan meets its own region).
    len: usize,
}

impl RegionScan {
    /// Scan `region`: lines, each ending with `'\n'` (the last may not).
    pub fn of(region: &[u8]) -> Self {
        Self::with(Prefilter::shared(), region)
    }

    pub(crate) fn with(pre: &Prefilter, region: &[u8]) -> Self {
        let mut hits = Vec::new();
        let (mut pos, mut idx) = (0usize, 0u64);
        // No literal holds a '\n', so the leftmost match after a line start lies in the
        // first line after it that holds any literal.
        while let Some(off) = pre.find(&region[pos..]) {
            let at = pos + off;
            let start = memchr::memrchr(b'\n', &region[pos..at]).map_or(pos, |i| pos + i + 1);
            idx += newlines(&region[pos..start]);
            hits.push((start, idx));
            idx += 1;
            pos = memchr::memchr(b'\n', &region[at..]).map_or(region.len(), |i| at + i + 1);
        }
        let rest = &region[pos..];
        idx += newlines(rest) + u64::from(!rest.is_empty() && !rest.ends_with(b"\n"));
        Self {
            hits,
            lines: idx,
            len: region.len(),
        }
    }

    /// Lines in the region.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first line holding a literal at or after offset `pos` (a line start), from
    /// `*next` on (advanced to it): its offset and line index; the region's end and line
    /// count when there is none.
    pub(crate) fn next_hit(&self, pos: usize, next: &mut usize) -> (usize, u64) {
        while self.hits.get(*next).is_some_and(|&(at, _)| at < pos) {
            *next += 1;
        }
        self.hits.get(*next).copied().unwrap_or((self.len, self.lines))
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_finds_the_lines_that_hold_a_literal_and_counts_the_rest() {
        let region = b"step 1\nstep 2 Error here\nstep 3\nstep 4\nTraceback\nKilled";
        let s = RegionScan::of(region);
        assert_eq!(s.hits, vec![(7, 1), (39, 4), (49, 5)]);
        assert_eq!(s.lines(), 6);
        let mut next = 0;
        assert_eq!(s.next_hit(0, &mut next), (7, 1));
        assert_eq!(s.next_hit(25, &mut next), (39, 4));
        assert_eq!(next, 1);
        let plain = RegionScan::of(b"a\nb\n");
        assert_eq!((plain.hits.len(), plain.lines()), (0, 2));
        assert_eq!(plain.next_hit(0, &mut 0), (4, 2));
        assert_eq!(RegionScan::of(b"").lines(), 0);
        assert_eq!(RegionScan::of(b"x Error\n").hits, vec![(0, 0)]);
    }
}
