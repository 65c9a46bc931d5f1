//! Headless Chromium (Debian `chromium`) to load a page like an operator's browser does:
//! a screenshot and the DOM after parsing. Each run is a [`Proc`] with its own throw-away
//! profile, killed with its whole process group if it does not finish in time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Error, Proc, Result, require};

pub const BINARY: &str = "/usr/bin/chromium";
pub const PACKAGE: &str = "chromium";

/// How long one page load may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// A headless browser; `dir` holds its profile, its log and its outputs.
pub struct Chromium {
    dir: PathBuf,
    runs: u32,
}

impl Chromium {
    /// Fails with the install command when Chromium is missing.
    pub fn new(dir: &Path) -> Result<Chromium> {
        require(BINARY, PACKAGE)?;
        Ok(Chromium {
            dir: dir.to_owned(),
            runs: 0,
        })
    }

    /// Where Chromium's own messages go.
    pub fn log(&self) -> PathBuf {
        self.dir.join("chromium.log")
    }

    /// Loads `url` in a `width`×`height` window and writes a PNG to `out`.
    pub async fn screenshot(
        &mut self,
        url: &str,
        out: &Path,
        width: u32,
        height: u32,
    ) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg(format!("--screenshot={}", out.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(url);
        let log = self.log();
        self.finish(Proc::spawn("chromium --screenshot", cmd, &log)?)
            .await?;
        if out.exists() {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "chromium wrote no screenshot to {} (see {})",
                out.display(),
                log.display()
            )))
        }
    }

    /// Loads `url` and returns the DOM as serialized after parsing.
    pub async fn dump_dom(&mut self, url: &str) -> Result<String> {
        let mut cmd = self.command();
        cmd.arg("--dump-dom").arg(url);
        let dom = self.dir.join(format!("dom-{}.html", self.runs));
        let proc = Proc::spawn_with_stdout("chromium --dump-dom", cmd, &dom, &self.log())?;
        self.finish(proc).await?;
        std::fs::read_to_string(&dom).map_err(|source| Error::Io {
            what: format!("read {}", dom.display()),
            source,
        })
    }

    /// The flags of every run: no sandbox (tests may run as root), nothing fetched from the
    /// network besides the page, a fresh profile.
    fn command(&mut self) -> Command {
        self.runs += 1;
        let mut cmd = Command::new(BINARY);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            self.dir.join(format!("profile-{}", self.runs)).display()
        ));
        cmd
    }

    /// Waits for the run to exit (bounded); a non-zero exit is an error.
    async fn finish(&self, mut proc: Proc) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(code) = proc.try_exit_code() {
                return match code {
                    Some(0) => Ok(()),
                    other => Err(Error::Other(format!(
                        "{} exited with {other:?} (see {})",
                        proc.name,
                        self.log().display()
                    ))),
                };
            }
            if started.elapsed() > DEADLINE {
                proc.kill();
                return Err(Error::Timeout {
                    what: proc.name.clone(),
                    after: DEADLINE,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
