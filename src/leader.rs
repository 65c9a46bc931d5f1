//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one replica acts.
//!
//! The loop acquires the Lease when it is free or expired, renews it every `renew`, and every
//! write is a compare-and-swap on the resourceVersion it read: a 409 means another replica
//! won the race. Expiry is judged as client-go does, on the local clock: a Lease whose record
//! did not change for `duration` is expired, whatever the other host's clock says. Losing the
//! Lease (a 409, another holder, or no successful renewal for 2/3 of `duration`) flips the
//! "is leader" channel at once, on a timer, even while a call to an API that does not answer
//! hangs (each round is bounded too); a stop releases the Lease so another replica takes
//! over without waiting.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clients::kube::{Client, Error, Op};

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `holderIdentity` (the pod name).
    pub identity: String,
    pub duration: Duration,
    pub renew: Duration,
}

impl LeaderConfig {
    pub fn from_settings(s: &crate::config::KubeSettings, identity: String) -> Self {
        LeaderConfig {
            namespace: s.namespace.clone(),
            name: s.lease.name.clone(),
            identity,
            duration: s.lease.duration,
            renew: s.lease.renew,
        }
    }
}

/// What this replica last saw of the Lease, and when (local clock).
struct Observed {
    record: (Option<String>, Option<String>),
    at: Instant,
}

struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Option<Observed>,
    last_renewal: Option<Instant>,
}

/// Starts the election loop; the receiver says whether this replica leads right now.
/// The task stops (releasing the Lease if held) when `cancel` fires. Read it with
/// [`is_leader`]: once the task is gone (it panicked, or ended), the channel is closed and its
/// last value (maybe `true`) no longer counts.
///
/// Leading ends on time, not only on a failed round: at the last successful renewal (the
/// moment its request was sent) plus 2/3 of `duration`, even while a round hangs on an API
/// that does not answer. Another replica takes the Lease only after seeing it unchanged for
/// the whole `duration`, so this replica stops leading at least `duration / 3` before anyone
/// else can start.
pub fn spawn(
    client: Client,
    config: LeaderConfig,
    cancel: CancellationToken,
    gauge: Option<Gauge>,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let mut elector = Elector {
        api: Api::namespaced(client, &config.namespace),
        config,
        observed: None,
        last_renewal: None,
    };
    let mut leading = false;
    let mut set = move |now_leading: bool, identity: &str| {
        if now_leading != leading {
            tracing::info!(leading = now_leading, identity, "leadership changed");
            leading = now_leading;
        }
        if let Some(g) = &gauge {
            g.set(i64::from(now_leading));
        }
        tx.send_if_modified(|v| std::mem::replace(v, now_leading) != now_leading);
    };
    let task = tokio::spawn(async move {
        let identity = elector.config.identity.clone();
        'rounds: loop {
            let lapse = elector.valid_until();
            let limit = elector.round_limit();
            let result = {
                let round = tokio::time::timeout(limit, elector.try_acquire_or_renew());
                tokio::pin!(round);
                let mut lapse = lapse;
                loop {
                    tokio::select! {
                        r = &mut round => break r,
                        () = sleep_until_some(lapse) => {
                            set(false, &identity);
                            lapse = None;
                        }
                    }
                }
            };
            let now_leading = match result {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, lease = %elector.config.name, "lease update failed");
                    elector.valid_until().is_some_and(|t| t > Instant::now())
                }
                Err(_) => {
                    tracing::warn!(
                        lease = %elector.config.name,
                        "no answer from the kubernetes api to the lease update within {}",
                        humantime::format_duration(limit)
                    );
                    elector.valid_until().is_some_and(|t| t > Instant::now())
                }
            };
            set(now_leading, &identity);
            if now_leading {
                crate::supervisor::fault_point("leader");
            }
            let next_round = Instant::now() + elector.config.renew;
            let mut lapse = if now_leading {
                elector.valid_until()
            } else {
                None
            };
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break 'rounds,
                    () = tokio::time::sleep_until(next_round) => break,
                    () = sleep_until_some(lapse) => {
                        set(false, &identity);
                        lapse = None;
                    }
                }
            }
        }
        if elector.last_renewal.is_some() {
            elector.release().await;
        }
        set(false, &identity);
    });
    (rx, task)
}

/// Whether the election task behind `rx` says this replica leads: its last value, while the
/// task lives. A closed channel (the task is gone, whatever it sent last) is "not leader".
pub fn is_leader(rx: &watch::Receiver<bool>) -> bool {
    rx.has_changed().is_ok() && *rx.borrow()
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// Who holds the Lease, as one read of it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// This replica.
    Mine,
    /// Another replica, within its duration.
    Other,
    /// Nobody, or a holder whose record stayed unchanged for its duration.
    Free,
}

/// Pure: who holds the Lease for replica `identity`, when its holder and renewTime have not
/// changed for `unchanged_for` (local clock). The holder's `leaseDurationSeconds` counts, but
/// never for less than `configured`: a garbled or hostile Lease (0, negative, missing) must
/// not let this replica take it early and make two leaders.
fn holder_of(
    spec: &LeaseSpec,
    identity: &str,
    unchanged_for: Duration,
    configured: Duration,
) -> Holder {
    match spec.holder_identity.as_deref().filter(|h| !h.is_empty()) {
        None => Holder::Free,
        Some(h) if h == identity => Holder::Mine,
        Some(_) => {
            let theirs = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(Duration::ZERO, Duration::from_secs);
            if unchanged_for >= theirs.max(configured) {
                Holder::Free
            } else {
                Holder::Other
            }
        }
    }
}

/// Pure: the spec this replica writes to renew (`mine`) or take the Lease.
fn taken(spec: &LeaseSpec, identity: &str, mine: bool, at: MicroTime, seconds: i32) -> LeaseSpec {
    let mut next = spec.clone();
    next.renew_time = Some(at.clone());
    next.lease_duration_seconds = Some(seconds);
    if !mine {
        next.holder_identity = Some(identity.to_owned());
        next.acquire_time = Some(at);
        let before = spec.lease_transitions.unwrap_or(0).max(0);
        next.lease_transitions = Some(before.saturating_add(1));
    }
    next
}

impl Elector {
    fn op(&self, verb: &'static str) -> Op {
        Op::new(
            verb,
            "leases.coordination.k8s.io",
            &self.config.namespace,
            &self.config.name,
        )
    }

    /// Until when this replica may act as the leader: 2/3 of `duration` after the last
    /// successful renewal was sent. `None` when it does not hold the Lease.
    fn valid_until(&self) -> Option<Instant> {
        self.last_renewal
            .map(|t| t + self.config.duration.mul_f64(2.0 / 3.0))
    }

    /// The longest a round may take: a third of `duration`, so that a hung API call cannot
    /// keep the loop from noticing the lapse or from renewing once the API is back.
    fn round_limit(&self) -> Duration {
        self.config.duration.mul_f64(1.0 / 3.0)
    }

    /// One round: `Ok(true)` when this replica holds the Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let name = self.config.name.clone();
        let lease = match self.api.get(&name).await {
            Ok(l) => l,
            Err(e) => match Error::from_kube(e, &self.op("get")) {
                Error::NotFound { .. } => return self.create().await,
                other => return Err(other),
            },
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        if self.observed.as_ref().is_none_or(|o| o.record != record) {
            self.observed = Some(Observed {
                record,
                at: Instant::now(),
            });
        }
        let unchanged_for = self
            .observed
            .as_ref()
            .map_or(Duration::ZERO, |o| o.at.elapsed());
        let held = holder_of(
            &spec,
            &self.config.identity,
            unchanged_for,
            self.config.duration,
        );
        if held == Holder::Other {
            self.last_renewal = None;
            return Ok(false);
        }
        let mut next = lease.clone();
        next.spec = Some(taken(
            &spec,
            &self.config.identity,
            held == Holder::Mine,
            now(),
            self.duration_secs(),
        ));
        // Counted from the moment the request leaves, not from the answer: an answer held up
        // by the network must not stretch the time this replica believes it leads.
        let sent = Instant::now();
        // `next` carries the resourceVersion read: a concurrent writer makes this a 409.
        match self.api.replace(&name, &PostParams::default(), &next).await {
            Ok(_) => {
                self.last_renewal = Some(sent);
                Ok(true)
            }
            Err(e) => match Error::from_kube(e, &self.op("update")) {
                Error::Conflict { .. } => {
                    self.last_renewal = None;
                    Ok(false)
                }
                other => Err(other),
            },
        }
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.config.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    async fn create(&mut self) -> Result<bool, Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.duration_secs()),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let sent = Instant::now();
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => {
                self.last_renewal = Some(sent);
                Ok(true)
            }
            Err(e) => match Error::from_kube(e, &self.op("create")) {
                Error::AlreadyExists { .. } | Error::Conflict { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Gives the Lease up (empty holder), so that another replica takes it at once.
    async fn release(&mut self) {
        let Ok(mut lease) = self.api.get(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            let e = Error::from_kube(e, &self.op("update"));
            tracing::warn!(error = %e, "cannot release the lease; it will expire");
        }
        self.last_renewal = None;
    }
}

#[cfg(test)]
#[path = "leader_proptests.rs"]
mod proptests;

#[cfg(test)]
mod closed_tests {
    use super::*;

    #[test]
    fn a_closed_channel_is_not_leader_whatever_it_said_last() {
        let (tx, rx) = watch::channel(true);
        assert!(is_leader(&rx));
        tx.send_replace(false);
        assert!(!is_leader(&rx));
        tx.send_replace(true);
        assert!(is_leader(&rx));
        // The election task died (a panic drops its sender) while leading.
        drop(tx);
        assert!(!is_leader(&rx));
    }
}
