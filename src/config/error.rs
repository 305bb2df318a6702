//! Config errors that point at the place to fix: `FILE:LINE:COL: KEY: message`. Positions
//! come from the byte spans toml records for every value; for errors raised by the TOML
//! reader itself the key is recovered by finding which key or value covers the span.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a config could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the config: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The file was read but something in it is wrong (syntax, type, or meaning).
    #[error("{0}")]
    Invalid(Box<Located>),
    /// The no-config mode was given an unusable command line.
    #[error("{0}")]
    Usage(String),
}

impl ConfigError {
    /// Where the problem is, when it is in a file.
    pub fn location(&self) -> Option<&Located> {
        match self {
            ConfigError::Invalid(l) => Some(l),
            _ => None,
        }
    }
}

/// A problem at a place in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    /// 1-based line, when the place is known.
    pub line: Option<usize>,
    /// 1-based column in characters, when the place is known.
    pub column: Option<usize>,
    /// Dotted key path (`jobs.model_3.max`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Builds located errors for one file's text.
pub(crate) struct Origin<'a> {
    pub text: &'a str,
    pub file: &'a Path,
}

impl Origin<'_> {
    pub fn at(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, span.start);
        ConfigError::Invalid(Box::new(Located {
            file: self.file.to_path_buf(),
            line: Some(line),
            column: Some(col),
            key: Some(key.into()),
            message: message.into(),
        }))
    }

    /// A problem with the file as a whole (no place to point at).
    pub fn whole(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid(Box::new(Located {
            file: self.file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }))
    }

    /// Turn the TOML reader's error (syntax, wrong type, unknown key) into a located one.
    pub fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        // One line (syntax errors come with an "expected …" line), in config words rather
        // than Rust type names.
        let message = e
            .message()
            .trim()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
            .replace("expected a sequence", "expected a list")
            .replace("expected i64", "expected an integer")
            .replace("expected f64", "expected a number");
        let Some(span) = e.span() else {
            return self.whole(message);
        };
        let (line, col) = line_col(self.text, span.start);
        ConfigError::Invalid(Box::new(Located {
            file: self.file.to_path_buf(),
            line: Some(line),
            column: Some(col),
            key: key_at(self.text, span.start),
            message,
        }))
    }
}

/// The dotted key whose key or value covers `offset` (the innermost one), if the text parses.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    collect_table(doc.as_table(), "", offset, &mut best);
    best.map(|(_, k)| k)
}

fn consider(span: Option<Range<usize>>, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    let Some(span) = span else { return };
    let covers = span.contains(&offset) || (span.is_empty() && span.start == offset);
    if !covers {
        return;
    }
    let width = span.len();
    if best.as_ref().map_or(true, |(w, _)| width <= *w) {
        *best = Some((width, path.to_string()));
    }
}

/// Append a key to a dotted path, quoting it when it is not a bare TOML key.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    let key = if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

/// A table's keys and what they hold; `[section]` tables and `{ inline }` ones alike.
fn collect_table(
    t: &dyn toml_edit::TableLike,
    prefix: &str,
    offset: usize,
    best: &mut Option<(usize, String)>,
) {
    for (k, _) in t.iter() {
        let Some((key, item)) = t.get_key_value(k) else {
            continue;
        };
        let path = join(prefix, k);
        consider(key.span(), &path, offset, best);
        collect_item(item, &path, offset, best);
    }
}

fn collect_item(item: &toml_edit::Item, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    match item {
        toml_edit::Item::None => {}
        toml_edit::Item::Value(v) => collect_value(v, path, offset, best),
        toml_edit::Item::Table(t) => {
            consider(t.span(), path, offset, best);
            collect_table(t, path, offset, best);
        }
        toml_edit::Item::ArrayOfTables(a) => {
            for t in a.iter() {
                consider(t.span(), path, offset, best);
                collect_table(t, path, offset, best);
            }
        }
    }
}

fn collect_value(v: &toml_edit::Value, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    consider(v.span(), path, offset, best);
    match v {
        toml_edit::Value::Array(a) => {
            for x in a.iter() {
                collect_value(x, path, offset, best);
            }
        }
        toml_edit::Value::InlineTable(t) => collect_table(t, path, offset, best),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(text, text.find('"').unwrap()), (2, 6));
    }

    #[test]
    fn finds_the_innermost_key() {
        let text = "[jobs.a]\nargv = [\"x\"]\nenv = { K = 5 }\n";
        let at = text.find('5').unwrap();
        assert_eq!(key_at(text, at).as_deref(), Some("jobs.a.env.K"));
        let at = text.find("\"x\"").unwrap();
        assert_eq!(key_at(text, at).as_deref(), Some("jobs.a.argv"));
    }

    #[test]
    fn display_is_file_line_col_key_message() {
        let l = Located {
            file: "c.toml".into(),
            line: Some(3),
            column: Some(7),
            key: Some("jobs.x.max".into()),
            message: "bad".into(),
        };
        assert_eq!(l.to_string(), "c.toml:3:7: jobs.x.max: bad");
    }
}
