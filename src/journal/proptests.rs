//! Property tests of the journal document and its file loader: any document (unicode text,
//! extreme timestamps, arbitrary undo values) survives serialize → parse unchanged; the
//! stored file truncated, bit-flipped, retyped or replaced by anything never panics, and
//! either reads back exactly or leaves the journal with a named problem, remediation held
//! and the file untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::hostile_json::{any_body, any_json, config, edited};
use crate::incident::{Entry, EntryKind, Incident, Incidents};
use crate::level::Level;

fn timestamp() -> impl Strategy<Value = jiff::Timestamp> {
    (
        jiff::Timestamp::MIN.as_second()..=jiff::Timestamp::MAX.as_second(),
        0i32..1_000_000_000,
    )
        .prop_filter_map("in range", |(s, n)| jiff::Timestamp::new(s, n).ok())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,16}",
        "[a-z-]{1,12}",
        Just("ünï \u{202e}🦀\"\\\n".to_owned())
    ]
}

fn level() -> impl Strategy<Value = Level> {
    prop::sample::select(vec![Level::Ok, Level::P4, Level::P3, Level::P2, Level::P1])
}

fn entry() -> impl Strategy<Value = Entry> {
    let kinds = vec![
        EntryKind::Detected,
        EntryKind::Escalated,
        EntryKind::Improved,
        EntryKind::Green,
        EntryKind::Relapsed,
        EntryKind::Decision,
        EntryKind::Action,
        EntryKind::Verification,
        EntryKind::Notification,
        EntryKind::Breached,
        EntryKind::Resolved,
    ];
    (timestamp(), prop::sample::select(kinds), text()).prop_map(|(at, kind, text)| Entry {
        at,
        kind,
        text,
    })
}

fn incident() -> impl Strategy<Value = Incident> {
    (
        (text(), text(), level(), level(), text(), timestamp()),
        (
            prop::option::of(timestamp()),
            prop::option::of(timestamp()),
            any::<bool>(),
            prop::option::of(text()),
            prop::collection::vec(entry(), 0..4),
            prop::option::of(text()),
        ),
    )
        .prop_map(
            |(
                (id, key, level, peak, reason, opened_at),
                (green_since, resolved_at, breached, attached_to, timeline, postmortem),
            )| Incident {
                id,
                key,
                level,
                peak,
                peak_reason: reason.clone(),
                reason,
                opened_at,
                green_since,
                resolved_at,
                breached,
                attached_to,
                timeline,
                postmortem,
            },
        )
}

fn result() -> impl Strategy<Value = ActionResult> {
    prop_oneof![
        Just(ActionResult::Running),
        Just(ActionResult::Succeeded),
        text().prop_map(|reason| ActionResult::Failed { reason }),
        Just(ActionResult::Interrupted),
        Just(ActionResult::Rehearsed),
    ]
}

fn action() -> impl Strategy<Value = ActionRecord> {
    (
        (
            any::<u64>(),
            text(),
            text(),
            text(),
            text(),
            prop::option::of(text()),
        ),
        (
            timestamp(),
            prop::option::of(timestamp()),
            result(),
            text(),
            prop::option::of(text()),
        ),
        (
            // `Some(null)` is written as `null` and read back as `None`: JSON cannot tell
            // them apart, and no actuator records a null undo.
            prop::option::of(any_json().prop_filter("not null", |v| !v.is_null())),
            any::<bool>(),
            prop::option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |(
                (id, rule, action, target, key, incident),
                (started_at, ended_at, result, detail, by),
                (undo, undone, verified),
            )| ActionRecord {
                id,
                rule,
                action,
                target,
                key,
                incident,
                started_at,
                ended_at,
                result,
                detail,
                undo,
                undone,
                verified,
                deadline: (id % 3 == 0).then(|| std::time::Duration::from_secs(id % 1000)),
                interrupted_by: (id % 5 == 0).then(|| "astreinte-1".to_owned()),
                undo_run: (id % 7 == 0).then(|| crate::journal::UndoRun {
                    started_at,
                    by: Some("astreinte-1".to_owned()),
                    result: ActionResult::Succeeded,
                    ended_at,
                    detail: "undone".to_owned(),
                }),
                by,
            },
        )
}

fn doc() -> impl Strategy<Value = JournalDoc> {
    (
        prop::collection::vec(incident(), 0..3),
        prop::collection::vec(incident(), 0..3),
        any::<u64>(),
        prop::collection::vec(action(), 0..5),
    )
        .prop_map(|(open, recent, seq, actions)| JournalDoc {
            schema: SCHEMA,
            incidents: Incidents {
                open: open
                    .into_iter()
                    .map(|i| (i.key.clone(), i))
                    .collect::<BTreeMap<_, _>>(),
                recent: VecDeque::from(recent),
                seq,
            },
            actions,
            action_seq: 0,
        })
}

/// What a stored journal file may hold: a good document, cut short, with bytes flipped,
/// with a part removed or retyped, or anything at all.
fn stored() -> impl Strategy<Value = Vec<u8>> {
    let good = doc()
        .prop_map(|d| serde_json::to_string(&d).unwrap())
        .boxed();
    prop_oneof![
        good.clone().prop_map(String::into_bytes),
        (good.clone(), any::<prop::sample::Index>()).prop_map(|(s, cut)| {
            let b = s.into_bytes();
            let n = cut.index(b.len() + 1);
            b[..n].to_vec()
        }),
        (good.clone(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(s, at, byte)| {
            let mut b = s.into_bytes();
            let i = at.index(b.len());
            b[i] = byte;
            b
        }),
        good.prop_flat_map(|s| edited(serde_json::from_str(&s).unwrap()))
            .prop_map(|v| serde_json::to_vec(&v).unwrap()),
        any_body(),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_document_round_trips(doc in doc()) {
        let data = serde_json::to_string(&doc).unwrap();
        let back = JournalDoc::parse(&data).map_err(TestCaseError::fail)?;
        prop_assert_eq!(back, doc);
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn a_damaged_file_reads_back_or_holds_remediation(bytes in stored()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        std::fs::write(&path, &bytes).unwrap();
        let now = jiff::Timestamp::UNIX_EPOCH;
        let rt = runtime();
        let mut journal = rt.block_on(Journal::open(FileStore::new(&path), now));
        let parsed = std::str::from_utf8(&bytes).ok().map(JournalDoc::parse);
        match parsed {
            Some(Ok(mut expected)) => {
                expected.mark_interrupted(now, None);
                prop_assert!(journal.problem.is_none());
                prop_assert_eq!(&journal.doc, &expected);
                prop_assert!(journal.doc.actions.iter().all(|a| a.result != ActionResult::Running));
            }
            Some(Err(why)) => {
                let problem = journal.problem.clone().unwrap();
                prop_assert!(problem.contains("journal is corrupt"), "{}", problem);
                prop_assert!(problem.contains(&why), "{} / {}", problem, why);
                prop_assert_eq!(&journal.doc, &JournalDoc::default());
            }
            None => {
                let problem = journal.problem.clone().unwrap();
                prop_assert!(problem.contains("not UTF-8"), "{}", problem);
            }
        }
        if journal.problem.is_some() {
            // Remediation is held (no journal entry can be written) and the file is kept.
            prop_assert!(rt.block_on(journal.save()).is_err());
            prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }
}

/// A journal written by a newer astreinte is not read (nor overwritten): saving it back would
/// drop what this version does not know.
#[test]
fn a_newer_schema_is_refused_by_name() {
    let data = format!(
        "{{\"schema\": {}, \"actions\": [], \"budgets_v2\": {{}}}}",
        SCHEMA + 1
    );
    let err = JournalDoc::parse(&data).unwrap_err();
    assert_eq!(
        err,
        "schema 2 is newer than this version of astreinte reads (1)"
    );
}

/// A retyped field is named by its path.
#[test]
fn a_wrong_type_is_named_by_its_path() {
    let data = r#"{"schema": 1, "actions": [{"id": 1, "rule": "r", "action": "a",
        "target": "t", "key": "k", "started_at": 5, "result": {"state": "succeeded"}}]}"#;
    let err = JournalDoc::parse(data).unwrap_err();
    assert!(err.starts_with("actions[0].started_at: "), "{err}");
}

/// Found by `a_document_round_trips` before `serde_json`'s `float_roundtrip` feature: a float
/// in an action's `undo` value read back one unit in the last place off.
#[test]
fn floats_in_undo_values_read_back_exactly() {
    let v = -1.2783736103358725e-71_f64;
    let data = format!(
        r#"{{"schema": 1, "actions": [{{"id": 1, "rule": "r", "action": "a", "target": "t",
        "key": "k", "started_at": "2026-01-01T00:00:00Z", "result": {{"state": "succeeded"}},
        "undo": {{"ratio": {v:e}}}}}]}}"#
    );
    let doc = JournalDoc::parse(&data).unwrap();
    let undo = doc.actions[0].undo.as_ref().unwrap();
    assert_eq!(undo["ratio"].as_f64(), Some(v));
}
