//! The loaded Yjs rooms: one task per room ([`super::room`]), started on
//! first use through a [`Registry`] and removed when it unloads itself. At
//! the cap a new room is refused (rooms unload once idle).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use weft_protocol::DocId;

use super::metrics;
use super::room::{self, RoomCmd, RoomEnv, RoomError};
use crate::config::ServerLimits;
use crate::registry::{Got, Loaded, Registry};

/// Commands queued to one room.
const ROOM_QUEUE: usize = 256;

/// The Yjs rooms of a relay.
#[derive(Debug)]
pub(crate) struct Rooms {
    rooms: Registry<RoomCmd>,
    env: RoomEnv,
    /// The loaded weft documents: an id one of them holds is not a room.
    weft: Arc<dyn Loaded>,
    next_conn: AtomicU64,
}

impl Rooms {
    /// Rooms over `rooms` (made with [`Rooms::registry`]), started with
    /// `env`, never under an id `weft` has loaded.
    pub(crate) fn new(rooms: Registry<RoomCmd>, env: RoomEnv, weft: Arc<dyn Loaded>) -> Rooms {
        metrics::describe();
        Rooms {
            rooms,
            env,
            weft,
            next_conn: AtomicU64::new(0),
        }
    }

    /// The registry rooms need: `cap` rooms, refusing past it.
    pub(crate) fn registry(cap: usize) -> Registry<RoomCmd> {
        Registry::new(cap, ROOM_QUEUE, None, metrics::rooms_loaded())
    }

    /// Which rooms are loaded, for the weft side's one-kind-per-id check.
    pub(crate) fn loaded(&self) -> Arc<dyn Loaded> {
        Arc::new(self.rooms.clone())
    }

    /// The limits rooms and their connections run under.
    pub(crate) fn limits(&self) -> &ServerLimits {
        &self.env.limits
    }

    /// A fresh connection number.
    pub(crate) fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a room for `doc` is loaded (it claims the id even before
    /// anything is stored).
    pub(crate) fn contains(&self, doc: &str) -> bool {
        self.rooms.is_loaded(doc)
    }

    /// The room of `doc`, started if needed.
    pub(crate) fn get(&self, doc: &DocId) -> Result<mpsc::Sender<RoomCmd>, RoomError> {
        if let Some(h) = self.rooms.handle(doc).filter(|h| !h.is_closed()) {
            return Ok(h);
        }
        if self.weft.is_loaded(doc.as_str()) {
            return Err(RoomError::WeftDocument);
        }
        match self.rooms.get(doc) {
            Got::Running(h) => Ok(h),
            Got::Start { handle, slot, rx } => {
                tokio::spawn(room::run(self.env.clone(), slot, rx));
                Ok(handle)
            }
            Got::Wait | Got::Full => {
                Err(RoomError::Unavailable("too many Yjs rooms loaded".into()))
            }
        }
    }
}
