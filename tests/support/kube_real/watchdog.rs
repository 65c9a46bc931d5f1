//! Nothing left running: the plane lives in a `static`, which is never dropped, so a `sh`
//! watchdog in its own process group reads process-group ids from a pipe whose write end only
//! this test process holds. When the test binary exits (normally, by panic or by SIGKILL),
//! the pipe closes, `read` sees end of file, and `sh` kills every group it was given
//! (SIGKILL) and removes the plane's directory. No `unsafe`, so no `PR_SET_PDEATHSIG`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

const SCRIPT: &str = r#"groups=""
while read -r g; do groups="$groups -$g"; done
[ -n "$groups" ] && kill -9 $groups 2>/dev/null
rm -rf "$1""#;

pub struct Watchdog {
    stdin: Mutex<ChildStdin>,
    _sh: Child,
}

impl Watchdog {
    /// Starts the watchdog; `dir` is removed when it fires.
    pub fn start(dir: &Path) -> Result<Watchdog, String> {
        let mut sh = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("astreinte-kube-watchdog")
            .arg(dir)
            // Its own group: a Ctrl-C to the test's terminal must not kill it before it acts.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog /bin/sh: {e}"))?;
        // std opens the pipe close-on-exec: the servers started later do not hold it open.
        let stdin = sh
            .stdin
            .take()
            .ok_or_else(|| "the watchdog has no stdin".to_owned())?;
        Ok(Watchdog {
            stdin: Mutex::new(stdin),
            _sh: sh,
        })
    }

    /// The process group `pgid` is killed when this test process exits.
    pub fn guard(&self, pgid: u32) -> Result<(), String> {
        let mut stdin = self
            .stdin
            .lock()
            .map_err(|_| "watchdog lock poisoned".to_owned())?;
        writeln!(stdin, "{pgid}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot hand pgid {pgid} to the watchdog: {e}"))
    }
}
