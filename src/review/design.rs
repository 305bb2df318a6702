//! Design expectations: the parameters a job's design fixes (tune, chains, draws, algorithm,
//! features, …), each with its expected value, a tolerance and where its actual value is read
//! from. Parsed from the config's `[[jobs.NAME.design]]` tables and validated up front, so a
//! mistake in the config is reported with the parameter's name instead of surfacing at the gate.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::model::JobName;

/// The parameter whose change means "algorithm changed" in the CHANGES SUMMARY.
pub const ALGORITHM: &str = "algorithm";
/// The parameter whose set difference gives "features added/removed".
pub const FEATURES: &str = "features";

/// One design parameter, validated. Serialises as its [`RawDesignParam`] form, so the config
/// module can embed `Vec<DesignParam>` directly and a bad entry fails deserialisation with a
/// message naming the parameter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(try_from = "RawDesignParam", into = "RawDesignParam")]
pub struct DesignParam {
    pub name: String,
    pub expected: ParamValue,
    pub tolerance: Tolerance,
    pub source: ParamSource,
}

/// A design value: the expected one from the config, or an actual one read from the job's files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ParamValue {
    Number(f64),
    Text(String),
    Set(BTreeSet<String>),
}

impl ParamValue {
    /// The kind's name, for messages ("draws should be a number").
    pub fn kind(&self) -> &'static str {
        match self {
            ParamValue::Number(_) => "number",
            ParamValue::Text(_) => "text",
            ParamValue::Set(_) => "set",
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // f64's Display prints 2000.0 as "2000", which is what a reader expects.
            ParamValue::Number(n) => write!(f, "{n}"),
            ParamValue::Text(t) => f.write_str(t),
            ParamValue::Set(s) => {
                f.write_str("{")?;
                for (i, item) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(item)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// How far an actual value may be from the expected one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(try_from = "String", into = "String")]
pub enum Tolerance {
    /// Equal (numbers compare numerically, so 2000 == 2000.0).
    Exact,
    /// |actual − expected| ≤ the bound.
    Absolute(f64),
    /// |actual − expected| ≤ pct/100 · |expected|.
    Relative(f64),
    /// The actual set equals the expected set.
    SameSet,
    /// The actual set only holds expected members (features may be dropped, not added).
    Subset,
}

impl Tolerance {
    /// Parses the config's wording: `exact`, `±50` / `+-50` / `50` (absolute), `±10%` / `10%`
    /// (relative), `same set`, `subset`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "exact" | "=" | "==" => return Ok(Tolerance::Exact),
            "same set" | "same-set" | "same_set" | "set" => return Ok(Tolerance::SameSet),
            "subset" => return Ok(Tolerance::Subset),
            _ => {}
        }
        let body = ["±", "+/-", "+-"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t)
            .trim();
        let (num, relative) = match body.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (body, false),
        };
        let bad = || {
            format!(
                "tolerance {s:?} is not understood (use \"exact\", \"±50\", \"±10%\", \"same set\" or \"subset\")"
            )
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 {
            return Err(format!("tolerance {s:?} must be a finite number ≥ 0"));
        }
        Ok(if relative {
            Tolerance::Relative(v)
        } else {
            Tolerance::Absolute(v)
        })
    }

    fn default_for(v: &ParamValue) -> Self {
        match v {
            ParamValue::Set(_) => Tolerance::SameSet,
            _ => Tolerance::Exact,
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Exact => f.write_str("exact"),
            Tolerance::Absolute(v) => write!(f, "±{v}"),
            Tolerance::Relative(v) => write!(f, "±{v}%"),
            Tolerance::SameSet => f.write_str("same set"),
            Tolerance::Subset => f.write_str("subset"),
        }
    }
}

impl TryFrom<String> for Tolerance {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Tolerance::parse(&s)
    }
}

impl From<Tolerance> for String {
    fn from(t: Tolerance) -> String {
        t.to_string()
    }
}

/// Where a parameter's actual value is read from; paths and globs are relative to the job's
/// workdir.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ParamSource {
    /// A params file (TOML / JSON / YAML by extension) and a dotted key (`sampler.draws`;
    /// a numeric segment indexes a list).
    File { path: PathBuf, key: String },
    /// A regex with exactly one capture group, tried over the files the globs match (in path
    /// order); the first match wins.
    Pattern { regex: CaptureRegex, files: Vec<String> },
}

impl ParamSource {
    /// The globs (relative to the workdir) naming this source's files; a params file is a
    /// literal path, escaped so that `[` or `*` in its name match only themselves.
    pub fn globs(&self) -> Vec<String> {
        match self {
            ParamSource::File { path, .. } => {
                vec![glob::Pattern::escape(&path.to_string_lossy())]
            }
            ParamSource::Pattern { files, .. } => files.clone(),
        }
    }
}

/// A compiled regex that serialises as its source text and compares by it.
#[derive(Clone, Debug)]
pub struct CaptureRegex(pub Regex);

impl PartialEq for CaptureRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for CaptureRegex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for CaptureRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        compile_capture(&s).map_err(de::Error::custom)
    }
}

fn compile_capture(s: &str) -> Result<CaptureRegex, String> {
    let re = regex::RegexBuilder::new(s)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("pattern {s:?} is not a valid regex: {e}"))?;
    // captures_len counts the implicit whole-match group.
    let groups = re.captures_len() - 1;
    if groups != 1 {
        return Err(format!(
            "pattern {s:?} must have exactly one capture group (the value), it has {groups}"
        ));
    }
    Ok(CaptureRegex(re))
}

/// A design entry as written in the config.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDesignParam {
    pub name: String,
    pub expected: RawValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<String>,
    pub from: RawSource,
}

/// The expected value as written: a number, a string, a boolean (kept as text) or a list
/// (a set of strings).
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum RawValue {
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a string, a boolean or a list of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<ListItem>()? {
                    items.push(item.0);
                }
                Ok(RawValue::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list member: strings as they are, numbers and booleans as their text.
struct ListItem(String);

impl<'de> Deserialize<'de> for ListItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ListItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ListItem, E> {
                Ok(ListItem(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ListItem, E> {
                Ok(ListItem(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ListItem, E> {
                Ok(ListItem(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ListItem, E> {
                Ok(ListItem(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListItem, E> {
                Ok(ListItem(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `from = { file = "params.yaml", key = "sampler.draws" }` or
/// `from = { pattern = 'draws\s*=\s*(\d+)', files = ["model_3.py"] }`. All fields optional at
/// this level so that a wrong combination gets a precise message from [`parse_design`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

/// A design entry that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DesignError {
    #[error("design parameter {param:?}: {problem}")]
    Param { param: String, problem: String },
    #[error("design parameter {0:?} is listed twice")]
    Duplicate(String),
}

/// Validates the config's design entries: names unique, the tolerance fits the value's kind,
/// `algorithm` is text and `features` a list, the source is either a params file with a key or
/// a one-group pattern over relative globs.
pub fn parse_design(raw: &[RawDesignParam]) -> Result<Vec<DesignParam>, DesignError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let p = DesignParam::try_from(r.clone())?;
        if !seen.insert(p.name.clone()) {
            return Err(DesignError::Duplicate(p.name));
        }
        out.push(p);
    }
    Ok(out)
}

/// Replaces `{job}` / `{name}` in the sources' paths and globs with the job's name, so one
/// design template can serve `model_1`, `model_2`, … (`files = ["{job}.py"]`).
pub fn bind_job(design: &[DesignParam], job: &JobName) -> Vec<DesignParam> {
    let sub = |s: &str| s.replace("{job}", job.as_str()).replace("{name}", job.as_str());
    design
        .iter()
        .map(|p| DesignParam {
            source: match &p.source {
                ParamSource::File { path, key } => ParamSource::File {
                    path: PathBuf::from(sub(&path.to_string_lossy())),
                    key: key.clone(),
                },
                ParamSource::Pattern { regex, files } => ParamSource::Pattern {
                    regex: regex.clone(),
                    files: files.iter().map(|f| sub(f)).collect(),
                },
            },
            ..p.clone()
        })
        .collect()
}

impl TryFrom<RawDesignParam> for DesignParam {
    type Error = DesignError;
    fn try_from(r: RawDesignParam) -> Result<Self, DesignError> {
        let name = r.name.trim().to_string();
        let err = |problem: String| DesignError::Param {
            param: if name.is_empty() {
                "(unnamed)".into()
            } else {
                name.clone()
            },
            problem,
        };
        if name.is_empty() {
            return Err(err("the name is empty".into()));
        }
        let expected = match r.expected {
            RawValue::Bool(b) => ParamValue::Text(b.to_string()),
            RawValue::Number(n) if !n.is_finite() => {
                return Err(err(format!("expected value {n} is not a finite number")))
            }
            RawValue::Number(n) => ParamValue::Number(n),
            RawValue::Text(t) => ParamValue::Text(t.trim().to_string()),
            RawValue::List(items) => {
                ParamValue::Set(items.into_iter().map(|s| s.trim().to_string()).collect())
            }
        };
        if name == ALGORITHM && !matches!(expected, ParamValue::Text(_)) {
            return Err(err(format!(
                "\"algorithm\" must be text (like \"NUTS\"), not a {}",
                expected.kind()
            )));
        }
        if name == FEATURES && !matches!(expected, ParamValue::Set(_)) {
            return Err(err(format!(
                "\"features\" must be a list (like [\"age\", \"income\"]), not a {}",
                expected.kind()
            )));
        }
        let tolerance = match &r.tolerance {
            None => Tolerance::default_for(&expected),
            Some(t) => Tolerance::parse(t).map_err(&err)?,
        };
        let tolerance = match (&expected, tolerance) {
            (ParamValue::Number(_), t @ (Tolerance::Exact | Tolerance::Absolute(_) | Tolerance::Relative(_))) => t,
            (ParamValue::Text(_), Tolerance::Exact) => Tolerance::Exact,
            // "exact" on a set reads naturally as "the same set".
            (ParamValue::Set(_), Tolerance::Exact) => Tolerance::SameSet,
            (ParamValue::Set(_), t @ (Tolerance::SameSet | Tolerance::Subset)) => t,
            (v, t) => {
                return Err(err(format!(
                    "tolerance \"{t}\" does not apply to a {} value (numbers: exact, ±N, ±N%; text: exact; lists: same set, subset)",
                    v.kind()
                )))
            }
        };
        let source = parse_source(&r.from).map_err(err)?;
        Ok(DesignParam {
            name,
            expected,
            tolerance,
            source,
        })
    }
}

impl From<DesignParam> for RawDesignParam {
    fn from(p: DesignParam) -> Self {
        let expected = match p.expected {
            ParamValue::Number(n) => RawValue::Number(n),
            ParamValue::Text(t) => RawValue::Text(t),
            ParamValue::Set(s) => RawValue::List(s.into_iter().collect()),
        };
        let from = match p.source {
            ParamSource::File { path, key } => RawSource {
                file: Some(path.to_string_lossy().into_owned()),
                key: Some(key),
                ..RawSource::default()
            },
            ParamSource::Pattern { regex, files } => RawSource {
                pattern: Some(regex.0.as_str().to_string()),
                files: Some(files),
                ..RawSource::default()
            },
        };
        RawDesignParam {
            name: p.name,
            expected,
            tolerance: Some(p.tolerance.to_string()),
            from,
        }
    }
}

fn parse_source(s: &RawSource) -> Result<ParamSource, String> {
    match (&s.file, &s.pattern) {
        (Some(_), Some(_)) => Err("`from` has both `file` and `pattern`; give one".into()),
        (None, None) => Err(
            "`from` needs either { file = \"params.yaml\", key = \"a.b\" } or { pattern = '…(…)…', files = [\"*.py\"] }"
                .into(),
        ),
        (Some(file), None) => {
            if s.files.is_some() {
                return Err("`files` goes with `pattern`, not with `file`".into());
            }
            let key = s
                .key
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .ok_or("a params `file` needs a `key` (dotted, like \"sampler.draws\")")?;
            if key.split('.').any(|seg| seg.is_empty()) {
                return Err(format!("key {key:?} has an empty segment"));
            }
            check_relative(file)?;
            // "./p.toml" and "p.toml" are one file: keep the form snapshots key files by.
            let path: PathBuf = Path::new(file)
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            if FileFormat::of(&path).is_none() {
                return Err(format!(
                    "params file {file:?} must end in .toml, .json, .yaml or .yml"
                ));
            }
            Ok(ParamSource::File {
                path,
                key: key.to_string(),
            })
        }
        (None, Some(pattern)) => {
            if s.key.is_some() {
                return Err("`key` goes with `file`, not with `pattern`".into());
            }
            let files = s
                .files
                .clone()
                .filter(|f| !f.is_empty())
                .ok_or("a `pattern` needs `files` (globs relative to the workdir)")?;
            for g in &files {
                check_relative(g)?;
                glob::Pattern::new(g).map_err(|e| format!("glob {g:?} is invalid: {e}"))?;
            }
            let regex = compile_capture(pattern)?;
            Ok(ParamSource::Pattern { regex, files })
        }
    }
}

/// Sources live in the job's workdir: snapshots key files by their path relative to it.
fn check_relative(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if p.trim().is_empty() {
        return Err("a file path is empty".into());
    }
    if path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "{p:?} must be relative to the job's workdir, without \"..\""
        ));
    }
    Ok(())
}

/// The params-file formats, chosen by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileFormat {
    Toml,
    Json,
    Yaml,
}

impl FileFormat {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(FileFormat::Toml),
            "json" => Some(FileFormat::Json),
            "yaml" | "yml" => Some(FileFormat::Yaml),
            _ => None,
        }
    }
}
