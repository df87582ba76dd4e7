//! The one retry policy of the kit: capped exponential backoff with jitter.
//!
//! Used by the relay when NATS is unreachable and by the consumer runner for the delay of a nak.

use std::time::Duration;

/// Capped exponential backoff. `delay(n)` grows as `initial * 2^n` up to `max`, with up to 20%
/// jitter taken off so that many instances that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// No delay is ever longer than this.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 is the first retry), without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry number `attempt`, with jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let jitter = rand::random::<f64>() * 0.2;
        base.mul_f64(1.0 - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.base_delay(0), Duration::from_millis(100));
        assert_eq!(b.base_delay(1), Duration::from_millis(200));
        assert_eq!(b.base_delay(3), Duration::from_millis(800));
        assert_eq!(b.base_delay(4), Duration::from_secs(1));
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_never_exceeds_the_cap() {
        let b = Backoff::default();
        for attempt in 0..40 {
            let d = b.delay(attempt);
            assert!(d <= b.max);
            assert!(d >= b.base_delay(attempt).mul_f64(0.79));
        }
    }
}
