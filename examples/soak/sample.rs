//! One sample of the daemon over time: VmRSS, VmHWM and threads from `/proc/PID/status`, open
//! file descriptors from `/proc/PID/fd`, CPU time, the actions in the journal and in
//! `/metrics`, the open incidents; and the CSV they are written to.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use astreinte::journal::{ActionResult, JournalDoc};

#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the faults started.
    pub t: f64,
    pub utc: String,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
    pub fds: u64,
    pub cpu_s: f64,
    /// Real actions / rehearsals in the journal.
    pub journal_real: u64,
    pub journal_rehearsed: u64,
    /// Real actions / rehearsals in `astreinte_remediation_actions_total` (undo excluded).
    pub metric_real: u64,
    pub metric_rehearsed: u64,
    pub incidents_open: u64,
    /// The fault of the current slot, and whether it is on or healed.
    pub phase: String,
}

pub const HEADER: &str = "t_s,utc,rss_kib,hwm_kib,threads,fds,cpu_s,journal_real,journal_rehearsed,metric_real,metric_rehearsed,incidents_open,phase";

impl Sample {
    pub fn csv(&self) -> String {
        format!(
            "{:.0},{},{},{},{},{},{:.2},{},{},{},{},{},{}",
            self.t,
            self.utc,
            self.rss_kib,
            self.hwm_kib,
            self.threads,
            self.fds,
            self.cpu_s,
            self.journal_real,
            self.journal_rehearsed,
            self.metric_real,
            self.metric_rehearsed,
            self.incidents_open,
            self.phase
        )
    }
}

/// (VmRSS, VmHWM, Threads) of `pid`.
pub fn status(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?, field("Threads:")?))
}

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// (real, rehearsed) actions in the journal.
pub fn journal_actions(doc: &JournalDoc) -> (u64, u64) {
    let rehearsed = doc
        .actions
        .iter()
        .filter(|a| a.result == ActionResult::Rehearsed)
        .count() as u64;
    (doc.actions.len() as u64 - rehearsed, rehearsed)
}

/// One sample of a counter family: its labels and value.
pub fn family<'p>(page: &'p str, name: &str) -> Vec<(&'p str, f64)> {
    let prefix = format!("{name}{{");
    page.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((labels, value.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The value of `key="…"` in a label set.
pub fn label<'l>(labels: &'l str, key: &str) -> &'l str {
    let needle = format!("{key}=\"");
    labels
        .split(',')
        .find_map(|kv| kv.strip_prefix(&needle)?.strip_suffix('"'))
        .unwrap_or("")
}

/// (real, rehearsed) from `astreinte_remediation_actions_total`, undos left out.
pub fn metric_actions(page: &str) -> (u64, u64) {
    let mut real = 0.0;
    let mut rehearsed = 0.0;
    for (labels, v) in family(page, "astreinte_remediation_actions_total") {
        if label(labels, "action").starts_with("undo_") {
            continue;
        }
        if label(labels, "result") == "rehearsed" {
            rehearsed += v;
        } else {
            real += v;
        }
    }
    (real as u64, rehearsed as u64)
}

/// Incident ids seen opened and resolved, accumulated over the samples (the journal keeps only
/// the last resolved ones).
#[derive(Debug, Default)]
pub struct IncidentLog {
    pub opened: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    /// The journal's incident counter (numbers are never reused).
    pub seq: u64,
}

impl IncidentLog {
    pub fn add(&mut self, doc: &JournalDoc) {
        for i in doc.incidents.open.values() {
            self.opened.insert(i.id.clone());
        }
        for i in &doc.incidents.recent {
            self.opened.insert(i.id.clone());
            if i.resolved_at.is_some() {
                self.resolved.insert(i.id.clone());
            }
        }
        self.seq = self.seq.max(doc.incidents.seq);
    }
}

/// The CSV file, header first.
pub struct Csv(std::fs::File);

impl Csv {
    pub fn create(path: &Path) -> std::io::Result<Csv> {
        let mut f = std::fs::File::create(path)?;
        writeln!(f, "{HEADER}")?;
        Ok(Csv(f))
    }

    pub fn write(&mut self, s: &Sample) -> std::io::Result<()> {
        writeln!(self.0, "{}", s.csv())?;
        self.0.flush()
    }
}
