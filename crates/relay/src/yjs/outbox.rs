//! The bounded queue of messages waiting to be written to one Yjs client.
//!
//! The room pushes messages (shared buffers: a fan-out is one allocation);
//! the connection's writer pops them. When the queue is over its byte or
//! message bound, the client is *lagging*: what is queued is dropped, later
//! pushes are discarded, and once the writer has written what it had in
//! hand it asks the room for a resync — one SyncStep2 holding the whole
//! document plus every awareness state — which clears the flag. So a slow
//! reader costs at most the bound plus one full state, and is never left
//! silently missing an update.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use tokio::sync::Notify;

/// Why a connection is closed by the server (WebSocket close code, reason).
pub(crate) type CloseWith = (u16, String);

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    bytes: usize,
    lagging: bool,
    /// The writer asked the room for a resync, not yet answered.
    asked: bool,
    close: Option<CloseWith>,
}

/// What the writer gets next.
#[derive(Debug)]
pub(crate) enum Next {
    /// A message to write.
    Message(Bytes),
    /// The client fell behind and the queue is drained: ask for a resync.
    Resync,
    /// Close with this code and reason.
    Close(CloseWith),
    /// Nothing yet: wait for [`Outbox::notified`].
    Empty,
}

/// One connection's outbound queue.
#[derive(Debug)]
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_bytes: usize,
    max_messages: usize,
}

impl Outbox {
    pub(crate) fn new(max_bytes: usize, max_messages: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            max_bytes: max_bytes.max(1),
            max_messages: max_messages.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the queue consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg`. Returns `true` if the client just started lagging
    /// (its queue was dropped).
    pub(crate) fn push(&self, msg: Bytes) -> bool {
        let mut inner = self.lock();
        if inner.close.is_some() || inner.lagging {
            return false;
        }
        let fits = inner.queue.is_empty()
            || (inner.bytes + msg.len() <= self.max_bytes && inner.queue.len() < self.max_messages);
        if !fits {
            inner.queue.clear();
            inner.bytes = 0;
            inner.lagging = true;
            drop(inner);
            self.notify.notify_one();
            return true;
        }
        inner.bytes += msg.len();
        inner.queue.push_back(msg);
        drop(inner);
        self.notify.notify_one();
        false
    }

    /// Queues the messages of a resync and clears the lagging flag (they
    /// are queued whatever their size: the queue is empty).
    pub(crate) fn resync(&self, msgs: Vec<Bytes>) {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return;
        }
        inner.lagging = false;
        inner.asked = false;
        for m in msgs {
            inner.bytes += m.len();
            inner.queue.push_back(m);
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Drops what is queued and asks the writer to close (the first reason
    /// wins).
    pub(crate) fn close(&self, code: u16, reason: impl Into<String>) {
        let mut inner = self.lock();
        if inner.close.is_none() {
            inner.close = Some((code, reason.into()));
            inner.queue.clear();
            inner.bytes = 0;
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Whether a close was asked for.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().close.is_some()
    }

    /// What the writer should do next.
    pub(crate) fn next(&self) -> Next {
        let mut inner = self.lock();
        if let Some(c) = &inner.close {
            return Next::Close(c.clone());
        }
        if let Some(m) = inner.queue.pop_front() {
            inner.bytes -= m.len();
            return Next::Message(m);
        }
        if inner.lagging && !inner.asked {
            inner.asked = true;
            return Next::Resync;
        }
        Next::Empty
    }

    /// Resolves when something was pushed (or a close asked) since the
    /// last call.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Messages queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_drops_and_asks_for_a_resync() {
        let out = Outbox::new(10, 100);
        assert!(!out.push(Bytes::from_static(b"12345678")));
        assert!(out.push(Bytes::from_static(b"abc")), "over 10 bytes");
        assert_eq!(out.len(), 0);
        assert!(
            !out.push(Bytes::from_static(b"x")),
            "discarded while lagging"
        );
        assert!(matches!(out.next(), Next::Resync));
        assert!(matches!(out.next(), Next::Empty), "asked once");
        out.resync(vec![Bytes::from(vec![0; 50])]);
        assert!(matches!(out.next(), Next::Message(m) if m.len() == 50));
        out.close(1000, "bye");
        assert!(matches!(out.next(), Next::Close((1000, _))));
    }
}
