//! The Markdown the soak prints at the end: the time series summary (start/min/max/end, least
//! squares slope per hour) with the flat/growing verdict and its thresholds, actions taken vs
//! expected per rule, journal vs `/metrics`, incidents, and the slots one by one.

use std::collections::BTreeMap;
use std::fmt::Write;

use astreinte::journal::{ActionResult, JournalDoc};

use crate::sample::{self, IncidentLog, Sample};
use crate::schedule::{Expected, RuleModel, fault_name};

/// RSS grows if both its slope after the warm-up and its net growth pass these.
pub const RSS_SLOPE_MAX_MIB_H: f64 = 2.0;
pub const RSS_DELTA_MAX_MIB: f64 = 1.0;
/// File descriptors grow if both pass these.
pub const FD_SLOPE_MAX_H: f64 = 2.0;
pub const FD_DELTA_MAX: f64 = 2.0;

/// What happened in one slot.
#[derive(Debug, Clone)]
pub struct SlotRun {
    pub index: usize,
    pub fault: astreinte::demo::Fault,
    pub started: jiff::Timestamp,
    pub t: f64,
    pub applied: Result<String, String>,
    /// Seconds from the fault until Patroni had a healthy cluster again (kill-leader).
    pub patroni_back: Option<f64>,
    /// Seconds from the heal until every probe was green again; `None`: not before the next.
    pub green_after: Option<f64>,
}

/// Least squares slope of `y` over `t` (seconds), per hour.
pub fn slope_per_hour(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var * 3600.0 }
}

/// Mean of the first and of the last tenth (at least one point each).
fn ends(points: &[(f64, f64)]) -> (f64, f64) {
    let k = (points.len() / 10).max(1).min(points.len());
    let mean = |s: &[(f64, f64)]| s.iter().map(|p| p.1).sum::<f64>() / s.len().max(1) as f64;
    (mean(&points[..k]), mean(&points[points.len() - k..]))
}

struct Series {
    name: &'static str,
    unit: &'static str,
    all: Vec<(f64, f64)>,
    after: Vec<(f64, f64)>,
    limits: Option<(f64, f64)>,
}

impl Series {
    fn new(
        name: &'static str,
        unit: &'static str,
        samples: &[Sample],
        warmup: f64,
        f: impl Fn(&Sample) -> f64,
        limits: Option<(f64, f64)>,
    ) -> Series {
        let all: Vec<(f64, f64)> = samples.iter().map(|s| (s.t, f(s))).collect();
        let after = all.iter().copied().filter(|p| p.0 >= warmup).collect();
        Series {
            name,
            unit,
            all,
            after,
            limits,
        }
    }

    /// (row, growing?)
    fn row(&self) -> (String, bool) {
        let ys: Vec<f64> = self.all.iter().map(|p| p.1).collect();
        let first = ys.first().copied().unwrap_or(0.0);
        let last = ys.last().copied().unwrap_or(0.0);
        let min = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let slope_all = slope_per_hour(&self.all);
        let slope = slope_per_hour(&self.after);
        let (head, tail) = ends(&self.after);
        let delta = tail - head;
        let (verdict, growing) = match self.limits {
            Some((s_max, d_max)) if slope > s_max && delta > d_max => ("**growing**", true),
            Some(_) => ("flat", false),
            None => ("(not judged)", false),
        };
        let u = self.unit;
        (
            format!(
                "| {} | {first:.1} | {min:.1} | {max:.1} | {last:.1} | {slope_all:+.2} {u}/h | {slope:+.2} {u}/h | {delta:+.2} {u} | {verdict} |",
                self.name
            ),
            growing,
        )
    }
}

/// The time series table; returns it and whether anything grows.
pub fn series(samples: &[Sample], warmup: f64) -> (String, bool) {
    let mib = |k: u64| k as f64 / 1024.0;
    let rows = [
        Series::new(
            "RSS (MiB)",
            "MiB",
            samples,
            warmup,
            |s| mib(s.rss_kib),
            Some((RSS_SLOPE_MAX_MIB_H, RSS_DELTA_MAX_MIB)),
        ),
        Series::new(
            "open FDs",
            "",
            samples,
            warmup,
            |s| s.fds as f64,
            Some((FD_SLOPE_MAX_H, FD_DELTA_MAX)),
        ),
        Series::new("threads", "", samples, warmup, |s| s.threads as f64, None),
        Series::new(
            "VmHWM (MiB)",
            "MiB",
            samples,
            warmup,
            |s| mib(s.hwm_kib),
            None,
        ),
    ];
    let mut out = String::from(
        "| series | start | min | max | end | slope (all) | slope (after warm-up) | last tenth − first tenth (after warm-up) | verdict |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut growing = false;
    for r in rows {
        let (line, g) = r.row();
        growing |= g;
        out.push_str(&line);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nThresholds: growing = slope after warm-up > {RSS_SLOPE_MAX_MIB_H} MiB/h **and** \
         net growth > {RSS_DELTA_MAX_MIB} MiB (RSS); > {FD_SLOPE_MAX_H}/h **and** > {FD_DELTA_MAX} \
         (FDs). Warm-up: first {:.0} s left out of the slope; {} samples in all.",
        warmup,
        samples.len()
    );
    (out, growing)
}

/// Per rule: (real, rehearsed) in the journal.
fn journal_by_rule(doc: &JournalDoc) -> BTreeMap<String, (u32, u32)> {
    let mut m: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for a in &doc.actions {
        let e = m.entry(a.rule.clone()).or_default();
        if a.result == ActionResult::Rehearsed {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    m
}

/// Per rule: (real, rehearsed) in `astreinte_remediation_actions_total`.
fn metrics_by_rule(page: &str) -> BTreeMap<String, (u32, u32)> {
    let mut m: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (labels, v) in sample::family(page, "astreinte_remediation_actions_total") {
        if sample::label(labels, "action").starts_with("undo_") {
            continue;
        }
        let e = m
            .entry(sample::label(labels, "rule").to_owned())
            .or_default();
        if sample::label(labels, "result") == "rehearsed" {
            e.1 += v as u32;
        } else {
            e.0 += v as u32;
        }
    }
    m
}

/// Per rule: "reason×n" of the hold decisions in `/metrics`.
fn holds_by_rule(page: &str) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (labels, v) in sample::family(page, "astreinte_remediation_decisions_total") {
        if sample::label(labels, "decision") != "hold" || v == 0.0 {
            continue;
        }
        m.entry(sample::label(labels, "rule").to_owned())
            .or_default()
            .push(format!("{}×{v}", sample::label(labels, "reason")));
    }
    m.into_iter().map(|(k, v)| (k, v.join(", "))).collect()
}

/// The actions table; returns it and whether every count matched.
pub fn actions(
    rules: &[RuleModel],
    expected: &BTreeMap<String, Expected>,
    doc: &JournalDoc,
    page: &str,
) -> (String, bool) {
    let journal = journal_by_rule(doc);
    let metrics = metrics_by_rule(page);
    let holds = holds_by_rule(page);
    let mut ok = true;
    let mut out = String::from(
        "| rule | mode | expected | taken (journal) | taken (/metrics) | held, by reason (/metrics decisions) | journal = /metrics | as expected |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rules {
        let e = expected.get(&r.id).cloned().unwrap_or_default();
        let j = journal.get(&r.id).copied().unwrap_or_default();
        let m = metrics.get(&r.id).copied().unwrap_or_default();
        let (mode, jn, mn) = if r.dry_run {
            ("dry-run (rehearsals)", j.1 + j.0, m.1 + m.0)
        } else {
            ("enforce (real)", j.0, m.0)
        };
        let equal = j == m;
        let lo = e.acts.saturating_sub(e.marginal);
        let as_expected = (lo..=e.acts + e.marginal).contains(&jn);
        ok &= equal && as_expected;
        let expected_text = if e.marginal > 0 {
            format!("{} (±{} marginal)", e.acts, e.marginal)
        } else {
            e.acts.to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {mode} | {expected_text} (budget/cooldown should hold {}) | {jn} | {mn} | {} | {} | {} |",
            r.id,
            e.held,
            holds.get(&r.id).map_or("–", String::as_str),
            if equal { "yes" } else { "**no**" },
            if as_expected { "yes" } else { "**no**" },
        );
    }
    let (jr, jd) = sample::journal_actions(doc);
    let (mr, md) = sample::metric_actions(page);
    let equal = jr == mr && jd == md;
    ok &= equal;
    let _ = writeln!(
        out,
        "\nTotals: journal {jr} real + {jd} rehearsed ({} entries); /metrics \
         astreinte_remediation_actions_total {mr} real + {md} rehearsed: {}.",
        doc.actions.len(),
        if equal { "equal" } else { "**different**" }
    );
    (out, ok)
}

/// Incidents opened and resolved, per key, against the faults of each key.
pub fn incidents(log: &IncidentLog, doc: &JournalDoc, runs: &[SlotRun]) -> String {
    let mut keys: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for i in doc
        .incidents
        .open
        .values()
        .chain(doc.incidents.recent.iter())
    {
        let e = keys.entry(i.key.clone()).or_default();
        e.0 += 1;
        if i.resolved_at.is_some() {
            e.1 += 1;
        }
    }
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    for r in runs {
        *faults.entry(fault_name(r.fault)).or_default() += 1;
    }
    let mut out = format!(
        "Incidents: {} opened (journal counter {}), {} resolved, {} open at the end; faults \
         applied: {}.\n\n| key | opened | resolved |\n|---|---|---|\n",
        log.opened.len(),
        log.seq,
        log.resolved.len(),
        doc.incidents.open.len(),
        faults
            .iter()
            .map(|(f, n)| format!("{f} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (k, (o, r)) in keys {
        let _ = writeln!(out, "| {k} | {o} | {r} |");
    }
    if doc.incidents.recent.len() >= 50 {
        out.push_str("\n(The journal keeps the last 50 resolved incidents: the per-key table may be cut; the totals above are accumulated over the samples.)\n");
    }
    out
}

/// The slots one by one, with the journal's actions in each.
pub fn slots(runs: &[SlotRun], doc: &JournalDoc) -> String {
    let mut out = String::from(
        "| # | at | fault | applied | Patroni back | green after heal | actions in the slot (journal) |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map(|n| n.started);
        let acts: Vec<String> = doc
            .actions
            .iter()
            .filter(|a| a.started_at >= r.started && end.is_none_or(|e| a.started_at < e))
            .map(|a| {
                let result = match &a.result {
                    ActionResult::Rehearsed => "rehearsed".to_owned(),
                    ActionResult::Succeeded => format!(
                        "succeeded{}",
                        match a.verified {
                            Some(true) => ", verified",
                            Some(false) => ", verify failed",
                            None => "",
                        }
                    ),
                    other => format!("{other:?}").to_lowercase(),
                };
                let after = a.started_at.duration_since(r.started).as_secs_f64();
                format!("{} +{after:.0}s {result}", a.rule)
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {:.0}s | {} | {} | {} | {} | {} |",
            r.index,
            r.t,
            fault_name(r.fault),
            match &r.applied {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("**{e}**"),
            },
            r.patroni_back.map_or("–".into(), |s| format!("{s:.0} s")),
            r.green_after
                .map_or("**not green**".into(), |s| format!("{s:.0} s")),
            if acts.is_empty() {
                "–".to_owned()
            } else {
                acts.join("; ")
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_slope_is_per_hour() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64 * 60.0, 100.0 + i as f64))
            .collect();
        assert!((slope_per_hour(&pts) - 60.0).abs() < 1e-9);
        assert_eq!(slope_per_hour(&[(0.0, 1.0)]), 0.0);
    }
}
