//! The worker runtime: a [`WorkerPool`] claims jobs through a [`Scheduler`] and runs each one
//! with the [`Handler`] registered for its `kind`.
//!
//! - `shell` jobs (everything the CLI enqueues) run through [`ShellHandler`]: `sh -c COMMAND`
//!   in its own process group, with a timeout, captured output and cancellation.
//! - Library users register in-process handlers for their own kinds, by hand
//!   ([`WorkerPoolBuilder::handler`]) or as typed jobs ([`crate::typed`]), and give them
//!   application state ([`WorkerPoolBuilder::state`], read with [`JobContext::state`]).
//!
//! The runtime is laid out in rooms of one purpose each:
//!
//! | module | purpose |
//! |---|---|
//! | `builder` | [`WorkerPoolBuilder`]: slots, queues, handlers, state, timings; nothing runs yet |
//! | `run` | the run loop: [`WorkerPool::run`] / [`WorkerPool::run_due`], the slots (`run/slot.rs`) and the helper threads (`run/upkeep.rs`) |
//! | `liveness` | who is dead and what recovery does about it, for the pool and the CLI alike |
//! | `context`, `state` | what a handler is handed: [`JobContext`] and the shared state |
//! | `executor` | [`ShellHandler`] |
//! | `limits` | a job's resource limits: [`exec_with_limits`] and how a limit shows in `last_error` |
//! | `shutdown` | [`Shutdown`] and [`CancelToken`] |
//!
//! # The run loop
//!
//! A pool runs in the foreground ([`WorkerPool::run`]) with one thread per slot plus five
//! helpers, none of which runs job code:
//! - **lease renewal** every lease/3 while jobs run; a renewal that comes back `Stale` means
//!   the job was taken from us (recovered as dead): it is killed and not reported;
//! - **heartbeat** about every second; it notices `worker stop` (a graceful stop) and
//!   re-registers a worker that others wrongly deregistered as dead;
//! - **recovery** at start-up and about every second (see [Liveness](#liveness));
//! - **cancel requests**: while jobs run, it asks the store which of them an operator
//!   cancelled ([`Jobs::cancel_requests`](queuectl_store::Jobs::cancel_requests)) whenever
//!   the store's change marker or the work generation moved (looking every 100 ms), and at
//!   least once a second, and passes each request to its job's [`JobContext`];
//! - **wake-up**, on a store that can wait for other processes' writes
//!   ([`ChangeFeed::wait_for_change`](queuectl_store::ChangeFeed::wait_for_change): PostgreSQL's
//!   `LISTEN/NOTIFY`, SQLite's inotify watch of its files on Linux): it wakes the idle
//!   slots within milliseconds of a write from any process; on other stores it exits at
//!   once.
//!
//! Stopping is driven by a [`Shutdown`]: graceful (finish running jobs, claim nothing new) or
//! immediate (kill running jobs and [`Scheduler::release`] them to `pending`, uncharged).
//!
//! # Claims
//!
//! A slot claims its next job, plus up to [`WorkerPoolBuilder::prefetch`] more
//! ([`DEFAULT_PREFETCH`] by default, 0 for one at a time) while a backlog is proven and the
//! jobs are short: the claim starts at one job, doubles after each claim that came back
//! full, falls back to one after a claim that came back short, and is capped so that the
//! batch runs in about 25 ms at the average job time seen so far. A queue of no-op or
//! millisecond jobs is thus claimed in batches (few transactions per job), while a few
//! jobs arriving at once, or long jobs, go one per claim to whichever slot or worker is
//! free: nothing waits in one worker that another could run. Prefetched jobs count as
//! claimed everywhere (a queue's concurrency limit included) and are covered by the lease.
//! [`WorkerPoolBuilder::claim_batch`] sets a fixed batch instead (a tuning).
//!
//! A slot runs its claimed jobs one after the other and records their outcomes together,
//! in one store call (one transaction) with its next claim: a group commit, flushed early
//! once the oldest unrecorded outcome is 5 ms old. Under adaptive claims outcomes are
//! grouped only while the slot's jobs average under 1 ms; otherwise each outcome is
//! recorded before the next job starts, so a long job never delays recording the ones
//! before it (a fixed batch always groups: it is a tuning for short jobs). A job counts as finished only once that call returns; until then it
//! stays held, and its lease renewed, by this worker.
//!
//! Idle slots cost almost nothing: before a claim query they compare the store's
//! [`change_marker`](queuectl_store::ChangeFeed::change_marker) with the one seen at their last
//! empty claim, and skip the query while nothing changed (a full claim still runs at least
//! once a second, because a delayed job becomes due without any write). They sleep in
//! [`Scheduler::wait_for_work`], so an enqueue through the same scheduler (or a clone) in
//! this process wakes them at once, and so does the wake-up helper for other processes'
//! writes; otherwise they look again after the poll interval. A jump of the scheduler's
//! clock (a `ManualClock`, feature `testing`, moved by a test) wakes them too, and they
//! claim at once: time travel needs no throwaway enqueue.
//!
//! # Liveness
//!
//! One rule decides that a registered worker is dead, used by the pool's recovery pass and
//! by the CLI (`status`, `list`, `worker stop --wait`, through [`live_workers`] and
//! [`recover_dead_workers`]):
//! - a worker on the same host (same host id, see [`default_host_id`]) whose process is
//!   gone, or whose pid now belongs to a later process, is dead at once; one whose process
//!   runs is alive (whatever the wall clock says);
//! - any worker whose heartbeat a running pool has seen stand still for three leases (at
//!   least 10 s, on its monotonic clock) is dead; `status` judges another host's worker
//!   by its heartbeat's age instead.
//!
//! Recovery then kills the dead worker's orphaned job process groups (same host only: each
//! worker records its jobs' groups in a per-user directory, see
//! [`WorkerPoolBuilder::group_dir`]), puts its jobs back to `pending` uncharged and removes
//! its registry entry. A running pool also recovers expired leases, except those held by a
//! live worker on its own host (stalled, not dead: taking its job would run it twice).
//!
//! A pool cut off from its store keeps what it ran: results the store refuses (a full
//! disk) are recorded once it accepts writes again. While a worker of another host uses
//! the store, a pool that cannot renew a lease kills that job a sixth of a lease before
//! the lease ends (the self-fence), so the other host never runs it at the same time.
//!
//! [`Scheduler`]: crate::Scheduler
//! [`Scheduler::release`]: crate::Scheduler::release
//! [`Scheduler::wait_for_work`]: crate::Scheduler::wait_for_work

mod builder;
mod context;
mod executor;
mod limits;
mod liveness;
mod run;
mod shutdown;
mod state;

use queuectl_store::Job;

pub use self::builder::{WorkerPoolBuilder, DEFAULT_PREFETCH};
pub use self::context::{JobContext, ProcessGroupGuard};
pub use self::executor::{ShellHandler, TIMEOUT_EXIT_CODE};
pub use self::limits::{apply_limits, exec_with_limits, limit_args};
pub use self::liveness::{default_host_id, live_workers, recover_dead_workers};
pub use self::run::{PoolReport, WorkerPool};
pub use self::shutdown::{CancelToken, Shutdown};
pub use self::state::MissingState;

pub(crate) use self::executor::timeout_error;
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
