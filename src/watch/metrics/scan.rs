//! Hand-written scanners for the metric forms the tracker reads on every segment of every
//! line (a tqdm bar's `\r` redraws are most of a training log): `key=value` pairs, dict
//! and JSON records, and the two tqdm bar shapes. Each gives exactly the captures its
//! regex in [`super::reference`] gives — leftmost-first, with the regex's backtracking
//! worked out by hand and `\d` / `\s` in their Unicode meaning — at a fraction of the cost
//! of a capturing regex run. A test compares both on the fixture logs and fuzzed lines.

use std::sync::OnceLock;

use regex::Regex;

/// A `key=value` match: the key, the number as printed, whether letters followed it and
/// whether a clock's `:\d` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KvCap<'a> {
    pub(super) key: &'a str,
    pub(super) num: &'a str,
    pub(super) unit: &'a str,
    pub(super) clock: bool,
}

/// A tqdm bar's match: its count, its total (bars with one), its rate and the rate's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BarCap<'a> {
    pub(super) n: &'a str,
    pub(super) total: Option<&'a str>,
    pub(super) rate: Option<&'a str>,
    pub(super) unit: Option<&'a str>,
}

/// Byte length of the `\d` character at `i` (Unicode decimal digits, as the regexes read
/// it), 0 when there is none.
#[inline]
fn digit(s: &str, i: usize) -> usize {
    match s.as_bytes().get(i) {
        Some(b) if b.is_ascii_digit() => 1,
        Some(b) if !b.is_ascii() => non_ascii_digit(s, i),
        _ => 0,
    }
}

#[cold]
fn non_ascii_digit(s: &str, i: usize) -> usize {
    let c = s[i..].chars().next().expect("a char starts here");
    if unicode_digit(c) {
        c.len_utf8()
    } else {
        0
    }
}

/// Rare (a non-ASCII character where a digit may stand): the regex crate's own table says.
fn unicode_digit(c: char) -> bool {
    static D: OnceLock<Regex> = OnceLock::new();
    let mut buf = [0u8; 4];
    D.get_or_init(|| Regex::new(r"^\d$").expect("valid regex"))
        .is_match(c.encode_utf8(&mut buf))
}

/// Byte length of the `\s` character at `i` (Unicode White_Space), 0 when there is none.
#[inline]
fn space(s: &str, i: usize) -> usize {
    match s.as_bytes().get(i) {
        Some(b' ' | b'\t'..=b'\r') => 1,
        Some(b) if !b.is_ascii() => non_ascii_space(s, i),
        _ => 0,
    }
}

#[cold]
fn non_ascii_space(s: &str, i: usize) -> usize {
    let c = s[i..].chars().next().expect("a char starts here");
    if c.is_whitespace() {
        c.len_utf8()
    } else {
        0
    }
}

/// Past the run of `\s` at `i`.
#[inline]
fn spaces(s: &str, mut i: usize) -> usize {
    loop {
        let n = space(s, i);
        if n == 0 {
            return i;
        }
        i += n;
    }
}

/// Past the run of `\d` at `i`.
#[inline]
fn digits(s: &str, mut i: usize) -> usize {
    loop {
        let n = digit(s, i);
        if n == 0 {
            return i;
        }
        i += n;
    }
}

/// Start of the run of `\d` that ends at `end`.
fn digits_back(s: &str, end: usize) -> usize {
    let b = s.as_bytes();
    let mut i = end;
    // ASCII digits a byte at a time (a bar's count on every redraw); a character that is
    // not ASCII is decoded, as it may be a digit of another script.
    while i > 0 {
        let last = b[i - 1];
        if last.is_ascii_digit() {
            i -= 1;
        } else if last.is_ascii() {
            break;
        } else {
            let c = s[..i].chars().next_back().expect("a character ends here");
            let at = i - c.len_utf8();
            if digit(s, at) == 0 {
                break;
            }
            i = at;
        }
    }
    i
}

/// `s[..end].trim_end().len()`: ASCII spaces a byte at a time (there is at most one before
/// a separator, usually none), the Unicode ones through `trim_end` when a character that is
/// not ASCII ends the run.
#[inline]
fn trim_end_at(s: &str, end: usize) -> usize {
    let b = s.as_bytes();
    let mut i = end;
    while i > 0 {
        match b[i - 1] {
            b' ' | b'\t'..=b'\r' => i -= 1,
            c if c.is_ascii() => return i,
            _ => return s[..i].trim_end().len(),
        }
    }
    i
}

#[inline]
fn at(s: &str, i: usize) -> Option<u8> {
    s.as_bytes().get(i).copied()
}

#[inline]
fn letters(s: &str, mut i: usize) -> usize {
    while at(s, i).is_some_and(|b| b.is_ascii_alphabetic()) {
        i += 1;
    }
    i
}

/// The bytes a key is made of, as a table: the key's start is found by walking back over
/// them at every separator.
const KEY_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-');
        i += 1;
    }
    t
};

#[inline]
fn is_key_char(b: u8) -> bool {
    KEY_CHAR[usize::from(b)]
}

/// The separators of `key=value` and `key: value` in a segment, in order. A redraw of a bar
/// is short (about 80 bytes) and holds several (its clock's colons): a mask of where they
/// are, built 16 bytes at a time, costs less than a `memchr2` call for each (whose set-up is
/// most of its cost on so few bytes). Longer segments are searched with `memchr2`.
enum Separators<'a> {
    Mask(u128),
    Long(memchr::Memchr2<'a>),
}

impl Iterator for Separators<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            Separators::Mask(mask) => {
                if *mask == 0 {
                    return None;
                }
                let i = mask.trailing_zeros() as usize;
                *mask &= *mask - 1;
                Some(i)
            }
            Separators::Long(it) => it.next(),
        }
    }
}

pub(super) fn separators(b: &[u8]) -> impl Iterator<Item = usize> + '_ {
    if b.len() <= 128 {
        Separators::Mask(separator_mask(b))
    } else {
        Separators::Long(memchr::memchr2_iter(b'=', b':', b))
    }
}

/// Bit `i` set where `b[i]` is `=` or `:` (`b` is at most 128 bytes).
#[cfg(target_arch = "x86_64")]
fn separator_mask(b: &[u8]) -> u128 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let block = |c: &[u8]| -> u128 {
        debug_assert_eq!(c.len(), 16);
        // SAFETY: SSE2 is part of every x86_64 processor; `c` holds 16 bytes, and the load
        // needs no alignment.
        let bits = unsafe {
            let v = _mm_loadu_si128(c.as_ptr().cast::<__m128i>());
            let hit = _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'=' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b':' as i8)),
            );
            _mm_movemask_epi8(hit)
        };
        u128::from(bits as u16)
    };
    if b.len() < 16 {
        return separator_mask_bytes(b);
    }
    let mut mask = 0u128;
    let mut chunks = b.chunks_exact(16);
    let mut at = 0;
    for c in &mut chunks {
        mask |= block(c) << at;
        at += 16;
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        // The last 16 bytes again: their bits past what was already read are the rest's.
        mask |= (block(&b[b.len() - 16..]) >> (16 - rest)) << at;
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
fn separator_mask(b: &[u8]) -> u128 {
    separator_mask_bytes(b)
}

fn separator_mask_bytes(b: &[u8]) -> u128 {
    b.iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, b'=' | b':'))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// Each `key=value` / `key: value` match of `seg` in order, as the `KV` regex finds them.
pub(super) fn kv<'a>(seg: &'a str, mut out: impl FnMut(KvCap<'a>)) {
    let b = seg.as_bytes();
    // End of the last match: the next one starts there or later.
    let mut pos = 0;
    for sep in separators(b) {
        if sep < pos {
            continue;
        }
        // `key: value` needs a space after the colon: most colons (clocks, `file.py:12`)
        // are told here, before the key is looked for (the order of these refusals does not
        // matter: each only skips this separator).
        if b[sep] == b':' && space(seg, sep + 1) == 0 {
            continue;
        }
        // The key is the run of key characters just before the separator (spaces between):
        // a key must start after a character that is no key character, and whatever follows
        // it up to the separator can only be spaces, so each separator has one candidate.
        let key_end = trim_end_at(seg, sep);
        let mut key_start = key_end;
        while key_start > 0 && is_key_char(b[key_start - 1]) {
            key_start -= 1;
        }
        let len = key_end - key_start;
        if len == 0 || len > 64 || !b[key_start].is_ascii_alphabetic() {
            continue;
        }
        // The character before the key is part of this match: it must not be the last one's
        // (and `^` matches at the very start only).
        if key_start < pos + usize::from(key_start > 0) {
            continue;
        }
        let mut i = sep + 1;
        if b[sep] == b':' {
            i += space(seg, i);
        }
        let j = spaces(seg, i);
        let Some(num_end) = number(seg, j) else {
            continue;
        };
        let mut end = num_end;
        while at(seg, end).is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'%') {
            end += 1;
        }
        let unit = &seg[num_end..end];
        let clock = at(seg, end) == Some(b':') && digit(seg, end + 1) > 0;
        if clock {
            end += 1 + digit(seg, end + 1);
        }
        out(KvCap {
            key: &seg[key_start..key_end],
            num: &seg[j..num_end],
            unit,
            clock,
        });
        pos = end;
    }
}

/// End of `[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|infinity|inf)` at `i`.
fn number(s: &str, i: usize) -> Option<usize> {
    let signed = matches!(at(s, i), Some(b'-' | b'+'));
    let j = i + usize::from(signed);
    let mut k = digits(s, j);
    if k > j {
        if at(s, k) == Some(b'.') {
            k = digits(s, k + 1);
        }
    } else if at(s, j) == Some(b'.') && digit(s, j + 1) > 0 {
        k = digits(s, j + 1);
    } else {
        let rest = &s.as_bytes()[j..];
        let word = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
        return [&b"nan"[..], b"infinity", b"inf"]
            .into_iter()
            .find(|w| word(w))
            .map(|w| j + w.len());
    }
    if matches!(at(s, k), Some(b'e' | b'E')) {
        let e = k + 1 + usize::from(matches!(at(s, k + 1), Some(b'-' | b'+')));
        let d = digits(s, e);
        if d > e {
            k = d;
        }
    }
    Some(k)
}

/// Each `(key, value)` match of a dict or JSON `body` in order, as the `PAIR` regex finds
/// them.
pub(super) fn dict<'a>(body: &'a str, mut out: impl FnMut(&'a str, &'a str)) {
    let b = body.as_bytes();
    let quote = |from: usize| memchr::memchr2(b'\'', b'"', &b[from.min(b.len())..]).map(|i| from + i);
    let mut q = quote(0);
    while let Some(open) = q {
        // The key runs to the next quote (it holds none): 1 to 64 characters.
        let Some(close) = quote(open + 1) else {
            break;
        };
        q = Some(close);
        let key = &body[open + 1..close];
        let chars = key.bytes().filter(|c| (*c as i8) >= -0x40).count();
        if !(1..=64).contains(&chars) {
            continue;
        }
        let colon = spaces(body, close + 1);
        if at(body, colon) != Some(b':') {
            continue;
        }
        let after = colon + 1;
        let start = spaces(body, after);
        let is_val = |c: u8| !matches!(c, b',' | b'{' | b'}' | b'[' | b']');
        let (val, end) = match at(body, start) {
            Some(c) if is_val(c) => {
                let end = memchr_val_end(b, start);
                (&body[start..end], end)
            }
            // Nothing but spaces up to the end of the value: the regex takes the last space
            // as the value.
            _ if start > after => {
                let last = body[..start].chars().next_back().expect("a space").len_utf8();
                (&body[start - last..start], start)
            }
            _ => continue,
        };
        out(key, val);
        q = quote(end);
    }
}

/// End of a dict value: the next `, { } [ ]` or the end.
fn memchr_val_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|c| matches!(c, b',' | b'{' | b'}' | b'[' | b']'))
        .map_or(b.len(), |i| from + i)
}

/// `\d+(?:\.\d+)?[kMGT]?` at `i`: its end.
fn scaled(s: &str, i: usize) -> Option<usize> {
    let mut k = digits(s, i);
    if k == i {
        return None;
    }
    if at(s, k) == Some(b'.') && digit(s, k + 1) > 0 {
        k = digits(s, k + 1);
    }
    if matches!(at(s, k), Some(b'k' | b'M' | b'G' | b'T')) {
        k += 1;
    }
    Some(k)
}

/// `, *(?P<rate>\?|\d+(?:\.\d+)?[kMGT]?) ?(?P<unit>[A-Za-z]+/s|s/[A-Za-z]+)` at `i`:
/// (rate, unit).
pub(super) fn rate_unit(s: &str, i: usize) -> Option<(&str, &str)> {
    if at(s, i) != Some(b',') {
        return None;
    }
    let mut r = i + 1;
    while at(s, r) == Some(b' ') {
        r += 1;
    }
    let unit_at = |u: usize| -> Option<usize> {
        let l = letters(s, u);
        if l > u && s.as_bytes()[l..].starts_with(b"/s") {
            return Some(l + 2);
        }
        if s.as_bytes()[u..].starts_with(b"s/") {
            let l = letters(s, u + 2);
            if l > u + 2 {
                return Some(l);
            }
        }
        None
    };
    // The rate with its scale letter, then (backtracking) without it: that letter may
    // start the unit (`5k/s`).
    let ends: [Option<usize>; 2] = if at(s, r) == Some(b'?') {
        [Some(r + 1), None]
    } else {
        let full = scaled(s, r)?;
        let scaled_letter = matches!(at(s, full - 1), Some(b'k' | b'M' | b'G' | b'T'));
        [Some(full), scaled_letter.then_some(full - 1)]
    };
    for end in ends.into_iter().flatten() {
        let u = end + usize::from(at(s, end) == Some(b' '));
        if let Some(ue) = unit_at(u) {
            return Some((&s[r..end], &s[u..ue]));
        }
        if u > end {
            if let Some(ue) = unit_at(end) {
                return Some((&s[r..end], &s[end..ue]));
            }
        }
    }
    None
}

/// The first match of the `BAR` regex (a bar with a total: `570/1000 [00:10<00:07, 55it/s]`),
/// its rate included (the tests compare it with the regex; the tracker reads the rate later).
#[cfg(test)]
pub(super) fn bar(seg: &str) -> Option<BarCap<'_>> {
    let (cap, left) = bar_count(seg)?;
    let (rate, unit) = match rate_unit(seg, left) {
        Some((r, u)) => (Some(r), Some(u)),
        None => (None, None),
    };
    Some(BarCap { rate, unit, ..cap })
}

/// [`bar`]'s match without its optional rate, and where the rate would start (read it with
/// [`rate_unit`]): the rate matters only on a line's last redraw.
pub(super) fn bar_count(seg: &str) -> Option<(BarCap<'_>, usize)> {
    let b = seg.as_bytes();
    for slash in memchr::memchr_iter(b'/', b) {
        // After the slash: the total, the clock, maybe the rate.
        let Some(total_end) = scaled(seg, slash + 1) else {
            continue;
        };
        let open = total_end + usize::from(at(seg, total_end) == Some(b' '));
        if at(seg, open) != Some(b'[') {
            continue;
        }
        let clock = |i: usize| {
            let mut k = i;
            loop {
                if at(seg, k) == Some(b':') {
                    k += 1;
                } else {
                    let d = digit(seg, k);
                    if d == 0 {
                        return k;
                    }
                    k += d;
                }
            }
        };
        let elapsed = clock(open + 1);
        if elapsed == open + 1 || at(seg, elapsed) != Some(b'<') {
            continue;
        }
        let mut left = clock(elapsed + 1);
        if left == elapsed + 1 {
            if at(seg, left) != Some(b'?') {
                continue;
            }
            left += 1;
        }
        // Before the slash: the count, leftmost: `\d+(?:\.\d+)?[kMGT]?` ending there.
        let mut e = slash;
        if e > 0 && matches!(b[e - 1], b'k' | b'M' | b'G' | b'T') {
            e -= 1;
        }
        let frac = digits_back(seg, e);
        if frac == e {
            continue;
        }
        let mut start = frac;
        if frac >= 2 && b[frac - 1] == b'.' {
            let whole = digits_back(seg, frac - 1);
            if whole < frac - 1 {
                start = whole;
            }
        }
        let cap = BarCap {
            n: &seg[start..slash],
            total: Some(&seg[slash + 1..total_end]),
            rate: None,
            unit: None,
        };
        return Some((cap, left));
    }
    None
}

/// The first match of the `OPEN` regex (a bar without a total: `12it [00:01, 9.5it/s]`).
/// Each match has its count just before a ` [` (letters between), so only the places
/// before a ` [` are tried, in order: a count start gives one ` [`, so that order is the
/// regex's order of starts.
pub(super) fn open_bar(seg: &str) -> Option<BarCap<'_>> {
    let b = seg.as_bytes();
    static FINDER: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b" ["));
    for l in finder.find_iter(b) {
        // Back over the letters and the digits (and a fraction): the one place a count
        // ending here can start.
        let mut a = l;
        while a > 0 && b[a - 1].is_ascii_alphabetic() {
            a -= 1;
        }
        // A scale letter there belongs to the count; its digits end where the letters start.
        let mut s = digits_back(seg, a);
        if s == a {
            continue;
        }
        if s >= 2 && b[s - 1] == b'.' {
            let whole = digits_back(seg, s - 1);
            if whole < s - 1 {
                s = whole;
            }
        }
        // The count must start the segment or follow a `\s`, `:` or `|`, and read forward
        // to exactly this ` [`.
        let prefixed = s == 0
            || seg[..s]
                .chars()
                .next_back()
                .is_some_and(|c| c == ':' || c == '|' || c.is_whitespace());
        if !prefixed || scaled(seg, s).map(|n| letters(seg, n)) != Some(l) {
            continue;
        }
        if let Some(cap) = open_at(seg, s) {
            return Some(cap);
        }
    }
    None
}

fn open_at(seg: &str, n_start: usize) -> Option<BarCap<'_>> {
    let n_end = scaled(seg, n_start)?;
    let l = letters(seg, n_end);
    if at(seg, l) != Some(b' ') || at(seg, l + 1) != Some(b'[') {
        return None;
    }
    let mut k = l + 2;
    loop {
        if at(seg, k) == Some(b':') {
            k += 1;
        } else {
            let d = digit(seg, k);
            if d == 0 {
                break;
            }
            k += d;
        }
    }
    if k == l + 2 {
        return None;
    }
    let (rate, unit) = rate_unit(seg, k)?;
    Some(BarCap {
        n: &seg[n_start..n_end],
        total: None,
        rate: Some(rate),
        unit: Some(unit),
    })
}

/// [`kv`]'s matches collected (for the tests).
#[cfg(test)]
pub(super) fn kv_all(seg: &str) -> Vec<KvCap<'_>> {
    let mut all = Vec::new();
    kv(seg, |c| all.push(c));
    all
}

/// [`dict`]'s matches collected (for the tests).
#[cfg(test)]
pub(super) fn dict_all(body: &str) -> Vec<(&str, &str)> {
    let mut all = Vec::new();
    dict(body, |k, v| all.push((k, v)));
    all
}
