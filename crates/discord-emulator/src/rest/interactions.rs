//! The interaction endpoints: a bot's callback to an interaction (a reply, a deferral, an
//! update of the clicked message), its follow-ups and the webhook edits of its answers.

use super::*;

pub(super) fn interaction_callback(
    shared: &Shared,
    i: &mut Inner,
    iid: u64,
    token: &str,
    body: &Value,
    files: &[FilePart],
) -> (Reply, RestShape) {
    let Some(rec) = i.interactions.get(&iid).cloned() else {
        return unknown_interaction();
    };
    if rec.token != token {
        return unknown_interaction();
    }
    if rec.callback.is_some() {
        return (
            Reply::error(400, 40060, "Interaction has already been acknowledged."),
            RestShape::Unchecked,
        );
    }
    let kind = body.get("type").and_then(Value::as_u64).unwrap_or(0);
    // Which callback types Discord accepts for which interaction type.
    let allowed: &[u64] = match rec.kind {
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        _ => &[],
    };
    if !allowed.contains(&kind) {
        return (
            Reply::json(
                400,
                json!({"message": "Interaction has invalid response type for this interaction", "code": 40043, "interaction_type": rec.kind, "callback_type": kind}),
            ),
            RestShape::Unchecked,
        );
    }
    let data = body.get("data").cloned().unwrap_or_else(|| json!({}));
    let mut original = None;
    match kind {
        4 => {
            let msg = new_message(
                shared,
                i,
                rec.channel_id,
                &data,
                files,
                Some((shared.cfg.application_id, iid)),
            );
            original = msg["id"].as_str().and_then(|s| s.parse().ok());
        }
        5 => {
            let mut d = data.clone();
            let flags = d.get("flags").and_then(Value::as_u64).unwrap_or(0) | 128;
            d["flags"] = json!(flags);
            let msg = new_message(
                shared,
                i,
                rec.channel_id,
                &d,
                &[],
                Some((shared.cfg.application_id, iid)),
            );
            original = msg["id"].as_str().and_then(|s| s.parse().ok());
        }
        7 => match rec.component_message {
            Some(m) => {
                apply_edit(shared, i, rec.channel_id, m, &data, files);
            }
            None => {
                return (
                    Reply::error(
                        400,
                        40004,
                        "Interaction response type 7 requires a component interaction",
                    ),
                    RestShape::Unchecked,
                );
            }
        },
        6 | 8 | 9 => {}
        _ => {
            return (
                Reply::json(
                    400,
                    json!({"message": "Invalid Form Body", "code": 50035, "errors": {"type": {"_errors": [{"code": "BASE_TYPE_CHOICES", "message": "Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12)."}]}}}),
                ),
                RestShape::Unchecked,
            );
        }
    }
    if let Some(r) = i.interactions.get_mut(&iid) {
        r.callback = Some(body.clone());
        r.original_message = original;
    }
    (Reply::no_content(), RestShape::Unchecked)
}

pub(super) fn interaction_by_token(i: &Inner, token: &str) -> Option<(u64, crate::state::InteractionRecord)> {
    i.interactions
        .iter()
        .find(|(_, r)| r.token == token)
        .map(|(id, r)| (*id, r.clone()))
}

pub(super) fn followup(
    shared: &Shared,
    i: &mut Inner,
    token: &str,
    body: &Value,
    files: &[FilePart],
) -> (Reply, RestShape) {
    let Some((iid, rec)) = interaction_by_token(i, token) else {
        return unknown_webhook();
    };
    if rec.callback.is_none() {
        return (Reply::error(404, 10015, "Unknown Webhook"), RestShape::Unchecked);
    }
    let msg = new_message(
        shared,
        i,
        rec.channel_id,
        body,
        files,
        Some((shared.cfg.application_id, iid)),
    );
    (Reply::json(200, msg), RestShape::Message)
}

pub(super) fn webhook_message(
    shared: &Shared,
    i: &mut Inner,
    method: &str,
    token: &str,
    which: &str,
    body: &Value,
    files: &[FilePart],
) -> (Reply, RestShape) {
    let Some((_, rec)) = interaction_by_token(i, token) else {
        return unknown_webhook();
    };
    let target = if which == "@original" {
        rec.original_message.or(rec.component_message)
    } else {
        id(which)
    };
    let Some(m) = target else {
        return unknown_message();
    };
    match method {
        "GET" => match find_message(i, rec.channel_id, m) {
            Some(msg) => (Reply::json(200, msg.clone()), RestShape::Message),
            None => unknown_message(),
        },
        "PATCH" => match apply_edit(shared, i, rec.channel_id, m, body, files) {
            Some(msg) => (Reply::json(200, msg), RestShape::Message),
            None => unknown_message(),
        },
        "DELETE" => delete_message(i, rec.channel_id, m),
        _ => unknown_route(),
    }
}
