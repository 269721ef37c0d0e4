//! [`WorkerPool`]: slots that claim and run jobs, plus the lease, heartbeat and recovery
//! threads that keep claims honest. See the [module docs](super).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use queuectl_store::{
    ClaimToken, Execution, Guarded, Heartbeat, Job, JobFilter, JobId, JobState, JobStore, LeaseRef,
    Marker, Timestamp, Wake, WorkerInfo,
};

use super::orphan::{pid_alive, GroupRegistry};
use super::{CancelToken, GroupTracker, Handler, JobContext, ShellHandler, Shutdown};
use crate::error::{Error, Result};
use crate::scheduler::{Outcome, Recovery, Scheduler};

/// A claim query runs at least this often even while the store's change marker stands
/// still, because a delayed or backed-off job becomes due without any write.
const FULL_CLAIM_EVERY: Duration = Duration::from_secs(1);

/// A registered worker whose heartbeat is older than this many leases is dead, wherever it
/// runs.
const STALE_HEARTBEAT_LEASES: u32 = 3;

/// ... but never sooner than this, so a short test lease cannot make live workers look dead
/// between two of their heartbeats.
const STALE_HEARTBEAT_MIN: Duration = Duration::from_secs(10);

/// Attempts at reporting an outcome while the store says it is busy.
const FINISH_ATTEMPTS: u32 = 5;

/// A finished job of a claimed batch waits at most about this long for the rest of the
/// batch before its outcome is committed: outcomes of short jobs share one transaction
/// (one commit), while a long job never holds back the recording of the ones before it.
/// The job stays held under its lease (and renewed) until its outcome is committed.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(5);

/// Longest pause between claim attempts while the store keeps failing.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// One wait of the wake-up thread for store notifications: also how long the end of a run
/// may wait for that thread.
const WAKE_WAIT: Duration = Duration::from_millis(100);

/// Builds a [`WorkerPool`]; start with [`WorkerPool::builder`].
pub struct WorkerPoolBuilder<S: JobStore + Clone> {
    scheduler: Scheduler<S>,
    slots: u32,
    queues: Vec<String>,
    poll_interval: Option<Duration>,
    lease: Option<Duration>,
    drain: bool,
    host_id: Option<String>,
    claim_batch: u32,
    handlers: HashMap<String, Arc<dyn Handler>>,
    heartbeat_interval: Duration,
    recovery_interval: Duration,
    group_dir: Option<PathBuf>,
}

impl<S: JobStore + Clone> std::fmt::Debug for WorkerPoolBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPoolBuilder")
            .field("slots", &self.slots)
            .field("queues", &self.queues)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S: JobStore + Clone> WorkerPoolBuilder<S> {
    /// Concurrent jobs (threads); at least 1. Default 1.
    #[must_use]
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// Queues to serve; empty (the default) serves every queue.
    #[must_use]
    pub fn queues(mut self, queues: Vec<String>) -> Self {
        self.queues = queues;
        self
    }

    /// How long an idle slot waits between looks for work. Default: the store's
    /// `poll-interval-ms` setting, read when [`WorkerPool::run`] starts.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Lease length of claimed jobs, renewed every third of it. Default: the store's
    /// `lease-seconds` setting, read when [`WorkerPool::run`] starts.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Exit once no job of the served queues is pending, failed or processing (future-dated
    /// ones included). Default off: run until stopped.
    #[must_use]
    pub fn drain(mut self, drain: bool) -> Self {
        self.drain = drain;
        self
    }

    /// The host id recorded in the registry; workers with the same host id check each
    /// other's pids. Default: the hostname.
    #[must_use]
    pub fn host_id(mut self, host: impl Into<String>) -> Self {
        self.host_id = Some(host.into());
        self
    }

    /// Jobs one slot claims per query (run one after the other). Default 1.
    #[must_use]
    pub fn claim_batch(mut self, batch: u32) -> Self {
        self.claim_batch = batch.max(1);
        self
    }

    /// Runs jobs of `kind` with `handler`, replacing any earlier one (`"shell"` is
    /// [`ShellHandler`] unless replaced).
    #[must_use]
    pub fn handler(mut self, kind: impl Into<String>, handler: impl Handler + 'static) -> Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    /// Heartbeat period. Default 1 s.
    #[must_use]
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Period of the recovery pass (expired leases, dead workers). Default 1 s.
    #[must_use]
    pub fn recovery_interval(mut self, interval: Duration) -> Self {
        self.recovery_interval = interval;
        self
    }

    /// Directory where workers on this host record their jobs' process groups (see the
    /// worker docs). Default `$TMPDIR/queuectl-<uid>/groups`; every worker on the host must
    /// use the same one to clean up after each other.
    #[must_use]
    pub fn group_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.group_dir = Some(dir.into());
        self
    }

    /// The pool, with a fresh worker id (`host:pid:random`).
    #[must_use]
    pub fn build(self) -> WorkerPool<S> {
        let host = self.host_id.unwrap_or_else(default_host_id);
        let pid = std::process::id();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{host}:{pid}:{}", &suffix[..8]);
        WorkerPool {
            scheduler: self.scheduler,
            id,
            host,
            pid,
            slots: self.slots,
            queues: self.queues,
            poll_interval: self.poll_interval,
            lease: self.lease,
            drain: self.drain,
            claim_batch: self.claim_batch,
            handlers: self.handlers,
            heartbeat_interval: self.heartbeat_interval,
            recovery_interval: self.recovery_interval,
            groups: GroupRegistry::new(self.group_dir.unwrap_or_else(GroupRegistry::default_root)),
        }
    }
}

/// A set of worker slots that claim and run jobs until stopped; see the
/// [module docs](super).
///
/// ```no_run
/// # use queuectl::{Scheduler, worker::{Shutdown, WorkerPool}};
/// # fn demo<S: queuectl::JobStore + Clone>(scheduler: Scheduler<S>) -> queuectl::Result<()> {
/// let shutdown = Shutdown::new();
/// shutdown.install_signal_handlers().expect("signal handlers");
/// let report = WorkerPool::builder(scheduler).slots(4).build().run(&shutdown)?;
/// eprintln!("{} jobs succeeded", report.succeeded);
/// # Ok(()) }
/// ```
pub struct WorkerPool<S: JobStore + Clone> {
    scheduler: Scheduler<S>,
    id: String,
    host: String,
    pid: u32,
    slots: u32,
    queues: Vec<String>,
    poll_interval: Option<Duration>,
    lease: Option<Duration>,
    drain: bool,
    claim_batch: u32,
    handlers: HashMap<String, Arc<dyn Handler>>,
    heartbeat_interval: Duration,
    recovery_interval: Duration,
    groups: GroupRegistry,
}

impl<S: JobStore + Clone> std::fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("id", &self.id)
            .field("slots", &self.slots)
            .field("queues", &self.queues)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
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

/// State shared by the threads of one run.
struct Run<'a> {
    shutdown: &'a Shutdown,
    /// Cancelled by any stop: a shutdown request, `worker stop`, or the drain finishing.
    stop: CancelToken,
    /// Cancelled when every slot has exited, to end the helper threads.
    done: CancelToken,
    lease: Duration,
    poll_interval: Duration,
    info: WorkerInfo,
    tracker: Option<GroupTracker>,
    running: Mutex<HashMap<JobId, Running>>,
    succeeded: AtomicU64,
    failed: AtomicU64,
    released: AtomicU64,
    lost: AtomicU64,
}

struct Running {
    token: ClaimToken,
    cancel: CancelToken,
    lost: bool,
}

impl<S: JobStore + Clone> WorkerPool<S> {
    /// A builder with the defaults: 1 slot, every queue, settings from the store,
    /// `shell` jobs run by [`ShellHandler`].
    pub fn builder(scheduler: Scheduler<S>) -> WorkerPoolBuilder<S> {
        let mut handlers: HashMap<String, Arc<dyn Handler>> = HashMap::new();
        handlers.insert("shell".to_owned(), Arc::new(ShellHandler::new()));
        WorkerPoolBuilder {
            scheduler,
            slots: 1,
            queues: Vec::new(),
            poll_interval: None,
            lease: None,
            drain: false,
            host_id: None,
            claim_batch: 1,
            handlers,
            heartbeat_interval: Duration::from_secs(1),
            recovery_interval: Duration::from_secs(1),
            group_dir: None,
        }
    }

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
    /// returned.
    pub fn run(&self, shutdown: &Shutdown) -> Result<PoolReport> {
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
        let now = self.scheduler.now();
        let info = WorkerInfo {
            id: self.id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            slots: self.slots,
            queues: self.queues.clone(),
            started_at: now,
            heartbeat_at: now,
            stop_requested: false,
        };
        self.scheduler.store().register_worker(&info)?;
        let tracker = match self.groups.prepare() {
            Ok(()) => Some(GroupTracker {
                registry: Arc::new(self.groups.clone()),
                worker_id: Arc::from(self.id.as_str()),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "job process groups will not be recorded; \
                    a crash of this worker may leave its jobs running");
                None
            }
        };
        let run = Run {
            shutdown,
            stop: shutdown.graceful_token().child(),
            done: CancelToken::new(),
            lease,
            poll_interval,
            info,
            tracker,
            running: Mutex::new(HashMap::new()),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            released: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        };
        // Idle slots sleep in the scheduler's work signal; a stop must wake them too.
        let scheduler = self.scheduler.clone();
        run.stop.on_cancel(move || scheduler.notify_work());
        tracing::info!(worker = %self.id, slots = self.slots, queues = ?self.queues,
            lease_ms = lease.as_millis(), drain = self.drain, "worker started");

        self.recover_once(&run);
        let result = thread::scope(|scope| -> Result<()> {
            let mut spawn_error = None;
            let helpers = [
                thread::Builder::new()
                    .name("queuectl-lease".to_owned())
                    .spawn_scoped(scope, || self.renew_loop(&run)),
                thread::Builder::new()
                    .name("queuectl-heartbeat".to_owned())
                    .spawn_scoped(scope, || self.heartbeat_loop(&run)),
                thread::Builder::new()
                    .name("queuectl-recovery".to_owned())
                    .spawn_scoped(scope, || self.recovery_loop(&run)),
                thread::Builder::new()
                    .name("queuectl-wake".to_owned())
                    .spawn_scoped(scope, || self.wake_loop(&run)),
            ];
            for helper in helpers {
                if let Err(e) = helper {
                    spawn_error.get_or_insert(e);
                }
            }
            let mut slots = Vec::new();
            if spawn_error.is_none() {
                for n in 0..self.slots {
                    let run = &run;
                    match thread::Builder::new()
                        .name(format!("queuectl-slot-{n}"))
                        .spawn_scoped(scope, move || self.slot_loop(run))
                    {
                        Ok(h) => slots.push(h),
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
            for slot in slots {
                if slot.join().is_err() {
                    tracing::error!(worker = %self.id, "a worker slot panicked");
                }
            }
            run.done.cancel();
            match spawn_error {
                Some(e) => Err(thread_error(e)),
                None => Ok(()),
            }
        });

        if let Err(e) = self.scheduler.store().deregister_worker(&self.id) {
            tracing::warn!(worker = %self.id, error = %e, "cannot deregister the worker");
        }
        self.groups.forget(&self.id);
        result?;
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

    // ----- slots -----

    fn slot_loop(&self, run: &Run<'_>) {
        // The change marker seen just before the last claim that found nothing.
        let mut idle_marker = Marker::Unsupported;
        let mut last_claim: Option<Instant> = None;
        let mut failures: u32 = 0;
        while !run.stop.is_cancelled() {
            let seen = self.scheduler.work_generation();
            let marker = match self.scheduler.store().change_marker() {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "change marker unavailable; claiming");
                    Marker::Unsupported
                }
            };
            let unchanged = marker != Marker::Unsupported && marker == idle_marker;
            let recent = last_claim.is_some_and(|t| t.elapsed() < FULL_CLAIM_EVERY);
            if !(unchanged && recent) {
                last_claim = Some(Instant::now());
                match self
                    .scheduler
                    .claim(&self.id, self.claim_batch, &self.queues, run.lease)
                {
                    Ok(jobs) if !jobs.is_empty() => {
                        failures = 0;
                        idle_marker = Marker::Unsupported;
                        // While there is work, the outcomes of one batch and the claim of
                        // the next share a transaction.
                        let mut jobs = jobs;
                        loop {
                            let done = self.run_batch(run, jobs);
                            if run.stop.is_cancelled() || done.is_empty() {
                                self.report(run, done);
                                break;
                            }
                            jobs = self.report_and_claim(run, done);
                            if jobs.is_empty() {
                                break;
                            }
                        }
                        continue;
                    }
                    Ok(_) => {
                        failures = 0;
                        idle_marker = marker;
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        idle_marker = Marker::Unsupported;
                        let pause = error_backoff(run.poll_interval, failures);
                        tracing::warn!(worker = %self.id, error = %e, retry_in_ms =
                            pause.as_millis(), "claim failed");
                        run.stop.wait_timeout(pause);
                        continue;
                    }
                }
            }
            if self.drain && self.drained() {
                tracing::info!(worker = %self.id, "drained: no job left in its queues");
                run.stop.cancel();
                break;
            }
            self.scheduler.wait_for_work(seen, run.poll_interval);
        }
    }

    /// Whether no job of the served queues is pending, failed or processing.
    fn drained(&self) -> bool {
        let store = self.scheduler.store();
        let check = || -> queuectl_store::StoreResult<bool> {
            if self.queues.is_empty() {
                let c = store.counts()?;
                return Ok(c.pending + c.failed + c.processing == 0);
            }
            for queue in &self.queues {
                for state in [JobState::Pending, JobState::Failed, JobState::Processing] {
                    let filter = JobFilter {
                        state: Some(state),
                        queue: Some(queue.clone()),
                        limit: Some(1),
                    };
                    if !store.list(&filter)?.is_empty() {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        };
        check().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot check whether the queues are drained");
            false
        })
    }

    /// Runs a claimed batch; returns the last outcomes, not yet recorded, for the caller to
    /// record (with the next claim, when it goes on).
    #[must_use]
    fn run_batch(&self, run: &Run<'_>, jobs: Vec<Job>) -> Vec<(Job, Outcome)> {
        {
            let mut running = run.running.lock();
            for job in &jobs {
                if let Some(token) = job.claim_token {
                    running.insert(
                        job.id.clone(),
                        Running {
                            token,
                            cancel: run.shutdown.immediate_token().child(),
                            lost: false,
                        },
                    );
                }
            }
        }
        // Group commit: outcomes of one claimed batch are recorded together, in one store
        // call (one transaction), unless the batch runs long; see `GROUP_COMMIT_WINDOW`.
        let mut done: Vec<(Job, Outcome)> = Vec::new();
        let mut oldest: Option<Instant> = None;
        for job in jobs {
            if run.stop.is_cancelled() {
                // Claimed but never started: hand it back as it was.
                if let Some(entry) = run.running.lock().remove(&job.id) {
                    self.release(run, &job, entry.token);
                }
                continue;
            }
            if let Some(finished) = self.execute(run, job) {
                done.push(finished);
                oldest.get_or_insert_with(Instant::now);
            }
            if oldest.is_some_and(|t| t.elapsed() >= GROUP_COMMIT_WINDOW) {
                self.report(run, std::mem::take(&mut done));
                oldest = None;
            }
        }
        done
    }

    /// Runs one job; returns its outcome to record, or `None` if there is nothing to record
    /// (its lease was lost, or it was released by an immediate stop). The job stays in
    /// `running`, its lease renewed, until its outcome is committed.
    fn execute(&self, run: &Run<'_>, job: Job) -> Option<(Job, Outcome)> {
        let Some(cancel) = run.running.lock().get(&job.id).map(|r| r.cancel.clone()) else {
            tracing::error!(job = %job.id, "claimed job without a claim token; not running it");
            return None;
        };
        let timeout = job.timeout_secs.filter(|t| *t > 0).map(Duration::from_secs);
        let mut ctx = JobContext::new(job.attempts.saturating_add(1), timeout, cancel);
        if let Some(tracker) = &run.tracker {
            ctx = ctx.with_group_tracker(tracker.clone());
        }
        tracing::info!(worker = %self.id, job = %job.id, kind = %job.kind,
            attempt = ctx.attempt(), queue = %job.queue, "job claimed");
        let outcome = match self.handlers.get(&job.kind) {
            Some(handler) => catch_unwind(AssertUnwindSafe(|| handler.run(&job, &ctx)))
                .unwrap_or_else(|panic| Outcome::Failed {
                    execution: Execution::default(),
                    error: format!(
                        "the {} handler panicked: {}",
                        job.kind,
                        panic_message(&*panic)
                    ),
                }),
            None => Outcome::Failed {
                execution: Execution::default(),
                error: format!("no handler for kind {}", job.kind),
            },
        };
        let mut running = run.running.lock();
        let lost = running.get(&job.id)?.lost;
        if lost {
            running.remove(&job.id);
            drop(running);
            run.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(worker = %self.id, job = %job.id,
                "job was taken from this worker while it ran; its result is discarded");
            return None;
        }
        // A job that finished cleanly keeps its success; anything else may be our own kill.
        if run.shutdown.is_immediate() && !matches!(outcome, Outcome::Succeeded { .. }) {
            let entry = running.remove(&job.id)?;
            drop(running);
            self.release(run, &job, entry.token);
            return None;
        }
        Some((job, outcome))
    }

    /// Records finished executions in one store call, then lets go of their entries in
    /// `running`.
    fn report(&self, run: &Run<'_>, done: Vec<(Job, Outcome)>) {
        if done.is_empty() {
            return;
        }
        let result = with_retries(|| self.scheduler.finish_slice(&done));
        self.account(run, &done, result);
    }

    /// Records `done` and claims the next batch in one store call (one transaction where
    /// the store can); returns the claimed jobs.
    fn report_and_claim(&self, run: &Run<'_>, done: Vec<(Job, Outcome)>) -> Vec<Job> {
        // A failed call applied nothing (see `Jobs::finish_and_claim`): retrying is safe.
        let result = with_retries(|| {
            self.scheduler.finish_and_claim(
                &done,
                &self.id,
                self.claim_batch,
                &self.queues,
                run.lease,
            )
        });
        match result {
            Ok((finished, claimed)) => {
                self.account(run, &done, Ok(finished));
                claimed
            }
            Err(e) => {
                self.account(run, &done, Err(e));
                Vec::new()
            }
        }
    }

    /// Lets go of recorded jobs and counts and logs how their recording went.
    fn account(&self, run: &Run<'_>, done: &[(Job, Outcome)], result: Result<Vec<Guarded>>) {
        {
            let mut running = run.running.lock();
            for (job, _) in done {
                running.remove(&job.id);
            }
        }
        let results = match result {
            Ok(results) => results,
            Err(e) => {
                for (job, _) in done {
                    tracing::error!(worker = %self.id, job = %job.id, error = %e,
                        "cannot record the job's result; it will be recovered when its lease expires");
                }
                return;
            }
        };
        for ((job, outcome), guarded) in done.iter().zip(results) {
            match (guarded, outcome) {
                (Guarded::Applied, Outcome::Succeeded { .. }) => {
                    run.succeeded.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(worker = %self.id, job = %job.id, "job succeeded");
                }
                (Guarded::Applied, Outcome::Failed { error, .. }) => {
                    run.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(worker = %self.id, job = %job.id, error = %error, "job failed");
                }
                (Guarded::Stale, _) => {
                    run.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = %self.id, job = %job.id,
                        "job was taken from this worker while it ran; its result is discarded");
                }
            }
        }
    }

    fn release(&self, run: &Run<'_>, job: &Job, token: ClaimToken) {
        let lease = LeaseRef {
            id: job.id.clone(),
            token,
        };
        match self.scheduler.release(std::slice::from_ref(&lease)) {
            Ok(results) if results.iter().all(|g| g.is_applied()) => {
                run.released.fetch_add(1, Ordering::Relaxed);
                tracing::info!(worker = %self.id, job = %job.id, "job released to pending");
            }
            Ok(_) => tracing::warn!(worker = %self.id, job = %job.id,
                "job was no longer ours to release"),
            Err(e) => tracing::error!(worker = %self.id, job = %job.id, error = %e,
                "cannot release the job; it will be recovered when its lease expires"),
        }
    }

    // ----- helper threads -----

    fn renew_loop(&self, run: &Run<'_>) {
        let period = (run.lease / 3).max(Duration::from_millis(10));
        while !run.done.wait_timeout(period) {
            let leases: Vec<LeaseRef> = run
                .running
                .lock()
                .iter()
                .map(|(id, r)| LeaseRef {
                    id: id.clone(),
                    token: r.token,
                })
                .collect();
            if leases.is_empty() {
                continue;
            }
            match self.scheduler.renew_leases(&leases, run.lease) {
                Ok(results) => {
                    for (lease, guarded) in leases.iter().zip(results) {
                        if guarded == Guarded::Stale {
                            self.lose(run, lease);
                        }
                    }
                }
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "lease renewal failed"),
            }
        }
    }

    /// A renewal came back `Stale`: someone recovered the job. Kill our execution of it.
    fn lose(&self, run: &Run<'_>, lease: &LeaseRef) {
        let mut running = run.running.lock();
        // Only if it is still the same claim: the slot may have finished it meanwhile.
        if let Some(entry) = running
            .get_mut(&lease.id)
            .filter(|r| r.token == lease.token)
        {
            if !entry.lost {
                entry.lost = true;
                entry.cancel.cancel();
                tracing::warn!(worker = %self.id, job = %lease.id,
                    "lease lost: the job was recovered by another worker; stopping it");
            }
        }
    }

    fn heartbeat_loop(&self, run: &Run<'_>) {
        while !run.done.wait_timeout(self.heartbeat_interval) {
            let store = self.scheduler.store();
            match store.heartbeat_worker(&self.id, self.scheduler.now()) {
                Ok(Heartbeat::StopRequested) => {
                    if !run.stop.is_cancelled() {
                        tracing::info!(worker = %self.id,
                            "stop requested (worker stop): finishing running jobs");
                        run.stop.cancel();
                    }
                }
                Ok(Heartbeat::Recorded) => {}
                Ok(Heartbeat::Unregistered) => {
                    tracing::warn!(worker = %self.id,
                        "this worker was deregistered as dead; registering again");
                    let mut info = run.info.clone();
                    info.heartbeat_at = self.scheduler.now();
                    if let Err(e) = store.register_worker(&info) {
                        tracing::warn!(worker = %self.id, error = %e, "cannot re-register");
                    }
                }
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "heartbeat failed"),
            }
        }
    }

    /// Wakes idle slots as soon as another process makes work available, on a store that
    /// can wait for that (PostgreSQL's LISTEN/NOTIFY); on others it returns at once and the
    /// slots keep polling the change marker every poll interval.
    fn wake_loop(&self, run: &Run<'_>) {
        while !run.done.is_cancelled() {
            // Short waits, so the thread notices the end of the run promptly.
            match self.scheduler.store().wait_for_change(WAKE_WAIT) {
                Ok(Wake::Changed) => self.scheduler.notify_work(),
                Ok(Wake::TimedOut) => {}
                Ok(Wake::Unsupported) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "waiting for store notifications failed");
                    run.done.wait_timeout(run.poll_interval);
                }
            }
        }
    }

    fn recovery_loop(&self, run: &Run<'_>) {
        while !run.done.wait_timeout(self.recovery_interval) {
            self.recover_once(run);
        }
    }

    fn recover_once(&self, run: &Run<'_>) {
        recovery_pass(
            &self.scheduler,
            &self.groups,
            &self.host,
            run.lease,
            Some(&self.id),
        );
    }
}

/// Recovers what dead workers *of this host* left behind: their orphaned job process
/// groups are killed, their jobs go back to `pending` (uncharged) and their registry
/// entries are removed. `status` and `list` run this, so a SIGKILLed worker's jobs come
/// back even while no worker runs. Lease expiry and other hosts' workers are left to the
/// workers' own recovery pass.
///
/// # Errors
/// Unreadable settings; everything else is logged and retried at the next call.
pub fn recover_dead_workers<S: JobStore>(scheduler: &Scheduler<S>, host: &str) -> Result<()> {
    let lease = scheduler.settings()?.lease();
    let groups = GroupRegistry::new(GroupRegistry::default_root());
    recovery_pass(scheduler, &groups, host, lease, None);
    Ok(())
}

/// One recovery pass as seen from `host`. With `me` (a running worker's id, the pass every
/// worker runs about once a second):
///
/// - Registered workers that are dead (see [`live_workers`]) have their orphaned job
///   process groups killed when they ran on this host, their jobs recovered whatever their
///   leases say, and their entries removed.
/// - Jobs whose lease expired are recovered, except those held by a worker *on this host
///   whose process is alive*: such a worker was only stalled (typically by a long write
///   transaction holding the store's lock, which also blocked its lease renewals), and
///   taking its job would run it twice at once. Its next renewal succeeds, or it dies and
///   the first rule applies. Across hosts only the lease can tell.
///
/// Without `me` (a CLI command), only dead workers of this host are handled.
/// Failures are logged and retried at the next pass.
fn recovery_pass<S: JobStore>(
    scheduler: &Scheduler<S>,
    groups: &GroupRegistry,
    host: &str,
    lease: Duration,
    me: Option<&str>,
) {
    let workers = match scheduler.store().list_workers() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list workers");
            return;
        }
    };
    let now = scheduler.now();
    let mut live_here: Vec<&str> = Vec::new();
    for worker in &workers {
        if me == Some(worker.id.as_str()) {
            live_here.push(&worker.id);
            continue;
        }
        let Some(reason) = death_reason(worker, host, now, lease) else {
            if worker.host == host {
                live_here.push(&worker.id);
            }
            continue;
        };
        if me.is_none() && worker.host != host {
            continue;
        }
        tracing::warn!(dead_worker = %worker.id, reason, "found a dead worker");
        if worker.host == host {
            let killed = groups.kill_orphans(&worker.id);
            if !killed.is_empty() {
                tracing::warn!(dead_worker = %worker.id, groups = ?killed,
                    "killed orphaned job process groups");
            }
        }
        match scheduler.recover_worker(&worker.id) {
            Ok(r) => log_recovery(&r, "worker died"),
            Err(e) => {
                // Keep it registered so the next pass tries again.
                tracing::warn!(dead_worker = %worker.id, error = %e,
                    "recovering a dead worker's jobs failed");
                continue;
            }
        }
        if let Err(e) = scheduler.store().deregister_worker(&worker.id) {
            tracing::warn!(dead_worker = %worker.id, error = %e,
                "cannot deregister a dead worker");
        }
    }
    if me.is_none() {
        return;
    }
    let held_by_live_local = |job: &queuectl_store::Job| {
        job.worker_id
            .as_deref()
            .is_some_and(|w| live_here.contains(&w))
    };
    match scheduler.recover_expired_except(&held_by_live_local) {
        Ok(r) => log_recovery(&r, "lease expired"),
        Err(e) => tracing::warn!(error = %e, "recovering expired leases failed"),
    }
}

/// The default host id of a worker: `QUEUECTL_HOST_ID` if set, else the hostname.
#[must_use]
pub fn default_host_id() -> String {
    if let Some(id) = std::env::var("QUEUECTL_HOST_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return id;
    }
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Why a registered worker counts as dead, seen from `host` at `now`: its process is gone
/// (same host only), or its heartbeat is older than three leases (at least 10 s).
fn death_reason(
    worker: &WorkerInfo,
    host: &str,
    now: Timestamp,
    lease: Duration,
) -> Option<&'static str> {
    let stale_after = lease
        .saturating_mul(STALE_HEARTBEAT_LEASES)
        .max(STALE_HEARTBEAT_MIN);
    if worker.host == host && !pid_alive(worker.pid) {
        Some("its process is gone")
    } else if now.since(worker.heartbeat_at) > stale_after {
        Some("its heartbeat stopped")
    } else {
        None
    }
}

/// The registered workers that are alive, by the same rules recovery uses to declare one
/// dead (seen from this host, with the store's `lease-seconds`): what `status` counts and
/// what `worker stop --wait` waits for. Dead entries stay in the registry until a running
/// worker's recovery removes them.
///
/// # Errors
/// Store failures, or unreadable settings.
pub fn live_workers<S: JobStore>(scheduler: &Scheduler<S>) -> Result<Vec<WorkerInfo>> {
    let lease = scheduler.settings()?.lease();
    let host = default_host_id();
    let now = scheduler.now();
    let mut workers = scheduler.store().list_workers()?;
    workers.retain(|w| death_reason(w, &host, now, lease).is_none());
    Ok(workers)
}

fn log_recovery(r: &Recovery, why: &str) {
    for id in &r.recovered {
        tracing::warn!(job = %id, why, "job recovered to pending");
    }
    for id in &r.abandoned {
        tracing::warn!(job = %id, why, "job interrupted too often: dead");
    }
}

/// Runs a store call that records outcomes, again while the store says it is busy (up to
/// [`FINISH_ATTEMPTS`] tries, backing off).
fn with_retries<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op() {
            Err(Error::Store(e)) if e.is_transient() && attempt < FINISH_ATTEMPTS => {
                tracing::debug!(error = %e, "store busy; reporting again");
                thread::sleep(Duration::from_millis(50) * 2u32.pow(attempt));
            }
            other => return other,
        }
    }
}

fn error_backoff(poll: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(16));
    poll.saturating_mul(factor).min(MAX_ERROR_BACKOFF).max(poll)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

fn thread_error(e: std::io::Error) -> Error {
    Error::Io {
        context: "cannot start a worker thread".to_owned(),
        source: e,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn worker(host: &str, pid: u32, heartbeat_ms: i64) -> WorkerInfo {
        WorkerInfo {
            id: format!("{host}:{pid}:x"),
            host: host.to_owned(),
            pid,
            slots: 1,
            queues: Vec::new(),
            started_at: Timestamp::from_millis(0),
            heartbeat_at: Timestamp::from_millis(heartbeat_ms),
            stop_requested: false,
        }
    }

    #[test]
    fn death_follows_heartbeat_age_and_local_pids() {
        let lease = Duration::from_secs(15);
        let now = Timestamp::from_millis(100_000);
        let me = std::process::id();
        let live = |w: &WorkerInfo, lease| death_reason(w, "here", now, lease).is_none();
        // 45 s = 3 leases: still live at the limit, dead past it.
        assert!(live(&worker("here", me, 55_000), lease));
        assert!(!live(&worker("here", me, 54_999), lease));
        // Short leases never make the window shorter than 10 s.
        let short = Duration::from_secs(2);
        assert!(live(&worker("here", me, 90_000), short));
        assert!(!live(&worker("here", me, 89_999), short));
        // A local worker whose pid is gone is dead however fresh; a remote pid is not checked.
        let gone = u32::try_from(i32::MAX).unwrap_or(u32::MAX);
        assert!(!live(&worker("here", gone, 99_000), lease));
        assert!(live(&worker("there", gone, 99_000), lease));
    }

    #[test]
    fn error_backoff_grows_from_the_poll_interval_to_a_cap() {
        let poll = Duration::from_millis(200);
        assert_eq!(error_backoff(poll, 1), Duration::from_millis(400));
        assert_eq!(error_backoff(poll, 40), MAX_ERROR_BACKOFF);
        assert_eq!(
            error_backoff(Duration::from_secs(9), 1),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn panic_messages_are_extracted() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
    }
}
