//! The loaded Yjs rooms: one task per room ([`super::room`]), started on
//! first use through a [`Registry`] and removed when it unloads itself. At
//! the cap a new room is refused (rooms unload once idle).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
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

    /// The limits rooms and their connections run under.
    pub(crate) fn limits(&self) -> &ServerLimits {
        &self.env.limits
    }

    /// A fresh connection number.
    pub(crate) fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
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

    /// Sends `make(reply)` to the room of `doc` (started if needed) and
    /// waits for the answer, retrying a few times while the room unloads;
    /// the room's queue and the answer.
    pub(crate) async fn ask<T>(
        &self,
        doc: &DocId,
        make: impl Fn(oneshot::Sender<Result<T, RoomError>>) -> RoomCmd,
    ) -> Result<(mpsc::Sender<RoomCmd>, T), RoomError> {
        for _ in 0..5 {
            let room = self.get(doc)?;
            let (reply, answer) = oneshot::channel();
            if room.send(make(reply)).await.is_ok() {
                match answer.await {
                    Ok(Err(RoomError::Closing)) | Err(_) => {}
                    Ok(answer) => return answer.map(|t| (room, t)),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(RoomError::Closing)
    }
}

/// Whether a room is loaded under an id (it claims the id even before
/// anything is stored).
impl Loaded for Rooms {
    fn is_loaded(&self, doc: &str) -> bool {
        self.rooms.is_loaded(doc)
    }
}
