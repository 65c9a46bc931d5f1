//! How a failed request to a member becomes a [`Failure`]: nothing before the deadline
//! (refused, silent, closed without a word) is a member down; a status line and headers
//! followed by a body that stalls or is cut off is an answer that cannot be read.

use super::view::{BODY_CUT_SHORT, BODY_STALLED, Failure};
use crate::probes::classify::classify_chain;

/// No answer to read: refused, silent until the deadline (no status line), closed without a
/// word, or unresolvable. The member is down (for `/cluster`: its DCS does not answer).
pub(super) fn transport(path: &str, e: &reqwest::Error) -> Failure {
    let (reason, what) = if e.is_timeout() {
        ("timeout", "no answer before the timeout".to_owned())
    } else {
        match classify_chain(e) {
            "connection_refused" => ("connection_refused", "connection refused".to_owned()),
            "dns_error" => ("dns_error", "host name does not resolve".to_owned()),
            "tls_error" => ("tls_error", "TLS handshake failed".to_owned()),
            "timeout" => ("timeout", "no answer before the timeout".to_owned()),
            other if closed_without_answer(e) || other == "connection_closed" => (
                "connection_closed",
                "connection closed without an answer".to_owned(),
            ),
            other => (other, format!("request failed ({other})")),
        }
    };
    Failure::new(reason, format!("GET {path}: {what}"))
}

/// A body that began (status line and headers came) but did not end: it stalled until the
/// deadline, or the connection closed before `Content-Length` bytes. Unreadable, like
/// garbage ([`Failure::is_unreadable`]), not a member down.
pub(super) fn incomplete_body(path: &str, status: u16, timed_out: bool) -> Failure {
    if timed_out {
        Failure::new(
            BODY_STALLED,
            format!("GET {path}: HTTP {status}, then the body stalled after the headers"),
        )
    } else {
        Failure::new(
            BODY_CUT_SHORT,
            format!("GET {path}: HTTP {status}, then the body was cut short (connection closed)"),
        )
    }
}

/// Patroni closes `/cluster` without a word when its DCS does not answer (hyper says
/// "connection closed before message completed").
fn closed_without_answer(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("connection closed") || text.contains("IncompleteMessage") {
            return true;
        }
        cur = err.source();
    }
    false
}
