//! Retry policy: how long a failed job waits before it may run again.
//!
//! Pure functions; the scheduler reads `backoff-base` and `backoff-max` at failure time
//! and asks here for the delay.

use std::time::Duration;

/// The shortest delay ever returned: a failed job never becomes claimable again at once.
pub(crate) const MIN_DELAY: Duration = Duration::from_secs(1);

/// A policy that turns "attempts so far" into a delay.
pub(crate) trait RetryPolicy {
    /// The delay after a failure that left the job with `attempts` finished attempts.
    fn delay(&self, attempts: u32) -> Duration;
}

/// `min(base ^ attempts, max)` seconds, at least [`MIN_DELAY`] (docs/CLI.md, "States").
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ExponentialBackoff {
    /// The base, ≥ 1 (1 means a constant one second).
    pub(crate) base: f64,
    /// The cap, in seconds.
    pub(crate) max_secs: u64,
}

impl RetryPolicy for ExponentialBackoff {
    fn delay(&self, attempts: u32) -> Duration {
        backoff_delay(self.base, attempts, self.max_secs)
    }
}

/// `min(base ^ attempts, max_secs)` seconds, never below [`MIN_DELAY`], at millisecond
/// precision.
#[must_use]
pub(crate) fn backoff_delay(base: f64, attempts: u32, max_secs: u64) -> Duration {
    let cap = Duration::from_secs(max_secs).max(MIN_DELAY);
    // A non-finite or sub-1 base cannot come from validated settings; treat it as 1.
    let base = if base.is_finite() && base >= 1.0 {
        base
    } else {
        1.0
    };
    let exp = i32::try_from(attempts).unwrap_or(i32::MAX);
    let secs = base.powi(exp);
    // powi overflows to +inf for large exponents; compare before converting.
    let delay = if !secs.is_finite() || secs >= cap.as_secs_f64() {
        cap
    } else {
        Duration::from_millis((secs * 1000.0).round() as u64)
    };
    delay.clamp(MIN_DELAY, cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_contract_table_at_base_two() {
        let secs: Vec<u64> = (0..=13)
            .map(|k| backoff_delay(2.0, k, 3600).as_secs())
            .collect();
        assert_eq!(
            secs,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
    }

    #[test]
    fn fractional_bases_keep_milliseconds() {
        assert_eq!(backoff_delay(1.5, 1, 3600), Duration::from_millis(1500));
        assert_eq!(backoff_delay(2.0, 20, 3600), Duration::from_secs(3600));
    }

    #[test]
    fn base_one_is_a_constant_second() {
        for k in [0, 1, 5, 1000, u32::MAX] {
            assert_eq!(backoff_delay(1.0, k, 3600), Duration::from_secs(1));
        }
    }

    #[test]
    fn huge_exponents_hit_the_cap_without_overflow() {
        assert_eq!(backoff_delay(10.0, u32::MAX, 60), Duration::from_secs(60));
        assert_eq!(backoff_delay(1e6, 1000, 7), Duration::from_secs(7));
    }

    proptest! {
        #[test]
        fn delay_is_monotonic_bounded_and_at_least_a_second(
            base in 1.0f64..50.0, k in 0u32..200, max in 1u64..100_000
        ) {
            let d = backoff_delay(base, k, max);
            prop_assert!(d >= MIN_DELAY);
            prop_assert!(d <= Duration::from_secs(max).max(MIN_DELAY));
            prop_assert!(backoff_delay(base, k + 1, max) >= d);
        }
    }
}
