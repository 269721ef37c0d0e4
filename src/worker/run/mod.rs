//! The run loop: [`WorkerPool::run`] registers the worker, starts the slots and the helper
//! threads, and deregisters once they are done; [`WorkerPool::run_due`] does the same with
//! one slot that stops at the first claim finding nothing due.
//!
//! - `slot.rs`: one slot's loop: claim (skipping the query while nothing changed), run a
//!   batch, group-commit its outcomes, release what a stop left unstarted.
//! - `fence.rs`: the self-fence, which kills a job whose lease this worker failed to renew
//!   before the lease can expire for another host's worker.
//! - `record.rs`: results the store refused, recorded again until it accepts them (and
//!   at exit, released or left to recovery).
//! - `upkeep.rs`: the helper threads: lease renewal, heartbeat, wake-up on other processes'
//!   writes, cancel requests for the jobs it runs, the recovery pass (whose rule lives in
//!   `liveness`), schedule firing and the retention pass.
//!
//! Everything one run's threads share is in [`Run`]; the pool itself is immutable while it
//! runs, so one pool may run again after it stopped.

mod claim;
mod fence;
mod record;
mod slot;
mod upkeep;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use queuectl_store::{ClaimToken, Job, JobId, JobStore, WorkerInfo};

pub(in crate::worker) use self::claim::ClaimPolicy;
use super::context::{GroupTracker, OutputSink};
use super::liveness::orphan::GroupRegistry;
use super::liveness::{catch_up_clock, Liveness};
use super::state::StateMap;
use super::{CancelToken, Handler, Shutdown};
use crate::error::{Error, Result};
use crate::scheduler::{JobTemplate, Outcome, Scheduler};

/// A set of worker slots that claim and run jobs until stopped; see
/// [running jobs](crate#running-jobs) in the crate docs.
///
/// ```no_run
/// # use queuectl::{Scheduler, Shutdown, WorkerPool};
/// # fn demo<S: queuectl::JobStore + Clone>(scheduler: Scheduler<S>) -> queuectl::Result<()> {
/// let shutdown = Shutdown::new();
/// shutdown.install_signal_handlers().expect("signal handlers");
/// let report = WorkerPool::builder(scheduler).slots(4).build().run(&shutdown)?;
/// eprintln!("{} jobs succeeded", report.succeeded);
/// # Ok(()) }
/// ```
pub struct WorkerPool<S: JobStore + Clone> {
    pub(in crate::worker) scheduler: Scheduler<S>,
    pub(in crate::worker) id: String,
    pub(in crate::worker) host: String,
    pub(in crate::worker) pid: u32,
    pub(in crate::worker) slots: u32,
    pub(in crate::worker) queues: Vec<String>,
    pub(in crate::worker) poll_interval: Option<Duration>,
    pub(in crate::worker) lease: Option<Duration>,
    pub(in crate::worker) drain: bool,
    pub(in crate::worker) claim: ClaimPolicy,
    pub(in crate::worker) handlers: HashMap<String, Arc<dyn Handler>>,
    pub(in crate::worker) state: Arc<StateMap>,
    pub(in crate::worker) heartbeat_interval: Duration,
    pub(in crate::worker) recovery_interval: Duration,
    pub(in crate::worker) retention_interval: Option<Duration>,
    pub(in crate::worker) groups: GroupRegistry,
    pub(in crate::worker) schedules: Option<Arc<JobTemplate>>,
}

impl<S: JobStore + Clone> std::fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("id", &self.id)
            .field("slots", &self.slots)
            .field("queues", &self.queues)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What one [`WorkerPool::run`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolReport {
    /// The worker id it registered under.
    pub worker_id: String,
    /// Executions reported as successful.
    pub succeeded: u64,
    /// Executions reported as failed (the scheduler made them `failed` or `dead`).
    pub failed: u64,
    /// Jobs given back to `pending` uncharged (immediate stop, or claimed but not started
    /// before a stop).
    pub released: u64,
    /// Executions whose result was discarded because the job had been taken from this
    /// worker (lease lost).
    pub lost: u64,
}

/// When a run ends by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Never: only a stop ends it.
    Serve,
    /// Once no job of the served queues is pending, failed or processing.
    Drain,
    /// At the first claim that finds nothing due ([`WorkerPool::run_due`]).
    Due,
}

/// State shared by the threads of one run.
struct Run<'a> {
    shutdown: &'a Shutdown,
    mode: Mode,
    /// Cancelled by any stop: a shutdown request, `worker stop`, or the run's end condition.
    stop: CancelToken,
    /// Cancelled when every slot has exited, to end the helper threads.
    done: CancelToken,
    lease: Duration,
    poll_interval: Duration,
    info: WorkerInfo,
    liveness: Liveness,
    tracker: Option<GroupTracker>,
    /// Where handlers publish live output (this pool's scheduler and store).
    output: Arc<dyn OutputSink>,
    running: Mutex<HashMap<JobId, Running>>,
    /// Finished executions whose outcome the store refused: still held (in `running`,
    /// leases renewed) until `record.rs` records them.
    unrecorded: Mutex<Vec<(Job, Outcome)>>,
    /// Set when a job this worker held could be neither recorded nor released: the worker
    /// then stays registered at exit, so that recovery puts the job back once this
    /// process is gone, as for a crashed worker.
    keep_registered: AtomicBool,
    /// A failure that ends the run with an error: a failed claim ([`Mode::Due`] only), or
    /// a store migrated past this build (any mode).
    error: Mutex<Option<Error>>,
    succeeded: AtomicU64,
    failed: AtomicU64,
    released: AtomicU64,
    lost: AtomicU64,
}

/// A job this worker holds: claimed, running, or finished but not yet recorded.
struct Running {
    token: ClaimToken,
    cancel: CancelToken,
    /// Cancelled when the store says an operator cancelled the job (`upkeep.rs`).
    request: CancelToken,
    lost: bool,
    /// When its lease ends, on this process's monotonic clock, as far as this worker
    /// knows: set from the lease at the claim, moved on by each renewal (`upkeep.rs`).
    lease_deadline: Instant,
    /// Killed by this worker for not renewing its lease in time (`fence.rs`).
    fenced: bool,
    /// Its execution is over and its outcome waits to be recorded: nothing is left to
    /// stop, and a renewal that comes back `Stale` meanwhile is most likely the slot's own
    /// finish committing first.
    ended: bool,
}

impl<S: JobStore + Clone> WorkerPool<S> {
    /// The worker id this pool registers under.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scheduler it claims through.
    #[must_use]
    pub fn scheduler(&self) -> &Scheduler<S> {
        &self.scheduler
    }

    /// Runs in the foreground until stopped (by `shutdown`, by `worker stop`, or in drain
    /// mode when the work is done); deregisters and returns what it did.
    ///
    /// # Errors
    /// If the settings cannot be read or the worker cannot be registered at start-up, or a
    /// thread cannot be started. Store failures while running are logged and retried, not
    /// returned, except one: a store that another (newer) queuectl migrated past this
    /// build while the pool ran ([`StoreError::NewerSchema`], checked every few seconds)
    /// stops the claims, lets the running jobs finish, and is returned.
    ///
    /// [`StoreError::NewerSchema`]: queuectl_store::StoreError::NewerSchema
    pub fn run(&self, shutdown: &Shutdown) -> Result<PoolReport> {
        let mode = if self.drain { Mode::Drain } else { Mode::Serve };
        self.run_until(shutdown, mode)
    }

    /// Runs every job of the served queues that is due now by the scheduler's clock, one
    /// at a time in one slot, then returns: jobs that become due while it runs (enqueued by
    /// a handler, or a retry whose backoff has passed) are run too, future-dated ones and
    /// retries still backing off are left alone. The worker registers and renews its
    /// leases as [`WorkerPool::run`] does; [`WorkerPoolBuilder::slots`] and
    /// [`WorkerPoolBuilder::drain`] do not apply.
    ///
    /// Made for tests, together with a `ManualClock` (feature `testing`): enqueue, move
    /// the clock, `run_due`, then look at the jobs. It returns only once nothing is due, so
    /// handlers that keep enqueuing due work keep it running.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use queuectl::prelude::*;
    /// use queuectl::WorkerPool;
    /// use queuectl::{EnqueueRequest, JobState, Scheduler};
    /// use queuectl_store_memory::MemoryStore;
    ///
    /// let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
    /// let id = scheduler.enqueue(EnqueueRequest::shell("true"))?;
    /// let report = WorkerPool::builder(scheduler.clone()).build().run_due()?;
    /// assert_eq!(report.succeeded, 1);
    /// assert_eq!(scheduler.store().get(&id)?.state, JobState::Completed);
    /// # Ok::<(), queuectl::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`WorkerPool::run`], and a claim that fails (it is not retried: a test wants to
    /// know).
    ///
    /// [`WorkerPoolBuilder::slots`]: super::WorkerPoolBuilder::slots
    /// [`WorkerPoolBuilder::drain`]: super::WorkerPoolBuilder::drain
    pub fn run_due(&self) -> Result<PoolReport> {
        self.run_until(&Shutdown::new(), Mode::Due)
    }

    fn run_until(&self, shutdown: &Shutdown, mode: Mode) -> Result<PoolReport> {
        let (lease, poll_interval) = match (self.lease, self.poll_interval) {
            (Some(l), Some(p)) => (l, p),
            (lease, poll) => {
                let settings = self.scheduler.settings()?;
                (
                    lease.unwrap_or_else(|| settings.lease()),
                    poll.unwrap_or_else(|| settings.poll_interval()),
                )
            }
        };
        let slots = if mode == Mode::Due { 1 } else { self.slots };
        catch_up_clock(&self.scheduler);
        let now = self.scheduler.now();
        let info = WorkerInfo {
            id: self.id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            slots,
            queues: self.queues.clone(),
            started_at: now,
            heartbeat_at: now,
            stop_requested: false,
        };
        self.scheduler.store().register_worker(&info)?;
        let tracker = match self.groups.prepare() {
            Ok(()) => Some(GroupTracker::new(self.groups.clone(), &self.id)),
            Err(e) => {
                tracing::warn!(error = %e, "job process groups will not be recorded; \
                    a crash of this worker may leave its jobs running");
                None
            }
        };
        let run = Run {
            shutdown,
            mode,
            stop: shutdown.graceful_token().child(),
            done: CancelToken::new(),
            lease,
            poll_interval,
            info,
            liveness: Liveness::new(self.host.clone(), lease),
            tracker,
            output: Arc::new(self.scheduler.clone()),
            running: Mutex::new(HashMap::new()),
            unrecorded: Mutex::new(Vec::new()),
            keep_registered: AtomicBool::new(false),
            error: Mutex::new(None),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            released: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        };
        // Idle slots sleep in the scheduler's work signal; a stop must wake them too.
        let scheduler = self.scheduler.clone();
        run.stop.on_cancel(move || scheduler.notify_work());
        tracing::info!(worker = %self.id, slots, queues = ?self.queues,
            lease_ms = lease.as_millis(), claim_max = self.claim.max(), ?mode, "worker started");

        self.recover_once(&run);
        if mode == Mode::Due {
            self.fire_schedules_once();
        }
        let result = self.spawn_and_join(&run, slots);
        self.record_at_exit(&run);

        if run.keep_registered.load(Ordering::Relaxed) {
            tracing::warn!(worker = %self.id, "jobs this worker held could not be recorded \
                or released: leaving the worker registered, so that recovery puts them back \
                once this process is gone");
        } else if let Err(e) = self.scheduler.store().deregister_worker(&self.id) {
            tracing::warn!(worker = %self.id, error = %e, "cannot deregister the worker");
        }
        self.groups.forget(&self.id);
        result?;
        if let Some(e) = run.error.lock().take() {
            return Err(e);
        }
        let report = PoolReport {
            worker_id: self.id.clone(),
            succeeded: run.succeeded.load(Ordering::Relaxed),
            failed: run.failed.load(Ordering::Relaxed),
            released: run.released.load(Ordering::Relaxed),
            lost: run.lost.load(Ordering::Relaxed),
        };
        tracing::info!(worker = %self.id, succeeded = report.succeeded, failed = report.failed,
            released = report.released, lost = report.lost, "worker stopped");
        Ok(report)
    }

    /// Starts the helper threads and `slots` slots, and waits for them all.
    fn spawn_and_join(&self, run: &Run<'_>, slots: u32) -> Result<()> {
        thread::scope(|scope| -> Result<()> {
            let mut spawn_error = None;
            let helpers = [
                thread::Builder::new()
                    .name("queuectl-lease".to_owned())
                    .spawn_scoped(scope, || self.renew_loop(run)),
                thread::Builder::new()
                    .name("queuectl-fence".to_owned())
                    .spawn_scoped(scope, || self.fence_loop(run)),
                thread::Builder::new()
                    .name("queuectl-record".to_owned())
                    .spawn_scoped(scope, || self.record_loop(run)),
                thread::Builder::new()
                    .name("queuectl-heartbeat".to_owned())
                    .spawn_scoped(scope, || self.heartbeat_loop(run)),
                thread::Builder::new()
                    .name("queuectl-recovery".to_owned())
                    .spawn_scoped(scope, || self.recovery_loop(run)),
                thread::Builder::new()
                    .name("queuectl-wake".to_owned())
                    .spawn_scoped(scope, || self.wake_loop(run)),
                // A draining worker fires no schedules (it would never run out of work).
                thread::Builder::new()
                    .name("queuectl-cron".to_owned())
                    .spawn_scoped(scope, || {
                        if run.mode == Mode::Serve {
                            self.cron_loop(run);
                        }
                    }),
                thread::Builder::new()
                    .name("queuectl-cancel".to_owned())
                    .spawn_scoped(scope, || self.cancel_loop(run)),
                thread::Builder::new()
                    .name("queuectl-retention".to_owned())
                    .spawn_scoped(scope, || self.retention_loop(run)),
            ];
            for helper in helpers {
                if let Err(e) = helper {
                    spawn_error.get_or_insert(e);
                }
            }
            let mut handles = Vec::new();
            if spawn_error.is_none() {
                for n in 0..slots {
                    match thread::Builder::new()
                        .name(format!("queuectl-slot-{n}"))
                        .spawn_scoped(scope, move || self.slot_loop(run))
                    {
                        Ok(h) => handles.push(h),
                        Err(e) => {
                            spawn_error.get_or_insert(e);
                            break;
                        }
                    }
                }
            }
            if spawn_error.is_some() {
                run.stop.cancel();
            }
            for slot in handles {
                if slot.join().is_err() {
                    tracing::error!(worker = %self.id, "a worker slot panicked");
                }
            }
            run.done.cancel();
            match spawn_error {
                Some(e) => Err(Error::Io {
                    context: "cannot start a worker thread".to_owned(),
                    source: e,
                }),
                None => Ok(()),
            }
        })
    }
}
