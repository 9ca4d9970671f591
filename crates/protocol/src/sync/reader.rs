//! [`ReaderFlow`]: the relay's view of one subscriber's delivery. Sans-IO:
//! the document task tells it what happened to the subscriber's queue and
//! asks it what to do; it never touches a socket.

use std::time::{Duration, Instant};
use weft_core::VersionVector;

/// A subscriber is *live* (every update goes to its queue) or *behind*: its
/// queue was full when an update was fanned out, so it is skipped, and once
/// its queue has room again it gets one `Remote` with the diff of
/// everything since the version it had ([`Catch::SendDiffSince`]); behind
/// for longer than the grace period, it is disconnected.
///
/// ```
/// use std::time::{Duration, Instant};
/// use weft_core::VersionVector;
/// use weft_protocol::sync::{Catch, ReaderFlow};
/// let grace = Duration::from_secs(5);
/// let t0 = Instant::now();
/// let mut flow = ReaderFlow::default();
/// assert!(flow.takes_updates());
/// assert!(flow.fell_behind(VersionVector::new(), t0)); // its queue was full
/// assert!(!flow.takes_updates());
/// assert_eq!(flow.poll(t0, false, grace), Catch::Wait);
/// assert_eq!(flow.poll(t0, true, grace), Catch::SendDiffSince(&VersionVector::new()));
/// assert_eq!(flow.poll(t0 + grace * 2, false, grace), Catch::Disconnect);
/// flow.caught_up(); // the diff went out
/// assert!(flow.takes_updates());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ReaderFlow {
    behind: Option<(VersionVector, Instant)>,
}

/// What a subscriber needs now ([`ReaderFlow::poll`]).
#[derive(Debug, PartialEq)]
pub enum Catch<'a> {
    /// Live: nothing to do.
    Live,
    /// Behind, its queue still full, within the grace period.
    Wait,
    /// Behind and its queue has room: send one `Remote` with the document's
    /// diff since this version, then call [`ReaderFlow::caught_up`].
    SendDiffSince(&'a VersionVector),
    /// Behind past the grace period without room: disconnect it
    /// (`SlowConsumer`).
    Disconnect,
}

impl ReaderFlow {
    /// Whether fanned-out updates go to its queue (not while behind).
    pub fn takes_updates(&self) -> bool {
        self.behind.is_none()
    }

    /// Whether it is behind.
    pub fn is_behind(&self) -> bool {
        self.behind.is_some()
    }

    /// Its queue refused an update; `had` is the document's version before
    /// that update. Returns whether it just fell behind (it stays behind at
    /// the first such version until caught up).
    pub fn fell_behind(&mut self, had: VersionVector, now: Instant) -> bool {
        if self.behind.is_some() {
            return false;
        }
        self.behind = Some((had, now));
        true
    }

    /// What to do for it at `now`, given whether its queue has room.
    pub fn poll(&self, now: Instant, has_room: bool, grace: Duration) -> Catch<'_> {
        match &self.behind {
            None => Catch::Live,
            Some((version, _)) if has_room => Catch::SendDiffSince(version),
            Some((_, since)) if now.saturating_duration_since(*since) > grace => Catch::Disconnect,
            Some(_) => Catch::Wait,
        }
    }

    /// The diff [`Catch::SendDiffSince`] asked for was queued: live again.
    pub fn caught_up(&mut self) {
        self.behind = None;
    }
}
