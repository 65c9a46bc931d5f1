//! astreinte ("on call"): the night shift for teams that run PostgreSQL (Patroni), Redis and
//! HTTP services on Kubernetes. It probes the stack on a schedule, scores what it sees against
//! the P1–P4 levels of the team's runbooks, exports everything as Prometheus metrics and, where
//! policy allows, applies small, bounded, verified remediations.
//!
//! # Data flow
//!
//! ```text
//!  probes.toml ─┐
//! remediations ─┴─► config (load, validate) ──► Arc<Config>
//!                                                  │
//!   scheduler ── one task per probe, spread start, skip missed ticks
//!       │
//!       ▼
//!   probes::Prober::observe (timeout, body cap, fresh connection)
//!       │ Observation { outcome: Healthy | Degraded | Failed | Unknown, detail, latency }
//!       ▼
//!   engine (one task, in order) ──► metrics (/metrics)
//!                               └─► status board (/status, astreinte check)
//! ```
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | `main.rs` | the CLI (clap); thin |
//! | [`actuators`] | bounded actions (Kubernetes: restart, scale, patches, pod delete) |
//! | [`app`] | wiring: build from config, spawn tasks, stop cleanly |
//! | [`config`] | loading (figment: TOML + `ASTREINTE_*` env), serde types, `validate()` |
//! | [`probes`] | the outcome types and one file per probe kind |
//! | [`reload`] | live policy from a watched ConfigMap, keeping the last good one |
//! | [`scheduler`] | when each probe runs |
//! | [`engine`] | what happens to each observation |
//! | [`journal`] | action history, incidents and budgets, persisted (file or Kubernetes) |
//! | [`leader`] | leader election on a Lease: only the leader acts |
//! | [`metrics`] | every exported metric, registered in one place |
//! | [`notify`] | incident notices (seed template) to webhooks, Slack and Alertmanager |
//! | [`status`] | the last result of each probe |
//! | [`server`] | `/metrics`, `/healthz`, `/readyz`, `/status` |
//! | [`clients`] | the Kubernetes API client and its error classification |
//! | [`web`] | the HTML status page at `/` |
//! | [`client`] | `astreinte incidents` / `explain`: read a running daemon |
//! | [`when`] | times for people: policy time zone, "3 min ago" |
//! | [`check`] | `astreinte check`: every probe once, as a table |
//! | [`level`] | the P1–P4 incident levels |
//! | [`testbed`] | real local servers for the tests and `astreinte demo` |
//! | [`demo`] | `astreinte demo`: the local stack, its configuration, the daemon on it, faults |
//! | [`shutdown`], [`telemetry`] | signals; logs |

pub mod actuators;
pub mod app;
pub mod check;
pub mod client;
pub mod clients;
pub mod config;
pub mod demo;
pub mod engine;
pub mod incident;
pub mod journal;
pub mod leader;
pub mod level;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod postmortem;
pub mod probes;
pub mod reload;
pub mod remediation;
pub mod scheduler;
pub mod score;
pub mod server;
pub mod shutdown;
pub mod simulate;
pub mod status;
pub mod telemetry;
pub mod testbed;
pub mod web;
pub mod when;
