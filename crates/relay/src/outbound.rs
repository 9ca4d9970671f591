//! The bounded queue of frames waiting to be written to one connection,
//! and the switch that closes it with an error code.
//!
//! Document tasks never wait on a client: they `try_send`, and a full queue
//! (by frames or by bytes) tells them the reader is slow. One frame larger
//! than the byte budget is still accepted into an empty queue, so a big
//! `Synced` can always be delivered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Kill code meaning "close without an error frame" (the peer has gone).
const QUIET: u16 = u16::MAX;

/// A drained queue that once grew past this many slots gives its memory
/// back (an idle connection keeps no burst-sized buffer).
const KEEP_SLOTS: usize = 16;

use axum::body::Bytes;
use tokio::sync::Notify;
use weft_protocol::ErrorCode;

use crate::metrics::Meters;

/// The frames waiting, and their bytes. An empty queue owns no memory:
/// thousands of idle connections cost only this struct each.
#[derive(Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer when a frame is queued or the last sender left.
    ready: Notify,
    /// Live [`Outbound`] handles; at 0 the writer ends once drained.
    senders: AtomicUsize,
    /// The writer still takes frames.
    open: AtomicBool,
    max_bytes: usize,
    max_frames: usize,
    /// 0: alive; `QUIET`: close without an error frame; otherwise the code
    /// to close with.
    kill_code: AtomicU16,
    kill_reason: Mutex<String>,
    kill: Notify,
    meters: Meters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every critical section is a push or a pop that cannot panic
        // half-way, so a poisoned lock still guards a consistent queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side, cloned into every document the connection subscribes.
pub(crate) struct Outbound {
    shared: Arc<Shared>,
}

impl Clone for Outbound {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Outbound {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("queued_bytes", &self.shared.lock().bytes)
            .finish()
    }
}

/// The connection's receiving side.
pub(crate) struct OutboundRx {
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
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        ready: Notify::new(),
        senders: AtomicUsize::new(1),
        open: AtomicBool::new(true),
        max_bytes,
        max_frames: max_frames.max(1),
        kill_code: AtomicU16::new(0),
        kill_reason: Mutex::new(String::new()),
        kill: Notify::new(),
        meters,
    });
    (
        Outbound {
            shared: shared.clone(),
        },
        OutboundRx { shared },
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
        {
            let mut q = self.shared.lock();
            if !self.shared.open.load(Ordering::Acquire)
                || q.frames.len() >= self.shared.max_frames
                || (q.bytes > 0 && q.bytes + len > max_bytes)
            {
                return Err(Full);
            }
            q.bytes += len;
            q.frames.push_back(frame);
        }
        self.shared.meters.queued_frames.increment(1.0);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Whether the queue has drained to half its bounds (a slow reader that
    /// got here may be caught up).
    pub(crate) fn has_room(&self) -> bool {
        let q = self.shared.lock();
        q.bytes <= self.shared.max_bytes / 2 && q.frames.len() <= self.shared.max_frames / 2
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
        !self.shared.open.load(Ordering::Acquire)
    }
}

impl OutboundRx {
    /// The next queued frame, or `None` once every sender is gone and the
    /// queue is drained.
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                // A frame queued by the last sender before it left.
                return self.try_recv();
            }
            // `notify_one` keeps a permit when nobody waits, so a frame
            // queued since the check above still wakes this.
            self.shared.ready.notified().await;
        }
    }

    /// A queued frame if one is ready now.
    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        let frame = {
            let mut q = self.shared.lock();
            let frame = q.frames.pop_front()?;
            q.bytes -= frame.len();
            if q.frames.is_empty() && q.frames.capacity() > KEEP_SLOTS {
                q.frames = VecDeque::new();
            }
            frame
        };
        self.shared.meters.queued_frames.decrement(1.0);
        Some(frame)
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
        self.shared.open.store(false, Ordering::Release);
        let left = std::mem::take(&mut *self.shared.lock());
        self.shared
            .meters
            .queued_frames
            .decrement(left.frames.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(frames: usize, bytes: usize) -> (Outbound, OutboundRx) {
        channel(frames, bytes, Meters::new())
    }

    #[tokio::test]
    async fn bounded_by_frames_and_bytes_and_drained_in_order() {
        let (out, mut rx) = queue(3, 10);
        out.try_send(Bytes::from_static(b"aaaa")).unwrap();
        out.try_send(Bytes::from_static(b"bbbb")).unwrap();
        assert!(
            out.try_send(Bytes::from_static(b"cccc")).is_err(),
            "12 bytes > 10"
        );
        out.try_send(Bytes::from_static(b"cc")).unwrap();
        assert!(
            out.try_send_reply(Bytes::from_static(b"d")).is_err(),
            "3 frames"
        );
        assert!(!out.has_room());
        assert_eq!(rx.recv().await.as_deref(), Some(&b"aaaa"[..]));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"bbbb"[..]));
        assert!(out.has_room());
        // Replies get four times the byte budget.
        out.try_send_reply(Bytes::from_static(b"0123456789abc"))
            .unwrap();
        assert_eq!(rx.try_recv().as_deref(), Some(&b"cc"[..]));
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(13));
        assert!(rx.try_recv().is_none());
        // One frame over the budget still fits an empty queue.
        out.try_send(Bytes::from(vec![7u8; 100])).unwrap();
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(100));
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_frame_and_ends_when_every_sender_left() {
        let (out, mut rx) = queue(8, 1 << 20);
        let other = out.clone();
        let writer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(f) = rx.recv().await {
                got.push(f);
            }
            got
        });
        tokio::task::yield_now().await;
        out.try_send(Bytes::from_static(b"1")).unwrap();
        drop(out);
        tokio::task::yield_now().await;
        other.try_send(Bytes::from_static(b"2")).unwrap();
        drop(other);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .expect("the writer ended")
            .unwrap();
        assert_eq!(
            got,
            vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]
        );
    }

    #[test]
    fn a_gone_writer_refuses_and_a_drained_burst_gives_its_memory_back() {
        let (out, mut rx) = queue(1000, 1 << 20);
        for _ in 0..100 {
            out.try_send(Bytes::from_static(b"x")).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(rx.shared.lock().frames.capacity(), 0);
        assert!(!out.is_closed());
        drop(rx);
        assert!(out.is_closed());
        assert!(out.try_send(Bytes::from_static(b"x")).is_err());
    }
}
