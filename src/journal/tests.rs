//! The journal's read-back, merge, fence, stale-record and outage behaviour, on a file and
//! an in-memory store.

use super::*;

fn record(id: u64, result: ActionResult) -> ActionRecord {
    ActionRecord {
        id,
        rule: "api-restart".into(),
        action: "rollout_restart".into(),
        target: "ns/deployment/api".into(),
        key: "rag".into(),
        incident: None,
        started_at: jiff::Timestamp::UNIX_EPOCH,
        ended_at: None,
        result,
        detail: String::new(),
        undo: None,
        undone: false,
        verified: None,
        by: None,
        deadline: None,
        interrupted_by: None,
        undo_run: None,
    }
}

#[tokio::test]
async fn a_running_action_reads_back_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut j = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    j.doc.push_action(record(1, ActionResult::Running));
    j.save().await.unwrap();
    drop(j); // a crash: nothing else is written
    let j = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    assert_eq!(j.doc.actions[0].result, ActionResult::Interrupted);
    assert!(j.doc.actions[0].counts());
}

#[tokio::test]
async fn a_corrupt_journal_is_kept_and_holds_remediation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    std::fs::write(&path, "{\"schema\": 1, \"actions\": [tru").unwrap();
    let mut j = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    assert!(j.problem.as_deref().unwrap().contains("corrupt"));
    assert!(j.save().await.is_err());
    assert!(
        std::fs::read_to_string(&path).unwrap().ends_with("tru"),
        "left untouched"
    );
}

#[tokio::test]
async fn a_conflicting_writer_is_merged_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut a = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    a.save().await.unwrap();
    let mut b = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    b.doc.push_action(record(7, ActionResult::Succeeded));
    b.save().await.unwrap();
    a.doc.push_action(record(8, ActionResult::Succeeded));
    a.save().await.unwrap();
    let back = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    let ids: Vec<u64> = back.doc.actions.iter().map(|x| x.id).collect();
    assert!(ids.contains(&7) && ids.contains(&8), "{ids:?}");
}

fn by(mut r: ActionRecord, writer: &str) -> ActionRecord {
    r.by = Some(writer.into());
    r
}

async fn shared(path: &std::path::Path, writer: &str) -> Journal<FileStore> {
    Journal::open_as(
        FileStore::new(path),
        Some(writer.into()),
        jiff::Timestamp::now(),
    )
    .await
}

#[tokio::test]
async fn a_replica_never_overwrites_another_replicas_record_with_its_stale_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut a = shared(&path, "a").await;
    a.doc.push_action(by(record(1, ActionResult::Running), "a"));
    a.save_fenced().await.unwrap();
    let mut b = shared(&path, "b").await;
    b.refresh().await.unwrap();
    // a finishes its action; b, with its old copy, writes something else.
    a.doc.actions[0].result = ActionResult::Succeeded;
    a.save().await.unwrap();
    b.doc.actions[0].result = ActionResult::Running;
    b.doc
        .push_action(by(record(2, ActionResult::Succeeded), "b"));
    b.save().await.unwrap();
    let back = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    let mut results: Vec<(u64, &ActionResult)> =
        back.doc.actions.iter().map(|x| (x.id, &x.result)).collect();
    results.sort_by_key(|(id, _)| *id);
    assert_eq!(
        results,
        [(1, &ActionResult::Succeeded), (2, &ActionResult::Succeeded)],
        "a's record as a wrote it, b's as b wrote it"
    );
}

#[tokio::test]
async fn a_fenced_save_on_a_stale_view_is_refused_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut a = shared(&path, "a").await;
    a.save().await.unwrap();
    let mut b = shared(&path, "b").await;
    a.doc.push_action(by(record(1, ActionResult::Running), "a"));
    a.save_fenced().await.unwrap();
    // b decided on a view without a's action: its new record must not be stored.
    b.doc.push_action(by(record(1, ActionResult::Running), "b"));
    assert!(matches!(
        b.save_fenced().await,
        Err(StoreError::Conflict { .. })
    ));
    b.doc.actions.retain(|x| x.by.as_deref() != Some("b"));
    b.refresh().await.unwrap();
    assert_eq!(b.doc.actions.len(), 1);
    assert_eq!(b.doc.actions[0].by.as_deref(), Some("a"));
    assert_eq!(b.doc.next_action_id(), 2, "ids stay unique across replicas");
}

#[tokio::test]
async fn a_late_write_of_an_abandoned_action_is_dropped_by_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut a = shared(&path, "a").await;
    a.save().await.unwrap();
    // A write a timed out on, landing later (simulated by a second handle).
    let mut late = shared(&path, "a").await;
    late.doc
        .push_action(by(record(1, ActionResult::Running), "a"));
    late.save_fenced().await.unwrap();
    // a never started it: its next save drops it.
    a.save().await.unwrap();
    let back = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
    assert!(back.doc.actions.is_empty(), "{:?}", back.doc.actions);
}

/// A store whose answers can be cut: `load` and `save` fail as unavailable while down.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

impl Store for &Flaky {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        self.inner.load().await
    }

    async fn save(&self, data: &str, expected: Option<&str>) -> Result<String, StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        self.inner.save(data, expected).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_journal_not_read_during_an_outage_is_read_again_once_the_store_answers() {
    let store = Flaky::default();
    let now = jiff::Timestamp::now();
    let mut seed = Journal::open(&store, now).await;
    seed.doc.push_action(record(1, ActionResult::Succeeded));
    seed.save().await.unwrap();
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut j = Journal::open_as(&store, Some("b".into()), now).await;
    assert!(j.unread());
    let problem = j.problem.clone().unwrap();
    assert!(problem.contains("could not be read yet"), "{problem}");
    assert!(
        j.backing_off(),
        "nothing is written over a journal not read"
    );
    assert!(j.save().await.is_err());
    // Within the backoff pause, no call; after it, still down: held, retried later.
    assert!(!j.retry_read(now).await);
    tokio::time::advance(MIN_PAUSE).await;
    assert!(!j.retry_read(now).await);
    assert!(j.unread() && j.problem.is_some());

    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(MAX_PAUSE).await;
    assert!(j.retry_read(now).await);
    assert!(!j.unread() && j.problem.is_none());
    assert_eq!(
        j.doc.actions.len(),
        1,
        "the stored journal, not an empty one"
    );
    j.save().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_journal_is_never_read_again_on_its_own() {
    let store = Flaky::default();
    store
        .inner
        .save("{\"schema\": 1, \"actions\": [tru", None)
        .await
        .unwrap();
    let mut j = Journal::open_as(&store, Some("b".into()), jiff::Timestamp::now()).await;
    assert!(j.problem.as_deref().unwrap().contains("corrupt"));
    assert!(
        !j.unread(),
        "read, and corrupt: not a store that did not answer"
    );
    tokio::time::advance(MAX_PAUSE).await;
    assert!(!j.retry_read(jiff::Timestamp::now()).await);
    assert!(j.problem.as_deref().unwrap().contains("corrupt"));
}

#[tokio::test]
async fn a_shared_journal_marks_at_open_only_this_replicas_running_actions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut a = shared(&path, "a").await;
    a.doc.push_action(by(record(1, ActionResult::Running), "a"));
    a.doc.push_action(by(record(2, ActionResult::Running), "b"));
    a.save().await.unwrap();
    let b = shared(&path, "b").await;
    let results: Vec<_> = b.doc.actions.iter().map(|x| x.result.clone()).collect();
    assert_eq!(
        results,
        [ActionResult::Running, ActionResult::Interrupted],
        "a's action is a's to end; b's own was cut off by b's stop"
    );
}

#[tokio::test]
async fn a_stale_record_marked_by_a_replica_survives_its_merge_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut dead = shared(&path, "a").await;
    let mut r = by(record(1, ActionResult::Running), "a");
    r.deadline = Some(std::time::Duration::from_secs(10));
    dead.doc.push_action(r);
    dead.save_fenced().await.unwrap();
    drop(dead);
    let mut b = shared(&path, "b").await;
    let now = jiff::Timestamp::UNIX_EPOCH + std::time::Duration::from_secs(3600);
    let expired = b.expire_stale(now, |_| std::time::Duration::from_secs(300));
    assert_eq!(expired.len(), 1);
    // Someone else writes in between: b's save conflicts, merges, and keeps its marking.
    let mut c = shared(&path, "c").await;
    c.doc
        .push_action(by(record(2, ActionResult::Succeeded), "c"));
    c.save().await.unwrap();
    b.save().await.unwrap();
    let back = Journal::open(FileStore::new(&path), now).await;
    let first = back.doc.actions.iter().find(|x| x.id == 1).unwrap();
    assert_eq!(first.result, ActionResult::Interrupted);
    assert_eq!(first.interrupted_by.as_deref(), Some("b"));
    assert!(back.doc.actions.iter().any(|x| x.id == 2));
}

#[tokio::test]
async fn a_pending_verification_settled_by_a_replica_survives_its_merge_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let mut dead = shared(&path, "a").await;
    dead.doc
        .push_action(by(record(1, ActionResult::Succeeded), "a"));
    dead.save_fenced().await.unwrap();
    drop(dead);
    let mut b = shared(&path, "b").await;
    let now = jiff::Timestamp::UNIX_EPOCH + std::time::Duration::from_secs(3600);
    let window = Some(std::time::Duration::from_secs(60));
    let settled = b
        .doc
        .settle_unverified(now, Some("b"), |_| false, |_| window);
    assert_eq!(settled.len(), 1);
    // Someone else writes in between: b's save conflicts, merges, and keeps its settling.
    let mut c = shared(&path, "c").await;
    c.doc
        .push_action(by(record(2, ActionResult::Succeeded), "c"));
    c.save().await.unwrap();
    b.save().await.unwrap();
    let back = Journal::open(FileStore::new(&path), now).await;
    let first = back.doc.actions.iter().find(|x| x.id == 1).unwrap();
    assert_eq!(first.verified, Some(false));
    assert_eq!(first.interrupted_by.as_deref(), Some("b"));
    assert!(back.doc.actions.iter().any(|x| x.id == 2));
}
