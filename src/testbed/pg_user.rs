//! Running PostgreSQL-side programs (initdb, postgres, Patroni) as the `postgres` user when the
//! tests run as root (PostgreSQL refuses root), and handing directories to that user. As any
//! other user, programs run as that user directly: PostgreSQL only refuses root.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::{Error, Result};

/// Numeric ids of the `postgres` account, read from `/etc/passwd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgUser {
    pub uid: u32,
    pub gid: u32,
}

/// Whether we run as root and must switch to `postgres`.
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The `postgres` account (created by the `postgresql-common` package).
pub fn postgres_user() -> Result<PgUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|source| Error::Io {
        what: "read /etc/passwd".into(),
        source,
    })?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "postgres" {
                return None;
            }
            let _password = fields.next()?;
            Some(PgUser {
                uid: fields.next()?.parse().ok()?,
                gid: fields.next()?.parse().ok()?,
            })
        })
        .ok_or_else(|| {
            Error::Other(
                "no `postgres` user: run `apt-get install -y postgresql-15` (it creates it)".into(),
            )
        })
}

/// A command for `program` that runs as `postgres` when we are root (through `setpriv`, which
/// execs in place: the pid, and so the process group, stay those of the program itself).
pub fn command_as_postgres(program: &str) -> Result<Command> {
    if !running_as_root() {
        return Ok(Command::new(program));
    }
    super::require("/usr/bin/setpriv", "util-linux")?;
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args([
        "--reuid",
        "postgres",
        "--regid",
        "postgres",
        "--init-groups",
        "--",
        program,
    ]);
    Ok(cmd)
}

/// Creates `dir` (mode `mode`) owned by `postgres` when we are root.
pub fn make_postgres_dir(dir: &Path, mode: u32) -> Result<()> {
    let io = |what: &str| {
        let what = format!("{what} {}", dir.display());
        move |source| Error::Io { what, source }
    };
    std::fs::create_dir_all(dir).map_err(io("create"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
    if running_as_root() {
        let user = postgres_user()?;
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io("chown"))?;
    }
    Ok(())
}

/// Writes `contents` to `path` with `mode`, owned by `postgres` when we are root.
pub fn write_postgres_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let io = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |source| Error::Io { what, source }
    };
    std::fs::write(path, contents).map_err(io("write"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
    if running_as_root() {
        let user = postgres_user()?;
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(io("chown"))?;
    }
    Ok(())
}

/// Lets `postgres` traverse `dir` (a root-owned temp dir is 0700).
pub fn open_for_traversal(dir: &Path) -> Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        Error::Io {
            what: format!("chmod {}", dir.display()),
            source,
        }
    })
}
