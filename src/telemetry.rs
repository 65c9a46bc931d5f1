//! Logging: tracing-subscriber, human-readable on a terminal or JSON, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty with colours on a terminal, plain text otherwise.
    Auto,
    Text,
    Json,
}

/// The kube client's own trace layer logs an ERROR line for every failed request
/// ("failed with error …"): 138 of them in a 50 s apiserver outage, on top of astreinte's own
/// line for each failure, which names what was being done. Off unless `RUST_LOG` names
/// `kube_client` itself.
const KUBE_CLIENT_TRACE: &str = "kube_client::client::builder=off";

/// The filter: `RUST_LOG` (default `info`), with the kube client's trace layer off.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let spec = rust_log.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    if spec.contains("kube_client") {
        return filter;
    }
    match KUBE_CLIENT_TRACE.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` filter.
pub fn init(format: LogFormat) {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Auto => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
