//! Incidents (pure: no IO, `now` is an argument). One incident per key (a group, or a target),
//! so one failure that many probes see opens one incident. It opens at the first level,
//! escalates when the level rises, keeps a timeline, is marked breached past its level's
//! response target, and resolves only after the green period.

mod timeline;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::IncidentSettings;
use crate::level::Level;

pub use timeline::{Entry, EntryKind};

/// Timelines are capped; the first entries (detection) are always kept.
const MAX_TIMELINE: usize = 500;

/// Why an incident resolved without going green: a reload removed its target (or group).
pub const REMOVED_FROM_CONFIG: &str = "target removed from configuration";

/// The key of the incident that stands for astreinte itself (the partition guard).
pub const ASTREINTE: &str = "astreinte";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The group or target it is about.
    pub key: String,
    /// The current level (it may improve while the incident stays open).
    pub level: Level,
    /// The worst level reached.
    pub peak: Level,
    /// The reason of the current level (the worst probe's), kept up to date while open.
    pub reason: String,
    /// The reason when the peak was reached: what the incident was, once resolved.
    #[serde(default)]
    pub peak_reason: String,
    pub opened_at: jiff::Timestamp,
    /// Since when every probe of the key has been green.
    #[serde(default)]
    pub green_since: Option<jiff::Timestamp>,
    #[serde(default)]
    pub resolved_at: Option<jiff::Timestamp>,
    /// Open longer than the response target of its peak level.
    #[serde(default)]
    pub breached: bool,
    /// The incident of a failing dependency this one is attached to.
    #[serde(default)]
    pub attached_to: Option<String>,
    pub timeline: Vec<Entry>,
    /// The post-mortem draft, written when it resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmortem: Option<String>,
}

impl Incident {
    pub fn duration(&self, now: jiff::Timestamp) -> Duration {
        let end = self.resolved_at.unwrap_or(now);
        crate::clock::elapsed(end, self.opened_at)
    }

    /// Resolved because a reload removed its target, not because it went green.
    pub fn removed_from_config(&self) -> bool {
        self.resolved_at.is_some()
            && self.timeline.last().is_some_and(|e| {
                e.kind == EntryKind::Resolved && e.text.ends_with(REMOVED_FROM_CONFIG)
            })
    }

    /// "rag-api connection refused": the current reason while open, the peak's once resolved
    /// (a split brain that ended as a lagging replica resolves as a split brain).
    pub fn title(&self) -> String {
        let reason = if self.resolved_at.is_some() {
            self.worst_reason()
        } else {
            &self.reason
        };
        format!("{} {}", self.key, reason.replace('_', " "))
    }

    /// The reason at the peak level (the current one for an incident stored before it existed).
    pub fn worst_reason(&self) -> &str {
        if self.peak_reason.is_empty() {
            &self.reason
        } else {
            &self.peak_reason
        }
    }

    fn push(&mut self, at: jiff::Timestamp, kind: EntryKind, text: String) {
        if self.timeline.len() >= MAX_TIMELINE {
            self.timeline.remove(1);
        }
        self.timeline.push(Entry { at, kind, text });
    }
}

/// What changed, for notifications and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Opened(Incident),
    Escalated {
        incident: Incident,
        from: Level,
    },
    Breached(Incident),
    Resolved(Incident),
    /// A rule paged (escalation ended, or the partition guard tripped).
    Paged {
        incident: Option<Incident>,
        text: String,
    },
}

/// Open incidents by key, and the recently resolved ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Incidents {
    pub open: BTreeMap<String, Incident>,
    pub recent: VecDeque<Incident>,
    /// Incident numbers are never reused, across restarts too.
    pub seq: u64,
}

impl Incidents {
    /// Applies the current level of `key` (the worst of its probes).
    pub fn on_level(
        &mut self,
        key: &str,
        level: Level,
        reason: &str,
        detail: &str,
        now: jiff::Timestamp,
        settings: &IncidentSettings,
    ) -> Vec<Event> {
        let Some(inc) = self.open.get_mut(key) else {
            if level == Level::Ok {
                return vec![];
            }
            self.seq += 1;
            let mut inc = Incident {
                id: format!("{}-{}", self.seq, slug(key)),
                key: key.to_owned(),
                level,
                peak: level,
                reason: reason.to_owned(),
                peak_reason: reason.to_owned(),
                opened_at: now,
                green_since: None,
                resolved_at: None,
                breached: false,
                attached_to: None,
                timeline: vec![],
                postmortem: None,
            };
            inc.push(
                now,
                EntryKind::Detected,
                format!("{level} detected: {reason} ({detail})"),
            );
            self.open.insert(key.to_owned(), inc.clone());
            return vec![Event::Opened(inc)];
        };
        if level == Level::Ok {
            if inc.green_since.is_none() {
                inc.green_since = Some(now);
                let at = now + settings.green_period;
                inc.push(
                    now,
                    EntryKind::Green,
                    format!("monitoring green; resolves at {at} if it stays green"),
                );
            }
            return vec![];
        }
        if inc.green_since.take().is_some() {
            inc.push(
                now,
                EntryKind::Relapsed,
                format!("not green anymore: {level} {reason}"),
            );
        }
        let from = inc.level;
        if level == from {
            if inc.reason != reason {
                inc.push(
                    now,
                    EntryKind::Detected,
                    format!("{level} now {reason} (was {}) ({detail})", inc.reason),
                );
                inc.reason = reason.to_owned();
                if level == inc.peak && inc.peak_reason.is_empty() {
                    inc.peak_reason = reason.to_owned();
                }
            }
            return vec![];
        }
        inc.level = level;
        inc.reason = reason.to_owned();
        if level > from {
            inc.push(
                now,
                EntryKind::Escalated,
                format!("escalated {from} → {level}: {reason} ({detail})"),
            );
            if level > inc.peak {
                inc.peak = level;
                inc.peak_reason = reason.to_owned();
                inc.breached = false;
            }
            return vec![Event::Escalated {
                incident: inc.clone(),
                from,
            }];
        }
        inc.push(
            now,
            EntryKind::Improved,
            format!("improved {from} → {level}: {reason}"),
        );
        vec![]
    }

    /// Resolves incidents green for the whole green period, marks breached ones.
    pub fn tick(&mut self, now: jiff::Timestamp, settings: &IncidentSettings) -> Vec<Event> {
        let mut events = vec![];
        let mut resolved = vec![];
        for (key, inc) in &mut self.open {
            if let Some(green) = inc.green_since
                && crate::clock::elapsed(now, green) >= settings.green_period
            {
                inc.resolved_at = Some(now);
                let lasted = humantime::format_duration(round_secs(inc.duration(now)));
                inc.push(now, EntryKind::Resolved, format!("resolved after {lasted}"));
                resolved.push(key.clone());
                continue;
            }
            if !inc.breached
                && let Some(target) = settings.target(inc.peak)
                && inc.duration(now) > target
            {
                inc.breached = true;
                let t = humantime::format_duration(target);
                inc.push(
                    now,
                    EntryKind::Breached,
                    format!("{} response target of {t} breached", inc.peak),
                );
                events.push(Event::Breached(inc.clone()));
            }
        }
        for key in resolved {
            if let Some(inc) = self.open.remove(&key) {
                events.push(Event::Resolved(inc.clone()));
                self.recent.push_front(inc);
            }
        }
        self.recent.truncate(settings.keep_resolved);
        events
    }

    /// Resolves the open incident of `key` at once, because no configured probe watches it
    /// anymore: left open it would never go green, and an operator would chase a ghost.
    pub fn resolve_removed(
        &mut self,
        key: &str,
        now: jiff::Timestamp,
        settings: &IncidentSettings,
    ) -> Option<Event> {
        let mut inc = self.open.remove(key)?;
        inc.resolved_at = Some(now);
        inc.green_since = None;
        let lasted = humantime::format_duration(round_secs(inc.duration(now)));
        inc.push(
            now,
            EntryKind::Resolved,
            format!("resolved after {lasted}: {REMOVED_FROM_CONFIG}"),
        );
        self.recent.push_front(inc.clone());
        self.recent.truncate(settings.keep_resolved);
        Some(Event::Resolved(inc))
    }

    /// Adds an entry (decision, action, verification, notification) to the open incident of
    /// `key`; returns false when there is none.
    pub fn note(&mut self, key: &str, kind: EntryKind, text: String, now: jiff::Timestamp) -> bool {
        match self.open.get_mut(key) {
            Some(inc) => {
                inc.push(now, kind, text);
                true
            }
            None => false,
        }
    }

    /// Adds an entry to the open or recent incident `id`; false when there is none.
    pub fn note_on(
        &mut self,
        id: &str,
        kind: EntryKind,
        text: String,
        now: jiff::Timestamp,
    ) -> bool {
        match self
            .open
            .values_mut()
            .chain(self.recent.iter_mut())
            .find(|i| i.id == id)
        {
            Some(inc) => {
                inc.push(now, kind, text);
                true
            }
            None => false,
        }
    }

    /// A recently resolved incident by id, to attach its post-mortem.
    pub fn recent_mut(&mut self, id: &str) -> Option<&mut Incident> {
        self.recent.iter_mut().find(|i| i.id == id)
    }

    /// An open or recent incident by id.
    pub fn find(&self, id: &str) -> Option<&Incident> {
        self.open
            .values()
            .chain(self.recent.iter())
            .find(|i| i.id == id)
    }

    /// The number of open incidents at each level.
    pub fn open_by_level(&self) -> BTreeMap<Level, usize> {
        let mut m = BTreeMap::new();
        for inc in self.open.values() {
            *m.entry(inc.level).or_default() += 1;
        }
        m
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// Ids stay URL-safe whatever the key holds.
fn slug(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A page about astreinte itself (the partition guard) has no incident of a target: this
/// stands in for one, keyed [`ASTREINTE`].
pub fn about_astreinte(text: &str, at: jiff::Timestamp) -> Incident {
    Incident {
        id: ASTREINTE.into(),
        key: ASTREINTE.into(),
        level: Level::P1,
        peak: Level::P1,
        reason: "partition_suspected".into(),
        peak_reason: "partition_suspected".into(),
        opened_at: at,
        green_since: None,
        resolved_at: None,
        breached: false,
        attached_to: None,
        timeline: vec![Entry {
            at,
            kind: EntryKind::Decision,
            text: text.to_owned(),
        }],
        postmortem: None,
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
