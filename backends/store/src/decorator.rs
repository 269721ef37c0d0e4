//! [`Decorator`]: the one way to wrap a store.
//!
//! Fault injection, test hooks and instrumentation wrap a store without re-implementing it:
//! a wrapper implements [`Decorator`] (say what it wraps and, optionally, what runs before
//! and after each call) and is then a [`crate::JobStore`] through the blanket impls below,
//! which forward every method to the inner store. `Arc<S>` and `Box<S>` are decorators that
//! add nothing, so a shared or boxed store is a store too.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    AttemptStats, AttemptStatsRequest, Capabilities, ChangeFeed, ClaimRequest, Coordination,
    Enqueued, Fired, FoldedAttempts, Guarded, Heartbeat, Job, JobCursor, JobFilter, JobId, JobPage,
    JobPageRequest, JobRecord, JobState, JobStore, Jobs, LeaseRef, LiveOutput, Marker, NewJob,
    PruneRequest, QueueChange, QueueSettings, QueueStats, Schedule, ScheduleFire, StateCounts,
    StoreResult, Timestamp, Transition, Wake, WorkerInfo,
};

/// A wrapper around a store: every call of the store's traits is forwarded to
/// [`Decorator::inner`], with [`Decorator::before`] run first and [`Decorator::after`] run
/// once the inner call succeeded.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use queuectl_store::{Call, Decorator, JobStore, StoreResult};
///
/// /// Counts writes.
/// #[derive(Debug)]
/// struct CountWrites<S> {
///     inner: S,
///     writes: AtomicU64,
/// }
///
/// impl<S: JobStore> Decorator for CountWrites<S> {
///     type Inner = S;
///     fn inner(&self) -> &S {
///         &self.inner
///     }
///     fn after(&self, call: &Call<'_>) -> StoreResult<()> {
///         if call.is_write() {
///             self.writes.fetch_add(1, Ordering::Relaxed);
///         }
///         Ok(())
///     }
/// }
///
/// fn counted<S: JobStore>(store: S) -> impl JobStore {
///     CountWrites { inner: store, writes: AtomicU64::new(0) }
/// }
/// ```
pub trait Decorator: Debug + Send + Sync + 'static {
    /// The wrapped store.
    type Inner: JobStore + ?Sized;

    /// The wrapped store.
    fn inner(&self) -> &Self::Inner;

    /// Runs before every call but [`Jobs::capabilities`] (which cannot fail). An error is
    /// returned to the caller instead of calling the inner store, so the call changed
    /// nothing, as the traits promise of a failed call.
    ///
    /// # Errors
    /// Whatever the wrapper decides to fail with.
    fn before(&self, call: &Call<'_>) -> StoreResult<()> {
        let _ = call;
        Ok(())
    }

    /// Runs after the inner call succeeded. An error is returned to the caller although the
    /// call took effect: a commit whose acknowledgement was lost, which callers that retry
    /// must survive.
    ///
    /// # Errors
    /// Whatever the wrapper decides to fail with.
    fn after(&self, call: &Call<'_>) -> StoreResult<()> {
        let _ = call;
        Ok(())
    }
}

/// One call through a [`Decorator`], with its arguments, as its hooks see it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
#[allow(missing_docs)] // The fields are the arguments of the method each variant names.
pub enum Call<'a> {
    /// [`Jobs::enqueue`].
    Enqueue { job: &'a NewJob, now: Timestamp },
    /// [`Jobs::enqueue_many`].
    EnqueueMany { jobs: &'a [NewJob], now: Timestamp },
    /// [`Jobs::enqueue_batch`].
    EnqueueBatch { jobs: &'a [NewJob], now: Timestamp },
    /// [`Jobs::claim`].
    Claim { req: &'a ClaimRequest },
    /// [`Jobs::finish`].
    Finish {
        transitions: &'a [Transition],
        now: Timestamp,
    },
    /// [`Jobs::finish_and_claim`].
    FinishAndClaim {
        transitions: &'a [Transition],
        now: Timestamp,
        req: &'a ClaimRequest,
    },
    /// [`Jobs::renew_leases`].
    RenewLeases {
        leases: &'a [LeaseRef],
        lease_until: Timestamp,
        now: Timestamp,
    },
    /// [`Jobs::cancel_requests`].
    CancelRequests { leases: &'a [LeaseRef] },
    /// [`Jobs::put_live_output`].
    PutLiveOutput {
        lease: &'a LeaseRef,
        output: &'a LiveOutput,
        now: Timestamp,
    },
    /// [`Jobs::live_output`].
    LiveOutput { id: &'a JobId },
    /// [`Jobs::expired_leases`].
    ExpiredLeases { now: Timestamp, limit: u32 },
    /// [`Jobs::prune_finished`] (and [`Jobs::prune`], which calls it).
    PruneFinished { req: &'a PruneRequest },
    /// [`Jobs::attempt_stats`].
    AttemptStats { req: &'a AttemptStatsRequest },
    /// [`Jobs::cancel`].
    Cancel { id: &'a JobId, now: Timestamp },
    /// [`Jobs::counts`].
    Counts,
    /// [`Jobs::delete`].
    Delete { id: &'a JobId, now: Timestamp },
    /// [`Jobs::find_ids_by_prefix`].
    FindIdsByPrefix { prefix: &'a str, limit: u32 },
    /// [`Jobs::folded_attempts`].
    FoldedAttempts,
    /// [`Jobs::get`].
    Get { id: &'a JobId },
    /// [`Jobs::get_record`].
    GetRecord { id: &'a JobId },
    /// [`Jobs::import`].
    Import { records: &'a [JobRecord] },
    /// [`Jobs::import_folded_attempts`].
    ImportFoldedAttempts { folded: &'a [FoldedAttempts] },
    /// [`Jobs::list`].
    List { filter: &'a JobFilter },
    /// [`Jobs::list_after`].
    ListAfter {
        filter: &'a JobFilter,
        after: Option<JobCursor>,
        limit: u32,
    },
    /// [`Jobs::page`].
    Page { req: &'a JobPageRequest },
    /// [`Jobs::queue_stats`].
    QueueStats { now: Timestamp },
    /// [`Jobs::requeue_all_dead`].
    RequeueAllDead { now: Timestamp },
    /// [`Jobs::requeue`] (and [`Jobs::requeue_dead`], which calls it).
    Requeue {
        id: &'a JobId,
        from: &'a [JobState],
        now: Timestamp,
    },
    /// [`Coordination::check_schema_version`].
    CheckSchemaVersion,
    /// [`Coordination::setting`].
    Setting { key: &'a str },
    /// [`Coordination::set_setting`].
    SetSetting {
        key: &'a str,
        value: &'a str,
        now: Timestamp,
    },
    /// [`Coordination::settings`].
    Settings,
    /// [`Coordination::queue_settings`].
    QueueSettings,
    /// [`Coordination::set_queue_settings`].
    SetQueueSettings {
        queue: &'a str,
        change: QueueChange,
        now: Timestamp,
    },
    /// [`Coordination::deregister_worker`].
    DeregisterWorker { worker_id: &'a str },
    /// [`Coordination::heartbeat_worker`].
    HeartbeatWorker { worker_id: &'a str, now: Timestamp },
    /// [`Coordination::list_workers`].
    ListWorkers,
    /// [`Coordination::register_worker`].
    RegisterWorker { worker: &'a WorkerInfo },
    /// [`Coordination::request_stop`].
    RequestStop,
    /// [`Coordination::delete_schedule`].
    DeleteSchedule { name: &'a str },
    /// [`Coordination::fire_schedule`].
    FireSchedule {
        fire: &'a ScheduleFire,
        now: Timestamp,
    },
    /// [`Coordination::list_schedules`].
    ListSchedules,
    /// [`Coordination::put_schedule`].
    PutSchedule { schedule: &'a Schedule },
    /// [`Coordination::set_schedule_paused`].
    SetSchedulePaused {
        name: &'a str,
        paused: bool,
        next_run_at: Timestamp,
    },
    /// [`ChangeFeed::change_marker`].
    ChangeMarker,
    /// [`ChangeFeed::wait_for_change`].
    WaitForChange { timeout: Duration },
}

impl Call<'_> {
    /// The method's name, e.g. `"renew_leases"`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Call::Enqueue { .. } => "enqueue",
            Call::EnqueueMany { .. } => "enqueue_many",
            Call::EnqueueBatch { .. } => "enqueue_batch",
            Call::Claim { .. } => "claim",
            Call::Finish { .. } => "finish",
            Call::FinishAndClaim { .. } => "finish_and_claim",
            Call::RenewLeases { .. } => "renew_leases",
            Call::CancelRequests { .. } => "cancel_requests",
            Call::PutLiveOutput { .. } => "put_live_output",
            Call::LiveOutput { .. } => "live_output",
            Call::ExpiredLeases { .. } => "expired_leases",
            Call::PruneFinished { .. } => "prune_finished",
            Call::AttemptStats { .. } => "attempt_stats",
            Call::Cancel { .. } => "cancel",
            Call::Counts => "counts",
            Call::Delete { .. } => "delete",
            Call::FindIdsByPrefix { .. } => "find_ids_by_prefix",
            Call::FoldedAttempts => "folded_attempts",
            Call::Get { .. } => "get",
            Call::GetRecord { .. } => "get_record",
            Call::Import { .. } => "import",
            Call::ImportFoldedAttempts { .. } => "import_folded_attempts",
            Call::List { .. } => "list",
            Call::ListAfter { .. } => "list_after",
            Call::Page { .. } => "page",
            Call::QueueStats { .. } => "queue_stats",
            Call::RequeueAllDead { .. } => "requeue_all_dead",
            Call::Requeue { .. } => "requeue",
            Call::CheckSchemaVersion => "check_schema_version",
            Call::Setting { .. } => "setting",
            Call::SetSetting { .. } => "set_setting",
            Call::Settings => "settings",
            Call::QueueSettings => "queue_settings",
            Call::SetQueueSettings { .. } => "set_queue_settings",
            Call::DeregisterWorker { .. } => "deregister_worker",
            Call::HeartbeatWorker { .. } => "heartbeat_worker",
            Call::ListWorkers => "list_workers",
            Call::RegisterWorker { .. } => "register_worker",
            Call::RequestStop => "request_stop",
            Call::DeleteSchedule { .. } => "delete_schedule",
            Call::FireSchedule { .. } => "fire_schedule",
            Call::ListSchedules => "list_schedules",
            Call::PutSchedule { .. } => "put_schedule",
            Call::SetSchedulePaused { .. } => "set_schedule_paused",
            Call::ChangeMarker => "change_marker",
            Call::WaitForChange { .. } => "wait_for_change",
        }
    }

    /// Whether the call may write to the store (a claim and a heartbeat do).
    #[must_use]
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Call::ExpiredLeases { .. }
                | Call::CancelRequests { .. }
                | Call::LiveOutput { .. }
                | Call::AttemptStats { .. }
                | Call::Counts
                | Call::FindIdsByPrefix { .. }
                | Call::FoldedAttempts
                | Call::Get { .. }
                | Call::GetRecord { .. }
                | Call::List { .. }
                | Call::ListAfter { .. }
                | Call::Page { .. }
                | Call::QueueStats { .. }
                | Call::CheckSchemaVersion
                | Call::Setting { .. }
                | Call::Settings
                | Call::QueueSettings
                | Call::ListWorkers
                | Call::ListSchedules
                | Call::ChangeMarker
                | Call::WaitForChange { .. }
        )
    }
}

/// Runs one call through a decorator's hooks.
fn through<D: Decorator + ?Sized, T>(
    d: &D,
    call: &Call<'_>,
    op: impl FnOnce(&D::Inner) -> StoreResult<T>,
) -> StoreResult<T> {
    d.before(call)?;
    let out = op(d.inner())?;
    d.after(call)?;
    Ok(out)
}

impl<D: Decorator> Jobs for D {
    fn enqueue(&self, job: &NewJob, now: Timestamp) -> StoreResult<()> {
        through(self, &Call::Enqueue { job, now }, |s| s.enqueue(job, now))
    }
    fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        through(self, &Call::EnqueueMany { jobs, now }, |s| {
            s.enqueue_many(jobs, now)
        })
    }
    fn enqueue_batch(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<Enqueued>> {
        through(self, &Call::EnqueueBatch { jobs, now }, |s| {
            s.enqueue_batch(jobs, now)
        })
    }
    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>> {
        through(self, &Call::Claim { req }, |s| s.claim(req))
    }
    fn finish(&self, transitions: &[Transition], now: Timestamp) -> StoreResult<Vec<Guarded>> {
        through(self, &Call::Finish { transitions, now }, |s| {
            s.finish(transitions, now)
        })
    }
    fn finish_and_claim(
        &self,
        transitions: &[Transition],
        now: Timestamp,
        req: &ClaimRequest,
    ) -> StoreResult<(Vec<Guarded>, Vec<Job>)> {
        let call = Call::FinishAndClaim {
            transitions,
            now,
            req,
        };
        through(self, &call, |s| s.finish_and_claim(transitions, now, req))
    }
    fn renew_leases(
        &self,
        leases: &[LeaseRef],
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Guarded>> {
        let call = Call::RenewLeases {
            leases,
            lease_until,
            now,
        };
        through(self, &call, |s| s.renew_leases(leases, lease_until, now))
    }
    fn cancel_requests(&self, leases: &[LeaseRef]) -> StoreResult<Vec<JobId>> {
        through(self, &Call::CancelRequests { leases }, |s| {
            s.cancel_requests(leases)
        })
    }
    fn put_live_output(
        &self,
        lease: &LeaseRef,
        output: &LiveOutput,
        now: Timestamp,
    ) -> StoreResult<Guarded> {
        let call = Call::PutLiveOutput { lease, output, now };
        through(self, &call, |s| s.put_live_output(lease, output, now))
    }
    fn live_output(&self, id: &JobId) -> StoreResult<Option<LiveOutput>> {
        through(self, &Call::LiveOutput { id }, |s| s.live_output(id))
    }
    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>> {
        through(self, &Call::ExpiredLeases { now, limit }, |s| {
            s.expired_leases(now, limit)
        })
    }
    fn prune_finished(&self, req: &PruneRequest) -> StoreResult<u64> {
        through(self, &Call::PruneFinished { req }, |s| {
            s.prune_finished(req)
        })
    }
    fn attempt_stats(&self, req: &AttemptStatsRequest) -> StoreResult<AttemptStats> {
        through(self, &Call::AttemptStats { req }, |s| s.attempt_stats(req))
    }
    fn cancel(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        through(self, &Call::Cancel { id, now }, |s| s.cancel(id, now))
    }
    fn counts(&self) -> StoreResult<StateCounts> {
        through(self, &Call::Counts, |s| s.counts())
    }
    fn delete(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        through(self, &Call::Delete { id, now }, |s| s.delete(id, now))
    }
    fn find_ids_by_prefix(&self, prefix: &str, limit: u32) -> StoreResult<Vec<JobId>> {
        through(self, &Call::FindIdsByPrefix { prefix, limit }, |s| {
            s.find_ids_by_prefix(prefix, limit)
        })
    }
    fn folded_attempts(&self) -> StoreResult<Vec<FoldedAttempts>> {
        through(self, &Call::FoldedAttempts, |s| s.folded_attempts())
    }
    fn get(&self, id: &JobId) -> StoreResult<Job> {
        through(self, &Call::Get { id }, |s| s.get(id))
    }
    fn get_record(&self, id: &JobId) -> StoreResult<JobRecord> {
        through(self, &Call::GetRecord { id }, |s| s.get_record(id))
    }
    fn import(&self, records: &[JobRecord]) -> StoreResult<()> {
        through(self, &Call::Import { records }, |s| s.import(records))
    }
    fn import_folded_attempts(&self, folded: &[FoldedAttempts]) -> StoreResult<()> {
        through(self, &Call::ImportFoldedAttempts { folded }, |s| {
            s.import_folded_attempts(folded)
        })
    }
    fn list(&self, filter: &JobFilter) -> StoreResult<Vec<Job>> {
        through(self, &Call::List { filter }, |s| s.list(filter))
    }
    fn list_after(
        &self,
        filter: &JobFilter,
        after: Option<JobCursor>,
        limit: u32,
    ) -> StoreResult<JobPage> {
        let call = Call::ListAfter {
            filter,
            after,
            limit,
        };
        through(self, &call, |s| s.list_after(filter, after, limit))
    }
    fn page(&self, req: &JobPageRequest) -> StoreResult<JobPage> {
        through(self, &Call::Page { req }, |s| s.page(req))
    }
    fn queue_stats(&self, now: Timestamp) -> StoreResult<Vec<QueueStats>> {
        through(self, &Call::QueueStats { now }, |s| s.queue_stats(now))
    }
    fn requeue_all_dead(&self, now: Timestamp) -> StoreResult<u64> {
        through(self, &Call::RequeueAllDead { now }, |s| {
            s.requeue_all_dead(now)
        })
    }
    fn requeue(&self, id: &JobId, from: &[JobState], now: Timestamp) -> StoreResult<Job> {
        through(self, &Call::Requeue { id, from, now }, |s| {
            s.requeue(id, from, now)
        })
    }
    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }
}

impl<D: Decorator> Coordination for D {
    fn check_schema_version(&self) -> StoreResult<()> {
        through(self, &Call::CheckSchemaVersion, |s| {
            s.check_schema_version()
        })
    }
    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        through(self, &Call::Setting { key }, |s| s.setting(key))
    }
    fn set_setting(&self, key: &str, value: &str, now: Timestamp) -> StoreResult<()> {
        through(self, &Call::SetSetting { key, value, now }, |s| {
            s.set_setting(key, value, now)
        })
    }
    fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        through(self, &Call::Settings, |s| s.settings())
    }
    fn queue_settings(&self) -> StoreResult<Vec<QueueSettings>> {
        through(self, &Call::QueueSettings, |s| s.queue_settings())
    }
    fn set_queue_settings(
        &self,
        queue: &str,
        change: QueueChange,
        now: Timestamp,
    ) -> StoreResult<QueueSettings> {
        through(self, &Call::SetQueueSettings { queue, change, now }, |s| {
            s.set_queue_settings(queue, change, now)
        })
    }
    fn deregister_worker(&self, worker_id: &str) -> StoreResult<()> {
        through(self, &Call::DeregisterWorker { worker_id }, |s| {
            s.deregister_worker(worker_id)
        })
    }
    fn heartbeat_worker(&self, worker_id: &str, now: Timestamp) -> StoreResult<Heartbeat> {
        through(self, &Call::HeartbeatWorker { worker_id, now }, |s| {
            s.heartbeat_worker(worker_id, now)
        })
    }
    fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>> {
        through(self, &Call::ListWorkers, |s| s.list_workers())
    }
    fn register_worker(&self, worker: &WorkerInfo) -> StoreResult<()> {
        through(self, &Call::RegisterWorker { worker }, |s| {
            s.register_worker(worker)
        })
    }
    fn request_stop(&self) -> StoreResult<u64> {
        through(self, &Call::RequestStop, |s| s.request_stop())
    }
    fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        through(self, &Call::DeleteSchedule { name }, |s| {
            s.delete_schedule(name)
        })
    }
    fn fire_schedule(&self, fire: &ScheduleFire, now: Timestamp) -> StoreResult<Fired> {
        through(self, &Call::FireSchedule { fire, now }, |s| {
            s.fire_schedule(fire, now)
        })
    }
    fn list_schedules(&self) -> StoreResult<Vec<Schedule>> {
        through(self, &Call::ListSchedules, |s| s.list_schedules())
    }
    fn put_schedule(&self, schedule: &Schedule) -> StoreResult<()> {
        through(self, &Call::PutSchedule { schedule }, |s| {
            s.put_schedule(schedule)
        })
    }
    fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Timestamp,
    ) -> StoreResult<bool> {
        let call = Call::SetSchedulePaused {
            name,
            paused,
            next_run_at,
        };
        through(self, &call, |s| {
            s.set_schedule_paused(name, paused, next_run_at)
        })
    }
}

impl<D: Decorator> ChangeFeed for D {
    fn change_marker(&self) -> StoreResult<Marker> {
        through(self, &Call::ChangeMarker, |s| s.change_marker())
    }
    fn wait_for_change(&self, timeout: Duration) -> StoreResult<Wake> {
        through(self, &Call::WaitForChange { timeout }, |s| {
            s.wait_for_change(timeout)
        })
    }
}

impl<S: JobStore + ?Sized> Decorator for Arc<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        self
    }
}

impl<S: JobStore + ?Sized> Decorator for Box<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        self
    }
}
