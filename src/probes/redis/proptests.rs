//! Property tests of the `INFO` decoders and of what an unreadable reply turns into: any
//! bytes and the captured replies with a line removed, a value replaced (negative, huge,
//! unicode, empty…), a line duplicated, a colon dropped or the reply cut short never panic;
//! every error names its field or line; an unreadable reply makes the probe `Unknown`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;

use super::assess::{InstanceRead, assemble, judge};
use super::info::{self, InfoError};
use super::replication_read;
use crate::config::RedisSpec;
use crate::hostile_json::{any_body, config};
use crate::probes::Outcome;

const FIXTURES: [&str; 8] = [
    "master.healthy",
    "master.replica-broken",
    "master.restarted",
    "replica.after-master-restart",
    "replica.broken-replicaof-dead-port",
    "replica.fixed",
    "replica.healthy",
    "replica.master-down",
];

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/redis/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// Values that break `INFO` decoders.
fn nasty_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("-1".to_owned()),
        Just("-5".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        Just("1.5".to_owned()),
        Just(" 7".to_owned()),
        Just("ünïcødé 🦀".to_owned()),
        Just("up".to_owned()),
        Just("down".to_owned()),
        Just("slave".to_owned()),
        Just("master".to_owned()),
        Just("ip=10.0.0.1,port=-1,state=online,offset=1,lag=0".to_owned()),
        Just("ip=,port=,state=,offset=,lag=".to_owned()),
        Just("ip=a,port=1,state=online,offset=18446744073709551616,lag=-1".to_owned()),
        Just("a=b=c,,,".to_owned()),
        (1usize..5000).prop_map(|n| "9".repeat(n)),
        "[^\r\n]{0,20}",
    ]
}

/// What is done to one line of a captured reply.
#[derive(Debug, Clone)]
enum LineEdit {
    Remove,
    SetValue(String),
    DropColon,
    /// The same key again, later, with another value.
    Duplicate(String),
    /// A line nobody expects before it.
    InsertBefore(String),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        2 => Just(LineEdit::Remove),
        5 => nasty_value().prop_map(LineEdit::SetValue),
        1 => Just(LineEdit::DropColon),
        1 => nasty_value().prop_map(LineEdit::Duplicate),
        1 => "[^\r\n]{0,30}".prop_map(LineEdit::InsertBefore),
    ]
}

/// A captured reply with one line edited: (reply, edited key, edit).
fn edited_reply() -> impl Strategy<Value = (String, String, LineEdit)> {
    prop::sample::select(&FIXTURES[..])
        .prop_map(fixture)
        .prop_flat_map(|text| {
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            (Just(lines.clone()), 0..lines.len(), line_edit())
        })
        .prop_map(|(mut lines, i, edit)| {
            let key = lines[i].split_once(':').map(|(k, _)| k.to_owned());
            let key_or_line = key.clone().unwrap_or_else(|| lines[i].clone());
            match (&edit, key) {
                (LineEdit::Remove, _) => {
                    lines.remove(i);
                }
                (LineEdit::SetValue(v), Some(k)) => lines[i] = format!("{k}:{v}"),
                (LineEdit::DropColon, Some(_)) => lines[i] = lines[i].replacen(':', "", 1),
                (LineEdit::Duplicate(v), Some(k)) => lines.push(format!("{k}:{v}")),
                (LineEdit::InsertBefore(l), _) => lines.insert(i, l.clone()),
                _ => {}
            }
            (lines.join("\r\n") + "\r\n", key_or_line, edit)
        })
}

/// A reply as decoded by the map the decoder builds: the last value of a key wins.
fn value_of<'a>(reply: &'a str, key: &str) -> Option<&'a str> {
    reply
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .next_back()
}

/// Every error names something that is really wrong in the reply.
fn error_is_true(reply: &str, err: &InfoError) -> Result<(), TestCaseError> {
    let message = err.to_string();
    match err {
        InfoError::Missing(field) => {
            prop_assert!(message.contains(field));
            prop_assert!(value_of(reply, field).is_none(), "{message}");
        }
        InfoError::BadValue { field, .. } => {
            prop_assert!(message.contains(field));
            let key = field.split('.').next().unwrap_or(field);
            if key != "slaveN" {
                prop_assert!(value_of(reply, key).is_some(), "{message}");
            }
        }
        InfoError::MalformedLine { line } => {
            let text = reply.lines().nth(line - 1).unwrap_or_default();
            prop_assert!(!text.contains(':') && !text.is_empty() && !text.starts_with('#'));
            prop_assert!(message.contains(&line.to_string()));
        }
        InfoError::TooLarge(_) | InfoError::NotUtf8 => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_decode_or_fail_with_a_name(body in any_body()) {
        for e in [
            info::parse_replication(&body).err(),
            info::parse_stats(&body).err(),
            info::parse_persistence(&body).err(),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(text) = std::str::from_utf8(&body) {
                error_is_true(text, &e)?;
            }
        }
    }

    #[test]
    fn an_edited_reply_decodes_or_names_what_is_wrong((reply, key, edit) in edited_reply()) {
        match info::parse_replication(reply.as_bytes()) {
            Ok(r) => {
                // What decoded is what the reply says.
                let said = value_of(&reply, "master_repl_offset").map(|v| v.trim().parse::<u64>());
                prop_assert_eq!(said, Some(Ok(r.master_repl_offset)));
            }
            Err(e) => {
                error_is_true(&reply, &e)?;
                if let (LineEdit::SetValue(_), InfoError::BadValue { field, .. }) = (&edit, &e) {
                    let named = *field == key
                        || (key.starts_with("slave") && field.starts_with("slaveN"));
                    prop_assert!(named, "edited `{key}`, error names `{field}`");
                }
            }
        }
    }

    #[test]
    fn a_cut_reply_never_panics(
        name in prop::sample::select(&FIXTURES[..]),
        cut in 0usize..2000,
    ) {
        let text = fixture(name);
        let body = &text.as_bytes()[..cut.min(text.len())];
        if let Err(e) = info::parse_replication(body) {
            if let Ok(text) = std::str::from_utf8(body) {
                error_is_true(text, &e)?;
            }
        }
    }
}

fn spec() -> RedisSpec {
    RedisSpec {
        instances: vec![],
        username: None,
        password: None,
        max_lag_bytes: 1024,
        min_hit_ratio: 0.8,
        hit_ratio_window: Duration::from_secs(60),
        min_lookups: 10,
    }
}

/// A master and a replica, each replying with its captured `INFO replication`, an edited
/// one, or anything.
fn pair_replies() -> impl Strategy<Value = Vec<String>> {
    let reply = |name: &'static str| {
        prop_oneof![
            2 => Just(fixture(name)),
            3 => edited_reply().prop_map(|(r, _, _)| r),
            1 => any_body().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    };
    (reply("master.healthy"), reply("replica.healthy")).prop_map(|(a, b)| vec![a, b])
}

proptest! {
    #![proptest_config(config(256))]

    /// An unreadable reply is `Unknown protocol_error`, never Healthy, Degraded or Failed
    /// (which rules act on), unless two instances clearly say they are masters.
    #[test]
    fn an_unreadable_reply_is_unknown(replies in pair_replies()) {
        let reads: Vec<(String, InstanceRead)> = replies
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let read = match replication_read(r.as_bytes()) {
                    Ok(replication) => InstanceRead::Answered {
                        replication,
                        stats: None,
                        persistence: None,
                        dataset: None,
                    },
                    Err(what) => InstanceRead::ProtocolError { what },
                };
                (format!("127.0.0.1:{}", 26379 + i), read)
            })
            .collect();
        let view = assemble(&reads);
        let finding = judge("r", &view, &spec(), None, &Default::default());
        let unreadable = reads
            .iter()
            .any(|(_, r)| matches!(r, InstanceRead::ProtocolError { .. }));
        if unreadable {
            if view.masters.len() >= 2 {
                prop_assert_eq!(finding.outcome, Outcome::failed("multiple_masters"));
            } else {
                prop_assert_eq!(finding.outcome, Outcome::unknown("protocol_error"));
            }
        }
    }
}
