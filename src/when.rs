//! Times for people (status page, CLI): local time in the policy time zone, and how long ago.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The policy time zone (`policy.timezone`), UTC when unset or unknown.
pub fn policy_zone(name: Option<&str>) -> TimeZone {
    name.and_then(|n| TimeZone::get(n).ok())
        .unwrap_or(TimeZone::UTC)
}

/// `2026-11-23 14:05:09 CET`.
pub fn full(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `14:05:09` on the same local day as `now`, else `Nov 21 14:05`.
pub fn short(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let at = at.to_zoned(tz.clone());
    if at.date() == now.to_zoned(tz.clone()).date() {
        at.strftime("%H:%M:%S").to_string()
    } else {
        at.strftime("%b %d %H:%M").to_string()
    }
}

/// `just now`, `42 s ago`, `3 min ago`, `2 h 5 min ago`, `3 d ago`; `in 5 s` for the future.
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let signed = now.duration_since(at).as_secs();
    let span = compact(Duration::from_secs(signed.unsigned_abs()));
    match signed {
        -1..=1 => "just now".to_owned(),
        s if s < 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// `42 s`, `3 min`, `2 h 5 min`, `3 d 4 h`: two units at most, for durations at a glance.
pub fn compact(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{mins} min"),
        3600..86_400 if mins == 0 => format!("{hours} h"),
        3600..86_400 => format!("{hours} h {mins} min"),
        _ if hours == 0 => format!("{days} d"),
        _ => format!("{days} d {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = at("2026-11-23T12:00:00Z");
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(at("2026-11-23T11:59:18Z"), now), "42 s ago");
        assert_eq!(relative(at("2026-11-23T11:57:00Z"), now), "3 min ago");
        assert_eq!(relative(at("2026-11-23T09:55:00Z"), now), "2 h 5 min ago");
        assert_eq!(relative(at("2026-11-20T12:00:00Z"), now), "3 d ago");
        assert_eq!(relative(at("2026-11-23T12:00:05Z"), now), "in 5 s");
    }

    #[test]
    fn local_times_use_the_policy_zone() {
        let tz = policy_zone(Some("Europe/Paris"));
        let t = at("2026-11-23T12:00:00Z");
        assert_eq!(full(t, &tz), "2026-11-23 13:00:00 CET");
        assert_eq!(short(t, t, &tz), "13:00:00");
        assert_eq!(short(t, at("2026-11-25T12:00:00Z"), &tz), "Nov 23 13:00");
        assert_eq!(
            full(t, &policy_zone(Some("Nowhere/Else"))),
            "2026-11-23 12:00:00 UTC"
        );
    }
}
