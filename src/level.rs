//! The incident levels of the runbooks: P1 (worst) to P4, and `Ok`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An incident level. Ordered so that `Ok < P4 < P3 < P2 < P1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "ok")]
    Ok,
    P4,
    P3,
    P2,
    P1,
}

impl Level {
    /// The value of `astreinte_target_level`: 0 = ok, 1–4 = P4…P1.
    pub fn gauge_value(self) -> i64 {
        match self {
            Level::Ok => 0,
            Level::P4 => 1,
            Level::P3 => 2,
            Level::P2 => 3,
            Level::P1 => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::P4 => "P4",
            Level::P3 => "P3",
            Level::P2 => "P2",
            Level::P1 => "P1",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" | "OK" => Ok(Level::Ok),
            "P1" | "p1" => Ok(Level::P1),
            "P2" | "p2" => Ok(Level::P2),
            "P3" | "p3" => Ok(Level::P3),
            "P4" | "p4" => Ok(Level::P4),
            other => Err(format!(
                "unknown level `{other}` (expected ok, P1, P2, P3 or P4)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1_is_the_worst() {
        assert!(Level::P1 > Level::P2 && Level::P2 > Level::P3 && Level::P4 > Level::Ok);
        assert_eq!(Level::P1.gauge_value(), 4);
        assert_eq!("P3".parse::<Level>().unwrap(), Level::P3);
        assert!("P5".parse::<Level>().is_err());
    }
}
