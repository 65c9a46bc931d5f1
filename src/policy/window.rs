//! Time windows (`22:00`–`07:00`, wrapping midnight) in the policy's time zone.

use crate::config::Window;
use crate::config::validate::parse_hhmm;

/// Whether local minute-of-day `now` is inside `window` (from inclusive, to exclusive).
pub fn contains(window: &Window, now: u16) -> bool {
    let (Some(from), Some(to)) = (parse_hhmm(&window.from), parse_hhmm(&window.to)) else {
        return false;
    };
    if from <= to {
        (from..to).contains(&now)
    } else {
        now >= from || now < to
    }
}

/// The local `HH:MM` and minute-of-day of `now` in `tz`.
pub fn local(now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> (String, u16) {
    let z = now.to_zoned(tz.clone());
    let minute = u16::try_from(z.hour()).unwrap_or(0) * 60 + u16::try_from(z.minute()).unwrap_or(0);
    (z.strftime("%H:%M %Z").to_string(), minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(from: &str, to: &str) -> Window {
        Window {
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn windows_wrap_midnight() {
        let night = w("22:00", "07:00");
        assert!(contains(&night, 22 * 60));
        assert!(contains(&night, 3 * 60));
        assert!(!contains(&night, 7 * 60));
        assert!(!contains(&night, 12 * 60));
        let day = w("09:00", "17:30");
        assert!(contains(&day, 9 * 60) && !contains(&day, 17 * 60 + 30));
    }

    #[test]
    fn local_time_follows_the_zone() {
        let t: jiff::Timestamp = "2026-01-15T02:30:00Z".parse().unwrap();
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(local(t, &paris).1, 3 * 60 + 30);
    }
}
