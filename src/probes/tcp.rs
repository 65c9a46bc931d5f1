//! The `tcp` probe: resolve, connect, measure the connect time.

use std::time::Instant;

use tokio::net::TcpStream;

use super::{Finding, Outcome, classify_io};
use crate::config::TcpSpec;

pub(super) async fn probe(spec: &TcpSpec) -> Finding {
    let addrs: Vec<_> = match tokio::net::lookup_host(spec.address.as_str()).await {
        Ok(a) => a.collect(),
        Err(_) => {
            return Finding::new(Outcome::failed("dns_error"), "host name does not resolve");
        }
    };
    let Some(addr) = addrs.first() else {
        return Finding::new(Outcome::failed("dns_error"), "host name has no address");
    };
    let started = Instant::now();
    match TcpStream::connect(addr).await {
        Ok(_) => Finding::healthy(format!(
            "connected to {addr} in {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        )),
        Err(e) => {
            let reason = classify_io(&e);
            Finding::new(
                Outcome::failed(reason),
                format!("connect to {addr}: {}", e.kind()),
            )
        }
    }
}
