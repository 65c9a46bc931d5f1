//! The cluster side of the prober: the optional kube client, the node watches (one shared
//! reflector per label selector, started on first use) and the restart counts the workload
//! probe compares from one tick to the next.

use std::sync::Arc;

use super::node_watch::NodeWatches;
use super::workload::RestartMemory;

/// Shared by every clone of the [`super::Prober`].
pub struct Cluster {
    pub client: kube::Client,
    pub nodes: NodeWatches,
    pub restarts: RestartMemory,
}

impl Cluster {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Cluster {
            nodes: NodeWatches::new(client.clone()),
            client,
            restarts: RestartMemory::default(),
        })
    }
}
