//! Reading a design parameter's actual value from the job's files: a dotted key in a params
//! file (TOML / JSON / YAML) or a regex capture over source files. The files are untrusted: size
//! is bounded, every failure becomes a reason string shown in the gate's table, nothing panics.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::design::{FileFormat, ParamSource, ParamValue};

/// Params and source files larger than this are not parsed (hashing still covers them).
pub(crate) const MAX_READ_BYTES: u64 = 8 << 20;

/// A value found in a file before it is shaped to the expected kind.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Number(f64),
    Text(String),
    Bool(bool),
    List(Vec<String>),
    /// A table / map / null: nothing a design value can be.
    Other(&'static str),
}

/// Reads one parameter. `files` are the workdir-relative files the source's globs matched (sorted).
pub(crate) fn read_param(
    workdir: &Path,
    source: &ParamSource,
    expected: &ParamValue,
    files: &[PathBuf],
) -> Result<ParamValue, String> {
    match source {
        ParamSource::File { path, key } => {
            // `files` holds the path only when it is a regular file inside the workdir.
            if !files.iter().any(|f| f == path) {
                let why = match std::fs::symlink_metadata(workdir.join(path)) {
                    Err(e) => io_reason(&e),
                    Ok(_) => "not a regular file inside the workdir".into(),
                };
                return Err(format!("{}: {why}", path.display()));
            }
            let text = read_text(&workdir.join(path)).map_err(|e| format!("{}: {e}", path.display()))?;
            let format = FileFormat::of(path)
                .ok_or_else(|| format!("{}: not a .toml, .json or .yaml file", path.display()))?;
            let found = lookup(format, &text, key).map_err(|e| format!("{}: {e}", path.display()))?;
            shape(found, expected).map_err(|e| format!("{} key {key:?}: {e}", path.display()))
        }
        ParamSource::Pattern { regex, files: globs } => {
            if files.is_empty() {
                return Err(format!("no file matches {}", globs.join(", ")));
            }
            let mut unreadable = Vec::new();
            for f in files {
                let text = match read_text(&workdir.join(f)) {
                    Ok(t) => t,
                    Err(e) => {
                        unreadable.push(format!("{}: {e}", f.display()));
                        continue;
                    }
                };
                if let Some(c) = regex.0.captures(&text).and_then(|c| c.get(1)) {
                    return shape_capture(c.as_str(), expected).map_err(|e| format!("{}: {e}", f.display()));
                }
            }
            let mut why = format!(
                "pattern {:?} matches nothing in {}",
                regex.0.as_str(),
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !unreadable.is_empty() {
                why.push_str(&format!(" ({})", unreadable.join("; ")));
            }
            Err(why)
        }
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    let meta = file.metadata().map_err(|e| io_reason(&e))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(format!(
            "too large to read ({} bytes, limit {MAX_READ_BYTES})",
            meta.len()
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // take() guards against a file that grows between metadata() and the read.
    file.take(MAX_READ_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| io_reason(&e))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn lookup(format: FileFormat, text: &str, key: &str) -> Result<Found, String> {
    let segs: Vec<&str> = key.split('.').collect();
    match format {
        FileFormat::Toml => {
            let root: toml::Table = toml::from_str(text)
                .map_err(|e| format!("not valid TOML: {}", first_line(&e.to_string())))?;
            let mut cur = root.get(segs[0]).ok_or_else(|| missing(key, segs[0]))?;
            for seg in &segs[1..] {
                cur = match cur {
                    toml::Value::Table(t) => t.get(*seg),
                    toml::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                }
                .ok_or_else(|| missing(key, seg))?;
            }
            Ok(match cur {
                toml::Value::Integer(i) => Found::Number(*i as f64),
                toml::Value::Float(f) => Found::Number(*f),
                toml::Value::String(s) => Found::Text(s.clone()),
                toml::Value::Boolean(b) => Found::Bool(*b),
                toml::Value::Array(a) => Found::List(
                    a.iter()
                        .filter_map(|v| match v {
                            toml::Value::String(s) => Some(s.clone()),
                            toml::Value::Integer(i) => Some(i.to_string()),
                            toml::Value::Float(f) => Some(f.to_string()),
                            toml::Value::Boolean(b) => Some(b.to_string()),
                            _ => None,
                        })
                        .collect(),
                ),
                toml::Value::Datetime(d) => Found::Text(d.to_string()),
                toml::Value::Table(_) => Found::Other("a table"),
            })
        }
        FileFormat::Json => {
            let root: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
            let mut cur = &root;
            for seg in &segs {
                cur = match cur {
                    serde_json::Value::Object(m) => m.get(*seg),
                    serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                }
                .ok_or_else(|| missing(key, seg))?;
            }
            Ok(json_found(cur))
        }
        FileFormat::Yaml => {
            use yaml_rust2::Yaml;
            let docs =
                yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
            let mut cur = docs.first().ok_or("the YAML file is empty")?;
            for seg in &segs {
                cur = match cur {
                    Yaml::Hash(h) => h.get(&Yaml::String((*seg).to_string())).or_else(|| {
                        // YAML keys may be numbers or booleans (`1:`, `true:`).
                        h.iter()
                            .find(|(k, _)| yaml_scalar(k).as_deref() == Some(*seg))
                            .map(|(_, v)| v)
                    }),
                    Yaml::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                }
                .ok_or_else(|| missing(key, seg))?;
            }
            Ok(match cur {
                Yaml::Integer(i) => Found::Number(*i as f64),
                Yaml::Real(r) => r
                    .parse::<f64>()
                    .map(Found::Number)
                    .unwrap_or_else(|_| Found::Text(r.clone())),
                Yaml::String(s) => Found::Text(s.clone()),
                Yaml::Boolean(b) => Found::Bool(*b),
                Yaml::Array(a) => Found::List(a.iter().filter_map(yaml_scalar).collect()),
                Yaml::Hash(_) => Found::Other("a mapping"),
                Yaml::Alias(_) => Found::Other("an alias"),
                Yaml::Null | Yaml::BadValue => Found::Other("null"),
            })
        }
    }
}

fn yaml_scalar(y: &yaml_rust2::Yaml) -> Option<String> {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_found(v: &serde_json::Value) -> Found {
    use serde_json::Value;
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(Found::Number)
            .unwrap_or(Found::Other("a number out of range")),
        Value::String(s) => Found::Text(s.clone()),
        Value::Bool(b) => Found::Bool(*b),
        Value::Array(a) => Found::List(
            a.iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect(),
        ),
        Value::Object(_) => Found::Other("an object"),
        Value::Null => Found::Other("null"),
    }
}

fn missing(key: &str, seg: &str) -> String {
    if key == seg {
        format!("key {key:?} not found")
    } else {
        format!("key {key:?} not found (no {seg:?})")
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Shapes a value found under a key to the expected kind.
fn shape(found: Found, expected: &ParamValue) -> Result<ParamValue, String> {
    match (expected, found) {
        (_, Found::Other(what)) => Err(format!("is {what}, not a {}", expected.kind())),
        (ParamValue::Number(_), Found::Number(n)) => Ok(ParamValue::Number(n)),
        (ParamValue::Number(_), Found::Text(t)) => parse_number(&t),
        (ParamValue::Number(_), Found::Bool(b)) => Err(format!("is a boolean ({b}), not a number")),
        (ParamValue::Number(_), Found::List(_)) => Err("is a list, not a number".into()),
        (ParamValue::Text(_), Found::Number(n)) => Ok(ParamValue::Text(n.to_string())),
        (ParamValue::Text(_), Found::Text(t)) => Ok(ParamValue::Text(t.trim().to_string())),
        (ParamValue::Text(_), Found::Bool(b)) => Ok(ParamValue::Text(b.to_string())),
        (ParamValue::Text(_), Found::List(_)) => Err("is a list, not text".into()),
        (ParamValue::Set(_), Found::List(items)) => Ok(ParamValue::Set(
            items
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )),
        // A comma-separated string ("age,income") is a common way to write a list in configs.
        (ParamValue::Set(_), Found::Text(t)) => Ok(ParamValue::Set(split_list(&t))),
        (ParamValue::Set(_), Found::Number(n)) => Ok(ParamValue::Set(BTreeSet::from([n.to_string()]))),
        (ParamValue::Set(_), Found::Bool(b)) => Ok(ParamValue::Set(BTreeSet::from([b.to_string()]))),
    }
}

/// Shapes a regex capture (always text) to the expected kind.
fn shape_capture(cap: &str, expected: &ParamValue) -> Result<ParamValue, String> {
    match expected {
        ParamValue::Number(_) => parse_number(cap),
        ParamValue::Text(_) => Ok(ParamValue::Text(unquote(cap.trim()).to_string())),
        ParamValue::Set(_) => Ok(ParamValue::Set(split_list(cap))),
    }
}

fn parse_number(s: &str) -> Result<ParamValue, String> {
    let t = unquote(s.trim());
    // Python and Rust allow 2_000; drop the separators before parsing.
    let cleaned: String = t.chars().filter(|c| *c != '_').collect();
    match cleaned.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(ParamValue::Number(n)),
        _ => Err(format!("{:?} is not a number", truncate(t, 60))),
    }
}

/// `["age", "income"]`, `('age', 'income')`, `age, income` → {age, income}.
fn split_list(s: &str) -> BTreeSet<String> {
    let t = s.trim();
    let t = t
        .strip_prefix(['[', '(', '{'])
        .and_then(|x| x.strip_suffix([']', ')', '}']))
        .unwrap_or(t);
    t.split(',')
        .map(|item| unquote(item.trim()).trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\'', '`'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_from_literals_and_strings() {
        let want: BTreeSet<String> = ["age", "income"].iter().map(|s| s.to_string()).collect();
        assert_eq!(split_list(r#"["age", "income"]"#), want);
        assert_eq!(split_list("('income','age',)"), want);
        assert_eq!(split_list("age, income"), want);
    }

    #[test]
    fn numbers_accept_separators_and_quotes_but_not_words() {
        assert_eq!(parse_number("2_000"), Ok(ParamValue::Number(2000.0)));
        assert_eq!(parse_number(" '0.95' "), Ok(ParamValue::Number(0.95)));
        assert!(parse_number("many").unwrap_err().contains("not a number"));
        assert!(parse_number("inf").is_err());
    }

    #[test]
    fn hostile_nesting_is_an_error_or_a_value_never_a_crash() {
        let deep_flow = format!("a: {}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(lookup(FileFormat::Yaml, &deep_flow, "a.b").is_err());
        let deep_block: String = (0..500).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert!(lookup(FileFormat::Yaml, &deep_block, "k0.nope").is_err());
        let deep_json = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(lookup(FileFormat::Json, &deep_json, "0").is_err());
        let deep_toml = format!("a = {}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(lookup(FileFormat::Toml, &deep_toml, "a").is_err());
    }

    #[test]
    fn dotted_keys_index_lists_and_report_the_missing_segment() {
        let yaml = "sampler:\n  chains: [4, 8]\n";
        assert_eq!(
            lookup(FileFormat::Yaml, yaml, "sampler.chains.1"),
            Ok(Found::Number(8.0))
        );
        let e = lookup(FileFormat::Yaml, yaml, "sampler.draws").unwrap_err();
        assert!(e.contains("\"draws\""), "{e}");
        assert!(lookup(FileFormat::Json, "{not json", "a")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(lookup(FileFormat::Toml, "a = [", "a")
            .unwrap_err()
            .contains("not valid TOML"));
    }
}
