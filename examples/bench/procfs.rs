//! What the kernel says about a process and the machine: CPU time from `/proc/PID/stat`
//! (utime + stime, every thread, dead ones included), VmRSS and VmHWM from `/proc/PID/status`,
//! TIME_WAIT sockets from `/proc/net/sockstat`, and the machine description for the report.

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ; 100 on Linux for every arch we run).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// (VmRSS, VmHWM) in MiB.
pub fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Sockets in TIME_WAIT on the machine.
pub fn time_wait() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "tw" {
            return it.next()?.parse().ok();
        }
    }
    None
}

/// The kernel's count of TIME_WAIT sockets not kept because the table was full
/// (`TcpExt: TCPTimeWaitOverflow` in `/proc/net/netstat`).
pub fn time_wait_overflows() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = s.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names
        .split_whitespace()
        .position(|n| n == "TCPTimeWaitOverflow")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// A CPU reading of one process at one instant.
#[derive(Clone, Copy)]
pub struct CpuMark {
    pub cpu: f64,
    pub at: Instant,
}

impl CpuMark {
    pub fn take(pid: u32) -> Option<CpuMark> {
        Some(CpuMark {
            cpu: cpu_seconds(pid)?,
            at: Instant::now(),
        })
    }
    /// (CPU seconds used, wall time) since `self`.
    pub fn since(self, later: CpuMark) -> (f64, Duration) {
        (later.cpu - self.cpu, later.at.duration_since(self.at))
    }
}

/// `nproc`, CPU model, memory, kernel: one line for the report.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| k / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "nproc {cpus}, CPU `{model}`, {mem_gib:.1} GiB RAM, Linux {}",
        kernel.trim()
    )
}

/// The 1-, 5- and 15-minute load averages.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
