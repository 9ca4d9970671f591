//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! Timestamps order last-writer-wins writes. The rule weft uses:
//!
//! * A timestamp is `(physical milliseconds, logical counter)`, and LWW types
//!   break ties between equal timestamps by [`crate::ReplicaId`], so the
//!   order is total and every replica picks the same winner.
//! * Before a local write the clock moves to `max(wall clock, last + 1 tick)`;
//!   on receiving a remote timestamp it moves to `max(wall clock, last, remote)`.
//!   Hence **a write that has observed another write always orders after it**,
//!   whatever the wall clocks say.
//!
//! What this means for a device whose clock is hours ahead: its writes win only
//! against writes made *without having seen them*. The first time any other
//! replica receives one of its writes, that replica's clock catches up, and its
//! next write wins. A fast clock cannot freeze a value. [`Hlc::observe`]
//! reports remote timestamps further ahead than the configured drift bound
//! (default one minute) as [`ClockSkew`] so an application can log or surface
//! the faulty device; the timestamp is still honoured, because refusing it
//! would break the causality guarantee above.
//!
//! Invariant: the clock never goes backwards, whatever the wall clock does.

use serde::{Deserialize, Serialize};

/// A hybrid logical timestamp: wall-clock milliseconds plus a logical counter.
///
/// Ordered by `physical` then `logical`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HlcTimestamp {
    /// Milliseconds since the Unix epoch (the largest seen, not necessarily local).
    pub physical: u64,
    /// Events within the same millisecond.
    pub logical: u32,
}

impl HlcTimestamp {
    /// Builds a timestamp.
    pub const fn new(physical: u64, logical: u32) -> Self {
        HlcTimestamp { physical, logical }
    }

    /// The smallest timestamp strictly after `self`.
    pub fn successor(self) -> Self {
        match self.logical.checked_add(1) {
            Some(l) => HlcTimestamp::new(self.physical, l),
            None => HlcTimestamp::new(self.physical.saturating_add(1), 0),
        }
    }
}

/// A remote timestamp was further ahead of the local wall clock than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSkew {
    /// How far ahead of the local wall clock it was, in milliseconds.
    pub ahead_ms: u64,
}

/// The hybrid logical clock of one replica.
///
/// ```
/// use weft_core::{Hlc, HlcTimestamp};
/// let mut fast = Hlc::new();
/// let mut slow = Hlc::new();
/// // A device whose clock is 5 hours ahead writes first...
/// let t_fast = fast.tick(10_000 + 5 * 3_600_000);
/// // ...another device sees that write, then writes with its correct clock:
/// let _ = slow.observe(t_fast, 10_500);
/// let t_slow = slow.tick(10_600);
/// assert!(t_slow > t_fast, "a write that saw another always wins over it");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hlc {
    last: HlcTimestamp,
    max_drift_ms: u64,
}

impl Default for Hlc {
    fn default() -> Self {
        Hlc::new()
    }
}

impl Hlc {
    /// Default bound on how far ahead a remote clock may be before
    /// [`Hlc::observe`] reports it: one minute.
    pub const DEFAULT_MAX_DRIFT_MS: u64 = 60_000;

    /// A clock that has seen nothing.
    pub fn new() -> Self {
        Hlc {
            last: HlcTimestamp::default(),
            max_drift_ms: Self::DEFAULT_MAX_DRIFT_MS,
        }
    }

    /// Sets the drift bound used by [`Hlc::observe`] for reporting.
    pub fn with_max_drift(mut self, ms: u64) -> Self {
        self.max_drift_ms = ms;
        self
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// A timestamp for a local event, given the wall clock `now_ms`.
    /// Strictly greater than every timestamp issued or observed before.
    pub fn tick(&mut self, now_ms: u64) -> HlcTimestamp {
        let next = if now_ms > self.last.physical {
            HlcTimestamp::new(now_ms, 0)
        } else {
            self.last.successor()
        };
        self.last = next;
        next
    }

    /// A timestamp for a local event using the system wall clock.
    pub fn tick_now(&mut self) -> HlcTimestamp {
        self.tick(wall_clock_ms())
    }

    /// Merges a timestamp received from another replica.
    ///
    /// Always advances the clock past `remote`; returns `Err(ClockSkew)` as a
    /// report (not a refusal) if `remote` is more than the drift bound ahead of
    /// `now_ms`.
    pub fn observe(&mut self, remote: HlcTimestamp, now_ms: u64) -> Result<(), ClockSkew> {
        if remote > self.last {
            self.last = remote;
        }
        let ahead = remote.physical.saturating_sub(now_ms);
        if ahead > self.max_drift_ms {
            Err(ClockSkew { ahead_ms: ahead })
        } else {
            Ok(())
        }
    }
}

/// Milliseconds since the Unix epoch from the system clock (0 if before it).
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards_when_wall_clock_does() {
        let mut c = Hlc::new();
        let a = c.tick(1_000);
        let b = c.tick(500);
        let d = c.tick(500);
        assert!(a < b && b < d);
        assert_eq!(b, HlcTimestamp::new(1_000, 1));
    }

    #[test]
    fn observe_reports_skew_but_still_advances() {
        let hours = 3 * 3_600_000;
        let mut c = Hlc::new();
        let remote = HlcTimestamp::new(1_000 + hours, 3);
        assert_eq!(c.observe(remote, 1_000), Err(ClockSkew { ahead_ms: hours }));
        assert!(c.tick(1_001) > remote);
        assert_eq!(c.observe(HlcTimestamp::new(1_010, 0), 1_000), Ok(()));
    }

    #[test]
    fn logical_overflow_carries_into_physical() {
        let t = HlcTimestamp::new(7, u32::MAX);
        assert_eq!(t.successor(), HlcTimestamp::new(8, 0));
    }
}
