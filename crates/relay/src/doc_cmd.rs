//! What a document task is asked to do: the commands its queue carries
//! (from connections, the HTTP API, the hub and the cluster bus).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use weft_core::doc::Limits;
use weft_core::{Update, VersionVector};
use weft_protocol::{ErrorCode, PeerId, PresenceState};

use crate::config::ServerLimits;
use crate::outbound::Outbound;

/// The limits a client's update is decoded and checked under.
pub(crate) fn update_limits(limits: &ServerLimits) -> Limits {
    Limits {
        max_input_bytes: limits.wire.max_update_bytes as usize,
        max_decoded_bytes: limits.max_update_decoded_bytes,
        max_update_authors: limits.max_update_authors,
        ..Limits::default()
    }
}

/// Work for a document task.
#[derive(Debug)]
pub(crate) enum DocCmd {
    /// Subscribe `peer` (or re-sync it): answer `Synced` and presence.
    Subscribe {
        peer: PeerId,
        version: VersionVector,
        out: Outbound,
        reply: oneshot::Sender<Result<(), ErrorCode>>,
    },
    /// Store, acknowledge and fan out an update.
    /// (Boxed: the largest command, and queues hold many small ones.)
    Update(Box<UpdateCmd>),
    /// Set or clear `peer`'s presence.
    Presence {
        peer: PeerId,
        /// (Boxed, like `Update`: most commands are much smaller.)
        state: Option<Box<PresenceState>>,
    },
    /// `peer` unsubscribed or disconnected.
    Leave { peer: PeerId },
    /// The current snapshot (`Doc::save`), for backups.
    Snapshot {
        reply: oneshot::Sender<Result<Vec<u8>, ErrorCode>>,
    },
    /// The hub needs room: unload now if nobody is subscribed.
    Unload,
    /// Cluster: an update another node stored as `seq` (from the bus).
    Remote { seq: u64, update: Vec<u8> },
    /// Cluster: a presence frame of a client of another node.
    RemotePresence { node: Arc<str>, frame: Vec<u8> },
    /// Cluster: node `node` went silent; drop its clients' presence.
    NodeGone { node: Arc<str> },
    /// Cluster: bus entries may have been missed; catch up from the store.
    CatchUp,
}

/// One client update.
#[derive(Debug)]
pub(crate) struct UpdateCmd {
    pub(crate) peer: PeerId,
    /// The token subject of the sending connection (who may author which
    /// replica: see `owners.rs`).
    pub(crate) subject: Arc<str>,
    pub(crate) seq: u64,
    /// The update, decoded and checked once by the connection; or why the
    /// connection refused it (read-only, rate limit, bad bytes), answered
    /// here so replies keep their order.
    pub(crate) update: Result<Update, (ErrorCode, String)>,
    pub(crate) out: Outbound,
    pub(crate) received: Instant,
}

#[cfg(test)]
mod tests {
    use super::DocCmd;

    #[test]
    fn commands_stay_small() {
        // A document's queue (tokio mpsc) allocates 32 slots at creation,
        // so every loaded document pays 32 × this, busy or not: the large
        // payloads are boxed (160 bytes before, 5 KB per document).
        assert!(std::mem::size_of::<DocCmd>() <= 64);
    }
}
