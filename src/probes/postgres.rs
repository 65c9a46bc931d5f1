//! The `postgres` probe: a fresh connection per run (no TLS: `sslmode` plays no part), then
//! `pg_is_in_recovery()`, client connections against `max_connections`, queries running
//! longer than a threshold (seed 000: 5 minutes) and, on a primary, each replica's lag from
//! `pg_stat_replication`. Query texts may hold secrets: only pids, durations and
//! `application_name`s reach the detail.
//!
//! The login needs the `pg_monitor` role to see other sessions' states in
//! `pg_stat_activity` (otherwise they show as NULL and are not counted as long queries).
//!
//! ```toml
//! [[probe]]
//! id = "rag-db"
//! kind = "postgres"
//! host = "127.0.0.1"
//! port = 5432
//! user = "astreinte"
//! dbname = "postgres"
//! password = { env = "ASTREINTE_PG_PASSWORD" }
//! long_query_threshold = "5m"   # seed 000
//! max_connections_ratio = 0.9
//! ```

use std::time::{Duration, Instant};

use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;

use super::classify::classify_chain;
use super::{Finding, Measurement, Outcome};
use crate::config::{PostgresSpec, Secret};
use crate::metrics::GaugeName;

/// Where and how to log in.
pub(super) struct Login<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub dbname: &'a str,
    pub password: Option<Secret>,
}

/// Why a connection or a query failed: a bounded code and a sentence without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PgFailure {
    pub reason: &'static str,
    pub detail: String,
}

/// Opens a fresh connection within `budget`; its driver task ends when the client drops.
pub(super) async fn connect(
    login: &Login<'_>,
    budget: Duration,
) -> Result<tokio_postgres::Client, PgFailure> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(login.host)
        .port(login.port)
        .user(login.user)
        .dbname(login.dbname)
        .application_name("astreinte")
        .ssl_mode(SslMode::Disable)
        .connect_timeout(budget);
    if let Some(p) = &login.password {
        config.password(p.expose());
    }
    match tokio::time::timeout(budget, config.connect(tokio_postgres::NoTls)).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) => Err(classify(&e)),
        Ok(Ok((client, connection))) => {
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "postgres probe connection ended");
                }
            });
            Ok(client)
        }
    }
}

fn timed_out() -> PgFailure {
    PgFailure {
        reason: "timeout",
        detail: "no answer before the timeout".into(),
    }
}

/// Names a connection or query error.
pub(super) fn classify(e: &tokio_postgres::Error) -> PgFailure {
    if let Some(db) = e.as_db_error() {
        let reason = match *db.code() {
            SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                "auth_failed"
            }
            SqlState::INVALID_CATALOG_NAME => "database_missing",
            SqlState::TOO_MANY_CONNECTIONS => "too_many_connections",
            SqlState::CANNOT_CONNECT_NOW => "cannot_connect_now",
            _ => "server_error",
        };
        return PgFailure {
            reason,
            detail: format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        };
    }
    let cause = std::error::Error::source(e).map(ToString::to_string);
    if cause.as_deref() == Some("password missing") {
        return PgFailure {
            reason: "auth_failed",
            detail: "the server asks for a password and none is configured".into(),
        };
    }
    let reason = match e.to_string().as_str() {
        "timeout waiting for server" => "timeout",
        "connection closed" => "connection_closed",
        _ => classify_chain(e),
    };
    let detail = match reason {
        "connection_refused" => "connection refused".to_owned(),
        "timeout" => "no answer before the timeout".to_owned(),
        "dns_error" => "host name does not resolve".to_owned(),
        "connection_closed" | "connection_reset" => "the server closed the connection".to_owned(),
        other => format!("connection failed ({other})"),
    };
    PgFailure { reason, detail }
}

/// The shortest of the probe timeout minus a margin, so that the probe reports its own
/// finding before the runner's overall timeout fires.
pub(super) fn budget(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).min(Duration::from_millis(250)))
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
struct Health {
    in_recovery: bool,
    connections: i64,
    max_connections: i64,
    long_queries: i64,
    /// The oldest long queries: (pid, application_name, seconds).
    oldest: Vec<(i32, String, f64)>,
    /// Replicas seen from the primary: (application_name, lag bytes).
    replicas: Vec<(String, f64)>,
}

pub(super) async fn probe(id: &str, spec: &PostgresSpec, timeout: Duration) -> Finding {
    let password = match crate::config::read_secret(spec.password.as_ref()).await {
        Ok(p) => p,
        Err(e) => {
            return Finding::new(
                Outcome::unknown("secret_unavailable"),
                format!("password: {e}"),
            );
        }
    };
    let login = Login {
        host: &spec.host,
        port: spec.port,
        user: &spec.user,
        dbname: &spec.dbname,
        password,
    };
    let deadline = Instant::now() + budget(timeout);
    let client = match connect(&login, budget(timeout)).await {
        Ok(c) => c,
        Err(f) => return Finding::new(Outcome::failed(f.reason), f.detail),
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let health = match tokio::time::timeout(remaining, measure(&client, spec)).await {
        Err(_) => Err(timed_out()),
        Ok(r) => r,
    };
    match health {
        Ok(h) => judge(id, spec, &h),
        Err(f) if f.reason == "unexpected_result" => {
            Finding::new(Outcome::unknown(f.reason), f.detail)
        }
        Err(f) => {
            let reason = if f.reason == "timeout" {
                "timeout"
            } else {
                "query_failed"
            };
            Finding::new(Outcome::failed(reason), f.detail)
        }
    }
}

async fn measure(
    client: &tokio_postgres::Client,
    spec: &PostgresSpec,
) -> Result<Health, PgFailure> {
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('max_connections')::int8, \
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
            &[],
        )
        .await
        .map_err(|e| classify(&e))?;
    let (in_recovery, max_connections, connections): (bool, i64, i64) = (
        column(&row, 0, "pg_is_in_recovery()")?,
        column(&row, 1, "max_connections")?,
        column(&row, 2, "connections")?,
    );
    let long = client
        .query(
            "SELECT pid, coalesce(application_name, ''), \
                    extract(epoch FROM now() - query_start)::float8, count(*) OVER () \
             FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND state IS NOT NULL AND state <> 'idle' \
               AND pid <> pg_backend_pid() \
               AND query_start < now() - make_interval(secs => $1) \
             ORDER BY query_start LIMIT 3",
            &[&spec.long_query_threshold.as_secs_f64()],
        )
        .await
        .map_err(|e| classify(&e))?;
    let long_queries = match long.first() {
        Some(r) => column(r, 3, "long query count")?,
        None => 0,
    };
    let oldest = long
        .iter()
        .map(|r| {
            Ok((
                column(r, 0, "pid")?,
                column(r, 1, "application_name")?,
                column(r, 2, "query age")?,
            ))
        })
        .collect::<Result<_, PgFailure>>()?;
    let mut replicas = Vec::new();
    if !in_recovery {
        let rows = client
            .query(
                "SELECT coalesce(application_name, ''), pg_wal_lsn_diff(pg_current_wal_lsn(), \
                        coalesce(replay_lsn, flush_lsn, write_lsn, sent_lsn))::float8 \
                 FROM pg_stat_replication ORDER BY application_name LIMIT 32",
                &[],
            )
            .await
            .map_err(|e| classify(&e))?;
        for r in &rows {
            let name: String = column(r, 0, "replica application_name")?;
            let lag: Option<f64> = column(r, 1, "replica lag")?;
            if let Some(lag) = lag {
                let name = if name.is_empty() {
                    "unnamed".into()
                } else {
                    name
                };
                replicas.push((name, lag));
            }
        }
    }
    Ok(Health {
        in_recovery,
        connections,
        max_connections,
        long_queries,
        oldest,
        replicas,
    })
}

/// Column `i` of a result row. A value of another type than asked (a server that only looks
/// like PostgreSQL) is an `unexpected_result` the probe reports as `Unknown`, not a panic.
fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    what: &str,
) -> Result<T, PgFailure> {
    row.try_get(i).map_err(|e| PgFailure {
        reason: "unexpected_result",
        detail: format!("cannot read {what}: {e}"),
    })
}

fn judge(id: &str, spec: &PostgresSpec, h: &Health) -> Finding {
    let ratio = if h.max_connections > 0 {
        h.connections as f64 / h.max_connections as f64
    } else {
        0.0
    };
    let threshold = humantime::format_duration(spec.long_query_threshold);
    let mut parts = vec![
        if h.in_recovery {
            "replica (in recovery)".to_owned()
        } else {
            "primary".to_owned()
        },
        format!(
            "{}/{} connections ({:.0} %)",
            h.connections,
            h.max_connections,
            ratio * 100.0
        ),
    ];
    if h.long_queries > 0 {
        let oldest: Vec<String> = h
            .oldest
            .iter()
            .map(|(pid, app, secs)| {
                let app = if app.is_empty() {
                    "no application_name"
                } else {
                    app
                };
                format!("pid {pid} ({app}) for {secs:.0} s")
            })
            .collect();
        parts.push(format!(
            "{} queries running longer than {threshold}, oldest: {}",
            h.long_queries,
            oldest.join(", ")
        ));
    }
    for (name, lag) in &h.replicas {
        parts.push(format!("replica {name} lag {lag:.0} B"));
    }
    let detail = parts.join("; ");
    let outcome = if ratio >= spec.max_connections_ratio {
        Outcome::degraded(ratio, "connections_high")
    } else if h.long_queries > 0 {
        Outcome::degraded(h.long_queries as f64, "long_queries")
    } else {
        Outcome::Healthy
    };
    let probe = [("probe", id)];
    let mut finding = Finding::new(outcome, detail)
        .with(Measurement::new(
            GaugeName::PostgresInRecovery,
            &probe,
            f64::from(u8::from(h.in_recovery)),
        ))
        .with(Measurement::new(
            GaugeName::PostgresConnectionsUsedRatio,
            &probe,
            ratio,
        ))
        .with(Measurement::new(
            GaugeName::PostgresLongQueries,
            &probe,
            h.long_queries as f64,
        ));
    for (name, lag) in &h.replicas {
        finding = finding.with(Measurement::new(
            GaugeName::PostgresReplicationLagBytes,
            &[("probe", id), ("replica", name)],
            *lag,
        ));
    }
    finding
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PostgresSpec {
        PostgresSpec {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "mon".into(),
            dbname: "postgres".into(),
            password: None,
            long_query_threshold: Duration::from_secs(300),
            max_connections_ratio: 0.9,
        }
    }

    fn health() -> Health {
        Health {
            in_recovery: false,
            connections: 4,
            max_connections: 100,
            long_queries: 0,
            oldest: vec![],
            replicas: vec![("pg2".into(), 0.0)],
        }
    }

    #[test]
    fn judging_orders_connections_before_long_queries() {
        let f = judge("db", &spec(), &health());
        assert_eq!(f.outcome, Outcome::Healthy);
        assert_eq!(
            f.detail,
            "primary; 4/100 connections (4 %); replica pg2 lag 0 B"
        );
        assert_eq!(f.measurements.len(), 4);

        let mut long = health();
        long.long_queries = 2;
        long.oldest = vec![(42, "report".into(), 400.4), (43, String::new(), 301.0)];
        let f = judge("db", &spec(), &long);
        assert_eq!(f.outcome, Outcome::degraded(2.0, "long_queries"));
        assert!(
            f.detail.contains(
                "2 queries running longer than 5m, oldest: pid 42 (report) for 400 s, pid 43 (no application_name) for 301 s"
            ),
            "{}",
            f.detail
        );

        let mut full = long.clone();
        full.connections = 95;
        let f = judge("db", &spec(), &full);
        assert_eq!(f.outcome, Outcome::degraded(0.95, "connections_high"));
    }

    #[test]
    fn budget_leaves_a_margin() {
        assert_eq!(budget(Duration::from_secs(5)), Duration::from_millis(4750));
        assert_eq!(budget(Duration::from_secs(1)), Duration::from_millis(900));
    }
}
