//! One view of a Patroni cluster, assembled from every member's own answer (`/patroni`), the
//! DCS view (`/cluster`) and, for a member whose Patroni is silent, its postgres. Pure: the
//! probe does the IO, [`PatroniView::assemble`] only combines. The remediation side reads the
//! same view (leader, candidates with their lag, paused, DCS state).

use serde::Serialize;

use super::decode::{ClusterDoc, Lag, MemberStatus, ScheduledSwitchover, UNREADABLE};

/// The answer's status line and headers came, then its body stalled until the deadline.
pub const BODY_STALLED: &str = "body_stalled";
/// The answer's status line and headers came, then the connection closed mid-body.
pub const BODY_CUT_SHORT: &str = "body_cut_short";

/// Why a request failed: a bounded code and a human sentence (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub reason: &'static str,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Failure {
            reason,
            detail: detail.into(),
        }
    }

    /// The member answered, but with something that could not be decoded (not JSON, wrong
    /// types, too large, empty) or with a body that never came whole (stalled or cut after
    /// the headers): its state is unknown, not down.
    pub fn is_unreadable(&self) -> bool {
        UNREADABLE.contains(&self.reason) || [BODY_STALLED, BODY_CUT_SHORT].contains(&self.reason)
    }
}

/// What the probe learnt about one configured member, before assembly.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberInput {
    /// The configured REST URL.
    pub url: String,
    /// The member's name (configured, learnt from `/cluster`, or the URL's `host:port`).
    pub name: String,
    pub status: Result<MemberStatus, Failure>,
    /// Its `GET /cluster`: the DCS as this member sees it.
    pub cluster: Result<ClusterDoc, Failure>,
    /// `Some(!pg_is_in_recovery())` when its Patroni was silent and its postgres answered.
    pub sql_primary: Option<bool>,
}

/// A member's role as it says it itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `master` (Patroni 3), `primary` (Patroni 4) or `standby_leader`.
    Leader,
    Replica,
    Other(String),
    /// Its Patroni did not answer.
    Unknown,
}

impl Role {
    fn parse(role: &str) -> Role {
        match role {
            "master" | "primary" | "standby_leader" => Role::Leader,
            "replica" | "sync_standby" => Role::Replica,
            other => Role::Other(other.to_owned()),
        }
    }
}

/// One member in the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberView {
    pub name: String,
    pub url: String,
    /// Why its REST API did not answer usefully; `None` when it did.
    pub down: Option<Failure>,
    pub role: Role,
    /// Patroni's state of its postgres (`running`, `stopped`…), when it answered.
    pub state: Option<String>,
    pub timeline: Option<u64>,
    /// From `/cluster`; `None` for the leader or when the DCS did not answer.
    pub lag: Option<Lag>,
    /// Whether the leader's `replication` list shows it streaming; `None` when there is no
    /// single answering leader to ask, and for the leader itself.
    pub streaming: Option<bool>,
    pub nofailover: bool,
    /// Asked of its postgres directly while its Patroni was silent.
    pub sql_primary: Option<bool>,
    /// `/cluster` lists it as the leader (it holds the leader key in the DCS).
    pub dcs_leader: bool,
}

impl MemberView {
    pub fn is_up(&self) -> bool {
        self.down.is_none()
    }

    /// Its `/patroni` answer came but could not be read (undecodable, or a body that stalled
    /// or was cut after the headers): alive, state unknown; neither up nor down.
    pub fn is_unreadable(&self) -> bool {
        self.down.as_ref().is_some_and(Failure::is_unreadable)
    }

    /// Runs as a writable primary: says so itself, or (Patroni silent) its postgres does.
    pub fn is_leader(&self) -> bool {
        match &self.down {
            None => self.role == Role::Leader && self.state.as_deref() == Some("running"),
            Some(_) => self.sql_primary == Some(true),
        }
    }

    /// Answers, and is not a running primary.
    pub fn is_replica(&self) -> bool {
        self.is_up() && !self.is_leader()
    }

    /// Its postgres runs (Patroni 4 says `streaming` for a streaming replica).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_deref(), Some("running" | "streaming"))
    }

    pub fn lag_bytes(&self) -> Option<u64> {
        match self.lag {
            Some(Lag::Bytes(n)) => Some(n),
            _ => None,
        }
    }
}

/// Whether the DCS answers, through each answering member's `/cluster`.
///
/// Patroni's etcd3 client serves `/cluster` from a watch cache, which a member drops only
/// when one of its own DCS requests fails. So when etcd stops answering, the leader (whose
/// lock update failed) stops answering `/cluster` as it demotes itself, while replicas keep
/// serving their stale cache for a few seconds more: one failing `/cluster` is already news.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Dcs {
    /// Every member whose Patroni answers also answered `/cluster`.
    Answered,
    /// These members answer `/patroni` but not `/cluster`; the others do.
    Partial {
        members: Vec<String>,
        failure: Failure,
    },
    /// No member answered `/cluster`.
    Unreachable(Failure),
}

/// The whole cluster as the probe saw it in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatroniView {
    /// The `cluster` label (config `cluster`, default the probe id).
    pub cluster: String,
    pub max_lag_bytes: u64,
    pub members: Vec<MemberView>,
    pub dcs: Dcs,
    pub paused: bool,
    pub scheduled_switchover: Option<ScheduledSwitchover>,
    /// The members whose `/patroni` or `/cluster` answer could not be read, with why. While
    /// any is, the view is incomplete: the probe says `Unknown` and no action is taken.
    pub unreadable: Vec<(String, Failure)>,
}

impl PatroniView {
    /// Combines the members' answers and their views of the DCS.
    pub fn assemble(cluster: String, max_lag_bytes: u64, inputs: Vec<MemberInput>) -> PatroniView {
        let doc = inputs.iter().find_map(|i| i.cluster.as_ref().ok());
        let mut members: Vec<MemberView> =
            inputs.iter().map(|input| member_view(input, doc)).collect();
        fill_streaming(&mut members, &inputs, doc);
        let paused = doc.is_some_and(|d| d.pause)
            || inputs
                .iter()
                .any(|i| i.status.as_ref().is_ok_and(|s| s.pause));
        PatroniView {
            cluster,
            max_lag_bytes,
            members,
            scheduled_switchover: doc.and_then(|d| d.scheduled_switchover.clone()),
            paused,
            dcs: dcs_state(&inputs),
            unreadable: unreadable(&inputs),
        }
    }

    pub fn dcs_ok(&self) -> bool {
        self.dcs == Dcs::Answered
    }

    /// Every member running as a primary (2 or more is a split brain).
    pub fn leaders(&self) -> Vec<&MemberView> {
        self.members.iter().filter(|m| m.is_leader()).collect()
    }

    /// The leader, when there is exactly one.
    pub fn leader(&self) -> Option<&MemberView> {
        match self.leaders().as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The member the DCS names leader while its own REST API does not answer (refused,
    /// silent): the leader is lost to the probe although its key has not expired yet.
    pub fn unreachable_leader(&self) -> Option<&MemberView> {
        if !self.leaders().is_empty() {
            return None;
        }
        self.members_down().into_iter().find(|m| m.dcs_leader)
    }

    /// Members whose Patroni does not answer (an unreadable answer is not "down": see
    /// [`MemberView::is_unreadable`]).
    pub fn members_down(&self) -> Vec<&MemberView> {
        self.members
            .iter()
            .filter(|m| !m.is_up() && !m.is_unreadable())
            .collect()
    }

    /// Replicas that do not replicate from the leader: postgres not running, missing from
    /// its `replication` list, or on an older timeline.
    pub fn not_streaming(&self) -> Vec<&MemberView> {
        let leader_timeline = self.leader().and_then(|l| l.timeline);
        self.members
            .iter()
            .filter(|m| m.is_replica())
            .filter(|m| {
                !m.is_running()
                    || m.streaming == Some(false)
                    || matches!((m.timeline, leader_timeline), (Some(t), Some(l)) if t < l)
            })
            .collect()
    }

    /// Replicas further behind than `max_lag_bytes`, with their lag.
    pub fn lagging(&self) -> Vec<(&MemberView, u64)> {
        self.members
            .iter()
            .filter(|m| m.is_replica())
            .filter_map(|m| Some((m, m.lag_bytes()?)))
            .filter(|(_, lag)| *lag > self.max_lag_bytes)
            .collect()
    }

    /// Replicas Patroni could promote now: running, streaming (when a leader can tell),
    /// lag known and within `max_lag_bytes`, not tagged `nofailover`.
    pub fn candidates(&self) -> Vec<&MemberView> {
        let leader_timeline = self.leader().and_then(|l| l.timeline);
        self.members
            .iter()
            .filter(|m| m.is_replica() && m.is_running() && !m.nofailover)
            .filter(|m| m.streaming != Some(false))
            .filter(|m| !matches!((m.timeline, leader_timeline), (Some(t), Some(l)) if t < l))
            .filter(|m| m.lag_bytes().is_some_and(|lag| lag <= self.max_lag_bytes))
            .collect()
    }

    /// Would an automatic failover succeed right now? Patroni itself refuses while paused or
    /// without its DCS, and only promotes a candidate.
    pub fn failover_ready(&self) -> bool {
        self.dcs_ok() && !self.paused && !self.candidates().is_empty()
    }

    /// One line per member, for the probe's detail.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self.members.iter().map(describe_member).collect();
        parts.push(match &self.dcs {
            Dcs::Answered => "DCS answers".to_owned(),
            Dcs::Partial { members, failure } => format!(
                "DCS unreachable from {} ({})",
                members.join(", "),
                failure.detail
            ),
            Dcs::Unreachable(f) => format!("DCS unreachable ({})", f.detail),
        });
        if self.paused {
            parts.push("maintenance mode (paused)".into());
        }
        if let Some(s) = &self.scheduled_switchover {
            parts.push(format!(
                "switchover scheduled at {}{}{}",
                s.at,
                s.from
                    .as_ref()
                    .map(|f| format!(" from {f}"))
                    .unwrap_or_default(),
                s.to.as_ref()
                    .map(|t| format!(" to {t}"))
                    .unwrap_or_default()
            ));
        }
        let candidates: Vec<&str> = self.candidates().iter().map(|m| m.name.as_str()).collect();
        parts.push(if self.failover_ready() {
            format!("failover ready ({})", candidates.join(", "))
        } else {
            "failover not ready".to_owned()
        });
        parts.join("; ")
    }
}

/// Every answer that came but could not be decoded, `/patroni` before `/cluster`.
fn unreadable(inputs: &[MemberInput]) -> Vec<(String, Failure)> {
    let failures = |i: &MemberInput| {
        [i.status.as_ref().err(), i.cluster.as_ref().err()]
            .into_iter()
            .flatten()
            .filter(|f| f.is_unreadable())
            .map(|f| (i.name.clone(), f.clone()))
            .collect::<Vec<_>>()
    };
    inputs.iter().flat_map(failures).collect()
}

/// The DCS state from the `/cluster` answers of the members whose Patroni answers (a member
/// that is down altogether says nothing about the DCS).
fn dcs_state(inputs: &[MemberInput]) -> Dcs {
    let failing: Vec<(&str, &Failure)> = inputs
        .iter()
        .filter(|i| i.status.is_ok())
        .filter_map(|i| Some((i.name.as_str(), i.cluster.as_ref().err()?)))
        .collect();
    let answered = inputs.iter().any(|i| i.cluster.is_ok());
    match (failing.first(), answered) {
        (None, true) => Dcs::Answered,
        (Some((_, failure)), true) => Dcs::Partial {
            members: failing.iter().map(|(n, _)| (*n).to_owned()).collect(),
            failure: (*failure).clone(),
        },
        (Some((_, failure)), false) => Dcs::Unreachable((*failure).clone()),
        (None, false) => Dcs::Unreachable(
            inputs
                .iter()
                .find_map(|i| i.cluster.as_ref().err().cloned())
                .unwrap_or_else(|| Failure::new("no_member", "no member configured")),
        ),
    }
}

fn member_view(input: &MemberInput, doc: Option<&ClusterDoc>) -> MemberView {
    let listed = doc.and_then(|d| d.members.iter().find(|m| m.name == input.name));
    let mut view = MemberView {
        name: input.name.clone(),
        url: input.url.clone(),
        down: None,
        role: Role::Unknown,
        state: None,
        timeline: listed.and_then(|m| m.timeline),
        lag: listed.and_then(|m| m.lag),
        streaming: None,
        nofailover: listed.is_some_and(|m| m.tags.nofailover),
        sql_primary: input.sql_primary,
        dcs_leader: listed.is_some_and(|m| matches!(m.role.as_str(), "leader" | "standby_leader")),
    };
    match &input.status {
        Ok(s) => {
            view.role = Role::parse(&s.role);
            view.state = Some(s.state.clone());
            view.timeline = s.timeline.or(view.timeline);
            view.nofailover |= s.tags.nofailover;
        }
        Err(f) => view.down = Some(f.clone()),
    }
    view
}

/// Marks each replica streaming or not from the single answering leader's `replication`
/// list (matched on `application_name`, since a `pg_basebackup` also shows up there). A
/// member whose name `/cluster` does not know (configured URL not matching its `api_url`,
/// and no `name` set) cannot be matched, so it stays `None` rather than "not streaming".
fn fill_streaming(members: &mut [MemberView], inputs: &[MemberInput], doc: Option<&ClusterDoc>) {
    if members.iter().filter(|m| m.is_leader()).count() != 1 {
        return;
    }
    let Some(leader) = members.iter().position(|m| m.is_leader() && m.is_up()) else {
        return;
    };
    let Ok(status) = &inputs[leader].status else {
        return;
    };
    for (i, m) in members.iter_mut().enumerate() {
        let unknown_name = doc.is_some_and(|d| d.members.iter().all(|c| c.name != m.name));
        if i == leader || !m.is_up() || unknown_name {
            continue;
        }
        m.streaming = Some(status.replication.iter().any(|r| {
            r.application_name.as_deref() == Some(m.name.as_str())
                && r.state.as_deref() == Some("streaming")
        }));
    }
}

fn describe_member(m: &MemberView) -> String {
    if let Some(f) = &m.down {
        let sql = match m.sql_primary {
            Some(true) => ", but its postgres runs as primary",
            Some(false) => ", its postgres runs as a replica",
            None => "",
        };
        // An unreadable member answered something: it is not called down.
        let how = if m.is_unreadable() {
            "unreadable"
        } else {
            "down"
        };
        return format!("{} {how} ({}){sql}", m.name, f.detail);
    }
    let role = match &m.role {
        Role::Leader => "leader",
        Role::Replica => "replica",
        Role::Other(r) => r.as_str(),
        Role::Unknown => "unknown role",
    };
    let mut s = format!("{} {role} {}", m.name, m.state.as_deref().unwrap_or("?"));
    if let Some(t) = m.timeline {
        s.push_str(&format!(", timeline {t}"));
    }
    match m.lag {
        Some(Lag::Bytes(n)) => s.push_str(&format!(", lag {n} B")),
        Some(Lag::Unknown) => s.push_str(", lag unknown"),
        None => {}
    }
    if m.streaming == Some(false) {
        s.push_str(", not streaming");
    }
    if m.nofailover {
        s.push_str(", nofailover");
    }
    s
}
