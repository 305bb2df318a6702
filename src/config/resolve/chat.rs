//! The `[roles]` and `[discord]` sections: who plays which persona, and how to reach Discord.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::Persona;

use super::super::error::{join, Located, Origin};
use super::super::paths::{join_clean, template};
use super::super::raw::{DiscordId, RawDiscord, SList, S};
use super::super::roles::{check_discord_id, Principal, Roles};
use super::super::{DiscordConfig, StatusMode, DEFAULT_TOKEN_ENV};
use super::R;

/// Discord refuses a message allowing more than this many role (or user) mentions; the
/// Discord adapter pings only the first ones.
const MAX_DISCORD_MENTIONS: usize = 100;

/// The personas' holders, and warnings about mappings Discord cannot honour in full.
pub(super) fn resolve_roles(o: &Origin, raw: &BTreeMap<S<String>, SList>) -> R<(Roles, Vec<Located>)> {
    let mut map: BTreeMap<Persona, Vec<Principal>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (k, list) in raw {
        let key = join("roles", k.get_ref());
        let persona: Persona = k.get_ref().parse().map_err(|m: String| o.at(k.span(), &key, m))?;
        let entry = map.entry(persona).or_default();
        for p in list.get_ref() {
            let principal: Principal = p.get_ref().parse().map_err(|m: String| o.at(p.span(), &key, m))?;
            if !entry.contains(&principal) {
                entry.push(principal);
            }
        }
        let count = |f: fn(&Principal) -> bool| entry.iter().filter(|p| f(p)).count();
        let roles = count(|p| matches!(p, Principal::DiscordRole(_)));
        let users = count(|p| matches!(p, Principal::DiscordUser(_)));
        for (n, what) in [(roles, "roles"), (users, "users")] {
            if n > MAX_DISCORD_MENTIONS {
                let message = format!(
                    "{n} Discord {what}: Discord pings at most {MAX_DISCORD_MENTIONS} {what} per \
                     message, so only the first {MAX_DISCORD_MENTIONS} are mentioned (map the \
                     persona to fewer {what}, e.g. one role the people share)"
                );
                warnings.extend(o.at(list.span(), &key, message).location().cloned());
            }
        }
    }
    Ok((Roles::new(map), warnings))
}

pub(super) fn discord_id(o: &Origin, v: &S<DiscordId>, key: &str) -> R<String> {
    let id = &v.get_ref().0;
    check_discord_id(id).map_err(|m| o.at(v.span(), key, m))?;
    Ok(id.clone())
}

fn http_url(o: &Origin, v: &S<String>, key: &str) -> R<String> {
    let s = v.get_ref().trim();
    let ok = reqwest::Url::parse(s)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    if !ok {
        return Err(o.at(
            v.span(),
            key,
            format!("invalid URL {s:?}: expected http://HOST:PORT or https://HOST:PORT"),
        ));
    }
    Ok(s.to_string())
}

pub(super) fn resolve_discord(o: &Origin, d: &S<RawDiscord>, base: &Path) -> R<DiscordConfig> {
    let span = d.span();
    let d = d.get_ref();
    if let Some(t) = &d.token {
        return Err(o.at(
            t.span(),
            "discord.token",
            "never write the bot token in the config file: put it in an environment variable \
             and give that variable's name as token_env (e.g. token_env = \"DISCORD_TOKEN\")",
        ));
    }
    let token_env = match &d.token_env {
        Some(v) => {
            let s = v.get_ref();
            let is_name = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_name {
                // The value is not echoed: someone may have pasted the token itself here.
                return Err(o.at(
                    v.span(),
                    "discord.token_env",
                    "token_env is the NAME of the environment variable holding the token \
                     (letters, digits, _; e.g. DISCORD_TOKEN), not the token itself",
                ));
            }
            s.clone()
        }
        None => DEFAULT_TOKEN_ENV.to_string(),
    };
    let channel = match &d.channel {
        Some(c) => discord_id(o, c, "discord.channel")?,
        None => {
            return Err(o.at(
                span,
                "discord.channel",
                "missing: the id of the default channel for the bot's messages",
            ))
        }
    };
    let guild_id = d
        .guild_id
        .as_ref()
        .map(|g| discord_id(o, g, "discord.guild_id"))
        .transpose()?;
    let status_mode = match &d.status_mode {
        None => StatusMode::Edit,
        Some(v) => match v.get_ref().as_str() {
            "edit" => StatusMode::Edit,
            "new" => StatusMode::New,
            other => {
                return Err(o.at(
                    v.span(),
                    "discord.status_mode",
                    format!("unknown status_mode {other:?}: expected \"edit\" or \"new\""),
                ))
            }
        },
    };
    let proxy_url = d
        .proxy_url
        .as_ref()
        .map(|v| http_url(o, v, "discord.proxy_url"))
        .transpose()?;
    let https_proxy = d
        .https_proxy
        .as_ref()
        .map(|v| http_url(o, v, "discord.https_proxy"))
        .transpose()?;
    let ca_cert = d
        .ca_cert
        .as_ref()
        .map(|v| template(o, v, "discord.ca_cert", None).map(|t| join_clean(base, &t)))
        .transpose()?;
    Ok(DiscordConfig {
        token_env,
        guild_id,
        channel,
        status_mode,
        proxy_url,
        https_proxy,
        ca_cert,
    })
}
