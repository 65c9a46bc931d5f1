//! Before anything starts: are the Debian packages the demo needs installed, and can it run
//! PostgreSQL (as root it switches to the `postgres` user)? Every missing piece is listed at
//! once, with the command that installs it.

use std::path::Path;

/// The binaries the demo runs, and the package of each.
pub const NEEDED: [(&str, &str); 4] = [
    ("/usr/bin/patroni", "patroni"),
    ("/usr/bin/etcd", "etcd-server"),
    ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
    ("/usr/bin/redis-server", "redis-server"),
];

/// The packages whose binary is missing (empty: all there).
pub fn missing_packages() -> Vec<&'static str> {
    NEEDED
        .iter()
        .filter(|(binary, _)| !Path::new(binary).exists())
        .map(|(_, package)| *package)
        .collect()
}

/// What to tell the user about `missing`.
pub fn install_hint(missing: &[&str]) -> String {
    format!(
        "the demo needs Debian packages that are not installed: {list}\n\
         install them with `apt-get install -y {list}` (as root), or run `scripts/demo`, \
         which installs them and starts the demo",
        list = missing.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_every_package_and_the_command() {
        let hint = install_hint(&["patroni", "redis-server"]);
        assert!(
            hint.contains("apt-get install -y patroni redis-server"),
            "{hint}"
        );
        assert!(hint.contains("scripts/demo"), "{hint}");
    }
}
