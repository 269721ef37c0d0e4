//! The worker runtime end to end: the shell executor against real processes, the pool
//! against a `MemoryStore`, time travel with a manual clock, typed jobs.

mod due;
mod executor;
mod faults;
mod pool;
mod process;
mod steps;
mod typed;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use queuectl::testing::ManualClock;
use queuectl::{Scheduler, Timestamp};
use queuectl_store_memory::MemoryStore;

/// Generous bound for things that should take milliseconds: only a hang hits it.
pub(crate) const HANG: Duration = Duration::from_secs(20);

/// Runs `pool` on its own thread; the handle yields its report.
pub(crate) fn spawn<S: queuectl::JobStore + Clone>(
    pool: queuectl::WorkerPool<S>,
    shutdown: &queuectl::Shutdown,
) -> std::thread::JoinHandle<queuectl::PoolReport> {
    let shutdown = shutdown.clone();
    std::thread::spawn(move || pool.run(&shutdown).expect("pool run"))
}

/// Joins a pool thread, failing the test if it does not exit within [`HANG`].
pub(crate) fn join(handle: std::thread::JoinHandle<queuectl::PoolReport>) -> queuectl::PoolReport {
    wait_until("the pool exits", || handle.is_finished());
    handle.join().expect("pool thread panicked")
}

/// Polls `cond` until it holds; panics with `what` if that takes longer than [`HANG`].
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
pub(crate) fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|s| s == 'Z' || s == 'X'),
    }
}

/// Reads a pid a job wrote to `path`, waiting for the file to be complete.
pub(crate) fn read_pid(path: &Path) -> i32 {
    let mut pid = None;
    wait_until("the job wrote its pid", || {
        pid = std::fs::read_to_string(path)
            .ok()
            .filter(|s| s.ends_with('\n'))
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap_or_default()
}

/// A manual clock at a fixed instant, shared with a scheduler.
pub(crate) fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)))
}

pub(crate) type MemScheduler = Scheduler<Arc<MemoryStore>>;

pub(crate) fn memory_scheduler() -> MemScheduler {
    Scheduler::new(Arc::new(MemoryStore::new()))
}
