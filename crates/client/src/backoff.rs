//! [`Backoff`]: capped exponential reconnect delays with full jitter.

use std::time::Duration;

/// Reconnect delays: attempt `n` (from 0) waits a uniformly random time in
/// `[0, min(max, initial * 2^n)]` ("full jitter"), so a relay restart does
/// not bring every client back at the same instant.
///
/// ```
/// use std::time::Duration;
/// use weft_client::Backoff;
/// let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5) };
/// assert_eq!(b.ceiling(0), Duration::from_millis(100));
/// assert_eq!(b.ceiling(3), Duration::from_millis(800));
/// assert_eq!(b.ceiling(30), Duration::from_secs(5));
/// assert!(b.delay(3) <= Duration::from_millis(800));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first delay.
    pub initial: Duration,
    /// Cap on every delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms doubling up to 30 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The largest delay of attempt `attempt` (0-based): `initial * 2^attempt`,
    /// capped at `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// A random delay for attempt `attempt`, uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        jitter(self.ceiling(attempt), random_u64())
    }
}

/// `ceiling` scaled by `random / u64::MAX`.
fn jitter(ceiling: Duration, random: u64) -> Duration {
    let nanos = ceiling.as_nanos();
    let scaled = nanos * u128::from(random) / u128::from(u64::MAX);
    Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
}

/// 64 random bits from the OS, or a time-derived fallback.
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps_without_overflow() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(1),
        };
        let ceilings: Vec<u128> = (0..9).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::from_secs(2),
        };
        assert_eq!(huge.ceiling(5), Duration::from_secs(2));
    }

    #[test]
    fn jitter_spans_zero_to_ceiling() {
        let c = Duration::from_millis(800);
        assert_eq!(jitter(c, 0), Duration::ZERO);
        assert_eq!(jitter(c, u64::MAX), c);
        assert_eq!(jitter(c, u64::MAX / 2).as_millis(), 399);
    }

    #[test]
    fn delays_are_spread_not_constant() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
        };
        let delays: std::collections::BTreeSet<Duration> = (0..32).map(|_| b.delay(0)).collect();
        assert!(delays.len() > 16, "full jitter draws distinct delays");
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(1)));
    }
}
