//! Line assembly for the follower: turns raw log bytes into bounded, lossy UTF-8 display
//! text. A line longer than [`HEAD_KEEP`] + [`TAIL_KEEP`] bytes is shown as its head, a
//! `…[N bytes cut]…` marker and its tail, so an error at either end of a huge line can
//! still be matched while memory stays bounded however long the line is.

use std::fmt::Write as _;

/// Bytes kept from the start of an over-long line.
pub const HEAD_KEEP: usize = 64 * 1024;
/// Bytes kept from the end of an over-long line.
pub const TAIL_KEEP: usize = 4 * 1024;

/// An incomplete line: the bytes read after the last `\n`, kept as a bounded head and tail
/// plus the total count, so a line that never ends cannot exhaust memory.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    head: Vec<u8>,
    /// Bytes after `head`; only its last [`TAIL_KEEP`] bytes count. Trimmed lazily (at
    /// twice the size) so appending small chunks stays amortised O(chunk).
    tail: Vec<u8>,
    total: u64,
}

impl Partial {
    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.tail.clear();
        self.total = 0;
        // A single monster line must not pin its buffers forever.
        self.head.shrink_to(HEAD_KEEP);
        self.tail.shrink_to(2 * TAIL_KEEP);
    }

    /// Gives back the capacity it does not use (a follower read only now and then).
    pub(crate) fn shrink(&mut self) {
        self.head.shrink_to_fit();
        self.tail.shrink_to_fit();
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < HEAD_KEEP {
            let n = (HEAD_KEEP - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        // One byte more than is shown: a CRLF's `\r`, stripped once the line ends, must not
        // take the place of the tail's first byte (a line of exactly the longest whole length
        // would be cut by one byte).
        let keep = &bytes[bytes.len().saturating_sub(TAIL_KEEP + 1)..];
        self.tail.extend_from_slice(keep);
        if self.tail.len() > 2 * TAIL_KEEP {
            let excess = self.tail.len() - (TAIL_KEEP + 1);
            self.tail.drain(..excess);
        }
    }

    /// Drops a final `\r` (the first half of a CRLF terminator).
    pub(crate) fn strip_trailing_cr(&mut self) {
        let popped = if self.tail.last() == Some(&b'\r') {
            self.tail.pop()
        } else if self.tail.is_empty() && self.head.last() == Some(&b'\r') {
            self.head.pop()
        } else {
            None
        };
        if popped.is_some() {
            self.total -= 1;
        }
    }

    fn kept_tail(&self) -> &[u8] {
        &self.tail[self.tail.len().saturating_sub(TAIL_KEEP)..]
    }

    /// Renders the display text into `out` (cleared first); returns whether bytes were cut.
    /// `joined` is scratch space for gluing head and tail when nothing was cut, so a
    /// character split across the two is not mangled.
    pub(crate) fn render(&self, out: &mut String, joined: &mut Vec<u8>) -> bool {
        out.clear();
        let tail = self.kept_tail();
        let cut = self.total - self.head.len() as u64 - tail.len() as u64;
        if cut == 0 {
            joined.clear();
            joined.extend_from_slice(&self.head);
            joined.extend_from_slice(tail);
            push_lossy(out, joined);
            false
        } else {
            render_cut(out, &self.head, tail, cut);
            true
        }
    }
}

/// Renders a complete line held in one slice: borrowed when it is short and valid UTF-8,
/// otherwise written into `scratch`. Returns the text and whether bytes were cut.
pub(crate) fn render_line<'a>(line: &'a [u8], scratch: &'a mut String) -> (&'a str, bool) {
    if line.len() <= HEAD_KEEP + TAIL_KEEP {
        // SIMD validation: this runs for every line the metrics read (a redrawn bar's
        // blocks are not ASCII, and the standard library checks those a byte at a time).
        if let Ok(s) = simdutf8::basic::from_utf8(line) {
            return (s, false);
        }
        scratch.clear();
        push_lossy(scratch, line);
        (scratch.as_str(), false)
    } else {
        scratch.clear();
        let cut = (line.len() - HEAD_KEEP - TAIL_KEEP) as u64;
        render_cut(scratch, &line[..HEAD_KEEP], &line[line.len() - TAIL_KEEP..], cut);
        (scratch.as_str(), true)
    }
}

/// `head` + marker + `tail`, moving the cut points to character boundaries so the
/// visible ends are not garbled by a character sliced in half.
fn render_cut(out: &mut String, head: &[u8], tail: &[u8], cut: u64) {
    let head_end = complete_prefix_len(head);
    let tail_start = tail.iter().take(3).take_while(|b| is_continuation(**b)).count();
    let cut = cut + (head.len() - head_end) as u64 + tail_start as u64;
    push_lossy(out, &head[..head_end]);
    // Writing into a String cannot fail.
    let _ = write!(out, "…[{cut} bytes cut]…");
    push_lossy(out, &tail[tail_start..]);
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Length of `bytes` without a trailing multi-byte character that is missing its end.
fn complete_prefix_len(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(4) {
        let b = bytes[n - back];
        if is_continuation(b) {
            continue;
        }
        let need = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1, // not a valid lead byte: leave it to the lossy conversion
        };
        return if need > back { n - back } else { n };
    }
    n
}

/// Appends `bytes` as UTF-8, replacing each invalid sequence with U+FFFD.
pub(crate) fn push_lossy(out: &mut String, bytes: &[u8]) {
    // Nearly every line is valid: checked with SIMD and copied at once (the standard
    // library's chunks check a byte at a time, 64 KiB of an over-long line each time).
    if let Ok(s) = simdutf8::basic::from_utf8(bytes) {
        out.push_str(s);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_valid_line_is_borrowed_unchanged() {
        let mut scratch = String::new();
        let (text, cut) = render_line(b"loss=0.5 step=3", &mut scratch);
        assert_eq!(text, "loss=0.5 step=3");
        assert!(!cut);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let mut scratch = String::new();
        let (text, cut) = render_line(b"bad \xff\xfe byte", &mut scratch);
        assert_eq!(text, "bad \u{FFFD}\u{FFFD} byte");
        assert!(!cut);
    }

    #[test]
    fn long_line_keeps_both_ends_and_counts_the_cut() {
        let mut line = b"START".to_vec();
        line.resize(HEAD_KEEP + TAIL_KEEP + 1000, b'x');
        line.extend_from_slice(b"END");
        let mut scratch = String::new();
        let (text, cut) = render_line(&line, &mut scratch);
        assert!(cut);
        assert!(text.starts_with("START"));
        assert!(text.ends_with("END"));
        assert!(text.contains("…[1003 bytes cut]…"), "{}", &text[HEAD_KEEP - 10..]);
        assert!(text.len() < HEAD_KEEP + TAIL_KEEP + 64);
    }

    #[test]
    fn cut_points_move_to_character_boundaries() {
        // 'é' is two bytes; an odd offset puts one straddling the head's end.
        let mut line = b"a".to_vec();
        while line.len() < HEAD_KEEP + TAIL_KEEP + 100 {
            line.extend_from_slice("é".as_bytes());
        }
        let mut scratch = String::new();
        let (text, cut) = render_line(&line, &mut scratch);
        assert!(cut);
        assert!(!text.contains('\u{FFFD}'), "a character was sliced in half");
        let (head, rest) = text.split_once('…').unwrap();
        let tail = rest.rsplit_once('…').unwrap().1;
        let cut_n: usize = rest
            .trim_start_matches('[')
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(head.len() + tail.len() + cut_n, line.len());
    }

    #[test]
    fn partial_matches_whole_line_rendering() {
        let mut line = b"Traceback head ".to_vec();
        line.resize(HEAD_KEEP * 3, b'.');
        line.extend_from_slice(b" CUDA out of memory");
        let mut partial = Partial::default();
        for piece in line.chunks(7919) {
            partial.push(piece);
        }
        let (mut a, mut b, mut j) = (String::new(), String::new(), Vec::new());
        let cut = partial.render(&mut a, &mut j);
        let (text, cut2) = render_line(&line, &mut b);
        assert!(cut && cut2);
        assert_eq!(a, text);
        assert!(partial.head.len() + partial.tail.len() <= HEAD_KEEP + 2 * TAIL_KEEP);
    }

    #[test]
    fn partial_without_cut_glues_a_split_character() {
        let mut partial = Partial::default();
        let bytes = "naïve\r".as_bytes();
        partial.push(&bytes[..3]);
        partial.push(&bytes[3..]);
        partial.strip_trailing_cr();
        let (mut out, mut j) = (String::new(), Vec::new());
        assert!(!partial.render(&mut out, &mut j));
        assert_eq!(out, "naïve");
    }
}
