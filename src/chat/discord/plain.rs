//! The minimal plain-text form of a message Discord refused: what the outbox posts instead,
//! once, so a refused report still reaches the people who must decide. Built from the
//! refused body itself (title, the pings, what the buttons would have decided, the
//! description and fields as lines), with the decisions turned into the slash commands
//! that take them and what Discord said at the end. No embed, no buttons: only `content`,
//! which any message Discord accepts can carry.

use serde_json::{json, Value};

use crate::chat::request::button::ButtonId;
use crate::engine::Decision;

use super::embed::{cut16, MAX_CONTENT};

/// The refusal, as shown at the end of the plain form.
const MAX_REASON: usize = 200;

/// A create-message body holding `refused`'s essentials as text, and the same pings.
/// `job` names the job when the body's buttons do not (a report without decisions).
pub fn fallback(refused: &Value, job: &str, why: &str) -> Value {
    let mut head = Vec::new();
    let mentions = refused["content"].as_str().unwrap_or("").trim();
    if !mentions.is_empty() {
        head.push(mentions.to_string());
    }
    let embed = &refused["embeds"][0];
    match embed["title"].as_str() {
        Some(t) => head.push(format!("**{t}**")),
        None => head.push(format!("**{job}**")),
    }
    let decide = decisions(refused);
    if !decide.is_empty() {
        head.push(format!("Decide with: {}", decide.join(" · ")));
    }
    let mut body = Vec::new();
    if let Some(d) = embed["description"].as_str() {
        body.push(d.to_string());
    }
    for f in embed["fields"].as_array().into_iter().flatten() {
        let (name, value) = (
            f["name"].as_str().unwrap_or(""),
            f["value"].as_str().unwrap_or(""),
        );
        body.push(format!("{name}: {value}"));
    }
    let tail = format!(
        "(Discord refused the full report: {}. This is its plain-text form.)",
        cut16(why, MAX_REASON)
    );
    let head = head.join("\n");
    // The head (pings, title, decisions) and the tail always fit; the details take the rest.
    let room = MAX_CONTENT.saturating_sub(utf16(&head) + utf16(&tail) + 2);
    let details = cut16(&body.join("\n"), room);
    let content = [head, details, tail]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = json!({ "content": cut16(&content, MAX_CONTENT) });
    if let Some(allowed) = refused.get("allowed_mentions") {
        out["allowed_mentions"] = allowed.clone();
    }
    out
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The slash command each enabled button of `body` stands for.
fn decisions(body: &Value) -> Vec<String> {
    body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|b| !b["disabled"].as_bool().unwrap_or(false))
        .filter_map(|b| {
            let id = ButtonId::parse(b["custom_id"].as_str()?).ok()?;
            let label = b["label"].as_str().unwrap_or(id.decision.as_str());
            Some(match id.decision {
                Decision::Approve | Decision::Reject => {
                    format!("{label} `/validate {} job:{}`", id.decision, id.job)
                }
                d => format!("{label} `/decide job:{} decision:{d}`", id.job),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobName, RunId};

    fn button(decision: Decision, label: &str) -> Value {
        let id = ButtonId {
            decision,
            job: JobName::new("m1").unwrap(),
            run: RunId(2),
            point: crate::engine::DecisionPoint::Incident(1),
        };
        json!({"type": 2, "style": 1, "label": label, "custom_id": id.encode().unwrap()})
    }

    fn report(description: &str) -> Value {
        json!({
            "content": "<@&5> <@7>",
            "embeds": [{
                "title": "🚨 ERROR DETECTED — m1 run 2",
                "description": description,
                "fields": [{"name": "Category", "value": "resource"}],
            }],
            "components": [{"type": 1, "components": [
                button(Decision::Restart, "Restart"),
                button(Decision::Kill, "Kill"),
            ]}],
            "allowed_mentions": {"roles": ["5"], "users": ["7"]},
        })
    }

    #[test]
    fn the_plain_form_keeps_pings_title_decisions_and_the_error() {
        let body = report("Error (line 812): CUDA out of memory");
        let plain = fallback(
            &body,
            "m1",
            r#"400: {"code":50035,"message":"Invalid Form Body"}"#,
        );
        let text = plain["content"].as_str().unwrap();
        assert!(
            text.starts_with("<@&5> <@7>\n**🚨 ERROR DETECTED — m1 run 2**"),
            "{text}"
        );
        assert!(
            text.contains("Restart `/decide job:m1 decision:restart`"),
            "{text}"
        );
        assert!(text.contains("Kill `/decide job:m1 decision:kill`"), "{text}");
        assert!(text.contains("Error (line 812): CUDA out of memory"), "{text}");
        assert!(text.contains("Category: resource"), "{text}");
        assert!(text.contains("Invalid Form Body"), "what Discord said: {text}");
        assert_eq!(plain["allowed_mentions"], body["allowed_mentions"]);
        assert!(plain.get("embeds").is_none() && plain.get("components").is_none());
    }

    #[test]
    fn a_long_report_is_cut_in_its_details_never_in_what_to_decide() {
        let body = report(&"row ".repeat(3000));
        let plain = fallback(&body, "m1", &"x".repeat(5000));
        let text = plain["content"].as_str().unwrap();
        assert!(utf16(text) <= MAX_CONTENT, "{}", utf16(text));
        assert!(text.contains("/decide job:m1 decision:kill"), "{text}");
        assert!(text.ends_with("This is its plain-text form.)"), "{text}");
    }

    #[test]
    fn a_gate_asks_for_the_validators_command() {
        let mut body = report("score 0.9");
        body["components"][0]["components"] = json!([button(Decision::Approve, "Approve")]);
        let text = fallback(&body, "m1", "400")["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("Approve `/validate approve job:m1`"), "{text}");
    }
}
