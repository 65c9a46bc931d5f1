//! Validation of the `patroni` and `postgres` probe specs.

use std::collections::BTreeSet;

use super::{Report, check_address};
use crate::config::{PatroniSpec, PostgresSpec, SqlLogin};

pub(super) fn check_patroni(p: &PatroniSpec, r: &mut Report<'_>) {
    if p.members.is_empty() {
        r.add("members", "must name at least one member's REST API URL");
    }
    let mut urls = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, m) in p.members.iter().enumerate() {
        let field = format!("members[{i}]");
        match url::Url::parse(&m.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => r.add(
                &format!("{field}.url"),
                format!("scheme `{}` is not http or https", u.scheme()),
            ),
            Err(e) => r.add(&format!("{field}.url"), format!("not a valid URL: {e}")),
        }
        if !urls.insert(m.url.trim_end_matches('/')) {
            r.add(&format!("{field}.url"), "duplicate member URL");
        }
        if let Some(name) = &m.name {
            if name.trim().is_empty() {
                r.add(&format!("{field}.name"), "must not be empty");
            } else if !names.insert(name.as_str()) {
                r.add(&format!("{field}.name"), "duplicate member name");
            }
        }
        if let Some(addr) = &m.postgres {
            check_address(addr, &format!("{field}.postgres"), r);
        }
    }
    if let Some(c) = &p.cluster
        && c.trim().is_empty()
    {
        r.add("cluster", "must not be empty");
    }
    if let Some(login) = &p.sql {
        check_login(login, "sql.", r);
    }
    if let Some(auth) = &p.auth {
        if auth.username.trim().is_empty() {
            r.add("auth.username", "must not be empty");
        }
        if let Some(problem) = auth.password.shape_problem() {
            r.add("auth.password", problem);
        }
    }
    if p.ttl.is_zero() {
        r.add("ttl", "must be greater than zero");
    }
}

pub(super) fn check_postgres(p: &PostgresSpec, r: &mut Report<'_>) {
    if p.host.trim().is_empty() {
        r.add("host", "must not be empty");
    }
    if p.port == 0 {
        r.add("port", "must be greater than zero");
    }
    check_login(
        &SqlLogin {
            user: p.user.clone(),
            dbname: p.dbname.clone(),
            password: p.password.clone(),
        },
        "",
        r,
    );
    if p.long_query_threshold.is_zero() {
        r.add("long_query_threshold", "must be greater than zero");
    }
    if !(p.max_connections_ratio > 0.0 && p.max_connections_ratio <= 1.0) {
        r.add(
            "max_connections_ratio",
            format!("{} is not a ratio in (0, 1]", p.max_connections_ratio),
        );
    }
}

fn check_login(login: &SqlLogin, prefix: &str, r: &mut Report<'_>) {
    if login.user.trim().is_empty() {
        r.add(&format!("{prefix}user"), "must not be empty");
    }
    if login.dbname.trim().is_empty() {
        r.add(&format!("{prefix}dbname"), "must not be empty");
    }
    if let Some(problem) = login.password.as_ref().and_then(|s| s.shape_problem()) {
        r.add(&format!("{prefix}password"), problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::{PatroniMember, Problem, RestAuth, SecretRef};

    fn report(f: impl FnOnce(&mut Report<'_>)) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut r = Report {
            problems: &mut problems,
            file: "probes.toml",
            item: "probe \"x\"".into(),
        };
        f(&mut r);
        problems
    }

    fn member(url: &str, name: Option<&str>, postgres: Option<&str>) -> PatroniMember {
        PatroniMember {
            url: url.into(),
            name: name.map(Into::into),
            postgres: postgres.map(Into::into),
        }
    }

    #[test]
    fn every_patroni_problem_is_named() {
        let spec = PatroniSpec {
            members: vec![
                member("ftp://a:8008", None, None),
                member("http://b:8008", Some("pg"), Some("b")),
                member("http://b:8008/", Some("pg"), None),
            ],
            max_lag_bytes: 1,
            cluster: Some(" ".into()),
            sql: Some(SqlLogin {
                user: String::new(),
                dbname: "postgres".into(),
                password: None,
            }),
            auth: Some(RestAuth {
                username: " ".into(),
                password: SecretRef {
                    env: None,
                    file: None,
                },
            }),
            ttl: Duration::ZERO,
        };
        let fields: Vec<String> = report(|r| check_patroni(&spec, r))
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            [
                "members[0].url",
                "members[1].postgres",
                "members[2].url",
                "members[2].name",
                "cluster",
                "sql.user",
                "auth.username",
                "auth.password",
                "ttl"
            ]
        );
    }

    #[test]
    fn no_member_is_a_problem() {
        let spec = PatroniSpec {
            members: vec![],
            max_lag_bytes: 1,
            cluster: None,
            sql: None,
            auth: None,
            ttl: Duration::from_secs(30),
        };
        assert_eq!(report(|r| check_patroni(&spec, r))[0].field, "members");
    }

    #[test]
    fn postgres_ratio_and_threshold_are_checked() {
        let spec = PostgresSpec {
            host: "h".into(),
            port: 5432,
            user: "u".into(),
            dbname: "d".into(),
            password: None,
            long_query_threshold: std::time::Duration::ZERO,
            max_connections_ratio: 1.5,
        };
        let fields: Vec<String> = report(|r| check_postgres(&spec, r))
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["long_query_threshold", "max_connections_ratio"]);
    }
}
