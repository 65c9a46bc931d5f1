//! A child process in its own process group, killed with its whole group on drop.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::{Error, Result};

/// A started server. Dropping it kills its process group (SIGKILL) and reaps it.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pgid: Pid,
}

impl Proc {
    /// Spawns `cmd` in a new process group, with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> Result<Proc> {
        let out = append(log)?;
        let err = out.try_clone().map_err(|source| Error::Io {
            what: format!("clone log handle {}", log.display()),
            source,
        })?;
        Self::spawn_with(name, cmd, out, err)
    }

    /// Like [`Proc::spawn`], with stdout kept apart in `stdout` (for a program whose output
    /// is the result, like `chromium --dump-dom`) and stderr appended to `log`.
    pub fn spawn_with_stdout(name: &str, cmd: Command, stdout: &Path, log: &Path) -> Result<Proc> {
        Self::spawn_with(name, cmd, append(stdout)?, append(log)?)
    }

    fn spawn_with(
        name: &str,
        mut cmd: Command,
        out: std::fs::File,
        err: std::fs::File,
    ) -> Result<Proc> {
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            name: name.to_owned(),
            source,
        })?;
        let pgid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| Error::Other(format!("{name}: unexpected pid {}", child.id())))?;
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
            pgid,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pgid.as_raw_nonzero().get().unsigned_abs()
    }

    /// Sends `signal` to the whole process group.
    pub fn signal(&self, signal: Signal) {
        let _ = kill_process_group(self.pgid, signal);
    }

    /// Whether the leader process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `Some(exit code)` once the leader process has exited (`Some(None)` if by a signal);
    /// `None` while it runs.
    pub fn try_exit_code(&mut self) -> Option<Option<i32>> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status.code())
    }

    /// SIGTERM, then SIGKILL after `grace`; reaps the leader.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.signal(Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                // The leader is gone; kill stragglers of the group too.
                let _ = kill_process_group(self.pgid, Signal::KILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = kill_process_group(self.pgid, Signal::KILL);
        let _ = child.wait();
    }

    /// SIGKILL the group now (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_process_group(self.pgid, Signal::KILL);
            let _ = child.wait();
        }
    }
}

fn append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| Error::Io {
            what: format!("open log {}", path.display()),
            source,
        })
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
