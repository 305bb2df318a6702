//! Whether the slash commands Discord has registered are the ones this version declares, so
//! the bot writes them (a bulk overwrite) only when they differ — not on every gateway
//! session. Discord answers a registered command with more than was sent (ids, versions,
//! defaults such as `required: false`), so the comparison asks: does every key we send
//! have the same value there (absent there = Discord's default), command by command?

use serde_json::Value;

/// `ours`: the commands as sent (`CreateCommand`s as JSON); `registered`: Discord's list.
pub fn up_to_date(ours: &Value, registered: &Value) -> bool {
    let (Some(ours), Some(registered)) = (ours.as_array(), registered.as_array()) else {
        return false;
    };
    ours.len() == registered.len()
        && ours.iter().all(|c| {
            registered
                .iter()
                .find(|r| r["name"] == c["name"] && kind(r) == kind(c))
                .is_some_and(|r| same(c, r))
        })
}

/// A command's type; 1 (chat input) when not given.
fn kind(c: &Value) -> u64 {
    c["type"].as_u64().unwrap_or(1)
}

/// `theirs` has every value `ours` sets. Lists (options, choices) keep their order on Discord.
fn same(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => o.iter().all(|(k, v)| match t.get(k) {
            Some(tv) if !tv.is_null() => same(v, tv),
            _ => is_default(v),
        }),
        (Value::Array(o), Value::Array(t)) => o.len() == t.len() && o.iter().zip(t).all(|(a, b)| same(a, b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => ours == theirs,
    }
}

/// What Discord leaves out (or answers as null) when it is not set.
fn is_default(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours() -> Value {
        serde_json::to_value(super::super::interact::commands()).unwrap()
    }

    /// What Discord answers after registering `sent`: ids and versions added, defaults left
    /// out, and read back through serenity's own `Command` type as the bot reads it.
    fn as_registered(sent: &Value) -> Value {
        let mut list = sent.as_array().unwrap().clone();
        for (i, c) in list.iter_mut().enumerate() {
            let o = c.as_object_mut().unwrap();
            o.insert("id".into(), json!(format!("{}", 1000 + i)));
            o.insert("application_id".into(), json!("1"));
            o.insert("version".into(), json!("7"));
            o.insert("type".into(), json!(1));
            o.insert("default_member_permissions".into(), Value::Null);
            o.insert("nsfw".into(), json!(false));
        }
        let typed: Vec<serenity::all::Command> = serde_json::from_value(Value::Array(list)).unwrap();
        serde_json::to_value(typed).unwrap()
    }

    #[test]
    fn the_commands_as_discord_has_them_are_up_to_date() {
        assert!(up_to_date(&ours(), &as_registered(&ours())));
    }

    #[test]
    fn any_difference_means_register_again() {
        assert!(!up_to_date(&ours(), &json!([])), "nothing registered yet");
        let mut changed = ours();
        changed[0]["description"] = json!("an older description");
        assert!(!up_to_date(&ours(), &as_registered(&changed)));
        let mut fewer = ours();
        fewer.as_array_mut().unwrap().pop();
        assert!(
            !up_to_date(&ours(), &as_registered(&fewer)),
            "a command is missing"
        );
        let mut more = ours();
        let mut extra = more[0].clone();
        extra["name"] = json!("retired");
        more.as_array_mut().unwrap().push(extra);
        assert!(
            !up_to_date(&ours(), &as_registered(&more)),
            "a command is left over"
        );
        let mut option = ours();
        let opts = option[0]["options"].as_array_mut().unwrap();
        opts.swap(0, 1);
        assert!(
            !up_to_date(&ours(), &as_registered(&option)),
            "options keep their order"
        );
    }
}
