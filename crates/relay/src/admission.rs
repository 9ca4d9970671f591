//! Admission limits: sockets per IP address and sockets not yet upgraded
//! (both counted at accept, before a byte is read), WebSocket connections
//! in total, and the token buckets that pace one connection's frames.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::metrics;

/// Why a socket was closed at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address already has `max_connections_per_ip` sockets open.
    PerIp,
    /// `max_pending_connections` sockets are waiting for their upgrade.
    Pending,
}

impl Refusal {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::PerIp => "per_ip",
            Refusal::Pending => "pending",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    per_ip: HashMap<IpAddr, usize>,
    pending: usize,
}

/// Counts sockets per IP and sockets not yet upgraded (at accept), and
/// open WebSocket connections (at upgrade).
#[derive(Debug)]
pub(crate) struct Admission {
    max_per_ip: usize,
    max_pending: usize,
    counts: Mutex<Counts>,
    websockets: AtomicUsize,
}

/// One accepted socket's places: one of its address's, and one of the
/// pending sockets' until [`SocketPermit::upgraded`]. Released on drop.
#[derive(Debug)]
pub(crate) struct SocketPermit {
    admission: Arc<Admission>,
    ip: IpAddr,
    pending: AtomicBool,
}

/// One open WebSocket connection's place; released on drop.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
}

impl Admission {
    /// Limits: sockets per IP, sockets not yet upgraded.
    pub(crate) fn new(max_per_ip: usize, max_pending: usize) -> Admission {
        Admission {
            max_per_ip,
            max_pending,
            counts: Mutex::new(Counts::default()),
            websockets: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Only counters: a panic elsewhere cannot leave them half-updated.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a socket just accepted from `ip`, if its address and the
    /// pending sockets are under their limits.
    pub(crate) fn accept(self: &Arc<Self>, ip: IpAddr) -> Result<SocketPermit, Refusal> {
        let mut counts = self.lock();
        if counts.pending >= self.max_pending {
            return Err(Refusal::Pending);
        }
        let here = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if here >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        counts.per_ip.insert(ip, here + 1);
        counts.pending += 1;
        metrics::pending_connections(counts.pending);
        Ok(SocketPermit {
            admission: self.clone(),
            ip,
            pending: AtomicBool::new(true),
        })
    }

    /// Admits a WebSocket connection if fewer than `max_total` are open.
    pub(crate) fn admit(self: &Arc<Self>, max_total: usize) -> Option<Admitted> {
        self.websockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_total).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted {
                admission: self.clone(),
            })
    }

    /// Sockets not yet upgraded.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.lock().pending
    }

    /// Sockets open from `ip`.
    #[cfg(test)]
    pub(crate) fn sockets_from(&self, ip: IpAddr) -> usize {
        self.lock().per_ip.get(&ip).copied().unwrap_or(0)
    }

    fn release_pending(&self) {
        let mut counts = self.lock();
        counts.pending = counts.pending.saturating_sub(1);
        metrics::pending_connections(counts.pending);
    }
}

impl SocketPermit {
    /// The socket was upgraded to a WebSocket: it no longer counts as
    /// pending (it still counts for its address).
    pub(crate) fn upgraded(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            self.admission.release_pending();
        }
    }

    /// Whether the socket is still waiting for its upgrade.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.upgraded();
        let mut counts = self.admission.lock();
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.websockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is available (zero if one is now). A bucket
    /// with rate 0 never refills: an hour stands for "not soon".
    pub(crate) fn wait(&mut self) -> Duration {
        self.refill();
        let missing = 1.0 - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else if self.rate <= 0.0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs_f64((missing / self.rate).min(3600.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refuses() {
        let mut b = TokenBucket::new(1, 5);
        assert_eq!((0..10).filter(|_| b.take()).count(), 5);
        let wait = b.wait();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert_eq!(TokenBucket::new(0, 1).wait(), Duration::ZERO);
    }

    #[test]
    fn sockets_are_limited_per_ip_and_while_pending_and_released_on_drop() {
        let a = Arc::new(Admission::new(2, 3));
        let ip: IpAddr = [127, 0, 0, 1].into();
        let first = a.accept(ip).unwrap();
        let second = a.accept(ip).unwrap();
        assert_eq!(a.accept(ip).unwrap_err(), Refusal::PerIp);
        let elsewhere = a.accept([127, 0, 0, 2].into()).unwrap();
        assert_eq!(
            a.accept([127, 0, 0, 3].into()).unwrap_err(),
            Refusal::Pending
        );
        // An upgraded socket leaves the pending count, not its address's.
        second.upgraded();
        second.upgraded();
        assert_eq!(a.pending(), 2);
        assert_eq!(a.accept(ip).unwrap_err(), Refusal::PerIp);
        let _third = a.accept([127, 0, 0, 3].into()).unwrap();
        drop(first);
        assert_eq!((a.sockets_from(ip), a.pending()), (1, 2));
        let again = a.accept(ip).unwrap();
        drop((elsewhere, second, again));
        assert_eq!((a.sockets_from(ip), a.pending()), (0, 1));
    }

    #[test]
    fn websockets_are_limited_in_total() {
        let a = Arc::new(Admission::new(10, 10));
        let one = a.admit(2).unwrap();
        let _two = a.admit(2).unwrap();
        assert!(a.admit(2).is_none());
        drop(one);
        assert!(a.admit(2).is_some());
    }
}
