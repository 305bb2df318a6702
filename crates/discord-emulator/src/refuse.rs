//! What Discord refuses before a request reaches its route: a request without a valid
//! `DiscordBot (url, version)` User-Agent (Cloudflare's 403), a message allowing more than
//! 100 role or user mentions, and the bodies a test asked to refuse ([`Refusal`]), answered
//! in Discord's error shape `{"code": 50035, "message": "Invalid Form Body", "errors": {…}}`.

use serde_json::{json, Value};

/// Discord's cap on `allowed_mentions.roles` and `allowed_mentions.users`.
pub const MAX_ALLOWED_MENTIONS: usize = 100;

/// A test's rule: refuse message writes (create or edit, in a channel or through an
/// interaction) whose JSON body contains `needle`, with 400 Invalid Form Body.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub(crate) needle: String,
    pub(crate) remaining: Option<u32>,
}

impl Refusal {
    /// Refuse every message write whose body (as JSON text) contains `needle`.
    pub fn body_containing(needle: impl Into<String>) -> Self {
        Refusal {
            needle: needle.into(),
            remaining: None,
        }
    }
    /// Only the next `n` matching writes.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }
}

/// `DiscordBot (https://…, version)`, possibly followed by more text, as Discord documents.
pub(crate) fn valid_user_agent(agent: Option<&str>) -> bool {
    let Some(rest) = agent.and_then(|a| a.strip_prefix("DiscordBot (")) else {
        return false;
    };
    let Some((inside, _)) = rest.split_once(')') else {
        return false;
    };
    let Some((url, version)) = inside.split_once(", ") else {
        return false;
    };
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace)
        && !version.trim().is_empty()
}

/// The answer Cloudflare gives a request without a valid agent.
pub(crate) fn no_agent_body() -> Value {
    json!({"message": "403 Forbidden: requests need a User-Agent `DiscordBot (url, version)`", "code": 0})
}

/// Invalid Form Body with one field's error, the shape Discord answers.
pub(crate) fn invalid_form_body(field: &str, code: &str, message: &str) -> Value {
    let mut errors = json!({"_errors": [{"code": code, "message": message}]});
    for part in field.rsplit('.') {
        errors = json!({ part: errors });
    }
    json!({"code": 50035, "message": "Invalid Form Body", "errors": errors})
}

/// The error body when `body` allows more mentions than Discord takes.
pub(crate) fn too_many_mentions(body: &Value) -> Option<Value> {
    ["roles", "users"].into_iter().find_map(|kind| {
        let n = body["allowed_mentions"][kind].as_array().map_or(0, Vec::len);
        (n > MAX_ALLOWED_MENTIONS).then(|| {
            invalid_form_body(
                &format!("allowed_mentions.{kind}"),
                "BASE_TYPE_MAX_LENGTH",
                &format!("Must be {MAX_ALLOWED_MENTIONS} or fewer in length."),
            )
        })
    })
}

/// Whether a test's rule refuses `body`; counts the hit.
pub(crate) fn refused_by_rule(rules: &mut Vec<Refusal>, body: &Value) -> Option<Value> {
    rules.retain(|r| r.remaining != Some(0));
    let text = body.to_string();
    let rule = rules.iter_mut().find(|r| text.contains(&r.needle))?;
    if let Some(n) = rule.remaining.as_mut() {
        *n -= 1;
    }
    Some(invalid_form_body(
        "embeds.0.description",
        "BASE_TYPE_BAD_REQUEST",
        "Refused by the emulator's test rule.",
    ))
}

/// A route that writes a message: channel create/edit, interaction responses, follow-ups.
pub(crate) fn writes_message(method: &str, route: &str) -> bool {
    let segs: Vec<&str> = route.trim_matches('/').split('/').collect();
    matches!(
        (method, segs.as_slice()),
        ("POST", ["channels", _, "messages"])
            | ("PATCH", ["channels", _, "messages", _])
            | ("POST", ["interactions", _, _, "callback"])
            | ("POST", ["webhooks", _, _])
            | ("PATCH", ["webhooks", _, _, "messages", _])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_checked_for_discords_shape() {
        assert!(valid_user_agent(Some(
            "DiscordBot (https://github.com/serenity-rs/serenity, 0.12.5)"
        )));
        assert!(valid_user_agent(Some("DiscordBot (https://x.org, 1.0) extra")));
        for bad in [
            None,
            Some(""),
            Some("reqwest/0.12"),
            Some("DiscordBot"),
            Some("DiscordBot (https://x.org)"),
            Some("DiscordBot (x.org, 1.0)"),
            Some("DiscordBot (https://x.org, )"),
        ] {
            assert!(!valid_user_agent(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_have_discords_shape() {
        let b = invalid_form_body("allowed_mentions.roles", "C", "m");
        assert_eq!(b["code"], 50035);
        assert_eq!(
            b["errors"]["allowed_mentions"]["roles"]["_errors"][0]["code"],
            "C"
        );
        let ids: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert!(too_many_mentions(&json!({"allowed_mentions": {"roles": ids}})).is_some());
        let ids: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert!(too_many_mentions(&json!({"allowed_mentions": {"users": ids}})).is_none());
    }

    #[test]
    fn a_rule_refuses_matching_bodies_as_often_as_told() {
        let mut rules = vec![Refusal::body_containing("BOOM").times(1)];
        assert!(refused_by_rule(&mut rules, &json!({"content": "no"})).is_none());
        assert!(refused_by_rule(&mut rules, &json!({"content": "BOOM"})).is_some());
        assert!(refused_by_rule(&mut rules, &json!({"content": "BOOM"})).is_none());
    }
}
