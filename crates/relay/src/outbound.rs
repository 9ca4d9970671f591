//! The bounded queue of frames waiting to be written to one connection,
//! and the switch that closes it with an error code.
//!
//! Document tasks never wait on a client: they `try_send`, and a full queue
//! (by frames or by bytes) tells them the reader is slow. One frame larger
//! than the byte budget is still accepted into an empty queue, so a big
//! `Synced` can always be delivered.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Kill code meaning "close without an error frame" (the peer has gone).
const QUIET: u16 = u16::MAX;

use axum::body::Bytes;
use tokio::sync::{mpsc, Notify};
use weft_protocol::ErrorCode;

use crate::metrics::Meters;

struct Shared {
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    max_frames: usize,
    /// 0: alive; `QUIET`: close without an error frame; otherwise the code
    /// to close with.
    kill_code: AtomicU16,
    kill_reason: Mutex<String>,
    kill: Notify,
    meters: Meters,
}

/// The sending side, cloned into every document the connection subscribes.
#[derive(Clone)]
pub(crate) struct Outbound {
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field(
                "queued_bytes",
                &self.shared.queued_bytes.load(Ordering::Relaxed),
            )
            .finish()
    }
}

/// The connection's receiving side.
pub(crate) struct OutboundRx {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
}

/// The queue is full: the reader is slow (or gone).
#[derive(Debug)]
pub(crate) struct Full;

/// A queue bounded by `max_frames` frames and `max_bytes` bytes.
pub(crate) fn channel(
    max_frames: usize,
    max_bytes: usize,
    meters: Meters,
) -> (Outbound, OutboundRx) {
    let (tx, rx) = mpsc::channel(max_frames.max(1));
    let shared = Arc::new(Shared {
        queued_bytes: AtomicUsize::new(0),
        max_bytes,
        max_frames: max_frames.max(1),
        kill_code: AtomicU16::new(0),
        kill_reason: Mutex::new(String::new()),
        kill: Notify::new(),
        meters,
    });
    (
        Outbound {
            tx,
            shared: shared.clone(),
        },
        OutboundRx { rx, shared },
    )
}

impl Outbound {
    /// Queues a fan-out frame (`Remote`, presence) unless that would exceed
    /// the bounds.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), Full> {
        self.push(frame, self.shared.max_bytes)
    }

    /// Queues a reply the client asked for (`Synced`, `Ack`, errors,
    /// `Pong`): these may use up to four times the byte budget, so a client
    /// subscribing several large documents at once is not mistaken for a
    /// slow reader, while one that never reads is still bounded.
    pub(crate) fn try_send_reply(&self, frame: Bytes) -> Result<(), Full> {
        self.push(frame, self.shared.max_bytes.saturating_mul(4))
    }

    fn push(&self, frame: Bytes, max_bytes: usize) -> Result<(), Full> {
        let len = frame.len();
        let queued = self.shared.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued + len > max_bytes {
            return Err(Full);
        }
        self.shared.queued_bytes.fetch_add(len, Ordering::Relaxed);
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.shared.meters.queued_frames.increment(1.0);
                Ok(())
            }
            Err(_) => {
                self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                Err(Full)
            }
        }
    }

    /// Whether the queue has drained to half its bounds (a slow reader that
    /// got here may be caught up).
    pub(crate) fn has_room(&self) -> bool {
        self.shared.queued_bytes.load(Ordering::Relaxed) <= self.shared.max_bytes / 2
            && self.tx.capacity() >= self.shared.max_frames / 2
    }

    /// Asks the connection to send `Error {code}` and close (the first
    /// request wins).
    pub(crate) fn kill(&self, code: ErrorCode, reason: &str) {
        self.set_kill(code.code().clamp(1, QUIET - 1), reason);
    }

    /// Asks the connection to close without an error frame.
    pub(crate) fn close_quietly(&self) {
        self.set_kill(QUIET, "");
    }

    fn set_kill(&self, code: u16, reason: &str) {
        if self
            .shared
            .kill_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if let Ok(mut r) = self.shared.kill_reason.lock() {
                reason.clone_into(&mut r);
            }
        }
        self.shared.kill.notify_waiters();
    }

    /// Whether the connection has gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl OutboundRx {
    /// The next queued frame, or `None` when every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.recv().await?;
        self.taken(&frame);
        Some(frame)
    }

    /// A queued frame if one is ready now.
    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.try_recv().ok()?;
        self.taken(&frame);
        Some(frame)
    }

    fn taken(&self, frame: &Bytes) {
        self.shared
            .queued_bytes
            .fetch_sub(frame.len(), Ordering::Relaxed);
        self.shared.meters.queued_frames.decrement(1.0);
    }

    /// What tells the connection that [`Outbound::kill`] was called.
    pub(crate) fn kill_switch(&self) -> KillSwitch {
        KillSwitch(self.shared.clone())
    }
}

/// Resolves when the connection was asked to close.
pub(crate) struct KillSwitch(Arc<Shared>);

impl KillSwitch {
    /// Resolves once [`Outbound::kill`] or [`Outbound::close_quietly`] was
    /// called: the code and reason, or `None` for a quiet close.
    pub(crate) async fn wait(&self) -> Option<(ErrorCode, String)> {
        loop {
            let notified = self.0.kill.notified();
            let code = self.0.kill_code.load(Ordering::Acquire);
            if code == QUIET {
                return None;
            }
            if code != 0 {
                let reason = self
                    .0
                    .kill_reason
                    .lock()
                    .map(|r| r.clone())
                    .unwrap_or_default();
                return Some((ErrorCode::from_code(code), reason));
            }
            notified.await;
        }
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        self.rx.close();
        let mut left = 0.0;
        while self.rx.try_recv().is_ok() {
            left += 1.0;
        }
        self.shared.meters.queued_frames.decrement(left);
    }
}
