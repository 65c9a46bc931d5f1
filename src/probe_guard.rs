//! The scheduler's part of supervision: the probe tasks come and go with each reload (on a
//! `TaskTracker`), so they are not supervised one by one; instead every probe run goes through
//! [`Guarded`], which catches a panic of the run, reports it (probe id and message) to the
//! supervised `scheduler` task ([`watch`]), and never returns, so the daemon stops instead of
//! running on with a probe silently gone. The test-only fault point `scheduler` fires in a run.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::mpsc;

use crate::config::{Config, ProbeConfig};
use crate::probes::Observation;
use crate::scheduler::RunProbe;

/// A probe runner whose panics end the daemon (through [`watch`]).
#[derive(Clone)]
pub struct Guarded<R> {
    inner: R,
    panics: mpsc::UnboundedSender<String>,
}

/// Wraps `inner`; the receiver goes to [`watch`].
pub fn guard<R>(inner: R) -> (Guarded<R>, mpsc::UnboundedReceiver<String>) {
    let (panics, rx) = mpsc::unbounded_channel();
    (Guarded { inner, panics }, rx)
}

impl<R: RunProbe> RunProbe for Guarded<R> {
    fn run(
        &self,
        config: &Config,
        probe: &ProbeConfig,
    ) -> impl Future<Output = Observation> + Send {
        let run = AssertUnwindSafe(async move {
            crate::supervisor::fault_point("scheduler");
            self.inner.run(config, probe).await
        })
        .catch_unwind();
        async move {
            match run.await {
                Ok(observation) => observation,
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    let _ = self
                        .panics
                        .send(format!("probe `{}` panicked: {message}", probe.id));
                    // The supervisor stops everything; this task ends with its token.
                    std::future::pending().await
                }
            }
        }
    }
}

/// The supervised `scheduler` task: fails with the first panic reported. Every sender lives
/// in the runners of the probe tasks, so the channel stays open as long as probes can run.
pub async fn watch(mut panics: mpsc::UnboundedReceiver<String>) -> Result<(), String> {
    match panics.recv().await {
        Some(why) => Err(why),
        None => Ok(()),
    }
}
