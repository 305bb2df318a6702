//! The regexes the scanners in [`super::scan`] replace, kept as their specification: the
//! tests run both on every fixture log and on fuzzed lines and require the same captures.

use std::sync::OnceLock;

use regex::Regex;

use super::scan::{BarCap, KvCap};

pub(super) fn kv(seg: &str) -> Vec<KvCap<'_>> {
    static KV: OnceLock<Regex> = OnceLock::new();
    let re = KV.get_or_init(|| {
        // `:` needs a space after it so that clock times (12:30:05) are not pairs.
        Regex::new(
            r"(?:^|[^A-Za-z0-9_./\-])(?P<key>[A-Za-z][A-Za-z0-9_./\-]{0,63})\s*(?:=|:\s)\s*(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|infinity|inf))(?P<unit>[A-Za-z_%]*)(?P<clock>:\d)?",
        )
        .expect("valid regex")
    });
    re.captures_iter(seg)
        .map(|c| KvCap {
            key: c.name("key").expect("always").as_str(),
            num: c.name("num").expect("always").as_str(),
            unit: c.name("unit").expect("always").as_str(),
            clock: c.name("clock").is_some(),
        })
        .collect()
}

pub(super) fn dict(body: &str) -> Vec<(&str, &str)> {
    static PAIR: OnceLock<Regex> = OnceLock::new();
    let re = PAIR.get_or_init(|| {
        Regex::new(r#"['"](?P<key>[^'"]{1,64})['"]\s*:\s*(?P<val>[^,{}\[\]]+(?:\([^)]*\))?)"#)
            .expect("valid regex")
    });
    re.captures_iter(body)
        .map(|c| {
            (
                c.name("key").expect("always").as_str(),
                c.name("val").expect("always").as_str(),
            )
        })
        .collect()
}

fn bar_cap<'a>(c: regex::Captures<'a>, has_total: bool) -> BarCap<'a> {
    BarCap {
        n: c.name("n").expect("always").as_str(),
        total: has_total.then(|| c.name("total").expect("always").as_str()),
        rate: c.name("rate").map(|m| m.as_str()),
        unit: c.name("unit").map(|m| m.as_str()),
    }
}

pub(super) fn bar(seg: &str) -> Option<BarCap<'_>> {
    static BAR: OnceLock<Regex> = OnceLock::new();
    let bar = BAR.get_or_init(|| {
        Regex::new(
            r"(?P<n>\d+(?:\.\d+)?[kMGT]?)/(?P<total>\d+(?:\.\d+)?[kMGT]?) ?\[[\d:]+<(?:[\d:]+|\?)(?:, *(?P<rate>\?|\d+(?:\.\d+)?[kMGT]?) ?(?P<unit>[A-Za-z]+/s|s/[A-Za-z]+))?",
        )
        .expect("valid regex")
    });
    bar.captures(seg).map(|c| bar_cap(c, true))
}

pub(super) fn open_bar(seg: &str) -> Option<BarCap<'_>> {
    static OPEN: OnceLock<Regex> = OnceLock::new();
    let open = OPEN.get_or_init(|| {
        Regex::new(
            r"(?:^|[\s:|])(?P<n>\d+(?:\.\d+)?[kMGT]?)[A-Za-z]* \[[\d:]+, *(?P<rate>\?|\d+(?:\.\d+)?[kMGT]?) ?(?P<unit>[A-Za-z]+/s|s/[A-Za-z]+)",
        )
        .expect("valid regex")
    });
    open.captures(seg).map(|c| bar_cap(c, false))
}
