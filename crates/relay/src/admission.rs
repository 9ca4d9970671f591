//! Admission limits: connections in total and per IP address, and the
//! per-connection update rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Counts open connections, in total and per IP.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Holds one admitted connection's place; released on drop.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Admits a connection from `ip` if both limits allow it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *open;
        let here = per_ip.entry(ip).or_insert(0);
        if *total >= max_total || *here >= max_per_ip {
            if *here == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *here += 1;
        *total += 1;
        Some(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    /// Open connections in total.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
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

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
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
    }

    #[test]
    fn admission_limits_per_ip_and_releases_on_drop() {
        let a = Arc::new(Admission::default());
        let ip: IpAddr = [127, 0, 0, 1].into();
        let first = a.admit(ip, 10, 2).unwrap();
        let _second = a.admit(ip, 10, 2).unwrap();
        assert!(a.admit(ip, 10, 2).is_none(), "per-IP limit");
        let _elsewhere = a.admit([127, 0, 0, 2].into(), 10, 2).unwrap();
        drop(first);
        let _third = a.admit(ip, 10, 2).unwrap();
        assert_eq!(a.open(), 3);
        assert!(a.admit([10, 0, 0, 9].into(), 3, 2).is_none(), "total limit");
    }
}
