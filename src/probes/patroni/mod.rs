//! The `patroni` probe: asks EVERY member, in parallel, for its own status (`GET /patroni`)
//! and its view of the DCS (`GET /cluster`), asks the
//! postgres of a silent member directly when a `sql` login is configured, builds one
//! [`PatroniView`] and judges it with [`assess`].
//!
//! `decode` reads the payloads, `view` assembles them, `assess` decides. This file does the
//! IO: fresh connections (no idle pool), a 1 MiB body cap, every request under the probe's
//! budget.
//!
//! ```toml
//! [[probe]]
//! id = "pg"
//! kind = "patroni"
//! timeout = "5s"               # longer than Patroni's retry_timeout, see below
//! max_lag_bytes = 1048576      # Patroni's maximum_lag_on_failover
//! members = [
//!   { url = "http://10.0.0.1:8008", name = "pg1", postgres = "10.0.0.1:5432" },
//!   { url = "http://10.0.0.2:8008", name = "pg2", postgres = "10.0.0.2:5432" },
//! ]
//! # Optional: ask a silent member's postgres whether it still runs as primary.
//! sql = { user = "astreinte", password = { file = "/run/secrets/pg-monitor" } }
//! ```
//!
//! A bare URL is enough for a member; its name is then learnt from `/cluster` (matching the
//! URL's `host:port` with the member's `api_url`), which fails when they differ (DNS name
//! against IP): set `name` then. With the DCS gone, Patroni answers `/cluster` only after
//! its `retry_timeout`; a probe timeout shorter than that still reports the DCS, as a
//! timeout.

mod assess;
mod decode;
mod failures;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::postgres::{self, Login};
use super::{Finding, Prober};
use crate::config::{PatroniMember, PatroniSpec};
use failures::{incomplete_body, transport};

pub use assess::assess;
pub use decode::{
    ClusterDoc, ClusterMember, DecodeError, Lag, MAX_BODY_BYTES, MemberStatus, ReplicationRow,
    ScheduledSwitchover, Tags, decode_cluster, decode_status,
};
pub use view::{
    BODY_CUT_SHORT, BODY_STALLED, Dcs, Failure, MemberInput, MemberView, PatroniView, Role,
};

/// What a member's URL was found to be in an earlier `/cluster` (its name and postgres
/// address), so that labels stay put and a silent member's postgres can still be asked.
#[derive(Debug, Clone, Default)]
struct Learned {
    name: Option<String>,
    postgres: Option<String>,
}

/// The HTTP client (no idle connections, no redirects) and what `/cluster` taught us.
#[derive(Clone)]
pub(super) struct Clients {
    http: reqwest::Client,
    learned: Arc<Mutex<HashMap<String, Learned>>>,
}

impl Clients {
    pub(super) fn new() -> Result<Self, reqwest::Error> {
        Ok(Clients {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .user_agent(concat!("astreinte/", env!("CARGO_PKG_VERSION")))
                .build()?,
            learned: Arc::default(),
        })
    }

    pub(super) async fn probe(&self, id: &str, spec: &PatroniSpec, timeout: Duration) -> Finding {
        assess(&self.view(id, spec, timeout).await)
    }

    /// One run's view of the cluster.
    pub(super) async fn view(
        &self,
        id: &str,
        spec: &PatroniSpec,
        timeout: Duration,
    ) -> PatroniView {
        let deadline = Instant::now() + postgres::budget(timeout);
        let bases: Vec<String> = spec
            .members
            .iter()
            .map(|m| m.url.trim_end_matches('/').to_owned())
            .collect();
        let statuses = join_all(bases.iter().map(|b| self.status(b, deadline)));
        let docs = join_all(bases.iter().map(|b| self.cluster_doc(b, deadline)));
        let (statuses, docs) = tokio::join!(statuses, docs);
        let doc = docs.iter().find_map(|d| d.as_ref().ok());
        let resolved = self.resolve(&spec.members, &statuses, doc);
        let sql_primary = self
            .ask_silent_postgres(spec, &statuses, &resolved, deadline)
            .await;
        let inputs = spec
            .members
            .iter()
            .zip(statuses.into_iter().zip(docs))
            .zip(resolved.into_iter().zip(sql_primary))
            .map(
                |((m, (status, cluster)), ((name, _), sql_primary))| MemberInput {
                    url: m.url.clone(),
                    name,
                    status,
                    cluster,
                    sql_primary,
                },
            )
            .collect();
        let cluster = spec.cluster.clone().unwrap_or_else(|| id.to_owned());
        PatroniView::assemble(cluster, spec.max_lag_bytes, inputs)
    }

    async fn status(&self, base: &str, deadline: Instant) -> Result<MemberStatus, Failure> {
        let (status, body) = self.get(base, "/patroni", deadline).await?;
        status_answer(status, &body)
    }

    /// One member's `/cluster`: the DCS as it sees it. Every member is asked, because a
    /// member's stale cache may answer while another's DCS requests already fail.
    async fn cluster_doc(&self, base: &str, deadline: Instant) -> Result<ClusterDoc, Failure> {
        let (status, body) = self.get(base, "/cluster", deadline).await?;
        cluster_answer(status, &body)
    }

    /// GET `base` + `path`, within the deadline, with the body capped.
    ///
    /// Two silences are told apart: nothing before the deadline, not even the status line
    /// (refused, or accepted by the kernel of a stopped Patroni), is a member down
    /// ([`transport`]); headers and then a body that stalls or is cut off is an answer that
    /// began and cannot be read ([`incomplete_body`]): the member is alive, its state unknown.
    async fn get(
        &self,
        base: &str,
        path: &str,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut response = self
            .http
            .get(format!("{base}{path}"))
            .timeout(left)
            .send()
            .await
            .map_err(|e| transport(path, &e))?;
        let status = response.status().as_u16();
        let read = async {
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.is_timeout())? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Ok(Err(Failure::new(
                        "body_too_large",
                        format!("GET {path}: answer larger than {MAX_BODY_BYTES} bytes"),
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok(body))
        };
        // The request's own timeout covers the body too; this bound does not depend on it.
        match tokio::time::timeout_at(deadline.into(), read).await {
            Ok(Ok(body)) => Ok((status, body?)),
            Ok(Err(timed_out)) => Err(incomplete_body(path, status, timed_out)),
            Err(_) => Err(incomplete_body(path, status, true)),
        }
    }

    /// Each member's name and postgres address: configured, else told by the member or by
    /// `/cluster` (and remembered), else remembered, else the URL's `host:port`.
    fn resolve(
        &self,
        members: &[PatroniMember],
        statuses: &[Result<MemberStatus, Failure>],
        doc: Option<&ClusterDoc>,
    ) -> Vec<(String, Option<String>)> {
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        members
            .iter()
            .zip(statuses)
            .map(|(m, status)| {
                let listed = doc.and_then(|d| {
                    d.members.iter().find(|c| {
                        m.name.as_ref().map_or_else(
                            || same_authority(c.api_url.as_deref(), &m.url),
                            |n| &c.name == n,
                        )
                    })
                });
                let memory = learned.entry(m.url.clone()).or_default();
                if let Some(c) = listed {
                    memory.name = Some(c.name.clone());
                    if let (Some(h), Some(p)) = (&c.host, c.port) {
                        memory.postgres = Some(format!("{h}:{p}"));
                    }
                }
                let told = status.as_ref().ok().and_then(|s| s.name.clone());
                let name = m
                    .name
                    .clone()
                    .or(told)
                    .or_else(|| memory.name.clone())
                    .unwrap_or_else(|| authority(&m.url));
                (name, m.postgres.clone().or_else(|| memory.postgres.clone()))
            })
            .collect()
    }

    /// For each member whose Patroni is silent: is its postgres a primary? Only with a `sql`
    /// login and a known address; `None` when it cannot tell.
    async fn ask_silent_postgres(
        &self,
        spec: &PatroniSpec,
        statuses: &[Result<MemberStatus, Failure>],
        resolved: &[(String, Option<String>)],
        deadline: Instant,
    ) -> Vec<Option<bool>> {
        let Some(login) = &spec.sql else {
            return vec![None; statuses.len()];
        };
        let password = match crate::config::read_secret(login.password.as_ref()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "patroni probe: sql password unavailable");
                return vec![None; statuses.len()];
            }
        };
        let asks = statuses.iter().zip(resolved).map(|(status, (_, address))| {
            let password = password.clone();
            async move {
                let (host, port) = address.as_deref()?.rsplit_once(':')?;
                if status.is_ok() {
                    return None;
                }
                let login = Login {
                    host,
                    port: port.parse().ok()?,
                    user: &login.user,
                    dbname: &login.dbname,
                    password,
                };
                let left = deadline.saturating_duration_since(Instant::now());
                let client = postgres::connect(&login, left).await.ok()?;
                let row = client
                    .query_one("SELECT pg_is_in_recovery()", &[])
                    .await
                    .ok()?;
                Some(!row.try_get::<_, bool>(0).ok()?)
            }
        });
        join_all(asks).await
    }
}

impl Prober {
    /// The assembled view of a `patroni` probe's cluster, for remediation preconditions
    /// (leader, candidates and their lag, paused, DCS state).
    pub async fn patroni_view(
        &self,
        id: &str,
        spec: &PatroniSpec,
        timeout: Duration,
    ) -> PatroniView {
        self.patroni.view(id, spec, timeout).await
    }
}

/// A `/patroni` answer: Patroni sends its status document with 200, or 503 on the
/// health-style paths. An undecodable body is a [`Failure::is_unreadable`] failure.
fn status_answer(status: u16, body: &[u8]) -> Result<MemberStatus, Failure> {
    if !matches!(status, 200 | 503) {
        return Err(Failure::new(
            "bad_status",
            format!("GET /patroni: HTTP {status}"),
        ));
    }
    decode_status(body).map_err(|e| Failure::new(e.kind(), format!("GET /patroni: {e}")))
}

/// A `/cluster` answer (200 only).
fn cluster_answer(status: u16, body: &[u8]) -> Result<ClusterDoc, Failure> {
    if status != 200 {
        return Err(Failure::new(
            "bad_status",
            format!("GET /cluster: HTTP {status}"),
        ));
    }
    decode_cluster(body).map_err(|e| Failure::new(e.kind(), format!("GET /cluster: {e}")))
}

/// `host:port` of a URL (the label of a member whose name is unknown).
fn authority(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_owned())
}

/// Whether `/cluster`'s `api_url` (`http://h:p/patroni`) is the configured URL's server.
fn same_authority(api_url: Option<&str>, configured: &str) -> bool {
    api_url.is_some_and(|a| authority(a) == authority(configured))
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_match_across_paths() {
        assert_eq!(authority("http://127.0.0.1:8008"), "127.0.0.1:8008");
        assert_eq!(authority("http://db1/"), "db1:80");
        assert!(same_authority(
            Some("http://127.0.0.1:28008/patroni"),
            "http://127.0.0.1:28008/"
        ));
        assert!(!same_authority(
            Some("http://127.0.0.1:28009/patroni"),
            "http://127.0.0.1:28008"
        ));
        assert!(!same_authority(None, "http://127.0.0.1:28008"));
    }

    #[test]
    fn names_come_from_config_then_member_then_cluster_then_url() {
        crate::app::install_crypto();
        let clients = Clients::new().unwrap();
        let doc = decode_cluster(
            br#"{"members": [{"name": "pg1", "role": "leader", "state": "running",
                 "api_url": "http://127.0.0.1:28008/patroni", "host": "127.0.0.1", "port": 25432}]}"#,
        )
        .unwrap();
        let members = vec![
            PatroniMember {
                url: "http://127.0.0.1:28008".into(),
                name: None,
                postgres: None,
            },
            PatroniMember {
                url: "http://127.0.0.1:28009".into(),
                name: Some("pg2".into()),
                postgres: Some("127.0.0.1:25433".into()),
            },
            PatroniMember {
                url: "http://127.0.0.1:28010".into(),
                name: None,
                postgres: None,
            },
        ];
        let down = || Err(Failure::new("connection_refused", "refused"));
        let resolved = clients.resolve(&members, &[down(), down(), down()], Some(&doc));
        assert_eq!(
            resolved,
            [
                ("pg1".to_owned(), Some("127.0.0.1:25432".to_owned())),
                ("pg2".to_owned(), Some("127.0.0.1:25433".to_owned())),
                ("127.0.0.1:28010".to_owned(), None),
            ]
        );
        // The DCS is gone: pg1 keeps its learnt name and address.
        let resolved = clients.resolve(&members, &[down(), down(), down()], None);
        assert_eq!(
            resolved[0],
            ("pg1".to_owned(), Some("127.0.0.1:25432".to_owned()))
        );
    }
}
