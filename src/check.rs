//! `astreinte check`: every enabled probe once, in parallel, printed as an aligned table
//! (or JSON), with an exit code for scripts.

use std::fmt::Write as _;

use futures::future::join_all;

use crate::config::Config;
use crate::probes::{Observation, Outcome, Prober};
use crate::status::ProbeStatus;

/// Runs every enabled probe once, concurrently, in config order.
pub async fn run_once(config: &Config, prober: &Prober) -> Vec<Observation> {
    join_all(config.enabled_probes().map(|p| prober.observe(config, p))).await
}

/// 0 when all are healthy, 1 when any is degraded or unknown, 2 when any failed.
pub fn exit_code(observations: &[Observation]) -> i32 {
    observations
        .iter()
        .map(|o| match o.outcome {
            Outcome::Healthy => 0,
            Outcome::Degraded { .. } | Outcome::Unknown { .. } => 1,
            Outcome::Failed { .. } => 2,
        })
        .max()
        .unwrap_or(0)
}

pub fn render_json(observations: &[Observation]) -> String {
    let rows: Vec<ProbeStatus> = observations.iter().map(ProbeStatus::from).collect();
    serde_json::to_string_pretty(&rows).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// What a probe checks, as shown: a URL loses its credentials and query string (they may
/// carry a token); anything else is shown as is.
fn without_secrets(what: &str) -> String {
    what.split(' ')
        .map(|word| match url::Url::parse(word) {
            Ok(mut u) if u.has_host() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                if u.query().is_some() {
                    u.set_query(None);
                    format!("{u}?…")
                } else {
                    u.to_string()
                }
            }
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An aligned table: probe, kind, target (the group or target it belongs to), what it
/// checks (URL without credentials, address, path…), outcome, reason, latency, detail.
pub fn render_table(config: &Config, observations: &[Observation]) -> String {
    let header = [
        "PROBE", "KIND", "TARGET", "CHECKS", "OUTCOME", "REASON", "LATENCY", "DETAIL",
    ];
    let rows: Vec<[String; 8]> = observations
        .iter()
        .map(|o| {
            let probe = config.probe(&o.probe);
            let target =
                probe.map_or_else(|| o.target.to_string(), |p| p.incident_key().to_owned());
            let what = probe
                .map(|p| without_secrets(&p.spec.describe()))
                .unwrap_or_default();
            let outcome = match &o.outcome {
                Outcome::Degraded { value, .. } => format!("degraded ({value:.2})"),
                other => other.result_label().to_owned(),
            };
            [
                o.probe.to_string(),
                o.kind.as_str().to_owned(),
                target,
                what,
                outcome,
                o.outcome.reason().to_owned(),
                format!("{:.1} ms", o.latency.as_secs_f64() * 1000.0),
                o.detail.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let last = cells.len() - 1;
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == last {
                let _ = write!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::ProbeKind;
    use std::sync::Arc;
    use std::time::Duration;

    fn obs(id: &str, outcome: Outcome) -> Observation {
        Observation {
            probe: Arc::from(id),
            kind: ProbeKind::Http,
            target: Arc::from(id),
            outcome,
            detail: "HTTP 200".into(),
            latency: Duration::from_millis(12),
            at: jiff::Timestamp::UNIX_EPOCH,
            measurements: vec![],
        }
    }

    #[test]
    fn exit_code_is_the_worst_outcome() {
        assert_eq!(exit_code(&[obs("a", Outcome::Healthy)]), 0);
        assert_eq!(
            exit_code(&[
                obs("a", Outcome::Healthy),
                obs("b", Outcome::degraded(1.0, "slow"))
            ]),
            1
        );
        assert_eq!(
            exit_code(&[
                obs("a", Outcome::unknown("x")),
                obs("b", Outcome::failed("y"))
            ]),
            2
        );
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        assert_eq!(
            without_secrets("http://user:pw@127.0.0.1:9090/api?token=x up"),
            "http://127.0.0.1:9090/api?… up"
        );
        assert_eq!(
            without_secrets("127.0.0.1:6379,127.0.0.1:6380"),
            "127.0.0.1:6379,127.0.0.1:6380"
        );
    }

    #[test]
    fn table_columns_are_aligned() {
        let config = crate::config::load_embedded().unwrap();
        let t = render_table(
            &config,
            &[
                obs("a", Outcome::Healthy),
                obs("long-probe-id", Outcome::failed("timeout")),
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        let col = lines[0].find("KIND").unwrap();
        assert_eq!(lines[1].find("http"), Some(col));
        assert_eq!(lines[2].find("http"), Some(col));
        assert!(lines[2].contains("timeout"));
        // Issue 15 #8: TARGET is the group or target, what is checked has its own column.
        let target = lines[0].find("TARGET").unwrap();
        let checks = lines[0].find("CHECKS").unwrap();
        assert!(!lines[1][target..checks].contains("://"), "{t}");
    }
}
