//! `astreinte demo`: one command that starts a real local stack (Patroni + PostgreSQL with 3
//! members and etcd, Redis master + replica, a small HTTP service), writes a configuration for
//! it, and runs the daemon on it in-process; `astreinte demo fault <name>` breaks something
//! from a second terminal. SIGINT or SIGTERM stops everything it started, also halfway
//! through the start.
//!
//! | file | owns |
//! |---|---|
//! | `preflight.rs` | the Debian packages it needs, and what to install |
//! | `stack.rs` | the servers (testbed code) and the faults on them |
//! | `service.rs` | the HTTP service (`/health`, `/admin/restart`) |
//! | `config.rs` | the `probes.toml` / `remediations.toml` it writes |
//! | `control.rs` | `control.json` and the control endpoint a second terminal talks to |
//! | `fault.rs` | the faults and what to look at after each |

mod config;
pub mod control;
pub mod fault;
pub mod preflight;
pub mod service;
pub mod stack;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub use config::{Endpoints, GREEN_PERIOD};
pub use control::ControlFile;
pub use fault::Fault;

use crate::testbed;
use control::Running;
use service::Service;
use stack::Stack;

/// The daemon's port unless it is taken.
pub const DEFAULT_PORT: u16 = 9464;
/// How long the daemon may take to stop after the signal before the stack is stopped anyway.
const DAEMON_STOP: Duration = Duration::from_secs(30);
/// The daemon sees the same signal and stops within this, unless it came too early for it.
const SIGNAL_SEEN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Testbed(#[from] testbed::Error),
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    #[error("the written configuration does not load")]
    Config(#[from] crate::config::ConfigError),
    #[error("the daemon failed: {0}")]
    Daemon(String),
    #[error("stopped by a signal while starting; everything started so far is stopped")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `astreinte demo [--port P] [--dir D] [fault NAME]`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The daemon's port on 127.0.0.1 (default 9464, or a free one if it is taken).
    #[arg(long)]
    pub port: Option<u16>,
    /// Where the demo keeps everything it starts (default: a new /tmp/astreinte-demo-XXXX,
    /// removed on exit). For `fault`: the demo to talk to (default: the latest started).
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum DemoCommand {
    /// Break something in the running demo (from a second terminal).
    Fault {
        #[arg(value_enum)]
        name: Fault,
    },
}

/// Runs `astreinte demo`; returns the exit code.
pub async fn main(args: DemoArgs) -> Result<i32> {
    match args.command {
        Some(DemoCommand::Fault { name }) => {
            print!("{}", fault::send(args.dir.as_deref(), name).await?);
            Ok(0)
        }
        None => run(args.port, args.dir).await.map(|()| 0),
    }
}

/// The demo directory: a temp dir removed on exit, or the one given (kept).
enum DemoDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl DemoDir {
    fn create(given: Option<PathBuf>) -> Result<DemoDir> {
        let dir = match given {
            Some(d) => {
                std::fs::create_dir_all(&d)
                    .map_err(|e| Error::Io(format!("create {}", d.display()), e))?;
                let d = d
                    .canonicalize()
                    .map_err(|e| Error::Io(format!("resolve {}", d.display()), e))?;
                DemoDir::Given(d)
            }
            None => DemoDir::Temp(
                tempfile::Builder::new()
                    .prefix("astreinte-demo-")
                    .tempdir()
                    .map_err(|e| Error::Io("create the demo directory".into(), e))?,
            ),
        };
        // The postgres user must be able to reach the Patroni directories inside.
        testbed::pg_user::open_for_traversal(dir.path())?;
        Ok(dir)
    }

    fn path(&self) -> &Path {
        match self {
            DemoDir::Temp(t) => t.path(),
            DemoDir::Given(p) => p,
        }
    }
}

/// The daemon's address: `port`, else 9464 if free, else any free port.
fn daemon_address(port: Option<u16>) -> Result<SocketAddr> {
    let port = match port {
        Some(p) => p,
        None if TcpListener::bind(("127.0.0.1", DEFAULT_PORT)).is_ok() => DEFAULT_PORT,
        None => {
            let p = testbed::free_port()?;
            println!("port {DEFAULT_PORT} is taken: the daemon listens on {p} instead");
            p
        }
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Starts the stack, runs the daemon on it until SIGINT or SIGTERM, then stops everything.
pub async fn run(port: Option<u16>, dir: Option<PathBuf>) -> Result<()> {
    let missing = preflight::missing_packages();
    if !missing.is_empty() {
        return Err(Error::Missing(preflight::install_hint(&missing)));
    }
    crate::app::install_crypto();
    let cancel = CancellationToken::new();
    crate::shutdown::on_signal(cancel.clone())
        .map_err(|e| Error::Io("install the signal handlers".into(), e))?;
    let dir = DemoDir::create(dir)?;
    let listen = daemon_address(port)?;
    println!(
        "astreinte demo: starting Redis (master + replica), etcd and 3 Patroni members with \
         PostgreSQL 15 under {} (about 30 s)…",
        dir.path().display()
    );
    let started = tokio::select! {
        _ = cancel.cancelled() => Err(Error::Interrupted),
        r = Stack::start(dir.path()) => r,
    };
    let stack = started?;
    let result = serve(stack, dir.path(), listen, &cancel).await;
    cancel.cancel();
    println!("astreinte demo: stopped etcd, Patroni, PostgreSQL and Redis");
    result
}

/// With the stack up: the service, the configuration, the control endpoint, the daemon.
async fn serve(
    stack: Stack,
    dir: &Path,
    listen: SocketAddr,
    cancel: &CancellationToken,
) -> Result<()> {
    let admin_token = random_hex();
    let service = Service::start(admin_token.clone(), cancel.clone()).await?;
    let endpoints = endpoints(&stack, &service, listen, admin_token).await?;
    let config_dir = config::write(dir, &endpoints)?;
    let config = crate::config::load_dir(&config_dir)?;
    let daemon = format!("http://{listen}");
    let running = Arc::new(Running {
        stack: Mutex::new(Some(stack)),
        service: service.state.clone(),
        daemon: daemon.clone(),
        cancel: cancel.clone(),
    });
    let control_addr = control::serve(running.clone()).await?;
    let control = ControlFile {
        pid: std::process::id(),
        dir: dir.to_path_buf(),
        daemon: daemon.clone(),
        service: service.url(""),
        control: format!("http://{control_addr}"),
    };
    control.write()?;
    print!("{}", guide(&control, &endpoints));
    let outcome = run_daemon(config, cancel).await;
    control.remove();
    // Stop the servers: the control endpoint may not touch them any more.
    drop(running.stack.lock().await.take());
    outcome
}

/// The daemon in-process, until the signal (which it sees too: both handlers get it);
/// bounded after the signal.
async fn run_daemon(config: crate::config::Config, cancel: &CancellationToken) -> Result<()> {
    if cancel.is_cancelled() {
        return Ok(());
    }
    let daemon = crate::app::run(config, None, None);
    tokio::pin!(daemon);
    let result = tokio::select! {
        r = &mut daemon => r,
        _ = cancel.cancelled() => match tokio::time::timeout(SIGNAL_SEEN, &mut daemon).await {
            Ok(r) => r,
            Err(_) => {
                // The signal came before the daemon listened for it: tell it again (the
                // handlers stay installed, so this does not kill the process).
                let me = rustix::process::getpid();
                let _ = rustix::process::kill_process(me, rustix::process::Signal::TERM);
                tokio::time::timeout(DAEMON_STOP, &mut daemon).await.unwrap_or(Ok(()))
            }
        },
    };
    result.map_err(|e| Error::Daemon(format!("{e:#}")))
}

async fn endpoints(
    stack: &Stack,
    service: &Service,
    listen: SocketAddr,
    admin_token: String,
) -> Result<Endpoints> {
    let patroni = &stack.patroni;
    let leader = stack
        .leader()
        .await
        .ok_or_else(|| Error::Other("no Patroni member leads after the start".into()))?;
    let members = patroni
        .members()
        .iter()
        .map(|m| (m.name.clone(), m.rest_url(), m.pg_port))
        .collect();
    Ok(Endpoints {
        listen,
        service: service.url(""),
        members,
        leader_pg_port: patroni.pg_port(&leader)?,
        redis_master: stack.redis.master_addr(),
        redis_replica: stack.redis.replica_addr(),
        pg_password: patroni.credentials().superuser.1.clone(),
        admin_token,
    })
}

/// What to look at, and how to break something.
fn guide(c: &ControlFile, e: &Endpoints) -> String {
    let d = &c.daemon;
    let exe = command_name();
    let dir = c.dir.display();
    let members: Vec<String> = e
        .members
        .iter()
        .map(|(name, url, pg)| format!("{name} {url} (postgres :{pg})"))
        .collect();
    format!(
        "
astreinte demo is running (Ctrl-C stops everything it started).

  stack      Patroni {members}
             Redis master {master}, replica {replica}
             demo service {service}/health
  config     {dir}/probes.toml, {dir}/remediations.toml (global mode enforce; one rule
             enforced: api-restart; the others dry-run)
  logs       {dir}/redis-*.log, {dir}/astreinte-patroni-*/ (etcd.log, pg*/patroni.log)

Look at:
  {d}/            the status page
  {d}/status      every probe's last result (JSON)
  {d}/metrics     Prometheus metrics
  {exe} check --config {dir}
  {exe} incidents --url {d}
  {exe} explain --url {d}

Break something (from a second terminal; `scripts/demo fault <name>` works too):
  {exe} demo fault kill-leader         Patroni leader node crash: leader_unreachable P2, failover by itself
  {exe} demo fault break-api           /health answers 500: P1, api-restart repairs it
  {exe} demo fault redis-replica-down  replica follows a dead port: master_link_down P3
  {exe} demo fault slow-api            latency over the 300 ms objective: degraded
  {exe} demo fault heal                restore everything

",
        members = members.join("\n                     "),
        master = e.redis_master,
        replica = e.redis_replica,
        service = e.service,
    )
}

/// This binary as the user can type it: relative to the working directory when inside it.
fn command_name() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "astreinte".into();
    };
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_path_buf));
    match relative {
        Some(r) => r.display().to_string(),
        None => exe.display().to_string(),
    }
}

/// 128 random bits as hex, from the OS (a per-run admin token).
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Mixed with the clock, in case /dev/urandom could not be read.
    for (i, b) in stamp.to_le_bytes().iter().enumerate() {
        bytes[i] ^= b;
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
