//! Who plays which protocol persona: the `[roles]` table maps each persona to principals —
//! local user names (the console), Discord users and Discord roles. Authorization checks
//! ask which personas a sender's principals grant; default deny (no principal, no persona).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::model::Persona;

/// Someone (or a group) that can be granted a persona.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// A local user name, as the console knows its user.
    Local(String),
    /// A Discord user, by id (`user:<id>` in the config).
    DiscordUser(String),
    /// A Discord role, by id (`role:<id>` in the config).
    DiscordRole(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Local(n) => f.write_str(n),
            Principal::DiscordUser(id) => write!(f, "user:{id}"),
            Principal::DiscordRole(id) => write!(f, "role:{id}"),
        }
    }
}

impl FromStr for Principal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(id) = s.strip_prefix("user:") {
            return check_discord_id(id).map(|()| Principal::DiscordUser(id.to_string()));
        }
        if let Some(id) = s.strip_prefix("role:") {
            return check_discord_id(id).map(|()| Principal::DiscordRole(id.to_string()));
        }
        if s.contains(':') {
            return Err(format!(
                "unknown principal {s:?}: write a local user name, \"user:<discord user id>\" or \"role:<discord role id>\""
            ));
        }
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "invalid local user name {s:?}: it must be non-empty, without spaces"
            ));
        }
        Ok(Principal::Local(s.to_string()))
    }
}

/// Discord ids (snowflakes) are unsigned 64-bit numbers written in decimal.
pub(crate) fn check_discord_id(id: &str) -> Result<(), String> {
    let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    match id.parse::<u64>() {
        Ok(n) if digits && n > 0 => Ok(()),
        _ => Err(format!(
            "invalid Discord id {id:?}: an id is a number like \"123456789012345678\" (Developer Mode → Copy ID)"
        )),
    }
}

/// Persona → principals, from `[roles]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    map: BTreeMap<Persona, Vec<Principal>>,
}

impl Roles {
    pub fn new(map: BTreeMap<Persona, Vec<Principal>>) -> Self {
        let map = map.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        Self { map }
    }

    /// The personas granted to someone known by these principals (their user name or id and
    /// their Discord roles), in the protocol's order. No match, no persona.
    pub fn personas_of(&self, principals: &[Principal]) -> Vec<Persona> {
        Persona::ALL
            .into_iter()
            .filter(|p| self.principals(*p).iter().any(|x| principals.contains(x)))
            .collect()
    }

    /// True when no persona is granted to anyone.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Who holds this persona (empty when nobody).
    pub fn principals(&self, p: Persona) -> &[Principal] {
        self.map.get(&p).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_by_prefix() {
        assert_eq!("alice".parse(), Ok(Principal::Local("alice".into())));
        assert_eq!("user:222".parse(), Ok(Principal::DiscordUser("222".into())));
        assert_eq!("role:111".parse(), Ok(Principal::DiscordRole("111".into())));
        assert!("role:abc".parse::<Principal>().is_err());
        assert!("group:1".parse::<Principal>().is_err());
        assert!("".parse::<Principal>().is_err());
        assert!("a b".parse::<Principal>().is_err());
        assert_eq!(Principal::DiscordRole("9".into()).to_string(), "role:9");
    }

    #[test]
    fn personas_follow_any_matching_principal() {
        let mut m = BTreeMap::new();
        m.insert(
            Persona::Director,
            vec![
                Principal::Local("alice".into()),
                Principal::DiscordRole("111".into()),
            ],
        );
        m.insert(Persona::TimeValidator, vec![Principal::DiscordUser("222".into())]);
        let roles = Roles::new(m);
        let someone = [
            Principal::DiscordUser("222".into()),
            Principal::DiscordRole("111".into()),
        ];
        assert_eq!(
            roles.personas_of(&someone),
            vec![Persona::Director, Persona::TimeValidator]
        );
        assert!(roles
            .personas_of(&[Principal::Local("mallory".into())])
            .is_empty());
        assert!(roles.principals(Persona::Modeler).is_empty());
        assert!(!roles.is_empty());
        assert!(Roles::default().is_empty());
    }
}
