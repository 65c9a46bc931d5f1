//! Reading a journal ConfigMap shared by replicas after the fact, from the Kubernetes API test
//! server: the stored document, its write log (every version ever stored), the Lease's
//! history, and whether the journal, the action target and the replicas' metrics agree.

use std::time::{Duration, Instant};

use astreinte::journal::{ActionResult, JournalDoc};

/// The Lease's history: (when, holderIdentity) after each write of it.
pub type LeaseHistory = [(jiff::Timestamp, Option<String>)];

use super::action_sink::ActionSink;
use super::kube_api::KubeApi;
use super::replica::Replica;

/// The journal as stored in the ConfigMap `astreinte/name` (it must parse: a torn or
/// interleaved write would not).
pub fn stored_journal(api: &KubeApi, name: &str) -> Option<JournalDoc> {
    let cm = api.get("v1", "configmaps", "astreinte", name)?;
    let data = cm["data"]["journal.json"].as_str()?;
    Some(
        serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("the journal is not valid: {e}\n{data}")),
    )
}

/// Every version of the journal ConfigMap `name` the server stored, with when.
fn versions(api: &KubeApi, name: &str) -> Vec<(jiff::Timestamp, JournalDoc)> {
    api.writes()
        .into_iter()
        .filter(|w| w.resource == "configmaps" && w.name == name)
        .map(|w| {
            let data = w.object["data"]["journal.json"]
                .as_str()
                .unwrap_or_default();
            let doc = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("a stored journal is not valid: {e}\n{data}"));
            (w.at, doc)
        })
        .collect()
}

/// Who held the Lease at `t`, from the server's history of its writes.
pub fn holder_at(
    history: &[(jiff::Timestamp, Option<String>)],
    t: jiff::Timestamp,
) -> Option<&str> {
    history
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .and_then(|(_, h)| h.as_deref())
}

/// When the record (by, id) was first stored.
pub fn first_stored(api: &KubeApi, name: &str, by: &str, id: u64) -> Option<jiff::Timestamp> {
    versions(api, name).into_iter().find_map(|(at, doc)| {
        doc.actions
            .iter()
            .any(|a| a.id == id && a.by.as_deref() == Some(by))
            .then_some(at)
    })
}

/// Every (by, id, result) ever stored with a final result.
pub fn ever_finished(api: &KubeApi, name: &str) -> Vec<(String, u64, ActionResult)> {
    let mut all: Vec<(String, u64, ActionResult)> = vec![];
    for (_, doc) in versions(api, name) {
        for a in doc.actions {
            let key = (a.by.clone().unwrap_or_default(), a.id, a.result.clone());
            if a.result != ActionResult::Running && !all.contains(&key) {
                all.push(key);
            }
        }
    }
    all
}

/// Why the journal is not settled yet: an action running, or counts that differ between the
/// journal, the action target and each replica's `astreinte_remediation_actions_total`.
async fn unsettled(
    api: &KubeApi,
    name: &str,
    sink: &ActionSink,
    replicas: &[Replica],
) -> Result<JournalDoc, String> {
    let doc = stored_journal(api, name).ok_or("no journal")?;
    if sink.in_flight() > 0 {
        return Err("an action is in flight at the target".into());
    }
    if let Some(a) = doc
        .actions
        .iter()
        .find(|a| a.result == ActionResult::Running)
    {
        return Err(format!("still running in the journal: {a:?}"));
    }
    for r in replicas {
        let journaled = doc
            .actions
            .iter()
            .filter(|a| a.by.as_deref() == Some(&*r.identity))
            .count();
        let called = sink.calls().iter().filter(|c| c.who == r.identity).count();
        let counted = r.sum("astreinte_remediation_actions_total", "").await;
        if journaled != called || counted != Some(called as f64) {
            return Err(format!(
                "{}: {journaled} in the journal, {called} calls at the target, {counted:?} in its metrics",
                r.identity
            ));
        }
    }
    Ok(doc)
}

/// Waits (40 s) until the journal settles; panics with why it did not, and `context`.
pub async fn settle(
    api: &KubeApi,
    name: &str,
    sink: &ActionSink,
    replicas: &[Replica],
    context: &str,
) -> JournalDoc {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match unsettled(api, name, sink, replicas).await {
            Ok(doc) => return doc,
            Err(why) if Instant::now() > deadline => {
                let tails: Vec<String> = replicas
                    .iter()
                    .map(|r| format!("--- {} ---\n{}", r.identity, r.log_tail(40)))
                    .collect();
                panic!(
                    "the journal did not settle: {why}\n{context}\njournal: {:#?}\nsink: {:#?}\n{}",
                    stored_journal(api, name).map(|j| j.actions),
                    sink.calls(),
                    tails.join("\n")
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Never two leaders acting at once, from the outside: no two actions of `journal` (every
/// writer) overlap, nor two calls at the action target; each action was stored (and its call
/// made) while its replica held the Lease; ids are unique; and every action ever stored as
/// finished is still in the journal, as it ended (no entry lost). `context` explains a failure.
pub fn assert_one_at_a_time(
    api: &KubeApi,
    name: &str,
    journal: &JournalDoc,
    sink: &ActionSink,
    history: &LeaseHistory,
    context: &str,
) {
    for w in journal.actions.windows(2) {
        let ended = w[0].ended_at.unwrap();
        assert!(
            w[1].started_at >= ended,
            "overlap: {:?} and {:?}\n{context}",
            w[0],
            w[1]
        );
    }
    assert_eq!(sink.max_in_flight(), 1, "{context}");
    for w in sink.calls().windows(2) {
        assert!(
            w[1].started >= w[0].ended,
            "overlap at the target: {w:?}\n{context}"
        );
    }
    let mut ids = vec![];
    for a in &journal.actions {
        let by = a.by.as_deref().unwrap();
        assert!(!ids.contains(&a.id), "duplicate id {}: {context}", a.id);
        ids.push(a.id);
        let stored = first_stored(api, name, by, a.id).unwrap();
        assert_eq!(
            holder_at(history, stored),
            Some(by),
            "{a:?} stored at {stored}\n{context}"
        );
    }
    for c in sink.calls() {
        assert_eq!(
            holder_at(history, c.started),
            Some(c.who.as_str()),
            "{c:?}\n{context}"
        );
    }
    for (by, id, result) in ever_finished(api, name) {
        let kept = journal
            .actions
            .iter()
            .find(|a| a.id == id && a.by.as_deref() == Some(&*by));
        assert_eq!(
            kept.map(|a| &a.result),
            Some(&result),
            "({by}, {id}) lost\n{context}"
        );
    }
}
