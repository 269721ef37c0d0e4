//! The job state machine: claim, finish, retry with backoff, dead-letter, recovery.
//!
//! [`Scheduler`] is generic over any [`JobStore`] and owns every policy decision of
//! docs/CLI.md; the store only applies the guarded transitions it is handed (River's
//! `job_executor` / `job_rescuer` split). Time comes from an injected [`Clock`].

mod operate;
mod periodic;
mod queues;
mod rescue;
mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use queuectl_store::{
    ClaimRequest, Enqueued, Execution, Guarded, Job, JobFilter, JobId, JobOptions, JobState,
    JobStore, LeaseRef, Limits, NewJob, Timestamp, Transition, TransitionKind,
};

pub use self::operate::{Pruned, PRUNE_BATCH, RETENTION_INTERVAL};
pub use self::periodic::{fire_id, FireReport, JobTemplate, ScheduleRequest};
pub use self::queues::QueueOverview;
pub(crate) use self::rescue::recovery_transition;
// The reference model (testing::model) follows the same policy.
#[cfg(feature = "testing")]
pub(crate) use self::rescue::MAX_INTERRUPTS;
#[cfg(feature = "testing")]
pub(crate) use self::retry::backoff_delay;
pub(crate) use self::retry::{ExponentialBackoff, RetryPolicy};
use crate::config::{SettingKey, Settings};
use crate::{Clock, Error, Result, SystemClock};

/// A job to enqueue; `None` fields take their defaults when the scheduler resolves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnqueueRequest {
    /// The id; `None` generates a UUID v4. Must not be blank.
    pub id: Option<JobId>,
    /// The `sh -c` command (or a typed job's serialized arguments). Must not be blank.
    pub command: String,
    /// The handler; `None` means `"shell"`.
    pub kind: Option<String>,
    /// Total attempts; `None` snapshots the `max-retries` setting.
    pub max_retries: Option<u32>,
    /// Higher runs first.
    pub priority: i32,
    /// Named queue; `None` means `"default"`. Must not be blank.
    pub queue: Option<String>,
    /// Not claimable before; `None` means now.
    pub run_at: Option<Timestamp>,
    /// Per-attempt timeout in seconds (> 0); `None` takes the `job-timeout` setting.
    pub timeout_secs: Option<u64>,
    /// Working directory of the command; `None`: the worker's. A relative path is made
    /// absolute against this process's current directory at enqueue.
    pub cwd: Option<String>,
    /// Added to (and overriding) the worker's environment; names non-empty, without `=`.
    pub env: BTreeMap<String, String>,
    /// Resource limits of the command; each set limit must be > 0.
    pub limits: Option<Limits>,
    /// See [`JobOptions::unique_key`]; must not be blank.
    pub unique_key: Option<String>,
    /// Jobs that must complete first; see [`JobOptions::depends_on`].
    pub depends_on: Vec<JobId>,
}

impl EnqueueRequest {
    /// A shell job with every option at its default.
    pub fn shell(command: impl Into<String>) -> Self {
        EnqueueRequest {
            command: command.into(),
            ..EnqueueRequest::default()
        }
    }
}

/// What one execution of a job produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Succeeded {
        /// Exit code and output.
        execution: Execution,
    },
    /// Anything else: a non-zero exit, not found (127), a signal, a timeout (124), a
    /// command that could not start.
    Failed {
        /// Exit code (if any) and output.
        execution: Execution,
        /// What went wrong, for people (e.g. `exit code 3`, `timeout after 5s`).
        error: String,
    },
}

impl Outcome {
    /// A success with no output, as in-process handlers report it.
    #[must_use]
    pub fn success() -> Self {
        Outcome::Succeeded {
            execution: Execution::default(),
        }
    }

    /// A failure with no exit code or output.
    pub fn failure(error: impl Into<String>) -> Self {
        Outcome::Failed {
            execution: Execution::default(),
            error: error.into(),
        }
    }
}

/// What a recovery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Jobs put back to `pending` (uncharged).
    pub recovered: Vec<JobId>,
    /// Jobs dead-lettered for being interrupted too often.
    pub abandoned: Vec<JobId>,
}

impl Recovery {
    /// Whether nothing was done.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.recovered.is_empty() && self.abandoned.is_empty()
    }
}

/// How many expired leases one recovery pass takes at most.
const RECOVERY_BATCH: u32 = 500;

/// The state machine of docs/CLI.md ("States") over a store.
#[derive(Debug)]
pub struct Scheduler<S: JobStore> {
    store: S,
    clock: Arc<dyn Clock>,
    work: Arc<WorkSignal>,
}

impl<S: JobStore + Clone> Clone for Scheduler<S> {
    fn clone(&self) -> Self {
        Scheduler {
            store: self.store.clone(),
            clock: Arc::clone(&self.clock),
            work: Arc::clone(&self.work),
        }
    }
}

/// Wakes idle workers of this process when this process makes work available, so
/// in-process pickup does not wait for a poll tick.
#[derive(Debug, Default)]
struct WorkSignal {
    generation: Mutex<u64>,
    cond: Condvar,
}

impl WorkSignal {
    fn notify(&self) {
        let mut generation = self.generation.lock();
        *generation = generation.wrapping_add(1);
        self.cond.notify_all();
    }
}

impl<S: JobStore> Scheduler<S> {
    /// A scheduler on the system clock.
    pub fn new(store: S) -> Self {
        Self::with_clock(store, Arc::new(SystemClock))
    }

    /// A scheduler on the given clock. When that clock jumps (a test's `ManualClock`), the
    /// scheduler wakes its idle workers as an enqueue would, since jobs may have become due
    /// (see [`Clock::subscribe`]).
    pub fn with_clock(store: S, clock: Arc<dyn Clock>) -> Self {
        let work = Arc::new(WorkSignal::default());
        let signal = Arc::downgrade(&work);
        clock.subscribe(Box::new(move || match signal.upgrade() {
            Some(work) => {
                work.notify();
                true
            }
            None => false,
        }));
        Scheduler { store, clock, work }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The clock's current instant.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The persisted settings over their defaults.
    ///
    /// # Errors
    /// Store failures, or a stored value that no longer validates.
    pub fn settings(&self) -> Result<Settings> {
        Settings::load(&self.store)
    }

    /// Validates and persists one setting; returns the key and the stored value.
    ///
    /// Jobs already enqueued keep the `max-retries` and `job-timeout` they were enqueued
    /// with; `backoff-base` and `backoff-max` apply at each job's next failure; workers
    /// read `lease-seconds` and `poll-interval-ms` when they start.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] (nothing stored) or store failures.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(SettingKey, String)> {
        let key = SettingKey::parse(key)?;
        let value = key.validate(value)?;
        self.store.set_setting(key.name(), &value, self.now())?;
        Ok((key, value))
    }

    // ----- producer -----

    /// Enqueues one job; returns its id.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a blank command, id or queue or a zero timeout;
    /// a `Conflict` store error for a duplicate id (the stored job is untouched).
    pub fn enqueue(&self, req: EnqueueRequest) -> Result<JobId> {
        let mut ids = self.enqueue_many(vec![req])?;
        ids.pop().ok_or_else(|| {
            Error::Store(queuectl_store::StoreError::Backend {
                message: "enqueue returned no id".into(),
                source: None,
            })
        })
    }

    /// Enqueues jobs all or nothing, in order; returns their ids.
    ///
    /// # Errors
    /// As [`Scheduler::enqueue`]; on any error nothing is stored.
    pub fn enqueue_many(&self, reqs: Vec<EnqueueRequest>) -> Result<Vec<JobId>> {
        Ok(self
            .enqueue_batch(reqs)?
            .into_iter()
            .map(|(id, outcome)| match outcome {
                Enqueued::Stored => id,
                Enqueued::Held(holder) => holder,
            })
            .collect())
    }

    /// Enqueues jobs as [`Scheduler::enqueue_many`] does, and says for each (with its id)
    /// whether it was stored or skipped because another job holds its `unique_key`
    /// ([`Enqueued::Held`] naming that job).
    ///
    /// # Errors
    /// As [`Scheduler::enqueue`], and [`Error::InvalidJob`] for a `unique_key` that two
    /// jobs of the batch share; on any error nothing is stored.
    pub fn enqueue_batch(&self, reqs: Vec<EnqueueRequest>) -> Result<Vec<(JobId, Enqueued)>> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        let needs_settings = reqs
            .iter()
            .any(|r| r.max_retries.is_none() || r.timeout_secs.is_none());
        let settings = if needs_settings {
            self.settings()?
        } else {
            Settings::default()
        };
        let now = self.now();
        let jobs = reqs
            .into_iter()
            .map(|r| resolve(r, &settings, now))
            .collect::<Result<Vec<NewJob>>>()?;
        let mut seen = std::collections::HashSet::with_capacity(jobs.len());
        if let Some(dup) = jobs.iter().find(|j| !seen.insert(&j.id)) {
            return Err(Error::InvalidJob {
                field: "id",
                message: format!("'{}' appears more than once in the batch", dup.id),
            });
        }
        let mut keys = std::collections::HashSet::new();
        if let Some(dup) = jobs
            .iter()
            .filter_map(|j| j.options.unique_key.as_deref())
            .find(|k| !keys.insert(*k))
        {
            return Err(Error::InvalidJob {
                field: "unique_key",
                message: format!("'{dup}' appears more than once in the batch"),
            });
        }
        let outcomes = self.store.enqueue_batch(&jobs, now)?;
        if outcomes.contains(&Enqueued::Stored) {
            self.notify_work();
        }
        Ok(jobs.into_iter().map(|j| j.id).zip(outcomes).collect())
    }

    // ----- worker -----

    /// Claims up to `limit` due jobs for `worker_id` in `queues` (all when empty), each
    /// under a lease of `lease`.
    ///
    /// # Errors
    /// Store failures.
    pub fn claim(
        &self,
        worker_id: &str,
        limit: u32,
        queues: &[String],
        lease: Duration,
    ) -> Result<Vec<Job>> {
        let now = self.now();
        Ok(self.store.claim(&ClaimRequest {
            limit,
            worker_id: worker_id.to_owned(),
            now,
            lease_until: now.add(lease),
            queues: queues.to_vec(),
        })?)
    }

    /// Records one execution's outcome; see [`Scheduler::finish_many`].
    ///
    /// # Errors
    /// Store failures.
    pub fn finish(&self, job: &Job, outcome: Outcome) -> Result<Guarded> {
        let mut r = self.finish_many(vec![(job.clone(), outcome)])?;
        Ok(r.pop().unwrap_or(Guarded::Stale))
    }

    /// Records executions' outcomes in one store call.
    ///
    /// Success → `completed`. Failure leaving `attempts = k`: `dead` if
    /// `k >= max(max_retries, 1)`, else `failed` until `now + backoff(k)` with the backoff
    /// settings read now. Each result is `Stale` if the job was taken away meanwhile
    /// (its lease was recovered), and then nothing was written for it.
    ///
    /// # Errors
    /// Store failures.
    pub fn finish_many(&self, items: Vec<(Job, Outcome)>) -> Result<Vec<Guarded>> {
        Ok(self
            .finish_slice(&items)?
            .into_iter()
            .map(Recorded::guarded)
            .collect())
    }

    /// [`Scheduler::finish_many`] without taking the items, so a caller can try again
    /// after a transient failure without copying them first; says what became of each.
    pub(crate) fn finish_slice(&self, items: &[(Job, Outcome)]) -> Result<Vec<Recorded>> {
        self.finish_then(items, |store, transitions, now| {
            Ok((store.finish(transitions, now)?, ()))
        })
        .map(|(finished, ())| finished)
    }

    /// Records `items` as [`Scheduler::finish_many`] does, then claims as
    /// [`Scheduler::claim`] does, through [`Jobs::finish_and_claim`](queuectl_store::Jobs::finish_and_claim): one transaction
    /// on stores that can, so a worker pays one commit per batch instead of two. This is
    /// what the worker pool calls between jobs.
    ///
    /// # Errors
    /// Store failures.
    pub fn finish_and_claim(
        &self,
        items: &[(Job, Outcome)],
        worker_id: &str,
        limit: u32,
        queues: &[String],
        lease: Duration,
    ) -> Result<(Vec<Recorded>, Vec<Job>)> {
        self.finish_then(items, |store, transitions, now| {
            let claim_now = self.now();
            let req = ClaimRequest {
                limit,
                worker_id: worker_id.to_owned(),
                now: claim_now,
                lease_until: claim_now.add(lease),
                queues: queues.to_vec(),
            };
            Ok(store.finish_and_claim(transitions, now, &req)?)
        })
    }

    /// Turns outcomes into transitions (the policy), hands them to `apply` with the
    /// finish instant, and maps its results back to `items`, in order, as what became of
    /// each job.
    fn finish_then<T>(
        &self,
        items: &[(Job, Outcome)],
        apply: impl FnOnce(&S, &[Transition], Timestamp) -> Result<(Vec<Guarded>, T)>,
    ) -> Result<(Vec<Recorded>, T)> {
        let any_failed = items
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed { .. }));
        let settings = if any_failed {
            self.settings()?
        } else {
            Settings::default()
        };
        let policy = ExponentialBackoff {
            base: settings.backoff_base,
            max_secs: settings.backoff_max_secs,
        };
        let now = self.now();
        let mut transitions = Vec::with_capacity(items.len());
        let mut stale_at = Vec::new();
        for (i, (job, outcome)) in items.iter().enumerate() {
            let Some(token) = job.claim_token else {
                stale_at.push(i);
                continue;
            };
            transitions.push(Transition {
                id: job.id.clone(),
                token,
                kind: finish_kind(job.attempts, job.max_retries, outcome.clone(), &policy, now),
            });
        }
        let retried = transitions
            .iter()
            .any(|t| matches!(t.kind, TransitionKind::Failed { .. }));
        let (applied, extra) = apply(&self.store, &transitions, now)?;
        let mut applied = applied
            .into_iter()
            .zip(&transitions)
            .map(|(guarded, t)| Recorded::of(guarded, &t.kind));
        if retried {
            self.notify_work();
        }
        // Re-interleave the jobs that had no token (never claimed) as Stale.
        let total = transitions.len() + stale_at.len();
        let mut out = Vec::with_capacity(total);
        let mut stale = stale_at.into_iter().peekable();
        for i in 0..total {
            if stale.peek() == Some(&i) {
                stale.next();
                out.push(Recorded::Stale);
            } else {
                out.push(applied.next().unwrap_or(Recorded::Stale));
            }
        }
        Ok((out, extra))
    }

    /// Extends the leases of jobs still held under their tokens to `now + lease`.
    ///
    /// # Errors
    /// Store failures.
    pub fn renew_leases(&self, leases: &[LeaseRef], lease: Duration) -> Result<Vec<Guarded>> {
        let now = self.now();
        Ok(self.store.renew_leases(leases, now.add(lease), now)?)
    }

    /// Gives running jobs back as `pending` without charging an attempt or an interrupt
    /// (a worker stopping at once on a second signal).
    ///
    /// # Errors
    /// Store failures.
    pub fn release(&self, leases: &[LeaseRef]) -> Result<Vec<Guarded>> {
        let transitions: Vec<Transition> = leases
            .iter()
            .map(|l| Transition {
                id: l.id.clone(),
                token: l.token,
                kind: TransitionKind::Released,
            })
            .collect();
        let r = self.store.finish(&transitions, self.now())?;
        self.notify_work();
        Ok(r)
    }

    // ----- maintenance -----

    /// Recovers every job whose lease has expired: back to `pending` with one more
    /// interrupt, or `dead` at the fifth interrupt. Attempts are never charged. Each
    /// recovery applies only if the lease is still expired when it is written, so an owner
    /// that renews after the read keeps its job.
    ///
    /// # Errors
    /// Store failures.
    pub fn recover_expired(&self) -> Result<Recovery> {
        self.recover_expired_except(&|_| false)
    }

    /// As [`Scheduler::recover_expired`], leaving alone the expired jobs for which `keep`
    /// is true (the worker runtime keeps those of live workers on its own host).
    ///
    /// # Errors
    /// Store failures.
    pub fn recover_expired_except(&self, keep: &dyn Fn(&Job) -> bool) -> Result<Recovery> {
        let mut total = Recovery::default();
        loop {
            let now = self.now();
            let mut expired = self.store.expired_leases(now, RECOVERY_BATCH)?;
            let n = expired.len();
            expired.retain(|j| !keep(j));
            // Lease-guarded: an owner that renews between this read and the write (both
            // may have waited on the same stalled store) keeps its job.
            let pass = self.recover_jobs(expired, now, true)?;
            let progressed = !pass.is_empty();
            total.recovered.extend(pass.recovered);
            total.abandoned.extend(pass.abandoned);
            if n < RECOVERY_BATCH as usize || !progressed {
                return Ok(total);
            }
        }
    }

    /// Recovers every `processing` job of a worker known to be dead (its process is gone),
    /// whatever its lease says.
    ///
    /// # Errors
    /// Store failures.
    pub fn recover_worker(&self, worker_id: &str) -> Result<Recovery> {
        let held: Vec<Job> = self
            .store
            .list(&JobFilter {
                state: Some(JobState::Processing),
                ..JobFilter::default()
            })?
            .into_iter()
            .filter(|j| j.worker_id.as_deref() == Some(worker_id))
            .collect();
        self.recover_jobs(held, self.now(), false)
    }

    fn recover_jobs(
        &self,
        jobs: Vec<Job>,
        now: Timestamp,
        only_if_expired: bool,
    ) -> Result<Recovery> {
        let transitions: Vec<Transition> = jobs
            .iter()
            .filter_map(|j| recovery_transition(j, only_if_expired))
            .collect();
        if transitions.is_empty() {
            return Ok(Recovery::default());
        }
        let results = self.store.finish(&transitions, now)?;
        let mut rec = Recovery::default();
        for (t, r) in transitions.into_iter().zip(results) {
            if !r.is_applied() {
                continue; // finished or recovered by someone else meanwhile
            }
            match t.kind {
                TransitionKind::Abandoned { .. } => rec.abandoned.push(t.id),
                _ => rec.recovered.push(t.id),
            }
        }
        if !rec.recovered.is_empty() {
            self.notify_work();
        }
        Ok(rec)
    }

    // ----- operator -----

    /// `pending` or `failed` → `cancelled`; `processing` → a cancel request (the job stays
    /// `processing`, with `cancel_requested`, until its worker has stopped it; it then ends
    /// `cancelled`, see [`Jobs::cancel`](queuectl_store::Jobs::cancel) and the crate docs,
    /// "Cancelling a running job"). A repeated request is harmless.
    ///
    /// # Errors
    /// `NotFound`, or `WrongState` naming the state (`completed`, `dead`, `cancelled`;
    /// nothing changes).
    pub fn cancel(&self, id: &JobId) -> Result<Job> {
        Ok(self.store.cancel(id, self.now())?)
    }

    /// `dead` → `pending` with `attempts = 0` and `last_error` cleared (`dlq retry`).
    ///
    /// # Errors
    /// `NotFound`, or `WrongState` naming the state (nothing changes).
    pub fn requeue_dead(&self, id: &JobId) -> Result<Job> {
        let job = self.store.requeue_dead(id, self.now())?;
        self.notify_work();
        Ok(job)
    }

    /// Every dead job back to `pending` (`dlq retry --all`); returns how many.
    ///
    /// # Errors
    /// Store failures.
    pub fn requeue_all_dead(&self) -> Result<u64> {
        let n = self.store.requeue_all_dead(self.now())?;
        if n > 0 {
            self.notify_work();
        }
        Ok(n)
    }

    // ----- in-process wake-up -----

    /// A counter that changes whenever this process made work available through this
    /// scheduler (or a clone of it).
    pub fn work_generation(&self) -> u64 {
        *self.work.generation.lock()
    }

    /// Blocks until [`Scheduler::work_generation`] differs from `seen` or `timeout`
    /// passes; returns the current generation. Idle workers of this process sleep here.
    pub fn wait_for_work(&self, seen: u64, timeout: Duration) -> u64 {
        let mut generation = self.work.generation.lock();
        if *generation == seen {
            let _ = self.work.cond.wait_for(&mut generation, timeout);
        }
        *generation
    }

    /// Wakes this process's idle workers (called after anything that makes work due).
    pub fn notify_work(&self) {
        self.work.notify();
    }
}

/// What recording one execution's outcome did to its job (the worker logs it), as
/// [`Scheduler::finish_and_claim`] reports it. A job with a cancel request ends
/// `cancelled` whatever this says: the store decides that in the same write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// `completed`.
    Completed,
    /// `failed`, claimable again from this instant (its `next_run_at`).
    Retry(Timestamp),
    /// `dead`: its attempts were spent; it is in the dead-letter queue.
    Dead,
    /// Nothing written: the job was taken from its worker meanwhile.
    Stale,
}

impl Recorded {
    fn of(guarded: Guarded, kind: &TransitionKind) -> Self {
        match (guarded, kind) {
            (Guarded::Stale, _) => Recorded::Stale,
            (Guarded::Applied, TransitionKind::Failed { retry_at, .. }) => {
                Recorded::Retry(*retry_at)
            }
            (Guarded::Applied, TransitionKind::Dead { .. }) => Recorded::Dead,
            (Guarded::Applied, _) => Recorded::Completed,
        }
    }

    /// Whether it was written (anything but [`Recorded::Stale`]).
    #[must_use]
    pub fn is_applied(self) -> bool {
        self != Recorded::Stale
    }

    /// Whether it was written, as a [`Guarded`].
    pub(crate) fn guarded(self) -> Guarded {
        match self {
            Recorded::Stale => Guarded::Stale,
            _ => Guarded::Applied,
        }
    }
}

/// Decides the transition for one finished execution (pure policy).
fn finish_kind(
    attempts_before: u32,
    max_retries: u32,
    outcome: Outcome,
    policy: &impl RetryPolicy,
    now: Timestamp,
) -> TransitionKind {
    match outcome {
        Outcome::Succeeded { execution } => TransitionKind::Completed { execution },
        Outcome::Failed { execution, error } => {
            let k = attempts_before.saturating_add(1);
            if k >= max_retries.max(1) {
                TransitionKind::Dead { execution, error }
            } else {
                TransitionKind::Failed {
                    execution,
                    error,
                    retry_at: now.add(policy.delay(k)),
                }
            }
        }
    }
}

/// The longest command `sh -c` can take: Linux's limit on one argument (`MAX_ARG_STRLEN`,
/// 128 KiB with its terminating NUL).
pub(crate) const MAX_COMMAND_BYTES: usize = 128 * 1024 - 1;

/// The longest id: it travels to the job as `QUEUECTL_JOB_ID`, and a person has to type it.
pub(crate) const MAX_ID_BYTES: usize = 1024;

/// The earliest and latest `run_at`: the years 0000 to 9999, what RFC 3339 can write.
const RUN_AT_RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

fn resolve(r: EnqueueRequest, settings: &Settings, now: Timestamp) -> Result<NewJob> {
    let invalid = |field: &'static str, message: &str| Error::InvalidJob {
        field,
        message: message.to_owned(),
    };
    // NUL can neither be passed to a process (argv, environment) nor stored in PostgreSQL
    // text; rejecting it here keeps every store and the executor in agreement.
    let nul = |field: &'static str, value: &str| {
        if value.contains('\0') {
            Err(invalid(field, "must not contain NUL characters"))
        } else {
            Ok(())
        }
    };
    if r.command.trim().is_empty() {
        return Err(invalid("command", "must be a non-empty string"));
    }
    nul("command", &r.command)?;
    if r.command.len() > MAX_COMMAND_BYTES {
        return Err(invalid(
            "command",
            &format!(
                "is longer than {MAX_COMMAND_BYTES} bytes, the most one argument to sh can hold"
            ),
        ));
    }
    if let Some(id) = &r.id {
        nul("id", id.as_str())?;
        if id.as_str().len() > MAX_ID_BYTES {
            return Err(invalid(
                "id",
                &format!("is longer than {MAX_ID_BYTES} bytes"),
            ));
        }
    }
    if let Some(q) = &r.queue {
        nul("queue", q)?;
    }
    if let Some(k) = &r.kind {
        nul("kind", k)?;
    }
    if let Some(t) = r.run_at {
        if !RUN_AT_RANGE.contains(&t.as_millis()) {
            return Err(invalid(
                "run_at",
                "must lie between the years 0000 and 9999 (UTC)",
            ));
        }
    }
    let id = match r.id {
        Some(id) if id.as_str().trim().is_empty() => {
            return Err(invalid("id", "must be a non-blank string"))
        }
        Some(id) => id,
        None => JobId::random(),
    };
    let queue = match r.queue {
        Some(q) if q.trim().is_empty() => return Err(invalid("queue", "must not be blank")),
        Some(q) => q,
        None => "default".to_owned(),
    };
    let kind = match r.kind {
        Some(k) if k.trim().is_empty() => return Err(invalid("kind", "must not be blank")),
        Some(k) => k,
        None => "shell".to_owned(),
    };
    let timeout_secs = match r.timeout_secs {
        Some(0) => return Err(invalid("timeout", "must be an integer > 0")),
        Some(t) => Some(t),
        None => (settings.job_timeout_secs > 0).then_some(settings.job_timeout_secs),
    };
    let options = resolve_options(r.cwd, r.env, r.limits, r.unique_key, r.depends_on)?;
    Ok(NewJob {
        options,
        id,
        command: r.command,
        kind,
        max_retries: r.max_retries.unwrap_or(settings.max_retries),
        priority: r.priority,
        queue,
        run_at: r.run_at.unwrap_or(now),
        timeout_secs,
    })
}

/// Validates the version-2 fields of a request (see [`EnqueueRequest`]).
fn resolve_options(
    cwd: Option<String>,
    env: BTreeMap<String, String>,
    limits: Option<Limits>,
    unique_key: Option<String>,
    depends_on: Vec<JobId>,
) -> Result<JobOptions> {
    let invalid = |field: &'static str, message: String| Error::InvalidJob { field, message };
    let cwd = match cwd {
        None => None,
        Some(dir) if dir.is_empty() => {
            return Err(invalid("cwd", "must not be empty".into()));
        }
        Some(dir) if dir.contains('\0') => {
            return Err(invalid("cwd", "must not contain NUL characters".into()));
        }
        Some(dir) => Some(absolute_dir(&dir).map_err(|e| invalid("cwd", e))?),
    };
    for (name, value) in &env {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(invalid(
                "env",
                format!("has an invalid variable name {name:?} (it must be non-empty, without '=' or NUL)"),
            ));
        }
        if value.contains('\0') {
            return Err(invalid(
                "env",
                format!("value of {name} must not contain NUL characters"),
            ));
        }
    }
    if let Some(l) = &limits {
        for (name, v) in [
            ("memory_mb", l.memory_mb),
            ("cpu_seconds", l.cpu_seconds),
            ("open_files", l.open_files),
            ("processes", l.processes),
        ] {
            if v == Some(0) {
                return Err(invalid("limits", format!("{name} must be an integer > 0")));
            }
        }
    }
    let limits = limits.filter(|l| !l.is_empty());
    if let Some(k) = &unique_key {
        if k.trim().is_empty() {
            return Err(invalid("unique_key", "must not be blank".into()));
        }
        if k.contains('\0') {
            return Err(invalid(
                "unique_key",
                "must not contain NUL characters".into(),
            ));
        }
    }
    if let Some(blank) = depends_on.iter().find(|id| id.as_str().trim().is_empty()) {
        return Err(invalid(
            "depends_on",
            format!("has a blank job id {:?}", blank.as_str()),
        ));
    }
    Ok(JobOptions {
        cwd,
        env,
        limits,
        unique_key,
        depends_on,
    })
}

/// `dir` made absolute against the current directory (without resolving symlinks or
/// checking that it exists: the worker reports a missing directory when it runs the job).
fn absolute_dir(dir: &str) -> std::result::Result<String, String> {
    let abs = std::path::absolute(dir).map_err(|e| format!("cannot be made absolute: {e}"))?;
    abs.into_os_string()
        .into_string()
        .map_err(|_| "is not valid UTF-8 once made absolute".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuectl_store::prelude::*;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);
    const POLICY: ExponentialBackoff = ExponentialBackoff {
        base: 2.0,
        max_secs: 3600,
    };

    fn fail() -> Outcome {
        Outcome::failure("exit code 1")
    }

    #[test]
    fn failure_with_budget_left_is_failed_with_backoff() {
        let k = finish_kind(0, 3, fail(), &POLICY, NOW);
        assert!(
            matches!(k, TransitionKind::Failed { retry_at, .. } if retry_at == NOW.add(Duration::from_secs(2)))
        );
        let k = finish_kind(1, 3, fail(), &POLICY, NOW);
        assert!(
            matches!(k, TransitionKind::Failed { retry_at, .. } if retry_at == NOW.add(Duration::from_secs(4)))
        );
    }

    #[test]
    fn failure_that_spends_the_budget_is_dead() {
        assert!(matches!(
            finish_kind(2, 3, fail(), &POLICY, NOW),
            TransitionKind::Dead { .. }
        ));
    }

    #[test]
    fn zero_and_one_retries_both_mean_a_single_attempt() {
        for max in [0, 1] {
            assert!(matches!(
                finish_kind(0, max, fail(), &POLICY, NOW),
                TransitionKind::Dead { .. }
            ));
        }
    }

    #[test]
    fn success_is_completed_whatever_the_budget() {
        assert!(matches!(
            finish_kind(7, 1, Outcome::success(), &POLICY, NOW),
            TransitionKind::Completed { .. }
        ));
    }

    #[test]
    fn resolve_rejects_blank_fields_and_zero_timeout() {
        let s = Settings::default();
        let bad = |r: EnqueueRequest| match resolve(r, &s, NOW) {
            Err(Error::InvalidJob { field, .. }) => field,
            other => panic!("expected InvalidJob, got {other:?}"),
        };
        assert_eq!(bad(EnqueueRequest::shell("  ")), "command");
        let mut r = EnqueueRequest::shell("true");
        r.id = Some(JobId::new(" "));
        assert_eq!(bad(r), "id");
        let mut r = EnqueueRequest::shell("true");
        r.queue = Some(String::new());
        assert_eq!(bad(r), "queue");
        let mut r = EnqueueRequest::shell("true");
        r.timeout_secs = Some(0);
        assert_eq!(bad(r), "timeout");
    }

    #[test]
    fn resolve_rejects_what_no_process_or_store_could_take() {
        let s = Settings::default();
        let field = |r: EnqueueRequest| match resolve(r, &s, NOW) {
            Err(Error::InvalidJob { field, .. }) => field,
            other => panic!("expected InvalidJob, got {other:?}"),
        };
        assert_eq!(field(EnqueueRequest::shell("echo a\0b")), "command");
        assert_eq!(
            field(EnqueueRequest::shell("x".repeat(MAX_COMMAND_BYTES + 1))),
            "command"
        );
        assert!(resolve(
            EnqueueRequest::shell("x".repeat(MAX_COMMAND_BYTES)),
            &s,
            NOW
        )
        .is_ok());
        let mut r = EnqueueRequest::shell("true");
        r.id = Some(JobId::new("a\0b"));
        assert_eq!(field(r), "id");
        let mut r = EnqueueRequest::shell("true");
        r.id = Some(JobId::new("i".repeat(MAX_ID_BYTES + 1)));
        assert_eq!(field(r), "id");
        let mut r = EnqueueRequest::shell("true");
        r.run_at = Some(Timestamp::from_millis(253_402_300_800_000));
        assert_eq!(field(r), "run_at");
        let mut r = EnqueueRequest::shell("true");
        r.run_at = Some(Timestamp::from_millis(-62_167_219_200_001));
        assert_eq!(field(r), "run_at");
    }

    #[test]
    fn a_batch_repeating_an_id_is_rejected_before_the_store() {
        let sched = Scheduler::new(queuectl_store_memory::MemoryStore::new());
        let req = |id: &str| EnqueueRequest {
            id: Some(JobId::new(id)),
            ..EnqueueRequest::shell("true")
        };
        let err = sched
            .enqueue_many(vec![req("a"), req("b"), req("a")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid job: id: 'a' appears more than once in the batch")
        );
        assert_eq!(sched.store().counts().map(|c| c.total()).ok(), Some(0));
    }

    #[test]
    fn resolve_checks_the_v2_options_and_makes_cwd_absolute() {
        let s = Settings::default();
        let field = |r: EnqueueRequest| match resolve(r, &s, NOW) {
            Err(Error::InvalidJob { field, .. }) => field,
            other => panic!("expected InvalidJob, got {other:?}"),
        };
        let with = |f: &dyn Fn(&mut EnqueueRequest)| {
            let mut r = EnqueueRequest::shell("true");
            f(&mut r);
            r
        };
        assert_eq!(field(with(&|r| r.cwd = Some(String::new()))), "cwd");
        assert_eq!(field(with(&|r| r.cwd = Some("a\0b".into()))), "cwd");
        for name in ["", "A=B", "A\0"] {
            assert_eq!(
                field(with(&|r| {
                    r.env.insert(name.into(), "v".into());
                })),
                "env"
            );
        }
        assert_eq!(
            field(with(&|r| {
                r.env.insert("A".into(), "v\0".into());
            })),
            "env"
        );
        assert_eq!(
            field(with(&|r| r.unique_key = Some(" ".into()))),
            "unique_key"
        );
        assert_eq!(
            field(with(&|r| r.limits = Some(Limits {
                processes: Some(0),
                ..Limits::default()
            }))),
            "limits"
        );
        assert_eq!(
            field(with(&|r| r.depends_on = vec![JobId::new(" ")])),
            "depends_on"
        );

        let job = resolve(with(&|r| r.cwd = Some("sub".into())), &s, NOW).expect("valid");
        let cwd = job.options.cwd.expect("cwd");
        assert!(
            std::path::Path::new(&cwd).is_absolute() && cwd.ends_with("/sub"),
            "{cwd}"
        );
        let job = resolve(with(&|r| r.limits = Some(Limits::default())), &s, NOW).expect("valid");
        assert_eq!(
            job.options.limits, None,
            "an empty limits object means none"
        );
    }

    #[test]
    fn a_batch_repeating_a_unique_key_is_rejected_before_the_store() {
        let sched = Scheduler::new(queuectl_store_memory::MemoryStore::new());
        let req = |key: &str| EnqueueRequest {
            unique_key: Some(key.into()),
            ..EnqueueRequest::shell("true")
        };
        let err = sched
            .enqueue_many(vec![req("a"), req("b"), req("a")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid job: unique_key: 'a' appears more than once in the batch")
        );
        assert_eq!(sched.store().counts().map(|c| c.total()).ok(), Some(0));
    }

    #[test]
    fn resolve_snapshots_settings_defaults() {
        let s = Settings {
            max_retries: 7,
            job_timeout_secs: 9,
            ..Settings::default()
        };
        let j = resolve(EnqueueRequest::shell("true"), &s, NOW).expect("valid");
        assert_eq!((j.max_retries, j.timeout_secs), (7, Some(9)));
        assert_eq!(
            (j.queue.as_str(), j.kind.as_str(), j.run_at),
            ("default", "shell", NOW)
        );
        let j = resolve(EnqueueRequest::shell("true"), &Settings::default(), NOW).expect("valid");
        assert_eq!(j.timeout_secs, None);
    }
}
