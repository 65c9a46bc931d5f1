//! Finding and signalling processes the testbed did not spawn directly but owns: a
//! postmaster that Patroni started in its own session, its walreceiver child. Every pid is
//! checked against its command line first, so a stale pid file never signals a stranger.

use std::path::Path;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// A process seen in `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The process group.
    pub pgid: u32,
    /// The command line, arguments joined by spaces (a postgres child shows its title here).
    pub cmdline: String,
}

/// Every live process with a readable command line (zombies have an empty one and are skipped).
pub fn processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(info)
        .collect()
}

/// One process, if it is alive and has a command line.
pub fn info(pid: u32) -> Option<ProcInfo> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    let cmdline = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so cut at the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        cmdline,
    })
}

/// Processes whose command line mentions `needle` (a temp dir path): what is left running.
pub fn processes_mentioning(needle: &str) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.cmdline.contains(needle) && p.pid != std::process::id())
        .collect()
}

/// What a demo (or any parent) started: `parent`'s descendants and every process whose
/// command line or working directory names `dir` (a postmaster Patroni started in a session
/// of its own, a Redis server), with their descendants; `parent` itself and this process left
/// out (`parent` 0: by `dir` only).
pub fn started_by(parent: u32, dir: &str) -> Vec<ProcInfo> {
    let all = processes();
    let me = std::process::id();
    let cwd_inside = |pid: u32| {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|cwd| cwd.to_string_lossy().starts_with(dir))
    };
    let mut set: std::collections::BTreeSet<u32> = all
        .iter()
        .filter(|p| p.pid != me)
        .filter(|p| p.pid == parent || p.cmdline.contains(dir) || cwd_inside(p.pid))
        .map(|p| p.pid)
        .collect();
    loop {
        let before = set.len();
        for p in &all {
            if set.contains(&p.ppid) {
                set.insert(p.pid);
            }
        }
        if set.len() == before {
            break;
        }
    }
    all.into_iter()
        .filter(|p| set.contains(&p.pid) && p.pid != parent)
        .collect()
}

/// Live processes in any of `groups`.
pub fn processes_in_groups(groups: &[u32]) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| groups.contains(&p.pgid))
        .collect()
}

/// Those of `seen` that still run (same pid and command line).
pub fn still_running(seen: &[ProcInfo]) -> Vec<ProcInfo> {
    seen.iter()
        .filter_map(|p| info(p.pid).filter(|now| now.cmdline == p.cmdline))
        .collect()
}

/// Children of `parent` whose command line contains `needle`.
pub fn children_matching(parent: u32, needle: &str) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == parent && p.cmdline.contains(needle))
        .collect()
}

/// The running postmaster of `data_dir`, from its `postmaster.pid`, checked against its
/// command line (which names the data directory). Patroni starts it through a helper that
/// calls `setsid()`, so its process group is that helper's pid, not its own: see `pgid`.
pub fn postmaster(data_dir: &Path) -> Option<ProcInfo> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    let dir = data_dir.to_str()?;
    info(pid).filter(|p| p.cmdline.contains(dir))
}

/// SIGKILL a postmaster and every child of it. Each postgres child calls `setsid()`, so a
/// group kill would miss them: the postmaster is frozen first (it cannot fork any more), its
/// children are killed one by one, then the postmaster and its group.
pub fn kill_postmaster(pm: &ProcInfo) {
    signal(pm.pid, Signal::STOP);
    for child in children_matching(pm.pid, "") {
        signal(child.pid, Signal::KILL);
    }
    signal(pm.pid, Signal::KILL);
    signal_group(pm.pgid, Signal::KILL);
}

/// Sends `signal` to one process.
pub fn signal(pid: u32, signal: Signal) -> bool {
    raw_pid(pid).is_some_and(|p| kill_process(p, signal).is_ok())
}

/// Sends `signal` to the process group led by `pgid`.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    raw_pid(pgid).is_some_and(|p| kill_process_group(p, signal).is_ok())
}

fn raw_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_itself() {
        let me = info(std::process::id()).unwrap();
        assert!(me.ppid > 0);
        assert!(me.pgid > 0);
        assert!(!me.cmdline.is_empty());
        assert!(processes().iter().any(|p| p.pid == me.pid));
    }
}
