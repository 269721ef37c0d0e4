//! Where "now" comes from. Stores never read the clock; the scheduler asks a [`Clock`] and
//! passes the instant down, so tests can drive time by hand with a `ManualClock` (feature
//! `testing`).
//!
//! A clock that can jump (a test moving a `ManualClock`) tells its subscribers
//! ([`Clock::subscribe`]); every [`Scheduler`](crate::Scheduler) subscribes, so a
//! [`WorkerPool`](crate::worker::WorkerPool) running on it looks for newly due jobs at
//! once instead of at its next periodic look.

use std::fmt::Debug;
#[cfg(any(test, feature = "testing"))]
use std::time::Duration;

use queuectl_store::Timestamp;

/// What [`Clock::subscribe`] takes: called after each jump, it returns `false` once it is no
/// longer needed.
#[cfg(any(test, feature = "testing"))]
type JumpCallback = Box<dyn Fn() -> bool + Send + Sync>;

/// A source of the current time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Asks to be told, by a call of `on_jump`, whenever this clock jumps: moves other than
    /// by the passing of time, as a test's `ManualClock::advance` does. `on_jump` is
    /// called after the jump, on the thread that made it; it must neither block nor
    /// subscribe again, and once it returns `false` it is dropped.
    ///
    /// The default does nothing (and drops `on_jump`): a wall clock moves steadily and
    /// never jumps in this sense.
    fn subscribe(&self, on_jump: Box<dyn Fn() -> bool + Send + Sync>) {
        drop(on_jump);
    }
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to: for deterministic tests of delays, backoff and
/// leases. Behind the `testing` feature (enable it in your `[dev-dependencies]`).
///
/// Moving it ([`ManualClock::advance`], [`ManualClock::set`]) wakes every
/// [`Scheduler`](crate::Scheduler) built on it, so an idle
/// [`WorkerPool`](crate::worker::WorkerPool) claims the jobs that just became due at once;
/// or run them in the test's own thread with
/// [`WorkerPool::run_due`](crate::worker::WorkerPool::run_due):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use queuectl::WorkerPool;
/// use queuectl::prelude::*;
/// use queuectl::testing::ManualClock;
/// use queuectl::{Clock, EnqueueRequest, JobState, Scheduler, Timestamp};
/// use queuectl_store_memory::MemoryStore;
///
/// let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
/// let scheduler = Scheduler::with_clock(Arc::new(MemoryStore::new()), clock.clone());
/// let id = scheduler.enqueue(EnqueueRequest {
///     run_at: Some(clock.now().add(Duration::from_secs(3600))),
///     ..EnqueueRequest::shell("true")
/// })?;
/// let pool = WorkerPool::builder(scheduler.clone()).build();
///
/// assert_eq!(pool.run_due()?.succeeded, 0); // not due yet
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(pool.run_due()?.succeeded, 1);
/// assert_eq!(scheduler.store().get(&id)?.state, JobState::Completed);
/// # Ok::<(), queuectl::Error>(())
/// ```
#[cfg(any(test, feature = "testing"))]
pub struct ManualClock {
    now: parking_lot::Mutex<Timestamp>,
    subscribers: parking_lot::Mutex<Vec<JumpCallback>>,
}

#[cfg(any(test, feature = "testing"))]
impl Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.now.lock())
            .field("subscribers", &self.subscribers.lock().len())
            .finish()
    }
}

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: parking_lot::Mutex::new(start),
            subscribers: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Moves the clock forward by `d`, then tells its subscribers.
    pub fn advance(&self, d: Duration) {
        {
            let mut now = self.now.lock();
            *now = now.add(d);
        }
        self.jumped();
    }

    /// Sets the clock to `t` (it may go backwards; stores must cope with that too), then
    /// tells its subscribers.
    pub fn set(&self, t: Timestamp) {
        *self.now.lock() = t;
        self.jumped();
    }

    /// Calls every subscriber, dropping those that are done. Runs without the time's lock,
    /// so a subscriber (a woken worker) can read the new time at once.
    fn jumped(&self) {
        self.subscribers.lock().retain(|on_jump| on_jump());
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }

    fn subscribe(&self, on_jump: JumpCallback) {
        self.subscribers.lock().push(on_jump);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

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
    fn a_jump_calls_subscribers_until_they_are_done() {
        let c = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
        let calls = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&calls);
        let clock = Arc::clone(&c);
        // Sees the new time, and unsubscribes after its second call.
        c.subscribe(Box::new(move || {
            assert!(clock.now() > Timestamp::from_millis(0));
            counted.fetch_add(1, Ordering::SeqCst) < 1
        }));
        c.advance(Duration::from_millis(1));
        c.set(Timestamp::from_millis(10));
        c.advance(Duration::from_millis(1));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(c.subscribers.lock().is_empty());
    }

    #[test]
    fn system_clock_is_after_2020_and_ignores_subscribers() {
        assert!(SystemClock.now() > Timestamp::from_millis(1_577_836_800_000));
        SystemClock.subscribe(Box::new(|| true));
    }
}
