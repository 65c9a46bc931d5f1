//! Property tests of the Lease decisions on hostile Lease objects: the real shape with one
//! part removed or retyped (`leaseDurationSeconds` 0, negative or huge, no holder, an empty
//! holder, `leaseTransitions` at `i32::MAX`). Never a panic; another holder's Lease is never
//! taken before this replica's own configured duration has passed with the record unchanged
//! (two leaders would act at once); taking it never overflows the transition count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::hostile_json::{config, edited};

const CONFIGURED: Duration = Duration::from_secs(15);

fn lease_json() -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "astreinte", "namespace": "astreinte", "resourceVersion": "42" },
        "spec": {
            "holderIdentity": "astreinte-0", "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-23T10:00:00.000000Z",
            "renewTime": "2026-11-23T10:04:55.000000Z", "leaseTransitions": 3
        }
    })
}

fn leases() -> impl Strategy<Value = Option<LeaseSpec>> {
    let pointed = prop::sample::select(vec![
        ("/spec/leaseDurationSeconds", json!(0)),
        ("/spec/leaseDurationSeconds", json!(-1)),
        ("/spec/leaseDurationSeconds", json!(i32::MIN)),
        ("/spec/leaseDurationSeconds", json!(i32::MAX)),
        ("/spec/leaseTransitions", json!(i32::MAX)),
        ("/spec/leaseTransitions", json!(-7)),
        ("/spec/holderIdentity", json!("")),
        ("/spec/holderIdentity", json!(null)),
        ("/spec/holderIdentity", json!("astreinte-1")),
    ])
    .prop_map(|(at, v)| {
        let mut d = lease_json();
        *d.pointer_mut(at).unwrap() = v;
        d
    });
    prop_oneof![Just(lease_json()), edited(lease_json()), pointed].prop_map(|d| {
        let lease: Lease = serde_json::from_value(d).ok()?;
        Some(lease.spec.unwrap_or_default())
    })
}

fn at() -> MicroTime {
    MicroTime("2026-11-23T10:05:00Z".parse().unwrap())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn another_holder_is_never_displaced_early(
        spec in leases(),
        me in prop::sample::select(vec!["astreinte-0", "astreinte-1"]),
        unchanged_ms in 0u64..40_000,
    ) {
        let Some(spec) = spec else {
            return Ok(());
        };
        let unchanged_for = Duration::from_millis(unchanged_ms);
        let held = holder_of(&spec, me, unchanged_for, CONFIGURED);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        match holder.as_deref() {
            None => prop_assert_eq!(held, Holder::Free),
            Some(h) if h == me => prop_assert_eq!(held, Holder::Mine),
            Some(_) if unchanged_for < CONFIGURED => prop_assert_eq!(held, Holder::Other),
            Some(_) => {}
        }
        if held != Holder::Other {
            let next = taken(&spec, me, held == Holder::Mine, at(), 15);
            prop_assert_eq!(next.holder_identity.as_deref(), Some(me));
            prop_assert_eq!(next.lease_duration_seconds, Some(15));
            if held == Holder::Free {
                // Taking it counts one more transition, from a sane count, saturating.
                let n = next.lease_transitions.unwrap();
                prop_assert!(n >= 1);
                prop_assert!(n == i32::MAX || n > spec.lease_transitions.unwrap_or(0));
            } else {
                prop_assert_eq!(next.lease_transitions, spec.lease_transitions);
            }
        }
    }
}

/// Found while writing `another_holder_is_never_displaced_early` (the old code, read against
/// the property): a Lease held by
/// another replica with `leaseDurationSeconds: 0` (or negative, read as 0) counted as expired
/// at once, so this replica took it over while the holder still acted: two leaders.
#[test]
fn a_zero_or_negative_duration_does_not_expire_the_lease() {
    for seconds in [0, -1, i32::MIN] {
        let spec = LeaseSpec {
            holder_identity: Some("astreinte-0".into()),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        };
        let held = holder_of(&spec, "astreinte-1", Duration::from_secs(1), CONFIGURED);
        assert_eq!(held, Holder::Other, "{seconds}");
        let held = holder_of(&spec, "astreinte-1", CONFIGURED, CONFIGURED);
        assert_eq!(held, Holder::Free, "{seconds}");
    }
}

/// Found the same way: taking a Lease at `leaseTransitions: 2147483647` overflowed
/// (a panic in debug builds, a negative count in release).
#[test]
fn transitions_saturate() {
    let spec = LeaseSpec {
        holder_identity: Some("astreinte-0".into()),
        lease_transitions: Some(i32::MAX),
        ..LeaseSpec::default()
    };
    let next = taken(&spec, "astreinte-1", false, at(), 15);
    assert_eq!(next.lease_transitions, Some(i32::MAX));
    assert_eq!(next.holder_identity.as_deref(), Some("astreinte-1"));
}
