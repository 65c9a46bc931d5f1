//! `assess` on a member whose answer began (status line and headers) and whose body then
//! stalled or was cut off: unreadable like garbage, never down, never lagging.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use super::*;
use crate::probes::patroni::{BODY_CUT_SHORT, BODY_STALLED};

fn incomplete(case: &mut Case, name: &str, reason: &'static str) {
    let i = case.inputs.iter_mut().find(|i| i.name == name).unwrap();
    i.status = Err(Failure::new(
        reason,
        format!("GET /patroni: HTTP 200, then {reason}"),
    ));
}

fn member_up(finding: &crate::probes::Finding, member: &str) -> Option<f64> {
    finding
        .measurements
        .iter()
        .find(|m| m.gauge == GaugeName::PatroniMemberUp && m.labels[1].1 == member)
        .map(|m| m.value)
}

#[test]
fn a_stalled_or_cut_body_is_unreadable_not_down() {
    for reason in [BODY_STALLED, BODY_CUT_SHORT] {
        // The leader: not `no_leader` (it may be fine).
        let mut case = Case::healthy();
        incomplete(&mut case, "pg1", reason);
        let view = case.view();
        assert!(view.members_down().is_empty(), "{}", view.summary());
        let finding = assess(&view);
        assert_eq!(finding.outcome, Outcome::unknown("unreadable_answer"));
        assert!(
            finding.detail.contains(&format!(
                "pg1 unreadable (GET /patroni: HTTP 200, then {reason})"
            )),
            "{}",
            finding.detail
        );
        assert_eq!(member_up(&finding, "pg1"), None);

        // A lagging replica: neither down nor lagging, and the others still shown.
        let mut case = Case::healthy();
        case.listed("pg3").lag = Some(Lag::Bytes(50 * MIB));
        incomplete(&mut case, "pg3", reason);
        let view = case.view();
        assert!(view.members_down().is_empty(), "{}", view.summary());
        assert!(view.lagging().is_empty(), "{}", view.summary());
        assert!(view.not_streaming().is_empty(), "{}", view.summary());
        let finding = assess(&view);
        assert_eq!(finding.outcome, Outcome::unknown("unreadable_answer"));
        assert!(!finding.detail.contains("pg3 down"), "{}", finding.detail);
        assert!(
            finding.detail.contains("pg1 leader running"),
            "{}",
            finding.detail
        );
        assert_eq!(member_up(&finding, "pg3"), None);
        assert_eq!(member_up(&finding, "pg2"), Some(1.0));
    }
}

/// Silence before the headers stays a member down.
#[test]
fn no_answer_at_all_is_still_down() {
    let mut case = Case::healthy();
    case.down("pg3", None);
    let view = case.view();
    assert_eq!(view.members_down().len(), 1);
    assert!(!view.members[2].is_unreadable());
    let finding = assess(&view);
    assert_eq!(finding.outcome, Outcome::degraded(1.0, "member_down"));
    assert!(finding.detail.contains("pg3 down ("), "{}", finding.detail);
}
