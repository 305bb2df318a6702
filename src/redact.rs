//! Redaction: secrets in untrusted text replaced by `[REDACTED]` before the text goes anywhere
//! (the engine's state, the store, a chat, a terminal, a chart's title). One pass, one list of
//! what counts as a secret, so no surface can redact less than another.
//!
//! What is redacted (the README's "Guarantees" lists the same set):
//! - known token formats: AWS access key ids, GitHub (`ghp_`… and fine-grained `github_pat_`),
//!   GitLab (`glpat-`), Slack (`xox?-`), Hugging Face (`hf_`), OpenAI/Anthropic-style `sk-`,
//!   Stripe (`sk_live_`…), Google API keys (`AIza`…), npm (`npm_`), Discord bot tokens, JWTs;
//! - assignments whose key names a secret, in any of the usual spellings (`WANDB_API_KEY=x`,
//!   `token: x`, `"password": "x"`, `client_secret=x`, `aws_secret_access_key = x`);
//! - command-line flags that name one (`--token x`, `--api-key=x`, `--password x`) and
//!   `wandb login KEY`;
//! - `Authorization: Bearer|Basic|token x`;
//! - credentials in URLs (`https://user:pass@host` keeps the host, drops the userinfo);
//! - private keys: a PEM block on one line (a `repr`) from BEGIN to END, and across lines: the
//!   marker lines and every line of the body (see [`Redactor::lines`]); a lone body line is
//!   caught by its shape (a long run of base64 and nothing else);
//! - whatever the job's own `redact` patterns match.
//!
//! Redaction errs towards hiding: a false positive costs a word of a log line, a false negative
//! a leaked credential in a team channel.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Captures, Regex};

/// What a secret is replaced with.
pub const MARK: &str = "[REDACTED]";

/// Built-in rules, then the job's own patterns.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    extra: Vec<Regex>,
}

/// A rule: a pattern and how much of a match is kept (the prefix group, when there is one).
struct Rule {
    re: Regex,
    /// Keep capture group 1 (the key, flag or scheme) and group 2 if there is one (the `@` of
    /// a URL), and replace what lies between.
    keeps_prefix: bool,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let keep = |p: &str| Rule {
            re: Regex::new(p).expect("redaction rule"),
            keeps_prefix: true,
        };
        let whole = |p: &str| Rule {
            re: Regex::new(p).expect("redaction rule"),
            keeps_prefix: false,
        };
        vec![
            // A private key printed on one line (a repr with \n escapes): everything from BEGIN
            // to END, or to the end of the line when END is elsewhere.
            whole(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)"),
            whole(r"-----END [A-Z0-9 ]*PRIVATE KEY-----"),
            // Userinfo in a URL: keep the scheme and the host.
            keep(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+(@)"),
            keep(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]{16,}(@)"),
            // Authorization headers.
            keep(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
            keep(r#"(?i)\b(authorization["']?\s*[:=]\s*["']?(?:basic\s+|token\s+)?)[^\s"',;]{8,}"#),
            // `wandb login KEY` (and its flags before the key).
            keep(r"(?i)\b(wandb\s+login\s+(?:--?[a-z-]+\s+)*)[^\s-]\S{7,}"),
            // Flags naming a secret, with the value after a space or `=`.
            keep(
                r"(?i)((?:^|\s)--?[a-z0-9_-]*(?:key|token|secret|password|passwd|credentials?)(?:\s+|=))[^\s-]\S{2,}",
            ),
            // Assignments whose key names a secret (env style, key: value, JSON, TOML).
            keep(
                r#"(?i)\b([a-z0-9_.-]*(?:api[_-]?key|apikey|access[_-]?key|secret|token|password|passwd|auth[_-]?token|credentials?|private[_-]?key)\b["']?\s*[=:]\s*["']?)[^\s"',;]{4,}"#,
            ),
            // Known token formats.
            whole(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
            whole(r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
            whole(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
            whole(r"\bglpat-[A-Za-z0-9_-]{20,}"),
            whole(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
            whole(r"\bhf_[A-Za-z0-9]{20,}"),
            whole(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
            whole(r"\bsk-[A-Za-z0-9_-]{20,}"),
            whole(r"\bAIza[0-9A-Za-z_-]{35}"),
            whole(r"\bnpm_[A-Za-z0-9]{36}"),
            whole(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
            // Discord bot tokens: three base64url parts separated by dots.
            whole(r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}\b"),
        ]
    })
}

fn begins_key_block(s: &str) -> bool {
    static BEGIN: OnceLock<Regex> = OnceLock::new();
    let re = BEGIN.get_or_init(|| Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----").unwrap());
    re.is_match(s)
}

fn ends_key_block(s: &str) -> bool {
    s.contains("-----END ") && s.contains("PRIVATE KEY-----")
}

/// A key block that never ends stops hiding lines after this many (a real key is ~50 lines):
/// a stray BEGIN must not blank the rest of a report.
const MAX_KEY_BLOCK_LINES: usize = 120;

/// Compile the built-in rules now (about 25 million instructions of regex building), on a
/// thread that would otherwise wait, so that the first report does not: triage redacts its
/// report only once the whole log is read.
pub fn prepare() {
    rules();
    begins_key_block("");
}

impl Redactor {
    /// The built-in rules plus a job's own patterns (already validated by the config).
    pub fn new(extra: Vec<Regex>) -> Self {
        Self { extra }
    }

    /// The job's own patterns, as written.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.extra.iter().map(Regex::as_str)
    }

    /// One line (or any text without line structure that matters).
    pub fn line<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if is_base64_blob(s) {
            return Cow::Owned(MARK.to_string());
        }
        let mut out = Cow::Borrowed(s);
        for rule in rules() {
            if let Cow::Owned(o) = replace(&rule.re, &out, rule.keeps_prefix) {
                out = Cow::Owned(o);
            }
        }
        for re in &self.extra {
            if let Cow::Owned(o) = replace(re, &out, false) {
                out = Cow::Owned(o);
            }
        }
        out
    }

    /// Consecutive lines (a traceback excerpt, a log tail): like [`Redactor::line`] on each,
    /// and every line inside a private-key block is hidden whole.
    pub fn lines(&self, lines: &[String]) -> Vec<String> {
        let mut inside: Option<usize> = None;
        lines
            .iter()
            .map(|l| {
                let hidden = match inside {
                    Some(n) if n < MAX_KEY_BLOCK_LINES => {
                        inside = if ends_key_block(l) { None } else { Some(n + 1) };
                        true
                    }
                    _ => {
                        inside = (begins_key_block(l) && !ends_key_block(l)).then_some(0);
                        false
                    }
                };
                if hidden {
                    MARK.to_string()
                } else {
                    self.line(l).into_owned()
                }
            })
            .collect()
    }

    /// An incident's evidence: its line and its excerpt (read as consecutive lines).
    pub fn incident(&self, incident: &mut crate::model::Incident) {
        incident.text = self.line(&incident.text).into_owned();
        incident.excerpt = self.lines(&incident.excerpt);
        // Ours, but it may quote a name from the log.
        incident.reason = self.line(&incident.reason).into_owned();
    }

    /// A command line for display ("Command: …"): argv joined with spaces, flags and
    /// env-style assignments that name a secret redacted.
    pub fn command_line(&self, argv: &[String]) -> String {
        self.line(&argv.join(" ")).into_owned()
    }
}

fn replace<'a>(re: &Regex, s: &'a str, keeps_prefix: bool) -> Cow<'a, str> {
    re.replace_all(s, |c: &Captures<'_>| match c.get(1).filter(|_| keeps_prefix) {
        // A tokenizer's special token (`pad_token = tokenizer.eos_token`, `eos_token: </s>`)
        // is a vocabulary entry, printed by every tokenizer error: not a secret.
        Some(prefix) if special_token_key(prefix.as_str()) => c[0].to_string(),
        Some(prefix) => {
            let suffix = c.get(2).map_or("", |m| m.as_str());
            format!("{}{MARK}{suffix}", prefix.as_str())
        }
        None => MARK.to_string(),
    })
}

/// The key of a tokenizer's special token: `pad_token`, `eos_token`, `tokenizer.bos_token`,
/// `mask_token_id` …
fn special_token_key(prefix: &str) -> bool {
    let key: String = prefix
        .trim_end_matches([' ', '=', ':', '"', '\'', '\t'])
        .to_ascii_lowercase();
    let key = key.rsplit(['.', ' ', '(', '{', ',']).next().unwrap_or("");
    let key = key.strip_suffix("_id").unwrap_or(key);
    matches!(
        key,
        "pad_token" | "eos_token" | "bos_token" | "unk_token" | "cls_token" | "sep_token" | "mask_token"
    )
}

/// A line that is nothing but a long run of base64 (a private key's body line, a key or token
/// printed alone). Mixed case and digits tell it from a long lowercase path.
fn is_base64_blob(s: &str) -> bool {
    let t = s.trim().trim_matches(|c| c == '"' || c == '\'');
    let body = t.trim_end_matches('=');
    body.len() >= 40
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
        && body.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        Redactor::default().line(s).into_owned()
    }

    /// Every kind of secret the hostile trial leaked or that the README promises, on a line of
    /// its own: the secret is gone and the line still says what it was about.
    #[test]
    fn every_documented_kind_is_redacted() {
        let cases: &[(&str, &str)] = &[
            ("aws AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
            ("push with ghp_0123456789abcdefghijABCDEFGHIJ", "ghp_0123456789abcdefghijABCDEFGHIJ"),
            (
                "GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
                "github_pat_11ABCDEFG0123456789",
            ),
            ("token glpat-abcdefghij0123456789xy", "glpat-abcdefghij0123456789xy"),
            ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
            ("hub hf_abcdefghijklmnopqrstuvwxyz123456", "hf_abcdefghijklmnopqrstuvwxyz123456"),
            ("openai sk-proj-abcdefghijklmnopqrstuvwxyz", "sk-proj-abcdefghijklmnopqrstuvwxyz"),
            ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234"),
            ("maps AIzaSyA-abcdefghijklmnopqrstuvwxyz012345", "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345"),
            ("npm npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_abcdefghijklmnopqrstuvwxyz0123456789"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "dozjgNryP4J3jVmNHl0w5N",
            ),
            ("WANDB_API_KEY=abcd1234efgh5678", "abcd1234efgh5678"),
            ("wandb login 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef"),
            ("wandb login --relogin 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef01234567"),
            ("config {'api_key': 'zz-top-secret-99'}", "zz-top-secret-99"),
            ("\"password\": \"hunter22\"", "hunter22"),
            ("client_secret=s3cr3tvalue", "s3cr3tvalue"),
            ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
            ("HF_TOKEN=abcdefgh123", "abcdefgh123"),
            ("token: 'xyzxyzxyz'", "xyzxyzxyz"),
            ("Authorization: Bearer abc.def.ghi123", "abc.def.ghi123"),
            ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
            ("clone https://alice:pa55word@git.example.com/r.git", "pa55word"),
            ("clone https://oauth2abcdefghijklmnop@git.example.com/r.git", "oauth2abcdefghijklmnop"),
            ("python train.py --token abcdef123 --epochs 3", "abcdef123"),
            ("python train.py --api-key=abcdef123", "abcdef123"),
            ("python train.py --db-password hunter2", "hunter2"),
            (
                "key = '-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA7\\n-----END RSA PRIVATE KEY-----\\n'",
                "MIIEpAIBAAKCAQEA7",
            ),
            ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "MIIEvQIBADANBgkqhkiG9w0BAQEF"),
            (
                "discord MTA0NTY3ODkwMTIzNDU2Nzg5MA.GhIjKl.abcdefghijklmnopqrstuvwxyz0123",
                "abcdefghijklmnopqrstuvwxyz0123",
            ),
        ];
        for (line, secret) in cases {
            let out = r(line);
            assert!(!out.contains(secret), "{line:?} leaked {secret:?}: {out:?}");
            assert!(out.contains(MARK), "{line:?}: {out:?}");
        }
    }

    #[test]
    fn what_the_secret_was_about_stays_readable() {
        assert_eq!(r("WANDB_API_KEY=abcd1234efgh5678"), "WANDB_API_KEY=[REDACTED]");
        assert_eq!(
            r("clone https://alice:pa55word@git.example.com/r.git"),
            "clone https://[REDACTED]@git.example.com/r.git"
        );
        assert_eq!(
            r("python t.py --token abcdef123 --epochs 3"),
            "python t.py --token [REDACTED] --epochs 3"
        );
        assert_eq!(
            r("Authorization: Bearer abc.def.ghi123"),
            "Authorization: Bearer [REDACTED]"
        );
    }

    /// Ordinary training output is left alone: redaction must not eat metrics or paths.
    #[test]
    fn ordinary_training_output_is_untouched() {
        for line in [
            "epoch 3 loss=0.41 tokens=5000",
            "step 120/5000 lr=3e-4 grad_norm=0.91 max_tokens=512",
            "Saving model checkpoint to output/checkpoint-500",
            "tokenizer_config.json saved",
            "{'loss': 0.3311, 'learning_rate': 4.5e-05, 'epoch': 0.9}",
            "KeyError: 'label'",
            "  File \"/home/u/train.py\", line 42, in <module>",
            "http://localhost:6006/ TensorBoard",
            "--num-workers 4 --batch-size 32 --max-tokens 512 --key-file k.pem",
            "/home/someone/projects/experiments/output/checkpoints/best",
            "auth: failed for user bob, basic statistics computed",
            "the token expired; PWD=/home/u/run",
            // a tokenizer's special tokens are vocabulary, not credentials
            "Please select a token to use as `pad_token` `(tokenizer.pad_token = tokenizer.eos_token e.g.)`",
            "eos_token: </s>, pad_token_id=50256",
        ] {
            assert_eq!(r(line), line);
        }
    }

    #[test]
    fn a_private_key_over_several_lines_is_hidden_whole() {
        let lines: Vec<String> = [
            "loading key:",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACBfakekeyfakekeyfakekeyfakekeyfakekeyfakekeyQ",
            "Wg==",
            "-----END OPENSSH PRIVATE KEY-----",
            "Traceback (most recent call last):",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = Redactor::default().lines(&lines);
        assert_eq!(out[0], "loading key:");
        for l in &out[1..6] {
            assert_eq!(l, MARK);
        }
        assert_eq!(out[6], "Traceback (most recent call last):");
    }

    #[test]
    fn a_begin_without_end_hides_a_bounded_number_of_lines() {
        let mut lines = vec!["-----BEGIN PRIVATE KEY-----".to_string()];
        lines.extend((0..500).map(|i| format!("line {i}")));
        let out = Redactor::default().lines(&lines);
        let hidden = out.iter().filter(|l| *l == MARK).count();
        assert!(hidden <= MAX_KEY_BLOCK_LINES + 1, "{hidden}");
        assert_eq!(out.last().unwrap(), "line 499");
    }

    #[test]
    fn job_patterns_are_applied_too() {
        let red = Redactor::new(vec![Regex::new(r"internal-[0-9]{6}").unwrap()]);
        assert_eq!(red.line("host internal-123456 up"), "host [REDACTED] up");
    }

    #[test]
    fn a_command_line_loses_its_secrets() {
        let argv: Vec<String> = [
            "env",
            "HF_TOKEN=abcdefgh123",
            "python",
            "train.py",
            "--wandb-key",
            "0123abcd",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let shown = Redactor::default().command_line(&argv);
        assert!(
            !shown.contains("abcdefgh123") && !shown.contains("0123abcd"),
            "{shown}"
        );
        assert!(
            shown.starts_with("env HF_TOKEN=[REDACTED] python train.py --wandb-key"),
            "{shown}"
        );
    }

    #[test]
    fn redaction_is_idempotent() {
        let once = r("WANDB_API_KEY=abcd1234efgh5678 https://a:b@h");
        assert_eq!(r(&once), once);
    }
}
