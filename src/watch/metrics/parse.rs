//! The text forms metrics take in a log line (`key=value`, `key: value`, dicts and JSON
//! records, scaled numbers such as `1.2k`), and the small string helpers the tracker needs.

use std::borrow::Cow;

use super::scan::{self, KvCap};

/// One parsed value: the key, its text as printed and the number.
/// Borrowed from the segment (a named regex's key is its configured name, owned): this
/// runs for every redraw of a bar, and a key is copied only when first seen.
#[derive(Debug, Clone)]
pub(super) struct Pair<'a> {
    pub(super) key: Cow<'a, str>,
    pub(super) text: &'a str,
    pub(super) value: f64,
}

/// `key=value` and `key: value` pairs (every one holds `=` or `:`: the caller has checked
/// that one of them occurs), appended to `pairs`.
pub(super) fn kv_pairs<'a>(seg: &'a str, pairs: &mut Vec<Pair<'a>>) {
    scan::kv(seg, |c| pairs.extend(kv_pair(c)));
}

/// [`kv_pairs`] through the regex it replaced (for the tests).
#[cfg(test)]
pub(super) fn reference_kv_pairs(seg: &str) -> Vec<Pair<'_>> {
    super::reference::kv(seg)
        .into_iter()
        .filter_map(kv_pair)
        .collect()
}

/// [`dict_pairs`] through the regex it replaced (for the tests).
#[cfg(test)]
pub(super) fn reference_dict_pairs(seg: &str) -> Vec<Pair<'_>> {
    match dict_body(seg) {
        Some(body) => super::reference::dict(body)
            .into_iter()
            .filter_map(dict_pair)
            .collect(),
        None => Vec::new(),
    }
}

/// The pair a `key=value` match stands for, if it is a number.
pub(super) fn kv_pair(c: KvCap<'_>) -> Option<Pair<'_>> {
    // Bytes, not characters: only ASCII letters count, and no byte of a character that is
    // not ASCII is one (this runs for every value of every redraw).
    let alpha = c
        .num
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E');
    // `name=inference` is not infinity.
    if alpha && !c.unit.is_empty() {
        return None;
    }
    // `ETA: 1:23` is a clock, not the number 1.
    if c.clock {
        return None;
    }
    Some(Pair {
        key: Cow::Borrowed(c.key),
        text: c.num,
        value: parse_number(c.num)?,
    })
}

/// Pairs of a record printed as a Python dict or a JSON object, appended to `pairs`.
pub(super) fn dict_pairs<'a>(seg: &'a str, pairs: &mut Vec<Pair<'a>>) {
    if let Some(body) = dict_body(seg) {
        scan::dict(body, |k, v| pairs.extend(dict_pair((k, v))));
    }
}

/// An empty vector of pairs with `v`'s allocation, for segments that borrow from another
/// line: each segment's pairs live only while it is read, and a fresh vector for each
/// redraw of a bar costs an allocation (the collect reuses the buffer in place).
pub(super) fn recycle<'b>(mut v: Vec<Pair<'_>>) -> Vec<Pair<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// The record's text: from its first `{` to its last `}`.
pub(super) fn dict_body(seg: &str) -> Option<&str> {
    let b = seg.as_bytes();
    let (open, close) = (memchr::memchr(b'{', b)?, memchr::memrchr(b'}', b)?);
    (close > open).then(|| &seg[open..=close])
}

/// The pair a dict match stands for, if its value is a number.
pub(super) fn dict_pair<'a>((key, raw): (&'a str, &'a str)) -> Option<Pair<'a>> {
    let text = unwrap_call(raw.trim());
    Some(Pair {
        key: Cow::Borrowed(key),
        text,
        value: parse_number(text)?,
    })
}

/// `tensor(0.69, device='cuda:0')` or `np.float64(0.69)` → `0.69`.
fn unwrap_call(raw: &str) -> &str {
    // Values are short: a byte loop costs less than a searcher's set-up.
    match raw.bytes().position(|b| b == b'(') {
        Some(i)
            if raw[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
        {
            let inner = &raw[i + 1..];
            let end = inner.find([',', ')']).unwrap_or(inner.len());
            inner[..end].trim()
        }
        _ => raw,
    }
}

/// A number as training code prints it, NaN and infinities included.
pub(super) fn parse_number(s: &str) -> Option<f64> {
    // Nearly every number read (a bar's loss on each redraw) is a plain decimal, which
    // has nothing to trim.
    if let Some(v) = plain_decimal(s.as_bytes()) {
        return Some(v);
    }
    let s = s.trim().trim_matches(|c| c == '\'' || c == '"');
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    // What `f64::from_str` reads starts with a sign, a digit, a dot, `inf` or `nan`: a word
    // (a config's `"block_3"`, of which a dump holds hundreds) is told at its first byte.
    if !matches!(
        s.as_bytes()[0],
        b'0'..=b'9' | b'.' | b'+' | b'-' | b'i' | b'I' | b'n' | b'N'
    ) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// tqdm counts with `unit_scale` (1.2k, 3M).
pub(super) fn parse_scaled_f64(s: &str) -> Option<f64> {
    // The last byte: a scale letter is ASCII, and a character that is not ends in a byte
    // that is none of them.
    let (num, mult) = match s.as_bytes().last()? {
        b'k' => (&s[..s.len() - 1], 1e3),
        b'M' => (&s[..s.len() - 1], 1e6),
        b'G' => (&s[..s.len() - 1], 1e9),
        b'T' => (&s[..s.len() - 1], 1e12),
        _ => (s, 1.0),
    };
    // A bar's count, total and rate, on every redraw: plain decimals.
    if let Some(v) = plain_decimal(num.as_bytes()) {
        return Some(v * mult);
    }
    num.parse::<f64>().ok().map(|v| v * mult)
}

/// `\d+(\.\d+)?` in ASCII digits, at most 15 of them, as `str::parse::<f64>` reads it,
/// without its general algorithm: the digits as an integer and the power of ten to divide
/// by are both exact in an f64, so the one division rounds correctly, to the same value
/// (Clinger's fast path). `None` for anything else.
#[inline]
fn plain_decimal(b: &[u8]) -> Option<f64> {
    let (m, frac) = plain_digits(b)?;
    Some(m as f64 / POW10[frac])
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The digits of `\d+(\.\d+)?` (ASCII, at most 15 digits) as an integer, with how many digits
/// follow the dot; one pass, `None` for anything else.
#[inline]
fn plain_digits(b: &[u8]) -> Option<(u64, usize)> {
    let mut m = 0u64;
    let mut digits = 0;
    let mut dot = None;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits > 15 {
                return None;
            }
            m = m * 10 + u64::from(c - b'0');
        } else if c == b'.' && dot.is_none() && i > 0 {
            dot = Some(i);
        } else {
            return None;
        }
    }
    let frac = match dot {
        Some(d) if d + 1 == b.len() => return None,
        Some(d) => b.len() - d - 1,
        None if b.is_empty() => return None,
        None => 0,
    };
    Some((m, frac))
}

pub(super) fn parse_scaled(s: &str) -> Option<u64> {
    // A bar's count and total on every redraw: plain integers, which the f64 route below
    // gives back exactly (at most 15 digits).
    if let Some((m, 0)) = plain_digits(s.as_bytes()) {
        return Some(m);
    }
    parse_scaled_f64(s)
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e18)
        .map(|v| v.round() as u64)
}

/// Removes ANSI escape sequences (cursor moves of nested tqdm bars, colours); borrowed when
/// there is none (nearly every segment: this runs for each redraw of a progress bar).
pub(super) fn strip_ansi(s: &str) -> Cow<'_, str> {
    if memchr::memchr(0x1b, s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // CSI: parameters then one final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    Cow::Owned(out)
}

pub(super) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(super) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first-byte test in front of `f64::from_str` only turns away what it refuses.
    #[test]
    fn parse_number_is_trim_and_str_parse() {
        let plain = |s: &str| {
            let s = s.trim().trim_matches(|c| c == '\'' || c == '"');
            (!s.is_empty() && s.len() <= 40)
                .then(|| s.parse::<f64>().ok())
                .flatten()
        };
        for s in [
            "0.5",
            " 0.5",
            "'0.5'",
            "\"block_3\"",
            "-1e3",
            "+2",
            ".5",
            "5.",
            "inf",
            "-inf",
            "+Infinity",
            "NaN",
            "nan",
            "infinity",
            "e5",
            "E",
            "x1",
            "_1",
            "'",
            "",
            " ",
            "1_000",
            "٣",
            "INF",
            "iNf",
            "tensor",
            "None",
            "null",
            "true",
        ] {
            assert_eq!(
                parse_number(s).map(f64::to_bits),
                plain(s).map(f64::to_bits),
                "{s:?}"
            );
        }
    }

    /// The fast path gives what `str::parse` gives, wherever it answers.
    #[test]
    fn plain_decimals_parse_as_str_parse_does() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut texts: Vec<String> = [
            "0",
            "0.0",
            "5",
            "0.345",
            "3123.45",
            "999999999999999",
            "1.00000000000001",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 15) as usize;
            let dot = (x >> 8) as usize % (digits + 1);
            let mut t: String = format!("{:015}", x % 1_000_000_000_000_000)[15 - digits..].to_string();
            if dot > 0 && dot < digits {
                t.insert(dot, '.');
            }
            texts.push(t);
        }
        let mut fast = 0;
        for t in &texts {
            if let Some(v) = plain_decimal(t.as_bytes()) {
                fast += 1;
                assert_eq!(v.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
            }
        }
        assert!(fast > texts.len() / 2, "{fast}");
        // A count's integer fast path gives what the f64 route gives.
        for t in texts.iter().filter(|t| !t.contains('.')) {
            let via_f64 = parse_scaled_f64(t)
                .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e18)
                .map(|v| v.round() as u64);
            assert_eq!(parse_scaled(t), via_f64, "{t}");
        }
        for t in [
            "",
            ".5",
            "5.",
            "1e3",
            "-1.5",
            "nan",
            "1.2.3",
            "12345678901234567",
            "٣",
        ] {
            assert_eq!(plain_decimal(t.as_bytes()), None, "{t}");
        }
    }
}
