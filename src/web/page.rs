//! Renders the status page from a snapshot of the board (pure: no IO, `now` is an argument):
//! the header (mode, leader, version, config), a banner, open incidents, every probe, the
//! last decision of each rule and the recently resolved incidents.

use std::fmt::{self, Write as _};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::escape::Esc;
use super::incidents;
use super::style::CSS;
use crate::config::Mode;
use crate::incident::Incidents;
use crate::level::Level;
use crate::remediation::DecisionEntry;
use crate::status::ProbeStatus;
use crate::when;

/// Seconds between automatic reloads of the page.
pub const REFRESH_SECS: u32 = 10;

/// Everything the page shows, read once per request.
pub struct PageData<'a> {
    pub now: Timestamp,
    pub tz: &'a TimeZone,
    pub mode: Mode,
    pub leader: bool,
    pub version: &'a str,
    pub config_source: &'a str,
    pub started: Timestamp,
    pub probes: &'a [ProbeRow],
    pub incidents: &'a Incidents,
    pub decisions: &'a [DecisionEntry],
}

/// A configured probe and its latest result (none before its first run).
pub struct ProbeRow {
    pub id: String,
    pub kind: &'static str,
    /// What it observes, from the configuration (URL, address, path).
    pub what: String,
    pub status: Option<ProbeStatus>,
}

/// The whole HTML document.
pub fn render(d: &PageData<'_>) -> String {
    let mut out = String::with_capacity(32 * 1024);
    // Writing to a String cannot fail.
    let _ = document(&mut out, d);
    out
}

fn document(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    let open = d.incidents.open.len();
    let title = match worst_open(d.incidents) {
        Some(worst) => format!(
            "astreinte · {}, worst {worst}",
            count(open, "open incident")
        ),
        None => "astreinte · no open incident".to_owned(),
    };
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        Esc(&title)
    )?;
    header(out, d)?;
    out.push_str("<main>\n");
    banner(out, d)?;
    incidents::open(out, d)?;
    probes(out, d)?;
    decisions(out, d)?;
    incidents::resolved(out, d)?;
    write!(
        out,
        "<footer>Refreshes every {REFRESH_SECS} s. Machine-readable: \
         <a href=\"/status\">/status</a> · <a href=\"/incidents\">/incidents</a> · \
         <a href=\"/decisions\">/decisions</a> · <a href=\"/metrics\">/metrics</a></footer>\n\
         </main></body></html>\n"
    )
}

fn header(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    let mode = d.mode.as_str();
    let leader = if d.leader {
        "yes"
    } else {
        "no (standby: does not act)"
    };
    writeln!(
        out,
        "<header class=\"top\"><div class=\"inner\"><h1>astreinte</h1>\
         <span class=\"badge mode-{mode}\" id=\"mode\">{mode}</span>\
         <span class=\"fact\">leader <b id=\"leader\">{leader}</b></span>\
         <span class=\"fact\">version <b>{}</b></span>\
         <span class=\"fact\">config <b>{}</b></span>\
         <span class=\"fact\">up <b>{}</b></span>\
         <span class=\"fact\">at <b>{}</b></span></div></header>",
        Esc(d.version),
        Esc(d.config_source),
        Esc(&when::compact(
            d.now.duration_since(d.started).unsigned_abs()
        )),
        Esc(&when::full(d.now, d.tz)),
    )
}

fn banner(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    let results: Vec<&ProbeStatus> = d.probes.iter().filter_map(|p| p.status.as_ref()).collect();
    let not_healthy = results.iter().filter(|s| s.outcome != "healthy").count();
    let (class, text) = match worst_open(d.incidents) {
        Some(worst) => (
            worst.as_str(),
            format!(
                "{}, worst {worst}",
                count(d.incidents.open.len(), "open incident")
            ),
        ),
        None if results.is_empty() => ("none", "Waiting for the first probe results".into()),
        None if not_healthy > 0 => (
            "P3",
            format!(
                "No open incident · {} not healthy",
                count(not_healthy, "probe")
            ),
        ),
        None => (
            "ok",
            format!("All clear · {} healthy", count(results.len(), "probe")),
        ),
    };
    writeln!(
        out,
        "<div class=\"banner lvl-{class}\" id=\"banner\">{}</div>",
        Esc(&text)
    )
}

fn probes(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    write!(
        out,
        "<section id=\"probes\"><h2>Probes <span class=\"count\">({})</span></h2>",
        d.probes.len()
    )?;
    if d.probes.is_empty() {
        return out.write_str("<p class=\"empty\">No probe is configured.</p></section>\n");
    }
    out.push_str(
        "<table><thead><tr><th>probe</th><th>kind</th><th>target</th><th>outcome</th>\
         <th>reason</th><th>level</th><th class=\"num\">latency</th><th>detail</th>\
         <th>checked</th></tr></thead><tbody>\n",
    );
    for p in d.probes {
        probe_row(out, p, d)?;
    }
    out.write_str("</tbody></table></section>\n")
}

fn probe_row(out: &mut String, p: &ProbeRow, d: &PageData<'_>) -> fmt::Result {
    let Some(s) = &p.status else {
        return writeln!(
            out,
            "<tr class=\"row-none\" id=\"probe-{id}\"><td class=\"probe\"><span class=\"id\">{id}</span>\
             <span class=\"sub\">{what}</span></td><td>{kind}</td><td></td>\
             <td class=\"out-pending\">pending</td><td colspan=\"5\" class=\"ago\">\
             no result yet</td></tr>",
            id = Esc(&p.id),
            what = Esc(&p.what),
            kind = Esc(p.kind),
        );
    };
    let outcome = match s.value {
        Some(v) => format!("{} ({v:.2})", s.outcome),
        None => s.outcome.to_owned(),
    };
    let level = s.level.as_str();
    writeln!(
        out,
        "<tr class=\"row-{level}\" id=\"probe-{id}\"><td class=\"probe\"><span class=\"id\">{id}</span>\
         <span class=\"sub\">{what}</span></td><td>{kind}</td><td>{target}</td>\
         <td class=\"out-{outcome_class}\">{outcome}</td><td>{reason}</td>\
         <td><span class=\"badge lvl-{level}\">{level}</span>\
         <span class=\"sub why\">{level_reason}</span></td>\
         <td class=\"num\">{latency:.1} ms</td><td class=\"detail\">{detail}</td>\
         <td class=\"nowrap\">{at}</td></tr>",
        id = Esc(&p.id),
        what = Esc(&p.what),
        kind = Esc(s.kind),
        target = Esc(&s.target),
        outcome_class = Esc(s.outcome),
        outcome = Esc(&outcome),
        reason = Esc(&s.reason),
        level_reason = Esc(&s.level_reason),
        latency = s.latency_ms,
        detail = Esc(&s.detail),
        at = moment(s.at, d),
    )
}

fn decisions(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    write!(
        out,
        "<section id=\"decisions\"><h2>Decisions <span class=\"count\">(last of each rule)\
         </span></h2>"
    )?;
    if d.decisions.is_empty() {
        return out.write_str(
            "<p class=\"empty\">No rule has been evaluated yet (or none is configured).</p>\
             </section>\n",
        );
    }
    out.push_str(
        "<table><thead><tr><th>rule</th><th>decision</th><th>why</th><th>incident</th>\
         <th>when</th></tr></thead><tbody>\n",
    );
    for e in d.decisions {
        let label = e.decision.label();
        let incident = match &e.incident {
            Some(id) => format!("<a href=\"#incident-{0}\">{0}</a>", Esc(id)),
            None => String::new(),
        };
        writeln!(
            out,
            "<tr><td class=\"id\">{rule}</td><td><span class=\"dec-{label}\">{label_text}</span>\
             <span class=\"sub\">{reason}</span></td>\
             <td>{line}</td><td class=\"nowrap\">{incident}</td><td class=\"nowrap\">{at}</td></tr>",
            rule = Esc(&e.rule),
            label_text = Esc(&label.replace('_', "-")),
            reason = Esc(&e.decision.reason().replace('_', " ")),
            line = Esc(&e.line),
            at = moment(e.at, d),
        )?;
    }
    out.write_str("</tbody></table></section>\n")
}

/// A time as local clock time (full date in the tooltip) and how long ago.
pub(super) fn moment(at: Timestamp, d: &PageData<'_>) -> String {
    format!(
        "<span class=\"nowrap\" title=\"{}\">{}</span> <span class=\"ago\">{}</span>",
        Esc(&when::full(at, d.tz)),
        Esc(&when::short(at, d.now, d.tz)),
        Esc(&when::relative(at, d.now)),
    )
}

/// `1 probe`, `3 probes`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn worst_open(incidents: &Incidents) -> Option<Level> {
    incidents.open.values().map(|i| i.level).max()
}
