//! Durations as people write them in configs and on the command line: `30m`, `12h`,
//! `1h 30m`, `90s`. humantime does the parsing; this adds the error wording and a
//! compact display form used in messages.

use std::time::Duration;

/// Parse `30m`, `12h`, `1h30m`, `45s`. Zero is refused: every duration here is an interval
/// or a limit, and zero would mean "always" or "never" by accident.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?}: {e} (write e.g. 30m, 12h, 1h30m, 90s)"))?;
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be greater than zero"));
    }
    Ok(d)
}

/// clap value parser for duration options.
pub fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// Compact display: `12h`, `1h 30m`, `4m 05s`, `12s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43200));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(format_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(format_duration(Duration::from_secs(43200)), "12h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
    }
}
