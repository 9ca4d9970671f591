//! Cluster mode: several relay nodes serve the same documents through a
//! shared [`PostgresStore`](weft_persist::PostgresStore) and a Redis bus
//! (`docs/scale-out.md`).
//!
//! There is no leader and no per-document owner: any node loads any
//! document, applies and stores its clients' updates (acknowledged after
//! the Postgres commit, as on SQLite), then publishes them on the bus
//! ([`bus`]). Nodes with the document loaded apply what others published
//! and fan it out. The CRDT converges whatever the order, so the only
//! thing to get right is *completeness*: every document task tracks which
//! store seqs it has integrated ([`seqs::SeqTracker`]) and catches up from
//! the store when one is missing, when the bus reconnects, and on a poll
//! (`ClusterConfig::poll`), so a lost bus message delays delivery but never
//! loses it.
//!
//! Presence is published on the bus too, with the publishing node's id;
//! a node whose heartbeat stops for [`bus::NODE_EXPIRY`] has its clients'
//! presence removed everywhere.

pub(crate) mod bus;
pub(crate) mod seqs;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use weft_protocol::{DocId, PeerId};

use crate::config::ClusterConfig;
use crate::doc_cmd::DocCmd;
use crate::registry::Registry;
use bus::{Bus, BusEvent};

/// What the document tasks of a cluster node share.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// This node's id (random per process).
    pub(crate) node: Arc<str>,
    pub(crate) bus: Option<Bus>,
    pub(crate) poll: Duration,
}

impl Cluster {
    /// Starts the bus (if any); returns the cluster and the receiver of bus
    /// events, to hand to [`dispatch`] once the relay state exists.
    pub(crate) fn start(
        config: &ClusterConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<(Cluster, mpsc::Receiver<BusEvent>), String> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| e.to_string())?;
        let node: Arc<str> = Arc::from(
            id.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .as_str(),
        );
        let (events_tx, events_rx) = mpsc::channel(4096);
        let bus = match &config.bus_url {
            Some(url) => Some(Bus::start(url, node.clone(), events_tx, stop)?),
            None => None,
        };
        Ok((
            Cluster {
                node,
                bus,
                poll: config.poll,
            },
            events_rx,
        ))
    }
}

/// The id clients see for peer `peer` of node `node`: distinct across
/// nodes (each node numbers its connections from 1), with the top bit set
/// so it never equals a local peer id.
pub(crate) fn remote_peer(node: &str, peer: PeerId) -> PeerId {
    // FNV-1a over node id and peer id.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.as_bytes().iter().chain(peer.0.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PeerId(h | (1 << 63))
}

/// Hands bus events to the loaded documents; expires silent nodes.
pub(crate) async fn dispatch(
    docs: Registry<DocCmd>,
    mut events: mpsc::Receiver<BusEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut nodes: HashMap<String, Instant> = HashMap::new();
    let mut sweep = tokio::time::interval(bus::HEARTBEAT);
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = sweep.tick() => {
                let gone: Vec<String> = nodes
                    .iter()
                    .filter(|(_, seen)| seen.elapsed() > bus::NODE_EXPIRY)
                    .map(|(n, _)| n.clone())
                    .collect();
                for node in gone {
                    nodes.remove(&node);
                    tracing::info!(%node, "cluster node went silent: dropping its presence");
                    let node: Arc<str> = Arc::from(node.as_str());
                    for h in docs.handles() {
                        let _ = h.try_send(DocCmd::NodeGone { node: node.clone() });
                    }
                }
                continue;
            }
            e = events.recv() => match e {
                Some(e) => e,
                None => return,
            },
        };
        tracing::trace!(?event, "bus event");
        match event {
            BusEvent::Update { doc, seq, update } => {
                deliver(&docs, &doc, DocCmd::Remote { seq, update });
            }
            BusEvent::Presence { doc, node, frame } => {
                nodes.insert(node.clone(), Instant::now());
                deliver(
                    &docs,
                    &doc,
                    DocCmd::RemotePresence {
                        node: Arc::from(node.as_str()),
                        frame,
                    },
                );
            }
            BusEvent::Heartbeat { node } => {
                nodes.insert(node, Instant::now());
            }
            BusEvent::Reconnected => {
                for h in docs.handles() {
                    let _ = h.try_send(DocCmd::CatchUp);
                }
            }
        }
    }
}

/// Queues `cmd` for `doc` only if it is loaded, without waiting: a full
/// queue drops it (the document notices the missed seq and catches up from
/// the store).
fn deliver(docs: &Registry<DocCmd>, doc: &DocId, cmd: DocCmd) {
    if let Some(h) = docs.handle(doc) {
        if h.try_send(cmd).is_err() {
            ::metrics::counter!("weft_relay_bus_deliveries_dropped_total").increment(1);
        }
    }
}
