//! The `http` probe: status, optional body regex, latency against an SLO, a body-size cap,
//! redirects off by default, headers and a bearer token from env or a file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::redirect::Policy;

use super::classify::classify_chain;
use super::{Finding, Measurement, Outcome};
use crate::config::HttpSpec;
use crate::metrics::GaugeName;

/// Two clients built once (with and without redirects); neither keeps idle connections.
#[derive(Clone)]
pub(super) struct Clients {
    direct: reqwest::Client,
    follow: reqwest::Client,
    regexes: Arc<Mutex<HashMap<String, Arc<Regex>>>>,
}

impl Clients {
    pub(super) fn new() -> Result<Self, reqwest::Error> {
        let build = |policy| {
            reqwest::Client::builder()
                .redirect(policy)
                .pool_max_idle_per_host(0)
                .user_agent(concat!("astreinte/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Ok(Clients {
            direct: build(Policy::none())?,
            follow: build(Policy::limited(10))?,
            regexes: Arc::default(),
        })
    }

    fn regex(&self, pattern: &str) -> Result<Arc<Regex>, regex::Error> {
        let mut cache = self.regexes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(pattern) {
            return Ok(r.clone());
        }
        let r = Arc::new(Regex::new(pattern)?);
        cache.insert(pattern.to_owned(), r.clone());
        Ok(r)
    }

    pub(super) async fn probe(&self, id: &str, spec: &HttpSpec, timeout: Duration) -> Finding {
        let client = if spec.follow_redirects {
            &self.follow
        } else {
            &self.direct
        };
        let method = match reqwest::Method::from_bytes(spec.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Finding::new(Outcome::unknown("bad_config"), "bad HTTP method"),
        };
        let mut request = client.request(method, &spec.url).timeout(timeout);
        for (name, value) in &spec.headers {
            request = request.header(name, value);
        }
        if let Some(token) = &spec.bearer_token {
            match token.read().await {
                Ok(t) => request = request.bearer_auth(t.expose()),
                Err(e) => {
                    return Finding::new(
                        Outcome::unknown("secret_unavailable"),
                        format!("bearer token: {e}"),
                    );
                }
            }
        }
        let started = Instant::now();
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > spec.max_body_bytes {
                        return Finding::new(
                            Outcome::failed("body_too_large"),
                            format!("body larger than {} bytes", spec.max_body_bytes),
                        )
                        .with(status_gauge(id, status));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return transport_failure(&e).with(status_gauge(id, status)),
            }
        }
        let latency = started.elapsed();
        judge(self, spec, status, &body, latency).with(status_gauge(id, status))
    }
}

fn status_gauge(id: &str, status: reqwest::StatusCode) -> Measurement {
    Measurement::new(
        GaugeName::HttpStatusCode,
        &[("probe", id)],
        f64::from(status.as_u16()),
    )
}

fn transport_failure(e: &reqwest::Error) -> Finding {
    let reason = if e.is_timeout() {
        "timeout"
    } else {
        classify_chain(e)
    };
    let detail = match reason {
        "timeout" => "no answer before the timeout".to_owned(),
        "connection_refused" => "connection refused".to_owned(),
        "dns_error" => "host name does not resolve".to_owned(),
        "tls_error" => "TLS handshake failed".to_owned(),
        other => format!("request failed ({other})"),
    };
    Finding::new(Outcome::failed(reason), detail)
}

fn judge(
    clients: &Clients,
    spec: &HttpSpec,
    status: reqwest::StatusCode,
    body: &[u8],
    latency: Duration,
) -> Finding {
    let status_ok = if spec.expect_status.is_empty() {
        status.is_success()
    } else {
        spec.expect_status.contains(&status.as_u16())
    };
    if !status_ok {
        return Finding::new(
            Outcome::failed("bad_status"),
            format!("HTTP {}", status.as_u16()),
        );
    }
    if let Some(pattern) = &spec.body_regex {
        let re = match clients.regex(pattern) {
            Ok(re) => re,
            Err(_) => return Finding::new(Outcome::unknown("bad_config"), "bad body_regex"),
        };
        if !re.is_match(&String::from_utf8_lossy(body)) {
            return Finding::new(
                Outcome::failed("body_mismatch"),
                format!("HTTP {}, body does not match /{pattern}/", status.as_u16()),
            );
        }
    }
    if let Some(slo) = spec.slo_latency
        && latency > slo
    {
        let over = (latency.as_secs_f64() / slo.as_secs_f64() - 1.0) * 100.0;
        return Finding::new(
            Outcome::degraded(over, "slow"),
            format!(
                "HTTP {} in {:.0} ms, {over:.0} % over the {} ms objective",
                status.as_u16(),
                latency.as_secs_f64() * 1000.0,
                slo.as_millis()
            ),
        );
    }
    Finding::healthy(format!("HTTP {}", status.as_u16()))
}
