//! Untrusted text (log lines, tracebacks) made safe to show: no control characters that
//! could drive a terminal, no mention that could ping `@everyone` or a role, no secret
//! (tokens, keys, passwords) posted to a channel, and a length limit that keeps the start.

use std::sync::OnceLock;

use regex::Regex;

/// Remove terminal control sequences and control characters (keeps tabs as spaces).
pub fn strip_controls(s: &str) -> String {
    static ANSI: OnceLock<Regex> = OnceLock::new();
    let ansi = ANSI.get_or_init(|| {
        Regex::new(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])").unwrap()
    });
    let s = ansi.replace_all(s, "");
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            // Bidirectional overrides can make a line read differently than it is.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => None,
            c => Some(c),
        })
        .collect()
}

/// Neutralise chat mentions: `@everyone`, `@here`, `<@id>`, `<@&id>`, `<#id>`.
/// A zero-width space after the `@` or `<` keeps the text readable but inert.
pub fn defuse_mentions(s: &str) -> String {
    static MENTION: OnceLock<Regex> = OnceLock::new();
    let re = MENTION.get_or_init(|| Regex::new(r"@(everyone|here)|<(@[!&]?|#)(\d+)>").unwrap());
    re.replace_all(s, |c: &regex::Captures<'_>| {
        if let Some(w) = c.get(1) {
            format!("@\u{200B}{}", w.as_str())
        } else {
            format!("<\u{200B}{}{}>", &c[2], &c[3])
        }
    })
    .into_owned()
}

/// Replace things that look like credentials with `[REDACTED]` (the one list of what counts
/// as a secret is [`crate::redact`]).
pub fn redact_secrets(s: &str) -> String {
    crate::redact::Redactor::default().line(s).into_owned()
}

/// Text for a terminal that holds untrusted parts (a status listing, a triage report): every
/// line neutralised (no escape sequence, control or bidi character survives; colour on a
/// terminal comes only from trainwatch's own code) and redacted, private-key blocks across
/// lines hidden whole. Line breaks are kept; a trailing one too.
pub fn for_terminal(s: &str) -> String {
    for_terminal_with(&crate::redact::Redactor::default(), s)
}

/// [`for_terminal`] with a job's own redaction patterns too.
pub fn for_terminal_with(redactor: &crate::redact::Redactor, s: &str) -> String {
    let lines: Vec<String> = s.split('\n').map(strip_controls).collect();
    redactor.lines(&lines).join("\n")
}

/// Everything above, for a line from a log.
pub fn untrusted(s: &str) -> String {
    defuse_mentions(&redact_secrets(&strip_controls(s)))
}

/// Cut to at most `max` characters, keeping the start and saying how much was cut.
pub fn cut(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_defused() {
        let s = defuse_mentions("ping @everyone and @here and <@123> <@!45> <@&678> <#9>");
        assert!(!s.contains("@everyone") && !s.contains("@here"));
        assert!(!s.contains("<@123>") && !s.contains("<@&678>") && !s.contains("<#9>"));
        assert!(s.contains("everyone") && s.contains("678"));
    }

    #[test]
    fn secrets_are_redacted() {
        let s = redact_secrets(
            "WANDB_API_KEY=abcd1234efgh5678 token: 'xyzxyzxyz' Authorization: Bearer abc.def.ghi123",
        );
        assert!(!s.contains("abcd1234efgh5678"), "{s}");
        assert!(!s.contains("xyzxyzxyz"), "{s}");
        assert!(!s.contains("abc.def.ghi123"), "{s}");
        assert!(s.contains("WANDB_API_KEY=[REDACTED]"), "{s}");
        let s = redact_secrets("aws AKIAABCDEFGHIJKLMNOP and ghp_0123456789abcdefghijABCDEFGHIJ");
        assert_eq!(s, "aws [REDACTED] and [REDACTED]");
        // Ordinary training output is left alone.
        assert_eq!(
            redact_secrets("epoch 3 loss=0.41 tokens=5000"),
            "epoch 3 loss=0.41 tokens=5000"
        );
    }

    #[test]
    fn terminal_controls_are_stripped() {
        assert_eq!(strip_controls("\x1b[31mred\x1b[0m\x07 x\ty\r"), "red x y");
        assert_eq!(strip_controls("a\u{202E}b"), "ab");
    }

    #[test]
    fn terminal_text_keeps_its_lines_and_loses_escapes_and_secrets() {
        let hostile = "verdict: error\nlook at line 3: \x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07KeyError token=abcd1234\n\u{9b}31mred\n";
        let out = for_terminal(hostile);
        assert_eq!(
            out,
            "verdict: error\nlook at line 3: KeyError token=[REDACTED]\n31mred\n"
        );
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    }

    #[test]
    fn cut_keeps_the_start() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
