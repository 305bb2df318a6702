//! The bulk entry point: whole lines handed over as bytes ([`Detector::push_region`]), as
//! `trainwatch triage` reads a log (the live follower still hands lines one by one through
//! [`Detector::push_line`]). Most of a training log is lines no rule can fire on; the
//! prefilter finds the lines that could matter in one SIMD scan over the whole region
//! ([`RegionScan`]), which also numbers them, so the lines between them are not even counted:
//! after a library warning, the few lines of its message are looked at for where the message
//! ends, and the context ring gets the last few lines only when a rule may read it. Every other line goes through
//! [`Detector::push_line`]'s own path, so the incidents are the same as line by line
//! (`tests/triage.rs` replays scrambled logs both ways).

use std::borrow::Cow;

use super::scan::{last_lines, lines_in};
use super::*;
use crate::watch::follower::display_segment_bytes;

impl Detector {
    /// Feed `region` — lines, each ending with `'\n'` (the last may not), the first numbered
    /// `first_no` — as if each line were pushed with [`Detector::push_line`] in order;
    /// findings are appended to `out`. Returns the number of lines in `region`.
    pub fn push_region(&mut self, first_no: u64, region: &[u8], out: &mut Vec<Finding>) -> u64 {
        let scan = RegionScan::with(&self.pre, region);
        self.push_scanned(first_no, region, &scan, out)
    }

    /// [`Detector::push_region`] with the region's scan already made (on another thread:
    /// see [`RegionScan`]); `scan` must be `RegionScan::of(region)`.
    pub fn push_scanned(
        &mut self,
        first_no: u64,
        region: &[u8],
        scan: &RegionScan,
        out: &mut Vec<Finding>,
    ) -> u64 {
        assert_eq!(scan.len(), region.len(), "a scan of another region");
        if first_no <= curve::HEAD_LINES {
            self.head_lines(first_no, region);
        }
        let mut pos = 0;
        let mut n = first_no;
        let mut next = 0;
        // The lines `region[from..pos]` went by without joining the context ring: ordinary
        // runs and lines no rule fired on, while between blocks. The ring is only read when a
        // rule fires (and at the end), so it gets their last lines only then: most runs'
        // lines are never decoded.
        let mut unrung: Option<usize> = None;
        while pos < region.len() {
            let stop = scan.next_stop(pos, &mut next);
            if self.between_blocks() && stop.start > pos {
                // The scan numbered the stop's line; `pos` starts line `n - first_no`.
                let count = stop.line - (n - first_no);
                debug_assert_eq!(count, lines_in(&region[pos..stop.start]));
                self.ordinary_run(n, &region[pos..stop.start], count, out);
                unrung.get_or_insert(pos);
                n += count;
                pos = stop.start;
                continue;
            }
            // A line the scan found holding literals, or one it found none in.
            let (end, lits) = if stop.start == pos {
                (stop.end, stop.lits)
            } else {
                let rest = &region[pos..];
                (pos + memchr::memchr(b'\n', rest).unwrap_or(rest.len()), 0)
            };
            let raw = decode(&region[pos..end]);
            if unrung.is_some() && self.between_blocks() && self.reads_no_ring(&raw, lits) {
                // (`normal` then takes the line's class from the check.)
                self.step_rules(n, &raw, Some(lits), out);
            } else {
                if let Some(from) = unrung.take() {
                    self.ring_lines(n - 1, &region[from..pos]);
                }
                self.step_scanned(n, &raw, Some(lits), out);
            }
            n += 1;
            pos = end + 1;
        }
        if let Some(from) = unrung {
            self.ring_lines(n - 1, &region[from..pos.min(region.len())]);
        }
        self.tail_lines(n - 1, region);
        n - first_no
    }

    /// The lines of `region` (the first numbered `first`) that are among the log's first
    /// [`curve::HEAD_LINES`], shown to the reader of learning curves as `push_line` does.
    fn head_lines(&mut self, first: u64, region: &[u8]) {
        // (A region's last line may not end; one that does is not followed by another.)
        let body = region.strip_suffix(b"\n").unwrap_or(region);
        for (n, line) in (first..=curve::HEAD_LINES).zip(body.split(|&b| b == b'\n')) {
            self.head.look(n, &decode(display_segment_bytes(line)));
        }
    }

    /// The last lines of `region` (the last numbered `last`) join the tail, replacing what
    /// the ring put there of them: the tail then holds the log's last [`TAIL`] lines, as if
    /// each had been remembered in turn (read only at the log's end, so filled once a region).
    fn tail_lines(&mut self, last: u64, region: &[u8]) {
        let lines: Vec<(usize, usize)> = last_lines(region, TAIL).collect();
        let Some(first) = (last + 1).checked_sub(lines.len() as u64) else {
            return;
        };
        while self.tail.back().is_some_and(|(n, _)| *n >= first) {
            self.tail.pop_back();
        }
        for (k, &(start, end)) in lines.iter().enumerate().rev() {
            self.remember_bytes(last - k as u64, &region[start..end]);
        }
    }

    /// True when stepping a line that holds `lits` between blocks neither reads the context
    /// ring nor ends the state [`Detector::between_blocks`] (after which the next lines could
    /// read it): what [`Detector::normal`] does with it, directly or after
    /// [`Detector::skip`], is counting it, a warning's skipping or an error record, none
    /// of which looks at earlier lines. Only `start_block` and `hit` read the ring. In
    /// [`Mode::Normal`] the class found is kept for `normal`, which would find it again.
    fn reads_no_ring(&mut self, raw: &str, lits: Lits) -> bool {
        let (shown, k, lits) = self.reading(raw, Some(lits));
        if lits == 0 || lits == prefilter::ATTEMPT {
            return true;
        }
        let vis = &shown[k..];
        let Some(q) = Quiet::of(
            vis,
            &rules::classify_line_with(vis, self.cfg.rhat_threshold, lits),
        ) else {
            return false;
        };
        if matches!(self.mode, Mode::Normal) {
            self.classified = Some(q);
        }
        true
    }

    /// The lines of `span` (whole lines, the last numbered `last`) join the context ring, as
    /// if each had been remembered in turn: only the last few stay.
    fn ring_lines(&mut self, last: u64, span: &[u8]) {
        let mut lines = [(0usize, 0usize); RING];
        let mut kept = 0;
        for l in last_lines(span, RING) {
            lines[kept] = l;
            kept += 1;
        }
        for k in (0..kept).rev() {
            let (start, end) = lines[k];
            self.remember_bytes(last - k as u64, &span[start..end]);
        }
    }

    /// True while the lines the prefilter clears need no per-line work beyond
    /// [`Detector::ordinary_run`]: no block is being read and nothing waits for the next line
    /// (a skipped warning message is walked there).
    fn between_blocks(&self) -> bool {
        matches!(self.mode, Mode::Normal | Mode::Skip(_))
            && self.cfg.extra.is_empty()
            && self.prefix.is_empty()
            && !self.recovering
    }

    /// `run`: whole lines the prefilter found nothing in, the first numbered `first`, while
    /// [`Detector::between_blocks`]. Same effect as stepping each, but for the context ring
    /// (the caller's, see [`Detector::push_scanned`]): every line is ordinary output (it
    /// cannot hold evidence, and no prefix waits for it); a noise warning's message being
    /// skipped ends where [`Detector::skip`] ends it. `count`: its lines.
    fn ordinary_run(&mut self, first: u64, run: &[u8], count: u64, out: &mut Vec<Finding>) {
        let mut pos = 0;
        // Each line of a skipped message either ends it or counts down, and the line at 0
        // ends it: a run longer than what is left ends it whatever its lines say.
        if matches!(self.mode, Mode::Skip(left) if count > u64::from(left)) {
            self.mode = Mode::Normal;
        }
        while let Mode::Skip(left) = self.mode {
            if pos == run.len() {
                break;
            }
            let rest = &run[pos..];
            // One search finds the line's end and whether it holds a '\r': a line without one
            // is its own display segment.
            let (le, ends) = match memchr::memchr2(b'\n', b'\r', rest) {
                Some(i) if rest[i] == b'\n' => (i, self.segment_ends_skip(&rest[..i])),
                _ => {
                    let le = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                    (le, self.segment_ends_skip(display_segment_bytes(&rest[..le])))
                }
            };
            // As `skip` decides for a line that holds no literal (so it is no structure).
            self.mode = if left == 0 || ends {
                Mode::Normal
            } else {
                Mode::Skip(left - 1)
            };
            pos += le + 1;
        }
        self.seen = first + count - 1;
        self.since_record = self.since_record.saturating_add(count);
        self.count_ordinary(count, out);
    }

    /// [`Detector::remember`] for a line as bytes, decoding no more of it than the ring
    /// keeps: its shown segment's first bytes (a config dump can be 60 KB).
    fn remember_bytes(&mut self, n: u64, line: &[u8]) {
        let seg = display_segment_bytes(line);
        // Decoding is local (an invalid byte never affects more than the 3 after it) and
        // never shortens text, so these bytes decode to what the ring keeps of the whole.
        let head = &seg[..seg.len().min(MAX_LINE_CHARS + 4)];
        self.remember(n, &decode(head));
    }
}

/// Lossy UTF-8, borrowed when valid: nearly every line is, and a SIMD check (`simdutf8`, as
/// the follower's) is several times faster than the lossy decoder; a stop line can be a
/// config dump of 60 KB.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

impl Detector {
    /// Does a skipped warning message end at the line whose display segment is `seg` (a
    /// line that holds no literal)? As [`Detector::skip`] decides, on the line without its
    /// rank or worker prefix: at a blank line or an indented one (its source line). Decoded
    /// only when it may carry a prefix or does not start with a visible ASCII character.
    fn segment_ends_skip(&self, seg: &[u8]) -> bool {
        let prefixed = seg.starts_with(b"[rank") || seg.starts_with(b"(") || self.cfg.rank_labels;
        if !prefixed && seg.first().is_some_and(u8::is_ascii_graphic) {
            return false;
        }
        let text = String::from_utf8_lossy(seg);
        let vis = &text[self.line_prefix_len(&text).unwrap_or(0)..];
        vis.trim().is_empty() || vis.starts_with("  ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExitOutcome;

    /// Lines with a literal that no rule fires on (a trap, a noise warning and its message, an
    /// error record) between runs, so the bulk path lets them by without filling the context
    /// ring, then an ending that reads them: the same incidents as line by line.
    #[test]
    fn lines_let_by_are_read_as_line_by_line() {
        let mut head = String::new();
        for k in 0..40 {
            head.push_str(&format!("step {k} loss=0.{k}\n"));
            if k % 7 == 3 {
                head.push_str("eval | MeanSquaredError=0.02\n/p/y.py:9: UserWarning: z\n  warnings.warn(\n");
            }
        }
        head.push_str("2026-01-01 12:00:00 ERROR config error: batch_size (96) is not a multiple of 5\n");
        // More lines than the ring holds: the record is read as a record, not from the ring.
        for k in 41..50 {
            head.push_str(&format!("step {k} loss=0.{k}\n"));
        }
        let endings = [
            "",
            "  File \"t.py\", line 3\n    x = (\n        ^\nSyntaxError: bad\n",
        ];
        for ending in endings {
            let log = format!("{head}{ending}");
            let mut line = Detector::new(DetectConfig::default());
            for (k, l) in log.lines().enumerate() {
                line.push_line(k as u64 + 1, l);
            }
            line.finish(Some(ExitOutcome::Code(1)));
            let mut bulk = Detector::new(DetectConfig::default());
            let n = bulk.push_region(1, log.as_bytes(), &mut Vec::new());
            assert_eq!(n, log.lines().count() as u64);
            bulk.finish(Some(ExitOutcome::Code(1)));
            assert_eq!(bulk.incidents(), line.incidents(), "{ending:?}");
            let first = &bulk.incidents()[0];
            let want = if ending.is_empty() {
                "config error"
            } else {
                "SyntaxError"
            };
            assert!(first.text.contains(want), "{first:?}");
            assert!(first.excerpt.len() > 1, "{first:?}");
        }
    }

    /// The tail holds the log's last lines however the log was cut into regions: a cause
    /// stated far above the end under a wrapper's report is found as line by line.
    #[test]
    fn the_tail_is_the_same_whatever_the_regions() {
        let mut log =
            String::from("step 1 loss 0.4\nguard: val_loss 32.5 is more than 10x the first; stopping\n");
        for k in 0..30 {
            log.push_str(&format!("\tField {k}: {k}\n"));
        }
        let mut line = Detector::new(DetectConfig::default());
        for (k, l) in log.lines().enumerate() {
            line.push_line(k as u64 + 1, l);
        }
        line.finish(Some(ExitOutcome::Code(4)));
        assert_eq!(line.incidents()[0].line, 2, "{:?}", line.incidents());
        let bytes = log.as_bytes();
        let ends: Vec<usize> = (0..bytes.len())
            .filter(|&i| bytes[i] == b'\n')
            .map(|i| i + 1)
            .collect();
        for cut in ends.iter().step_by(3) {
            let mut bulk = Detector::new(DetectConfig::default());
            let n = bulk.push_region(1, &bytes[..*cut], &mut Vec::new());
            // The rest in regions of two lines each.
            let mut from = *cut;
            let mut no = n + 1;
            for end in ends
                .iter()
                .filter(|&&e| e > *cut)
                .skip(1)
                .step_by(2)
                .chain(std::iter::once(&bytes.len()))
            {
                if *end <= from {
                    continue;
                }
                no += bulk.push_region(no, &bytes[from..*end], &mut Vec::new());
                from = *end;
            }
            bulk.finish(Some(ExitOutcome::Code(4)));
            assert_eq!(bulk.incidents(), line.incidents(), "cut at {cut}");
        }
    }
}
