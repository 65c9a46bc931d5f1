//! astreinte ("on call"): the night shift for teams that run PostgreSQL (Patroni), Redis and
//! HTTP services on Kubernetes. It probes the stack on a schedule, scores what it sees against
//! the P1–P4 levels of the team's runbooks, exports everything as Prometheus metrics and, where
//! policy allows, applies small, bounded, verified remediations.
//!
//! # Data flow
//!
//! ```text
//!  probes.toml ─┐                       ┌── reload: policy ConfigMap watch or SIGHUP (keeps the last good)
//! remediations ─┴─► config (validate) ──┴──► Arc<Config>
//!                                              │
//!  scheduler ── one task per probe: spread start, skip missed ticks, faster while unhealthy
//!      │
//!      ▼
//!  probes::Prober::observe (timeout, body cap, fresh connection; http tcp disk patroni
//!      │                    postgres redis promql node workload)
//!      │ Observation { outcome: Healthy | Degraded | Failed | Unknown, detail, latency }
//!      ▼
//!  engine (one task, in order)
//!      ├─► metrics (/metrics) and status board (/status, /, astreinte check)
//!      ├─► score (pure): raw level per outcome, flap damping ──► level per probe
//!      ├─► incident (pure): one per group/target, timeline, green period, breach
//!      │       └─► notify (webhook, Slack, Alertmanager) ──► deliveries on the timeline
//!      ├─► remediation, every second:
//!      │       policy (pure): mode, trigger, window, allow, leader, journal, partition,
//!      │       dependency, in flight, already tried, budgets, cooldown ──► Act / Hold(reason)
//!      │       Act ──► journal entry (saved first) ──► task: re-probe, precondition,
//!      │               actuator (http, kube, patroni) under a deadline ──► verify ──► escalate/page
//!      └─► journal (file or ConfigMap, compare-and-swap): incidents, actions, budgets
//! ```
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | `main.rs` | the CLI (clap); thin |
//! | [`app`] | wiring: build from config, spawn tasks, stop cleanly |
//! | [`config`] | loading (figment: TOML + `ASTREINTE_*` env), serde types, `validate()` |
//! | [`reload`] | live configuration from a watched ConfigMap or SIGHUP, keeping the last good one; sections only a restart applies are named (`astreinte_config_restart_pending`) |
//! | [`scheduler`] | when each probe runs |
//! | [`probes`] | the outcome types and one file per probe kind |
//! | [`engine`] | what happens to each observation, in order |
//! | [`score`] | pure: outcome → level, flap damping, degradation windows |
//! | [`incident`] | pure: incident lifecycle and timeline |
//! | [`policy`] | pure: the gates that decide whether a rule acts, each hold named |
//! | [`remediation`] | the IO around policy: journal first, act, verify, escalate, undo |
//! | [`actuators`] | bounded actions (http, Kubernetes, Patroni) under deadlines |
//! | [`journal`] | action history, incidents and budgets, persisted (file or Kubernetes) |
//! | [`leader`] | leader election on a Lease: only the leader acts |
//! | [`notify`] | incident notices (seed template) to webhooks, Slack and Alertmanager |
//! | [`postmortem`] | pure: the post-mortem draft in the seed's template |
//! | [`simulate`] | `astreinte simulate`: replay a recording through the policy |
//! | [`metrics`] | every exported metric, registered in one place |
//! | [`status`] | the last result of each probe, incidents, decisions (for the server) |
//! | [`server`] | `/metrics`, `/healthz`, `/readyz`, `/status`, `/incidents`, `/decisions` |
//! | [`web`] | the HTML status page at `/` |
//! | [`client`] | `astreinte incidents` / `explain`: read a running daemon |
//! | [`clients`] | the Kubernetes API client and its error classification |
//! | [`check`] | `astreinte check`: every probe once, as a table |
//! | [`level`] | the P1–P4 incident levels |
//! | [`when`] | times for people: policy time zone, "3 min ago" |
//! | [`clock`] | the daemon's time: wall at start + monotonic (durations ignore clock jumps); jump detection |
//! | [`testbed`] | real local servers for the tests and `astreinte demo` |
//! | [`demo`] | `astreinte demo`: the local stack, its configuration, the daemon on it, faults |
//! | [`supervisor`], [`heartbeat`] | the long-lived tasks watched in one place (a dead one stops the daemon); the engine's heartbeat behind `/readyz` |
//! | [`shutdown`], [`telemetry`] | signals; logs |

pub mod actuators;
pub mod app;
pub mod check;
pub mod client;
pub mod clients;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod heartbeat;
pub mod incident;
pub mod journal;
pub mod leader;
pub mod level;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod postmortem;
pub mod probe_guard;
pub mod probes;
pub mod reload;
pub mod remediation;
pub mod scheduler;
pub mod score;
pub mod server;
pub mod shutdown;
pub mod simulate;
pub mod status;
pub mod supervisor;
pub mod telemetry;
pub mod testbed;
pub mod web;
pub mod when;

#[cfg(test)]
mod hostile_json;
