//! The `custom_id` of a decision button: `tw1:<decision>:<job>:<run>:<point>`, e.g.
//! `tw1:restart:model_3:4:i2` (point `i<seq>` for an error report, `t<n>` for a timeout
//! warning, `f<n>` for a fix awaiting validation). Everything a click needs is in the id, so buttons posted before a bot restart
//! keep working; the engine checks that run and point still await a decision. Ids come
//! back from Discord as untrusted input and are parsed strictly.

use std::fmt;

use crate::engine::{Command, Decision, DecisionPoint};
use crate::model::{JobName, RunId};

/// Discord's limit on a component's custom_id.
pub const MAX_CUSTOM_ID: usize = 100;
const PREFIX: &str = "tw1";

/// What a decision button acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonId {
    pub decision: Decision,
    pub job: JobName,
    pub run: RunId,
    pub point: DecisionPoint,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ButtonIdError {
    #[error("button id is longer than {MAX_CUSTOM_ID} characters")]
    TooLong,
    #[error("not a trainwatch button id")]
    Foreign,
    #[error("malformed button id: {0}")]
    Malformed(&'static str),
}

impl ButtonId {
    /// The custom_id, or None when it would exceed Discord's 100 characters (only with
    /// absurdly large run or report numbers on a 64-character job name).
    pub fn encode(&self) -> Option<String> {
        let s = self.to_string();
        (s.len() <= MAX_CUSTOM_ID).then_some(s)
    }

    /// The engine command a click on this button is.
    pub fn command(&self) -> Command {
        Command::Decide {
            decision: self.decision,
            target: Some((self.run, self.point)),
            extend: None,
        }
    }

    pub fn parse(s: &str) -> Result<Self, ButtonIdError> {
        if s.len() > MAX_CUSTOM_ID {
            return Err(ButtonIdError::TooLong);
        }
        let parts: Vec<&str> = s.split(':').collect();
        if parts.first() != Some(&PREFIX) {
            return Err(ButtonIdError::Foreign);
        }
        let [_, decision, job, run, point] = parts[..] else {
            return Err(ButtonIdError::Malformed("expected 5 parts"));
        };
        let decision = decision
            .parse::<Decision>()
            .map_err(|_| ButtonIdError::Malformed("unknown decision"))?;
        let job = JobName::new(job).map_err(|_| ButtonIdError::Malformed("invalid job name"))?;
        let run = RunId(number(run).ok_or(ButtonIdError::Malformed("invalid run"))?);
        let point = match point.split_at_checked(1) {
            Some(("i", n)) => {
                DecisionPoint::Incident(number(n).ok_or(ButtonIdError::Malformed("invalid point"))?)
            }
            Some(("t", n)) => {
                DecisionPoint::Timeout(number(n).ok_or(ButtonIdError::Malformed("invalid point"))?)
            }
            Some(("f", n)) => DecisionPoint::Fix(number(n).ok_or(ButtonIdError::Malformed("invalid point"))?),
            Some(("s", n)) => {
                DecisionPoint::Stall(number(n).ok_or(ButtonIdError::Malformed("invalid point"))?)
            }
            _ => return Err(ButtonIdError::Malformed("invalid point")),
        };
        Ok(ButtonId {
            decision,
            job,
            run,
            point,
        })
    }
}

/// A canonical decimal u32: digits only, no sign, no leading zero (so one id has one spelling).
fn number(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl fmt::Display for ButtonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let point = match self.point {
            DecisionPoint::Incident(n) => format!("i{n}"),
            DecisionPoint::Timeout(n) => format!("t{n}"),
            DecisionPoint::Fix(n) => format!("f{n}"),
            DecisionPoint::Stall(n) => format!("s{n}"),
        };
        write!(f, "{PREFIX}:{}:{}:{}:{point}", self.decision, self.job, self.run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(decision: Decision, job: &str, run: u32, point: DecisionPoint) -> ButtonId {
        ButtonId {
            decision,
            job: JobName::new(job).unwrap(),
            run: RunId(run),
            point,
        }
    }

    #[test]
    fn round_trips() {
        let b = id(Decision::Restart, "model_3", 4, DecisionPoint::Incident(2));
        assert_eq!(b.encode().unwrap(), "tw1:restart:model_3:4:i2");
        assert_eq!(ButtonId::parse("tw1:restart:model_3:4:i2").unwrap(), b);
        let t = id(Decision::Continue, "a.b-c", 12, DecisionPoint::Timeout(1));
        assert_eq!(ButtonId::parse(&t.encode().unwrap()).unwrap(), t);
        let x = id(Decision::Extend, "model_3", 4, DecisionPoint::Timeout(2));
        assert_eq!(x.encode().unwrap(), "tw1:extend:model_3:4:t2");
        assert_eq!(ButtonId::parse("tw1:extend:model_3:4:t2").unwrap(), x);
        let f = id(Decision::Approve, "m", 1, DecisionPoint::Fix(3));
        assert_eq!(f.encode().unwrap(), "tw1:approve:m:1:f3");
        assert_eq!(ButtonId::parse("tw1:approve:m:1:f3").unwrap(), f);
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "tw1",
            "tw2:restart:model_3:4:i2",
            "tw1:reboot:model_3:4:i2",
            "tw1:restart:model 3:4:i2",
            "tw1:restart:../x:4:i2",
            "tw1:restart:model_3:-4:i2",
            "tw1:restart:model_3:+4:i2",
            "tw1:restart:model_3:04:i2",
            "tw1:restart:model_3:4:x2",
            "tw1:restart:model_3:4:i",
            "tw1:restart:model_3:4:i2:extra",
            "tw1:restart:model_3:99999999999:i2",
            "tw1:restart:model_3:4:i2\n",
            "tw1:restart:model_3:4:é2",
        ] {
            assert!(ButtonId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("tw1:restart:{}:4:i2", "a".repeat(100));
        assert_eq!(ButtonId::parse(&long), Err(ButtonIdError::TooLong));
    }

    #[test]
    fn ids_never_exceed_the_limit() {
        let b = id(
            Decision::Investigate,
            &"j".repeat(64),
            u32::MAX,
            DecisionPoint::Incident(u32::MAX),
        );
        assert_eq!(b.encode(), None);
        let b = id(
            Decision::Investigate,
            &"j".repeat(64),
            1_000_000,
            DecisionPoint::Incident(999),
        );
        assert!(b.encode().unwrap().len() <= MAX_CUSTOM_ID);
    }
}
