//! The storage seam: [`JobStore`] and the three traits it combines.
//!
//! A store implements [`Jobs`] (the life of a job and the operator's reads and writes),
//! [`Coordination`] (what workers and operators share besides jobs: settings and the worker
//! registry) and [`ChangeFeed`] (how an idle worker learns that something changed); it is
//! then a [`JobStore`] through the blanket impl. Callers that hold a `S: JobStore` (the
//! scheduler, the worker pool) call every method without importing the parts; callers that
//! hold a concrete store import them, or [`crate::prelude`].

use std::fmt::Debug;
use std::time::Duration;

use crate::{
    AttemptStats, AttemptStatsRequest, Capabilities, ClaimRequest, Enqueued, Fired, FoldedAttempts,
    Guarded, Heartbeat, Job, JobCursor, JobFilter, JobId, JobPage, JobPageRequest, JobRecord,
    JobState, LeaseRef, LiveOutput, Marker, NewJob, PruneRequest, QueueChange, QueueSettings,
    QueueStats, Schedule, ScheduleFire, StateCounts, StoreResult, Timestamp, Transition, Wake,
    WorkerInfo,
};

/// Durable storage for jobs: every trait of the seam in one bound.
///
/// Each method is one statement or one transaction. A store holds the *mechanism* (what a
/// transition writes, how a claim is made exclusive); the *policy* (when a job is dead,
/// how long a backoff is, when a lease counts as lost) lives in `queuectl::Scheduler`.
/// The store never reads the clock: every time-dependent call takes `now`.
///
/// The traits are synchronous and dyn-compatible. `Arc<S>` and `Box<S>` are stores too (they
/// are [`Decorator`]s that add nothing), so the CLI can hold an `Arc<dyn JobStore>` while
/// tests use concrete types.
///
/// [`Decorator`]: crate::Decorator
pub trait JobStore: Jobs + Coordination + ChangeFeed {}

impl<S: Jobs + Coordination + ChangeFeed + ?Sized> JobStore for S {}

/// Jobs: enqueue, claim, guarded finish, lease renewal, recovery reads, operator reads and
/// writes.
///
/// Methods are grouped by role (producer, worker, maintenance, operator) and sorted within
/// each group.
pub trait Jobs: Debug + Send + Sync + 'static {
    // ----- producer -----

    /// Inserts one job as `pending` with `attempts = 0`, `created_at = updated_at = now`,
    /// `next_run_at = run_at`.
    ///
    /// # Errors
    /// [`crate::StoreError::Conflict`] if the id exists; the stored job is untouched.
    fn enqueue(&self, job: &NewJob, now: Timestamp) -> StoreResult<()> {
        self.enqueue_many(std::slice::from_ref(job), now)
    }

    /// Inserts jobs as [`Jobs::enqueue_batch`] does, without saying which were held.
    ///
    /// # Errors
    /// [`crate::StoreError::Conflict`] naming a duplicate id.
    fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        self.enqueue_batch(jobs, now).map(drop)
    }

    /// Inserts jobs as [`Jobs::enqueue`] does, in order, all or nothing: if any id
    /// exists (or repeats within `jobs`), nothing is stored. A job whose
    /// [`crate::JobOptions::unique_key`] is held by a stored job that is `pending`, `failed`
    /// or `processing` (or by an earlier job of the batch) is not stored: its result is
    /// [`Enqueued::Held`] naming the holder. The check and the insert are one atomic step, so
    /// concurrent batches with the same key, from any process or host, store one job.
    /// Returns one result per job, in order.
    ///
    /// # Errors
    /// [`crate::StoreError::Conflict`] naming a duplicate id.
    fn enqueue_batch(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<Enqueued>>;

    // ----- worker -----

    /// Atomically moves up to `req.limit` due jobs to `processing` and returns them.
    ///
    /// Due means state `pending` or `failed` with `next_run_at <= req.now`, in one of
    /// `req.queues` (all queues when empty). Order: `priority` descending, then
    /// `next_run_at`, then insertion order.
    ///
    /// The queue controls of [`Coordination::queue_settings`] hold inside the claim: no job
    /// of a paused queue is taken, and of a queue limited to N at most N minus its jobs
    /// already `processing` are, counted atomically with the claim, so no number of
    /// concurrent claimers (threads, processes, hosts) ever has more than N of its jobs
    /// `processing` at once. Jobs the limit or a pause leaves behind do not hold up jobs of
    /// other queues, which are taken in their place in the same order.
    ///
    /// Each claimed job gets `worker_id`, one fresh
    /// [`crate::ClaimToken`] for this call, `lease_until = req.lease_until`,
    /// `started_at = updated_at = req.now`; `next_run_at` is cleared and `attempts` is
    /// unchanged. Concurrent claims, from threads or (where
    /// [`Capabilities::multi_process`]) processes, never return the same job.
    ///
    /// # Errors
    /// Only driver failures.
    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>>;

    /// Applies each transition if, and only if, its job is still `processing` under its
    /// token (and, for a lease-guarded kind, its `lease_until < now`); returns one
    /// [`Guarded`] per transition, in order. See [`crate::TransitionKind`] for exactly what
    /// each kind writes and guards. A missing job is
    /// `Stale`, not an error. All transitions of one call commit together.
    ///
    /// # Errors
    /// Only driver failures; then nothing was applied.
    fn finish(&self, transitions: &[Transition], now: Timestamp) -> StoreResult<Vec<Guarded>>;

    /// [`Jobs::finish`] followed by [`Jobs::claim`], as a worker does between two
    /// batches. A store may run both in one transaction (one commit instead of two); the
    /// default calls them one after the other. The finish is applied first; `now` is the
    /// finish's, `req.now` the claim's.
    ///
    /// An error means nothing was applied. The default therefore returns the finish's
    /// results with no jobs when only its claim fails: a claim changes nothing when it
    /// fails, and the caller's next claim meets the failure again.
    ///
    /// # Errors
    /// Only driver failures; then nothing was applied.
    fn finish_and_claim(
        &self,
        transitions: &[Transition],
        now: Timestamp,
        req: &ClaimRequest,
    ) -> StoreResult<(Vec<Guarded>, Vec<Job>)> {
        let finished = self.finish(transitions, now)?;
        Ok((finished, self.claim(req).unwrap_or_default()))
    }

    /// Sets `lease_until` (and `updated_at = now`) on each job still `processing` under its
    /// token; one [`Guarded`] per lease, in order.
    ///
    /// # Errors
    /// Only driver failures.
    fn renew_leases(
        &self,
        leases: &[LeaseRef],
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Guarded>>;

    /// Which of `leases` have a cancel request: the ids of the jobs still `processing`
    /// under the given token with [`Job::cancel_requested`] set, in the order of `leases`.
    /// Read-only; a worker calls it about every second for the jobs it holds, so it must be
    /// cheap (one query).
    ///
    /// Provided, and slow: one [`Jobs::get`] per lease. Stores override it.
    ///
    /// # Errors
    /// Only driver failures.
    fn cancel_requests(&self, leases: &[LeaseRef]) -> StoreResult<Vec<JobId>> {
        let mut requested = Vec::new();
        for lease in leases {
            match self.get(&lease.id) {
                Ok(job)
                    if job.cancel_requested
                        && job.state == crate::JobState::Processing
                        && job.claim_token == Some(lease.token) =>
                {
                    requested.push(lease.id.clone());
                }
                Ok(_) | Err(crate::StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(requested)
    }

    /// Replaces the live output of the attempt that `lease` holds (the job is `processing`
    /// under `lease.token`) with `output`, capped as [`LiveOutput::capped`] says. A worker
    /// publishes what its running attempt has written so far through this, at most about
    /// once a second and never for an attempt that wrote nothing; it is deleted when the
    /// attempt ends (any applied [`Jobs::finish`] of the job), whose output then lives in its
    /// history entry. Changes nothing else: not `updated_at`, not the change marker.
    ///
    /// Guarded like [`Jobs::finish`]: `Stale`, writing nothing, when the job is missing, not
    /// `processing` or held under another token, so a worker that lost its job cannot write
    /// into the new owner's attempt.
    ///
    /// # Errors
    /// Only driver failures.
    fn put_live_output(
        &self,
        lease: &LeaseRef,
        output: &LiveOutput,
        now: Timestamp,
    ) -> StoreResult<Guarded>;

    // ----- maintenance -----

    /// Read-only: up to `limit` `processing` jobs whose `lease_until < now`, oldest lease
    /// first. The scheduler decides what to do with them and applies it with a guarded
    /// [`Jobs::finish`].
    ///
    /// # Errors
    /// Only driver failures.
    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>>;

    /// Deletes up to `limit` jobs in a final state (`completed`, `dead`, `cancelled`)
    /// whose `updated_at < before`, with their output and history; returns how many.
    /// Provided: [`Jobs::prune_finished`] of every final state.
    ///
    /// # Errors
    /// Only driver failures.
    fn prune(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        self.prune_finished(&PruneRequest {
            before,
            dry_run: false,
            limit,
            states: JobState::FINAL.to_vec(),
        })
    }

    /// Deletes up to `req.limit` jobs in one of `req.states` (final states only: others
    /// are ignored) that reached it before `req.before` (`updated_at < before`), oldest
    /// finished first, with their output and history, in one transaction; returns how
    /// many. With `req.dry_run` it deletes nothing and returns how many it would have.
    /// A job that leaves its final state meanwhile (a concurrent requeue) is not deleted.
    /// The deleted jobs' attempts are added to the store's totals in the same transaction,
    /// so [`Jobs::attempt_stats`] goes on counting them.
    ///
    /// # Errors
    /// Only driver failures.
    fn prune_finished(&self, req: &PruneRequest) -> StoreResult<u64>;

    // ----- operator -----

    /// Finished attempts summarised per queue (counts by outcome, histograms of duration
    /// and pickup latency over `req`'s bounds) and as a throughput series of `req.step_ms`
    /// buckets; see [`AttemptStats`] for exactly what each figure counts. Derived from the
    /// history of the jobs in the store plus, for the completed and failed counts and the
    /// series, the attempts of jobs since pruned or deleted: a store keeps those as totals
    /// per queue and minute ([`crate::FoldedAttempts`], added with
    /// [`crate::AttemptStatsBuilder::add_folded`]) when [`Jobs::prune_finished`] or
    /// [`Jobs::delete`] removes their jobs, in the same transaction, so the counts never go
    /// down (the duration and pickup histograms cover the jobs still stored).
    ///
    /// Provided, and slow: built on [`Jobs::list`] of every job plus one
    /// [`Jobs::get_record`] per job that finished an attempt in the window, so O(jobs)
    /// calls, plus [`Jobs::folded_attempts`] (read apart from the listing, so a prune
    /// between the two can skew that one result). A store overrides it (the SQL stores
    /// with aggregate queries in one snapshot).
    ///
    /// # Errors
    /// Only driver failures.
    fn attempt_stats(&self, req: &AttemptStatsRequest) -> StoreResult<AttemptStats> {
        crate::overview::attempt_stats_by_listing(self, req)
    }

    /// `pending` or `failed` → `cancelled` (`next_run_at` cleared, `updated_at = now`);
    /// `processing` → stays `processing` with `cancel_requested` set (`updated_at = now`;
    /// again on a job already requested is harmless). From then on any guarded write that
    /// applies to the job ends it `cancelled` (see [`crate::TransitionKind`]). Returns the
    /// job as stored after the change.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`]; [`crate::StoreError::WrongState`] naming the
    /// current state (`completed`, `dead` or `cancelled`), with nothing changed.
    fn cancel(&self, id: &JobId, now: Timestamp) -> StoreResult<Job>;

    /// The number of jobs in each state.
    ///
    /// # Errors
    /// Only driver failures.
    fn counts(&self) -> StoreResult<StateCounts>;

    /// Deletes a job that is not `processing`, with its output and history; returns the
    /// job as it was. Its attempts are added to the store's totals in the same
    /// transaction, so [`Jobs::attempt_stats`] goes on counting them.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`]; [`crate::StoreError::WrongState`] for a
    /// `processing` job, with nothing changed.
    fn delete(&self, id: &JobId, now: Timestamp) -> StoreResult<Job>;

    /// The ids that start with `prefix` (byte-wise; `%`, `_`, `\`, `*` and `?` are
    /// ordinary characters), in byte order, at most `limit`. Found through the id index,
    /// not by reading every job (except in a store without one, which says so). An empty
    /// prefix matches every id.
    ///
    /// # Errors
    /// Only driver failures.
    fn find_ids_by_prefix(&self, prefix: &str, limit: u32) -> StoreResult<Vec<JobId>>;

    /// The totals the store keeps of the finished attempts of jobs it deleted (see
    /// [`Jobs::attempt_stats`]), one entry per queue and minute, sorted by queue then
    /// minute. What `migrate` copies with [`Jobs::import_folded_attempts`].
    ///
    /// # Errors
    /// Only driver failures.
    fn folded_attempts(&self) -> StoreResult<Vec<FoldedAttempts>>;

    /// One job.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`].
    fn get(&self, id: &JobId) -> StoreResult<Job>;

    /// One job with its last output and its history.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`].
    fn get_record(&self, id: &JobId) -> StoreResult<JobRecord>;

    /// What the job's running attempt has written so far, as last published with
    /// [`Jobs::put_live_output`]; `None` when the job is not `processing` or its attempt
    /// has published nothing yet.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`].
    fn live_output(&self, id: &JobId) -> StoreResult<Option<LiveOutput>>;

    /// Inserts complete records verbatim (any state, output, history), in order, all or
    /// nothing; they sort after existing jobs in insertion order. Used to copy a queue
    /// between stores and by test fixtures.
    ///
    /// # Errors
    /// [`crate::StoreError::Conflict`] naming a duplicate id; nothing is stored.
    fn import(&self, records: &[JobRecord]) -> StoreResult<()>;

    /// Adds `folded` (as [`Jobs::folded_attempts`] returns them, from another store) to the
    /// totals this store keeps of the attempts of deleted jobs, in one transaction: a queue
    /// and minute it already has are summed. Used to copy a queue between stores.
    ///
    /// # Errors
    /// Only driver failures; then nothing was added.
    fn import_folded_attempts(&self, folded: &[FoldedAttempts]) -> StoreResult<()>;

    /// Jobs matching `filter`, in insertion order, at most `filter.limit`.
    ///
    /// # Errors
    /// Only driver failures.
    fn list(&self, filter: &JobFilter) -> StoreResult<Vec<Job>>;

    /// Up to `limit` jobs matching `filter` (its `limit` is ignored) inserted after the one
    /// `after` stands for (`None`: from the oldest), in insertion order; [`JobPage::next`]
    /// continues where the page ended. What `list` streams through, so listing a million
    /// jobs holds one page in memory, not all of them.
    ///
    /// Provided, and slow: built on [`Jobs::list`] of every job (O(jobs) per page), the
    /// cursor holding a position in that list. A store with an insertion sequence overrides
    /// it with one indexed query, the cursor holding the sequence.
    ///
    /// # Errors
    /// Only driver failures.
    fn list_after(
        &self,
        filter: &JobFilter,
        after: Option<JobCursor>,
        limit: u32,
    ) -> StoreResult<JobPage> {
        crate::overview::list_after_by_listing(self, filter, after, limit)
    }

    /// Up to `req.limit` jobs matching `req`, newest first (reverse insertion order),
    /// starting below `req.before`; [`JobPage::next`] continues where the page ended.
    /// Paging is by position (keyset), not by offset: a page costs the same however deep
    /// it is, and jobs inserted meanwhile never shift later pages.
    ///
    /// Provided, and slow: built on [`Jobs::list`] of every job (O(jobs) per page), with
    /// the cursor holding a job's position in that list, so deleting older jobs between two
    /// pages can shift the next one. A store with an insertion sequence overrides it with
    /// one indexed query, the cursor holding the sequence.
    ///
    /// # Errors
    /// Only driver failures.
    fn page(&self, req: &JobPageRequest) -> StoreResult<JobPage> {
        crate::overview::page_by_listing(self, req)
    }

    /// Every queue holding at least one job, sorted by name (byte order), with its jobs
    /// counted by state and the oldest due `pending` job's `next_run_at` as of `now`.
    ///
    /// Provided, and slow: built on [`Jobs::list`] of every job, O(jobs) time and memory. A
    /// store with a query language overrides it with one aggregate query.
    ///
    /// # Errors
    /// Only driver failures.
    fn queue_stats(&self, now: Timestamp) -> StoreResult<Vec<QueueStats>> {
        crate::overview::queue_stats_by_listing(self, now)
    }

    /// `dead` → `pending` for every dead job, as [`Jobs::requeue_dead`] does, in one
    /// transaction; returns how many.
    ///
    /// # Errors
    /// Only driver failures.
    fn requeue_all_dead(&self, now: Timestamp) -> StoreResult<u64>;

    /// A job in one of the states `from` → `pending`, as `dlq retry` and `retry` do:
    /// `attempts = 0`, `interrupts = 0`, `last_error` cleared, `run_at = next_run_at =
    /// updated_at = now` (claimable at once, any backoff dropped); command, `max_retries`,
    /// output and history kept. Guarded: the state test and the change are one atomic
    /// step, so a job that left those states meanwhile is not touched. Returns the job as
    /// stored after the change.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`]; [`crate::StoreError::WrongState`] naming the
    /// current state, with nothing changed.
    fn requeue(&self, id: &JobId, from: &[JobState], now: Timestamp) -> StoreResult<Job>;

    /// `dead` → `pending` ([`Jobs::requeue`] from `dead` only): `dlq retry`.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`]; [`crate::StoreError::WrongState`] naming the
    /// current state, with nothing changed.
    fn requeue_dead(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        self.requeue(id, &[JobState::Dead], now)
    }

    // ----- introspection -----

    /// What this store supports.
    fn capabilities(&self) -> Capabilities;
}

/// What workers and operators share besides jobs: persisted settings and the worker
/// registry (so `status` counts live workers and `worker stop` works from any terminal).
pub trait Coordination: Debug + Send + Sync + 'static {
    // ----- schema -----

    /// Checks that no newer build has migrated this store past the schema this build
    /// knows: fails with [`StoreError::NewerSchema`] when the store records a migration
    /// this build does not have. Opening a store checks this once; a long-running worker
    /// calls it every few seconds, so it must be cheap (one small read). A store without a
    /// persisted schema (memory) always passes.
    ///
    /// [`StoreError::NewerSchema`]: crate::StoreError::NewerSchema
    ///
    /// # Errors
    /// [`StoreError::NewerSchema`](crate::StoreError::NewerSchema), or driver failures.
    fn check_schema_version(&self) -> StoreResult<()>;

    // ----- settings -----

    /// A persisted setting's raw value, `None` if never set. Keys and values are
    /// validated by the caller.
    ///
    /// # Errors
    /// Only driver failures.
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;

    /// Stores a setting, replacing any previous value.
    ///
    /// # Errors
    /// Only driver failures.
    fn set_setting(&self, key: &str, value: &str, now: Timestamp) -> StoreResult<()>;

    /// Every persisted setting, sorted by key.
    ///
    /// # Errors
    /// Only driver failures.
    fn settings(&self) -> StoreResult<Vec<(String, String)>>;

    // ----- queue controls -----

    /// Every queue whose settings differ from the defaults (see [`QueueSettings`]), sorted
    /// by name (byte order).
    ///
    /// # Errors
    /// Only driver failures.
    fn queue_settings(&self) -> StoreResult<Vec<QueueSettings>>;

    /// Applies `change` to `queue`'s settings (starting from the defaults if it has none)
    /// in one transaction, and returns them as stored after it. Settings that end up the
    /// defaults are not kept. The next claim that starts after this returns obeys them (see
    /// [`Jobs::claim`]); jobs already `processing` are left alone. The queue need not hold
    /// any job. Values are validated by the caller.
    ///
    /// # Errors
    /// Only driver failures.
    fn set_queue_settings(
        &self,
        queue: &str,
        change: QueueChange,
        now: Timestamp,
    ) -> StoreResult<QueueSettings>;

    // ----- worker registry -----

    /// Removes a worker's entry (on clean exit, or when found dead). Missing is fine.
    ///
    /// # Errors
    /// Only driver failures.
    fn deregister_worker(&self, worker_id: &str) -> StoreResult<()>;

    /// Records a heartbeat; says whether a stop was requested for this worker, or that it
    /// is not registered (it was deregistered as dead) and nothing was written.
    ///
    /// # Errors
    /// Only driver failures.
    fn heartbeat_worker(&self, worker_id: &str, now: Timestamp) -> StoreResult<Heartbeat>;

    /// Every registered worker, in registration order. Liveness is the caller's call.
    ///
    /// # Errors
    /// Only driver failures.
    fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>>;

    /// Registers (or re-registers, replacing) a worker.
    ///
    /// # Errors
    /// Only driver failures.
    fn register_worker(&self, worker: &WorkerInfo) -> StoreResult<()>;

    /// Sets `stop_requested` on every registered worker; returns how many.
    ///
    /// # Errors
    /// Only driver failures.
    fn request_stop(&self) -> StoreResult<u64>;

    // ----- schedules (periodic jobs) -----

    /// Removes a schedule; says whether it existed. Jobs it fired stay.
    ///
    /// # Errors
    /// Only driver failures.
    fn delete_schedule(&self, name: &str) -> StoreResult<bool>;

    /// Fires a schedule, in one transaction: if the schedule exists, is not paused and its
    /// `next_run_at` is still `fire.expected_next_run_at`, sets `next_run_at =
    /// fire.next_run_at` and `last_run_at = fire.fired_at`, and inserts `fire.job` as
    /// [`Jobs::enqueue`] would (`now` is its `created_at`) unless a job with its id exists
    /// ([`Fired::Skipped`]: the insert is if-absent, never a `Conflict`). Otherwise nothing
    /// changes ([`Fired::Stale`]). So each scheduled time yields at most one job however
    /// many workers fire at once, and a worker that lost the race learns it.
    ///
    /// # Errors
    /// Only driver failures; then nothing was applied.
    fn fire_schedule(&self, fire: &ScheduleFire, now: Timestamp) -> StoreResult<Fired>;

    /// Every schedule, sorted by name (byte order).
    ///
    /// # Errors
    /// Only driver failures.
    fn list_schedules(&self) -> StoreResult<Vec<Schedule>>;

    /// Inserts a schedule, or replaces every field of the one with its name.
    ///
    /// # Errors
    /// Only driver failures.
    fn put_schedule(&self, schedule: &Schedule) -> StoreResult<()>;

    /// Pauses (`paused = true`) or resumes a schedule; resuming also sets `next_run_at`
    /// (the caller computes it from now, so times missed while paused never fire), pausing
    /// ignores it. Says whether the schedule exists.
    ///
    /// # Errors
    /// Only driver failures.
    fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Timestamp,
    ) -> StoreResult<bool>;
}

/// How an idle worker learns that another handle or process may have made a job claimable,
/// without running a claim query on every poll.
///
/// Both methods have defaults for a store that cannot tell: [`Marker::Unsupported`] and
/// [`Wake::Unsupported`], and the worker then polls with a claim.
pub trait ChangeFeed: Debug + Send + Sync + 'static {
    /// A value that changes whenever any connection or process commits a job write, if the
    /// store can tell cheaply; idle workers compare it instead of running a claim query.
    ///
    /// # Errors
    /// Only driver failures.
    fn change_marker(&self) -> StoreResult<Marker> {
        Ok(Marker::Unsupported)
    }

    /// Blocks until a write through any handle or process may have made a job claimable
    /// ([`Wake::Changed`]: claim now), or `timeout` passes ([`Wake::TimedOut`]).
    /// [`Wake::Unsupported`], returned at once, means this store cannot wait for other
    /// processes' writes (the default): poll [`ChangeFeed::change_marker`] instead.
    ///
    /// # Errors
    /// Only driver failures.
    fn wait_for_change(&self, timeout: Duration) -> StoreResult<Wake> {
        let _ = timeout;
        Ok(Wake::Unsupported)
    }
}
