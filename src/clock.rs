//! Where "now" comes from. Stores never read the clock; the scheduler asks a [`Clock`] and
//! passes the instant down, so tests can drive time by hand.

use std::fmt::Debug;
#[cfg(any(test, feature = "testing"))]
use std::time::Duration;

use queuectl_store::Timestamp;

/// A source of the current time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to: for deterministic tests of backoff and leases.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct ManualClock {
    now: parking_lot::Mutex<Timestamp>,
}

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: parking_lot::Mutex::new(start),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock();
        *now = now.add(d);
    }

    /// Sets the clock to `t` (it may go backwards; stores must cope with that too).
    pub fn set(&self, t: Timestamp) {
        *self.now.lock() = t;
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_millis(1_000));
        assert_eq!(c.now(), Timestamp::from_millis(1_000));
        c.advance(Duration::from_millis(1_500));
        assert_eq!(c.now(), Timestamp::from_millis(2_500));
        c.set(Timestamp::from_millis(5));
        assert_eq!(c.now(), Timestamp::from_millis(5));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_millis(1_577_836_800_000));
    }
}
