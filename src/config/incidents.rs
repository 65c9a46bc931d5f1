//! `[incidents]` in `probes.toml`: the green period before an incident resolves, and the
//! response-time target of each level.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::level::Level;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSettings {
    /// "Monitoring green for 15 minutes" (seed 000) before an incident resolves.
    #[serde(default = "fifteen_minutes", with = "humantime_serde")]
    pub green_period: Duration,
    /// Response-time target per level; an incident open longer is marked breached and
    /// notified again. Defaults from seed 004: P1 15 min, P2 30 min, P3 2 h, P4 24 h.
    #[serde(default = "default_targets", with = "targets")]
    pub response_targets: BTreeMap<Level, Duration>,
    /// Resolved incidents kept for `/incidents` and post-mortems.
    #[serde(default = "default_keep")]
    pub keep_resolved: usize,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        IncidentSettings {
            green_period: fifteen_minutes(),
            response_targets: default_targets(),
            keep_resolved: default_keep(),
        }
    }
}

impl IncidentSettings {
    pub fn target(&self, level: Level) -> Option<Duration> {
        self.response_targets.get(&level).copied()
    }
}

fn fifteen_minutes() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_keep() -> usize {
    50
}

fn default_targets() -> BTreeMap<Level, Duration> {
    BTreeMap::from([
        (Level::P1, Duration::from_secs(15 * 60)),
        (Level::P2, Duration::from_secs(30 * 60)),
        (Level::P3, Duration::from_secs(2 * 3600)),
        (Level::P4, Duration::from_secs(24 * 3600)),
    ])
}

/// `{ P1 = "15m", P2 = "30m" }` with humantime values.
mod targets {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::level::Level;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<Level, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let as_text: BTreeMap<&str, String> = m
            .iter()
            .map(|(l, d)| (l.as_str(), humantime::format_duration(*d).to_string()))
            .collect();
        as_text.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Level, Duration>, D::Error> {
        let raw = BTreeMap::<Level, String>::deserialize(d)?;
        let mut out = super::default_targets();
        for (level, text) in raw {
            let dur = humantime::parse_duration(&text)
                .map_err(|e| serde::de::Error::custom(format!("{level}: {e}")))?;
            out.insert(level, dur);
        }
        Ok(out)
    }
}
