//! [`SendOrder`]: local updates reach the sync task in commit order,
//! although each waits for its fsync outside the document's lock.
//!
//! A local edit takes a ticket under the document's lock (where it was
//! applied and queued on the store), then waits for its commit without the
//! lock, then waits for its turn to hand the update to the sync task. The
//! store commits queued appends in order, so waiting for a turn is short:
//! usually the earlier edit's commit is the same one.

use std::sync::{Condvar, Mutex};

/// Tickets, and the one now being served.
#[derive(Debug, Default)]
pub(crate) struct SendOrder {
    next: Mutex<Counters>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct Counters {
    issued: u64,
    serving: u64,
}

/// Held while a ticket is served; the next one is served when it drops
/// (also on unwinding, so a panicking edit cannot stall the others).
#[derive(Debug)]
pub(crate) struct Turn<'a>(&'a SendOrder);

impl SendOrder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.next.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issues the next ticket (call under the document's lock).
    pub(crate) fn ticket(&self) -> u64 {
        let mut c = self.lock();
        let t = c.issued;
        c.issued += 1;
        t
    }

    /// Blocks until `ticket` is served.
    pub(crate) fn wait_turn(&self, ticket: u64) -> Turn<'_> {
        let mut c = self.lock();
        while c.serving != ticket {
            c = self.turn.wait(c).unwrap_or_else(|p| p.into_inner());
        }
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.lock().serving += 1;
        self.0.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn turns_are_served_in_ticket_order_whatever_order_threads_arrive_in() {
        let order = Arc::new(SendOrder::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tickets: Vec<u64> = (0..8).map(|_| order.ticket()).collect();
        // Threads for later tickets start first.
        let handles: Vec<_> = tickets
            .into_iter()
            .rev()
            .map(|t| {
                let (order, seen) = (order.clone(), seen.clone());
                std::thread::spawn(move || {
                    let _turn = order.wait_turn(t);
                    seen.lock().unwrap().push(t);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*seen.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_turn_still_passes_the_turn_on() {
        let order = Arc::new(SendOrder::default());
        let (a, b) = (order.ticket(), order.ticket());
        let o = order.clone();
        let r = std::thread::spawn(move || {
            let _turn = o.wait_turn(a);
            panic!("an edit's handler panicked");
        })
        .join();
        assert!(r.is_err());
        let _turn = order.wait_turn(b); // does not hang
    }
}
