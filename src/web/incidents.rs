//! The incident sections of the status page: open incidents as cards with their timelines,
//! and the recently resolved ones with a link to their post-mortem draft.

use std::fmt::{self, Write as _};

use super::escape::Esc;
use super::page::{PageData, moment};
use crate::incident::{Entry, Incident};
use crate::when;

/// Timelines longer than this show their first entry and the most recent ones.
const MAX_SHOWN: usize = 200;

pub(super) fn open(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    let mut open: Vec<&Incident> = d.incidents.open.values().collect();
    // Worst first, then the oldest.
    open.sort_by(|a, b| b.level.cmp(&a.level).then(a.opened_at.cmp(&b.opened_at)));
    write!(
        out,
        "<section id=\"open-incidents\"><h2>Open incidents <span class=\"count\">({})</span>\
         </h2>",
        open.len()
    )?;
    if !d.leader {
        out.write_str(
            "<p class=\"note\" id=\"follower-note\">This replica is not the leader: these are \
             the leader's incidents, as last read from the shared journal.</p>",
        )?;
    }
    if open.is_empty() {
        return out.write_str("<p class=\"empty\">No open incident.</p></section>\n");
    }
    for inc in open {
        card(out, inc, d)?;
    }
    out.write_str("</section>\n")
}

fn card(out: &mut String, inc: &Incident, d: &PageData<'_>) -> fmt::Result {
    let level = inc.level.as_str();
    let id = Esc(&inc.id);
    write!(
        out,
        "<article class=\"incident inc-{level}\" id=\"incident-{id}\"><div class=\"head\">\
         <span class=\"badge lvl-{level}\">{level}</span>\
         <span class=\"title\">{title}</span>\
         <span class=\"meta\"><a href=\"#incident-{id}\">#{id}</a> · opened {opened} · \
         open for {lasted} · peak {peak}</span>",
        title = Esc(&inc.title()),
        opened = moment(inc.opened_at, d),
        lasted = Esc(&when::compact(inc.duration(d.now))),
        peak = inc.peak.as_str(),
    )?;
    if inc.breached {
        out.push_str("<span class=\"breached\">response target breached</span>");
    }
    if let Some(parent) = &inc.attached_to {
        write!(
            out,
            "<span class=\"meta\">attached to <a href=\"#incident-{0}\">#{0}</a></span>",
            Esc(parent)
        )?;
    }
    if let Some(green) = inc.green_since {
        write!(
            out,
            "<span class=\"meta\">green since {}</span>",
            moment(green, d)
        )?;
    }
    writeln!(
        out,
        "<span class=\"meta\"><a href=\"/incidents/{id}\">JSON</a></span></div>"
    )?;
    timeline(out, inc, d)?;
    out.write_str("</article>\n")
}

fn timeline(out: &mut String, inc: &Incident, d: &PageData<'_>) -> fmt::Result {
    out.push_str(
        "<table class=\"timeline\"><thead><tr><th style=\"width:190px\">time</th>\
         <th style=\"width:110px\">kind</th><th>what happened</th></tr></thead><tbody>\n",
    );
    let entries = &inc.timeline;
    if entries.len() > MAX_SHOWN {
        let hidden = entries.len() - MAX_SHOWN;
        entry(out, &entries[0], d)?;
        writeln!(
            out,
            "<tr><td></td><td></td><td class=\"ago\">… {hidden} entries not shown: \
             <a href=\"/incidents/{}\">the full timeline</a></td></tr>",
            Esc(&inc.id)
        )?;
        for e in &entries[hidden + 1..] {
            entry(out, e, d)?;
        }
    } else {
        for e in entries {
            entry(out, e, d)?;
        }
    }
    out.write_str("</tbody></table>\n")
}

fn entry(out: &mut String, e: &Entry, d: &PageData<'_>) -> fmt::Result {
    writeln!(
        out,
        "<tr><td class=\"nowrap\">{}</td><td class=\"kind kind-{kind}\">{kind}</td><td>{}</td></tr>",
        moment(e.at, d),
        Esc(&e.text),
        kind = e.kind.as_str(),
    )
}

pub(super) fn resolved(out: &mut String, d: &PageData<'_>) -> fmt::Result {
    let recent = &d.incidents.recent;
    write!(
        out,
        "<section id=\"resolved\"><h2>Recently resolved <span class=\"count\">({})</span></h2>",
        recent.len()
    )?;
    if recent.is_empty() {
        return out.write_str("<p class=\"empty\">Nothing resolved recently.</p></section>\n");
    }
    out.push_str(
        "<table><thead><tr><th>incident</th><th>what</th><th>peak</th><th>opened</th>\
         <th>resolved</th><th class=\"num\">lasted</th><th>post-mortem</th></tr></thead>\
         <tbody>\n",
    );
    for inc in recent {
        let peak = inc.peak.as_str();
        let id = Esc(&inc.id);
        let resolved = inc.resolved_at.map(|t| moment(t, d)).unwrap_or_default();
        let breached = if inc.breached {
            " <span class=\"breached\">breached</span>"
        } else {
            ""
        };
        let postmortem = if inc.postmortem.is_some() {
            format!("<a href=\"/incidents/{id}/postmortem\">post-mortem draft</a>")
        } else {
            "<span class=\"ago\">not drafted</span>".to_owned()
        };
        writeln!(
            out,
            "<tr id=\"incident-{id}\"><td class=\"id\">\
             <a href=\"/incidents/{id}\">{id}</a></td><td>{title}{breached}</td>\
             <td><span class=\"badge lvl-{peak}\">{peak}</span></td><td class=\"nowrap\">{opened}</td>\
             <td class=\"nowrap\">{resolved}</td><td class=\"num\">{lasted}</td><td>{postmortem}</td></tr>",
            title = Esc(&inc.title()),
            opened = moment(inc.opened_at, d),
            lasted = Esc(&when::compact(inc.duration(d.now))),
        )?;
    }
    out.write_str("</tbody></table></section>\n")
}
