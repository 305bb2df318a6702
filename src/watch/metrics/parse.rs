//! The text forms metrics take in a log line (`key=value`, `key: value`, dicts and JSON
//! records, scaled numbers such as `1.2k`), and the small string helpers the tracker needs.

use std::borrow::Cow;

use super::scan::{self, KvCap};

/// One parsed value: the key, its text as printed and the number.
/// Borrowed from the segment (a named regex's key is its configured name, owned): this
/// runs for every redraw of a bar, and a key is copied only when first seen.
pub(super) struct Pair<'a> {
    pub(super) key: Cow<'a, str>,
    pub(super) text: &'a str,
    pub(super) value: f64,
}

/// `key=value` and `key: value` pairs (every one holds `=` or `:`: the caller has checked
/// that one of them occurs).
pub(super) fn kv_pairs(seg: &str) -> Vec<Pair<'_>> {
    let mut pairs = Vec::new();
    scan::kv(seg, |c| pairs.extend(kv_pair(c)));
    pairs
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
    let alpha = c
        .num
        .chars()
        .any(|ch| ch.is_ascii_alphabetic() && ch != 'e' && ch != 'E');
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

/// Pairs of a record printed as a Python dict or a JSON object.
pub(super) fn dict_pairs(seg: &str) -> Vec<Pair<'_>> {
    match dict_body(seg) {
        Some(body) => {
            let mut pairs = Vec::new();
            scan::dict(body, |k, v| pairs.extend(dict_pair((k, v))));
            pairs
        }
        None => Vec::new(),
    }
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
    match raw.find('(') {
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
    s.parse::<f64>().ok()
}

/// tqdm counts with `unit_scale` (1.2k, 3M).
pub(super) fn parse_scaled_f64(s: &str) -> Option<f64> {
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'G' => (&s[..s.len() - 1], 1e9),
        'T' => (&s[..s.len() - 1], 1e12),
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
fn plain_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(dot) => (&b[..dot], &b[dot + 1..]),
        None => (b, &b[b.len()..]),
    };
    let dotted = int.len() < b.len();
    if int.is_empty() || (dotted && frac.is_empty()) || int.len() + frac.len() > 15 {
        return None;
    }
    let mut m = 0u64;
    for &d in int.iter().chain(frac) {
        if !d.is_ascii_digit() {
            return None;
        }
        m = m * 10 + u64::from(d - b'0');
    }
    Some(m as f64 / POW10[frac.len()])
}

pub(super) fn parse_scaled(s: &str) -> Option<u64> {
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
