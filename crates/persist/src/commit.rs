//! [`Commit`]: appends queued on a store's writer, answered once durable.
//!
//! A store with a writer (the SQLite writer thread, the Postgres writer
//! task) takes an append into its queue and returns at once; the writer
//! answers every queued append after the transaction holding it committed.
//! The answer arrives through a one-shot slot that async code awaits (the
//! [`Commit`] is a [`Future`]) and blocking code waits on
//! ([`Commit::wait`]), so neither an async worker nor a parked thread per
//! append is spent waiting for an fsync.

use crate::outcome::Appended;
use crate::{Error, Result};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// One answer slot, shared by its [`Answer`] and [`Awaited`] ends.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    filled: Condvar,
}

struct SlotState<T> {
    value: Option<T>,
    /// The answering end was dropped without answering.
    abandoned: bool,
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        // A panic while holding this lock leaves plain data behind.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer's end of a slot: answers once. Dropped unanswered, the
/// waiting end sees [`Error::Closed`].
pub(crate) struct Answer<T>(Option<Arc<Slot<T>>>);

/// The waiting end of a slot.
pub(crate) struct Awaited<T>(Arc<Slot<T>>);

/// A fresh slot's two ends.
pub(crate) fn slot<T>() -> (Answer<T>, Awaited<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            value: None,
            abandoned: false,
            waker: None,
        }),
        filled: Condvar::new(),
    });
    (Answer(Some(slot.clone())), Awaited(slot))
}

impl<T> Answer<T> {
    /// Delivers `value` and wakes the waiter.
    pub(crate) fn send(mut self, value: T) {
        if let Some(slot) = self.0.take() {
            fill(&slot, Some(value));
        }
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            fill(&slot, None);
        }
    }
}

fn fill<T>(slot: &Slot<T>, value: Option<T>) {
    let waker = {
        let mut s = slot.lock();
        match value {
            Some(v) => s.value = Some(v),
            None => s.abandoned = true,
        }
        s.waker.take()
    };
    slot.filled.notify_all();
    if let Some(w) = waker {
        w.wake();
    }
}

impl<T> Awaited<T> {
    /// Blocks the calling thread until answered; `None` if abandoned.
    pub(crate) fn wait(self) -> Option<T> {
        let mut s = self.0.lock();
        loop {
            if let Some(v) = s.value.take() {
                return Some(v);
            }
            if s.abandoned {
                return None;
            }
            s = self.0.filled.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The answer if there is one (`Some(None)`: abandoned), else registers
    /// `cx`'s waker.
    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.0.lock();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.abandoned {
            return Poll::Ready(None);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Awaited<Result<T>> {
    /// [`Awaited::wait`], an abandoned slot being [`Error::Closed`].
    pub(crate) fn result(self) -> Result<T> {
        self.wait().unwrap_or(Err(Error::Closed))
    }
}

enum Part {
    Done(Result<Appended>),
    Waiting(Awaited<Result<Appended>>),
    /// Taken by the `Future` output.
    Taken,
}

/// The results of appends a store queued: one per append, in the order
/// they were given, each `Ok` only once that append is durable.
///
/// Returned by [`Store::submit_updates`](crate::Store::submit_updates) and
/// [`Store::submit_many`](crate::Store::submit_many). Await it from async
/// code or [`wait`](Commit::wait) for it from a blocking one; dropping it
/// does not cancel the appends.
///
/// ```
/// use weft_core::doc::Limits;
/// use weft_core::{Doc, ReplicaId, Update};
/// use weft_persist::{Options, SqliteStore, Store};
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("w.db"), Options::default()).unwrap();
/// let mut doc = Doc::new(ReplicaId::random());
/// let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
/// let update = Update::decode(bytes, &Limits::default()).unwrap();
/// let commit = store.submit_updates("d", &[&update]); // queued, not waited for
/// // ... send the update to readers meanwhile ...
/// let results = commit.wait(); // or `.await` in async code
/// assert_eq!(results[0].as_ref().unwrap().seq, 1);
/// ```
#[must_use = "a Commit says whether the appends became durable"]
pub struct Commit {
    parts: Vec<Part>,
}

impl fmt::Debug for Commit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = self
            .parts
            .iter()
            .filter(|p| matches!(p, Part::Waiting(_)))
            .count();
        f.debug_struct("Commit")
            .field("appends", &self.parts.len())
            .field("waiting", &waiting)
            .finish()
    }
}

impl Commit {
    /// A commit whose results are already known (a store without a
    /// writer, or appends refused before they were queued).
    ///
    /// ```
    /// use weft_persist::{Commit, Error};
    /// let done = Commit::ready(vec![Err(Error::Closed)]);
    /// assert!(done.is_settled());
    /// assert!(done.wait()[0].is_err());
    /// ```
    pub fn ready(results: Vec<Result<Appended>>) -> Commit {
        Commit {
            parts: results.into_iter().map(Part::Done).collect(),
        }
    }

    pub(crate) fn from_queued(queued: Vec<Result<Awaited<Result<Appended>>>>) -> Commit {
        Commit {
            parts: queued
                .into_iter()
                .map(|q| match q {
                    Ok(w) => Part::Waiting(w),
                    Err(e) => Part::Done(Err(e)),
                })
                .collect(),
        }
    }

    /// How many appends this commit answers for.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether it answers for no append at all.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether every result is known (without blocking).
    pub fn is_settled(&self) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Waiting(w) => {
                let s = w.0.lock();
                s.value.is_some() || s.abandoned
            }
            _ => true,
        })
    }

    /// Awaits every append; `Ok` if all are durable, else the first
    /// failure (for callers that store a batch all or nothing).
    ///
    /// ```
    /// use weft_persist::{Commit, Error};
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     assert!(Commit::ready(Vec::new()).all_durable().await.is_ok());
    ///     let failed = Commit::ready(vec![Err(Error::Closed)]).all_durable().await;
    ///     assert!(matches!(failed, Err(Error::Closed)));
    /// });
    /// ```
    pub async fn all_durable(self) -> Result<()> {
        self.await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// Blocks until every append is durable or failed; the results in
    /// order. Not for async workers: await the commit there.
    pub fn wait(self) -> Vec<Result<Appended>> {
        self.parts
            .into_iter()
            .map(|p| match p {
                Part::Done(r) => r,
                Part::Waiting(w) => w.result(),
                Part::Taken => Err(Error::Closed),
            })
            .collect()
    }
}

impl Future for Commit {
    type Output = Vec<Result<Appended>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut waiting = false;
        for part in &mut this.parts {
            if let Part::Waiting(w) = part {
                match w.poll_take(cx) {
                    Poll::Ready(r) => *part = Part::Done(r.unwrap_or(Err(Error::Closed))),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            return Poll::Pending;
        }
        Poll::Ready(
            this.parts
                .iter_mut()
                .map(|p| match std::mem::replace(p, Part::Taken) {
                    Part::Done(r) => r,
                    _ => Err(Error::Closed),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn appended(seq: u64) -> Appended {
        Appended {
            seq,
            log_records: seq,
            log_bytes: 0,
        }
    }

    #[test]
    fn a_blocking_waiter_gets_the_answer_sent_from_another_thread() {
        let (answer, awaited) = slot::<Result<Appended>>();
        let commit = Commit::from_queued(vec![Ok(awaited), Err(Error::Closed)]);
        assert!(!commit.is_settled());
        let t = std::thread::spawn(move || answer.send(Ok(appended(7))));
        let results = commit.wait();
        t.join().unwrap();
        assert_eq!(results[0].as_ref().unwrap().seq, 7);
        assert!(matches!(results[1], Err(Error::Closed)));
    }

    #[test]
    fn polling_wakes_on_the_answer_and_an_abandoned_slot_is_closed() {
        let (a1, w1) = slot::<Result<Appended>>();
        let (a2, w2) = slot::<Result<Appended>>();
        let mut commit = Commit::from_queued(vec![Ok(w1), Ok(w2)]);
        let flag = Arc::new(Flag(Default::default()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut commit).poll(&mut cx).is_pending());
        a1.send(Ok(appended(1)));
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(Pin::new(&mut commit).poll(&mut cx).is_pending(), "one left");
        drop(a2); // the writer went away without answering
        match Pin::new(&mut commit).poll(&mut cx) {
            Poll::Ready(r) => {
                assert_eq!(r[0].as_ref().unwrap().seq, 1);
                assert!(matches!(r[1], Err(Error::Closed)));
            }
            Poll::Pending => panic!("both answered"),
        }
    }
}
