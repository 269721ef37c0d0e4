//! The worker runtime: a [`WorkerPool`] claims jobs through a [`Scheduler`] and runs each one
//! with the [`Handler`] registered for its `kind`.
//!
//! - `shell` jobs (everything the CLI enqueues) run through [`ShellHandler`]: `sh -c COMMAND`
//!   in its own process group, with a timeout, captured output and cancellation.
//! - Library users register in-process handlers for their own kinds, by hand
//!   ([`WorkerPoolBuilder::handler`]) or as typed jobs ([`crate::typed`]).
//!
//! A pool runs in the foreground ([`WorkerPool::run`]) with one thread per slot plus four
//! helpers, none of which runs job code:
//! - **lease renewal** every lease/3 while jobs run; a renewal that comes back `Stale` means
//!   the job was taken from us (recovered as dead): it is killed and not reported;
//! - **heartbeat** about every second; it notices `worker stop` (a graceful stop) and
//!   re-registers a worker that others wrongly deregistered as dead;
//! - **recovery** at start-up and about every second: expired leases go back to `pending`;
//!   registered workers on this host whose process is gone (or any worker whose heartbeat is
//!   older than three leases) have their orphaned job process groups killed (see
//!   `orphan.rs`), their jobs recovered and their registry entry removed;
//! - **wake-up**, on a store that can wait for other processes' writes
//!   ([`ChangeFeed::wait_for_change`](queuectl_store::ChangeFeed::wait_for_change): PostgreSQL's
//!   `LISTEN/NOTIFY`): it wakes the idle slots within milliseconds of a claimable write
//!   anywhere; on other stores it exits at once.
//!
//! Stopping is driven by a [`Shutdown`]: graceful (finish running jobs, claim nothing new) or
//! immediate (kill running jobs and [`Scheduler::release`] them to `pending`, uncharged).
//!
//! A slot claims up to [`WorkerPoolBuilder::claim_batch`] jobs at once, runs them one after
//! the other and records their outcomes together, in one store call (one transaction): a
//! group commit, flushed early once the oldest unrecorded outcome is 5 ms old so that a long
//! job never delays recording the ones before it. A job counts as finished only once that
//! call returns; until then it stays held, and its lease renewed, by this worker.
//!
//! Idle slots cost almost nothing: before a claim query they compare the store's
//! [`change_marker`](queuectl_store::ChangeFeed::change_marker) with the one seen at their last
//! empty claim, and skip the query while nothing changed (a full claim still runs at least
//! once a second, because a delayed job becomes due without any write). They sleep in
//! [`Scheduler::wait_for_work`], so an enqueue through the same scheduler (or a clone) in
//! this process wakes them at once, and so does the wake-up helper for other processes'
//! writes; otherwise they look again after the poll interval.
//!
//! [`Scheduler`]: crate::Scheduler
//! [`Scheduler::release`]: crate::Scheduler::release
//! [`Scheduler::wait_for_work`]: crate::Scheduler::wait_for_work

mod executor;
mod orphan;
mod pool;
mod shutdown;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use queuectl_store::Job;

pub use self::executor::{ShellHandler, TIMEOUT_EXIT_CODE};
pub use self::pool::{
    default_host_id, live_workers, recover_dead_workers, PoolReport, WorkerPool, WorkerPoolBuilder,
};
pub use self::shutdown::{CancelToken, Shutdown};

pub(crate) use self::executor::timeout_error;
use self::orphan::GroupRegistry;
use crate::scheduler::Outcome;

/// Runs one execution of a job and says how it went.
///
/// Implemented by [`ShellHandler`], by typed jobs ([`crate::typed::TypedJob`]) and by any
/// `Fn(&Job, &JobContext) -> Outcome + Send + Sync`. A handler must not panic (the pool turns
/// a panic into a failed outcome, but it is a bug) and should return promptly once
/// [`JobContext::should_stop`] is true: in-process code cannot be killed, so its timeout and
/// cancellation are cooperative.
pub trait Handler: Send + Sync {
    /// Runs `job` once.
    fn run(&self, job: &Job, ctx: &JobContext) -> Outcome;
}

impl<F> Handler for F
where
    F: Fn(&Job, &JobContext) -> Outcome + Send + Sync,
{
    fn run(&self, job: &Job, ctx: &JobContext) -> Outcome {
        self(job, ctx)
    }
}

/// What a [`Handler`] knows about the execution it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    attempt: u32,
    timeout: Option<Duration>,
    started: Instant,
    cancel: CancelToken,
    groups: Option<GroupTracker>,
}

impl JobContext {
    /// A context for running a handler outside a pool (tests, one-off runs): attempt
    /// `attempt` (1-based), the given timeout, cancelled through `cancel`. The timeout clock
    /// starts now.
    #[must_use]
    pub fn new(attempt: u32, timeout: Option<Duration>, cancel: CancelToken) -> Self {
        JobContext {
            attempt,
            timeout,
            started: Instant::now(),
            cancel,
            groups: None,
        }
    }

    pub(crate) fn with_group_tracker(mut self, tracker: GroupTracker) -> Self {
        self.groups = Some(tracker);
        self
    }

    /// This execution's number, 1-based: the job's finished attempts plus one.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The job's timeout, if it has one.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// When the timeout expires, if there is one.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.and_then(|t| self.started.checked_add(t))
    }

    /// Whether the timeout has passed.
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// The token cancelled when the job must stop at once: an immediate worker stop, or
    /// its lease was lost to another worker.
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Whether the job was cancelled (see [`JobContext::cancel_token`]).
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether the handler should give up now: cancelled or timed out.
    #[must_use]
    pub fn should_stop(&self) -> bool {
        self.is_cancelled() || self.timed_out()
    }

    /// Sleeps up to `d`, waking early on cancellation or at the deadline; returns
    /// [`JobContext::should_stop`]. For handlers that wait for something.
    pub fn sleep(&self, d: Duration) -> bool {
        let d = match self.deadline() {
            Some(deadline) => d.min(deadline.saturating_duration_since(Instant::now())),
            None => d,
        };
        self.cancel.wait_timeout(d);
        self.should_stop()
    }

    /// Records process group `pgid` as belonging to this job until the guard drops, so a
    /// worker on this host can kill it if this worker dies. A no-op outside a pool.
    pub fn track_process_group(&self, pgid: i32) -> ProcessGroupGuard {
        let file = self.groups.as_ref().and_then(|g| g.record(pgid));
        ProcessGroupGuard { file }
    }
}

/// Keeps a job's process group recorded; see [`JobContext::track_process_group`].
#[derive(Debug)]
#[must_use = "the record is removed when the guard drops"]
pub struct ProcessGroupGuard {
    file: Option<PathBuf>,
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            if let Err(e) = std::fs::remove_file(&file) {
                tracing::debug!(file = %file.display(), error = %e, "cannot remove group record");
            }
        }
    }
}

/// Where one worker records its jobs' process groups.
#[derive(Debug, Clone)]
pub(crate) struct GroupTracker {
    registry: Arc<GroupRegistry>,
    worker_id: Arc<str>,
}

impl GroupTracker {
    fn record(&self, pgid: i32) -> Option<PathBuf> {
        match self.registry.record(&self.worker_id, pgid) {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(pgid, error = %e, "cannot record the job's process group");
                None
            }
        }
    }
}

/// A `processing` shell job for handler tests.
#[cfg(test)]
pub(crate) fn test_job(command: &str) -> Job {
    let mut job = queuectl_store_conformance::fixture::job_in_state(
        "job-1",
        queuectl_store::JobState::Processing,
    );
    command.clone_into(&mut job.command);
    job
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn context_sleep_stops_at_the_deadline_and_on_cancel() {
        let ctx = JobContext::new(1, Some(Duration::from_millis(20)), CancelToken::new());
        assert!(!ctx.is_cancelled());
        // Sleeps at most until the deadline, however long it was asked to.
        assert!(ctx.sleep(Duration::from_secs(3600)));
        assert!(ctx.timed_out() && !ctx.is_cancelled());

        let token = CancelToken::new();
        let ctx = JobContext::new(2, None, token.clone());
        token.cancel();
        assert!(ctx.sleep(Duration::from_secs(3600)));
        assert_eq!(ctx.attempt(), 2);
        assert_eq!(ctx.deadline(), None);
    }
}
