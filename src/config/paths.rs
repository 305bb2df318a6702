//! Paths as the config writes them: `{name}` expanded, made absolute and lexically tidied.

use std::path::{Component, Path, PathBuf};

use super::error::{ConfigError, Origin};
use super::raw::S;

type R<T> = Result<T, ConfigError>;

pub(super) fn absolute(p: &Path) -> R<PathBuf> {
    std::path::absolute(p)
        .map(|p| clean(&p))
        .map_err(|source| ConfigError::Io {
            path: p.to_path_buf(),
            source,
        })
}

/// Lexically tidy a path: drop `.`, and let `..` cancel the folder before it (as Go's
/// `filepath.Clean` does), so `config/../output` is shown and used as `output`.
pub(super) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(c.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

pub(super) fn join_clean(base: &Path, p: &str) -> PathBuf {
    clean(&base.join(p))
}

/// Expand `{name}` (when a job name is given); any other `{word}` is an error, so a typo
/// like `{nmae}` is caught instead of creating a file called `{nmae}`.
pub(super) fn expand(t: &str, name: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let word_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if word_len > 0 && after[word_len..].starts_with('}') {
            let word = &after[..word_len];
            match (word, name) {
                ("name", Some(n)) => out.push_str(n),
                _ => {
                    let allowed = if name.is_some() {
                        "only {name} (the job name) is expanded in paths"
                    } else {
                        "no placeholder is expanded here"
                    };
                    return Err(format!("unknown placeholder {{{word}}} in {t:?}: {allowed}"));
                }
            }
            rest = &after[word_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A path as written: non-empty, no NUL, placeholders expanded.
pub(super) fn template(o: &Origin, v: &S<String>, key: &str, name: Option<&str>) -> R<String> {
    let s = v.get_ref();
    if s.trim().is_empty() {
        return Err(o.at(v.span(), key, "must not be empty"));
    }
    if s.contains('\0') {
        return Err(o.at(v.span(), key, "must not contain a NUL character"));
    }
    expand(s, name).map_err(|m| o.at(v.span(), key, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_only_name() {
        assert_eq!(
            expand("logs/{name}_full.log", Some("m3")).unwrap(),
            "logs/m3_full.log"
        );
        assert_eq!(expand("a{b", Some("x")).unwrap(), "a{b");
        assert_eq!(expand("{}{name}", Some("x")).unwrap(), "{}x");
        let e = expand("out/{nmae}.csv", Some("x")).unwrap_err();
        assert!(e.contains("{nmae}"), "{e}");
        assert!(expand("{checkpoint}", Some("x")).is_err());
        assert!(expand("{name}", None).is_err());
    }

    #[test]
    fn clean_drops_dot_components_and_resolves_parents_lexically() {
        assert_eq!(clean(Path::new("/a/./b/.")), PathBuf::from("/a/b"));
        assert_eq!(clean(Path::new("/a/../b")), PathBuf::from("/b"));
        assert_eq!(
            clean(Path::new("/srv/config/../output/x.log")),
            PathBuf::from("/srv/output/x.log")
        );
        // Nothing to cancel: a leading `..` of a relative path stays.
        assert_eq!(clean(Path::new("../a")), PathBuf::from("../a"));
        assert_eq!(clean(Path::new("/..")), PathBuf::from("/.."));
    }
}
