//! Where "now" comes from. Stores never read the clock; the scheduler asks a [`Clock`] and
//! passes the instant down, so tests can drive time by hand with a `ManualClock` (feature
//! `testing`).
//!
//! A clock that can jump (a test moving a `ManualClock`) tells its subscribers
//! ([`Clock::subscribe`]); every [`Scheduler`](crate::Scheduler) subscribes, so a
//! [`WorkerPool`](crate::worker::WorkerPool) running on it looks for newly due jobs at
//! once instead of at its next periodic look.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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

    /// Tells the clock of an instant the store recorded (the newest job, a heartbeat), so
    /// that a clock that must not run behind what others saw can catch up: see
    /// [`SteadyClock`]. The default ignores it.
    fn observe(&self, seen: Timestamp) {
        let _ = seen;
    }
}

/// The system's wall clock, made safe against steps: it is the [`SteadyClock`] of this
/// process over the operating system's wall time (one for the whole process, shared by
/// every `SystemClock`), so it follows the wall clock forward but never goes back.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// The wall time as the operating system gives it, steps included.
#[derive(Clone, Copy, Debug, Default)]
struct OsClock;

impl Clock for OsClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The process's one steady view of the operating system's wall time.
fn process_clock() -> &'static SteadyClock {
    static CLOCK: std::sync::OnceLock<SteadyClock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(|| SteadyClock::new(Arc::new(OsClock)))
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        process_clock().now()
    }

    fn observe(&self, seen: Timestamp) {
        process_clock().observe(seen);
    }
}

/// How far ahead of this clock a store's instant may be and still be adopted by
/// [`Clock::observe`]: a backward step of the wall clock up to a day is caught up; an
/// instant further ahead (a job imported with a wild date, a host whose clock is off by
/// more) is ignored.
const OBSERVE_AHEAD_MAX: Duration = Duration::from_secs(24 * 3600);

/// A clock that follows `inner` forward but never goes back: after `inner` steps back,
/// it goes on from where it was at the pace of this process's monotonic clock until
/// `inner` catches up. So a backward step of the wall clock (an NTP step, an operator's
/// `date -s`) does not make the pending backlog future-dated for as long as the step, nor
/// stretch a retry's backoff by it; a forward step is followed (the wall clock was late).
/// [`Clock::observe`] moves it forward to an instant the store recorded (up to a day
/// ahead), which is how a worker started after a backward step catches up with jobs
/// enqueued before it. [`SystemClock`] is this over the operating system's wall time.
#[derive(Debug)]
pub struct SteadyClock {
    inner: Arc<dyn Clock>,
    /// The last instant returned, and when (on the monotonic clock).
    last: Mutex<Option<(Timestamp, Instant)>>,
}

impl SteadyClock {
    /// A steady view of `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Clock>) -> Self {
        SteadyClock {
            inner,
            last: Mutex::new(None),
        }
    }
}

impl Clock for SteadyClock {
    fn now(&self) -> Timestamp {
        let wall = self.inner.now();
        let mut last = self.last.lock();
        let mono = Instant::now();
        let now = match *last {
            Some((at, when)) => wall.max(at.add(mono.saturating_duration_since(when))),
            None => wall,
        };
        *last = Some((now, mono));
        now
    }

    fn subscribe(&self, on_jump: Box<dyn Fn() -> bool + Send + Sync>) {
        self.inner.subscribe(on_jump);
    }

    fn observe(&self, seen: Timestamp) {
        let now = self.now();
        if seen > now && seen.since(now) <= OBSERVE_AHEAD_MAX {
            tracing::info!(
                behind_ms = u64::try_from(seen.since(now).as_millis()).unwrap_or(u64::MAX),
                "the wall clock is behind what the store recorded \
                (a backward step?): going on from the store's time"
            );
            *self.last.lock() = Some((seen, Instant::now()));
        }
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
    fn a_steady_clock_follows_forward_steps_and_never_goes_back() {
        let wall = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let steady = SteadyClock::new(wall.clone());
        assert_eq!(steady.now(), Timestamp::from_millis(1_000_000));
        wall.advance(Duration::from_secs(60));
        assert_eq!(steady.now(), Timestamp::from_millis(1_060_000));
        wall.set(Timestamp::from_millis(1_060_000 - 3_600_000));
        let after_back = steady.now();
        assert!(after_back >= Timestamp::from_millis(1_060_000));
        // It keeps going at the monotonic pace meanwhile.
        std::thread::sleep(Duration::from_millis(20));
        assert!(steady.now() >= after_back.add(Duration::from_millis(20)));
        // Once the wall clock is ahead again, it follows.
        wall.set(Timestamp::from_millis(5_000_000));
        assert_eq!(steady.now(), Timestamp::from_millis(5_000_000));
    }

    #[test]
    fn a_steady_clock_adopts_a_store_instant_up_to_a_day_ahead() {
        let wall = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let steady = SteadyClock::new(wall.clone());
        steady.observe(Timestamp::from_millis(1_000_000 + 3_600_000));
        assert!(steady.now() >= Timestamp::from_millis(1_000_000 + 3_600_000));
        let far = steady.now().add(Duration::from_secs(2 * 24 * 3600));
        steady.observe(far);
        assert!(steady.now() < far);
    }

    #[test]
    fn system_clock_is_after_2020_and_ignores_subscribers() {
        assert!(SystemClock.now() > Timestamp::from_millis(1_577_836_800_000));
        SystemClock.subscribe(Box::new(|| true));
    }
}
