//! A store decorator for tests that stage an interleaving: it forwards every call to the
//! inner store, except where a hook is set.

use std::fmt;

use queuectl_store::{
    Capabilities, ClaimRequest, Guarded, Job, JobFilter, JobId, JobRecord, JobStore, LeaseRef,
    NewJob, StateCounts, StoreResult, Timestamp, Transition, WorkerInfo,
};

/// Runs after `expired_leases` read its jobs, with the inner store, `now` and the jobs.
pub(crate) type AfterExpired<S> = Box<dyn Fn(&S, Timestamp, &[Job]) + Send + Sync>;
/// Answers `renew_leases` instead of the inner store.
pub(crate) type RenewHook = Box<dyn Fn(&[LeaseRef]) -> StoreResult<Vec<Guarded>> + Send + Sync>;

/// The inner store, with optional hooks.
pub(crate) struct Intercept<S> {
    pub(crate) inner: S,
    pub(crate) after_expired_leases: Option<AfterExpired<S>>,
    pub(crate) renew_leases: Option<RenewHook>,
}

impl<S> Intercept<S> {
    /// Forwards everything until a hook is set.
    pub(crate) fn new(inner: S) -> Self {
        Intercept {
            inner,
            after_expired_leases: None,
            renew_leases: None,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Intercept<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercept")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: JobStore> JobStore for Intercept<S> {
    fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        self.inner.enqueue_many(jobs, now)
    }
    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>> {
        self.inner.claim(req)
    }
    fn finish(&self, t: &[Transition], now: Timestamp) -> StoreResult<Vec<Guarded>> {
        self.inner.finish(t, now)
    }
    fn renew_leases(
        &self,
        leases: &[LeaseRef],
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Guarded>> {
        match &self.renew_leases {
            Some(hook) => hook(leases),
            None => self.inner.renew_leases(leases, lease_until, now),
        }
    }
    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>> {
        let expired = self.inner.expired_leases(now, limit)?;
        if let Some(hook) = &self.after_expired_leases {
            hook(&self.inner, now, &expired);
        }
        Ok(expired)
    }
    fn prune(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        self.inner.prune(before, limit)
    }
    fn cancel(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        self.inner.cancel(id, now)
    }
    fn counts(&self) -> StoreResult<StateCounts> {
        self.inner.counts()
    }
    fn get(&self, id: &JobId) -> StoreResult<Job> {
        self.inner.get(id)
    }
    fn get_record(&self, id: &JobId) -> StoreResult<JobRecord> {
        self.inner.get_record(id)
    }
    fn import(&self, records: &[JobRecord]) -> StoreResult<()> {
        self.inner.import(records)
    }
    fn list(&self, filter: &JobFilter) -> StoreResult<Vec<Job>> {
        self.inner.list(filter)
    }
    fn requeue_all_dead(&self, now: Timestamp) -> StoreResult<u64> {
        self.inner.requeue_all_dead(now)
    }
    fn requeue_dead(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        self.inner.requeue_dead(id, now)
    }
    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.inner.setting(key)
    }
    fn set_setting(&self, key: &str, value: &str, now: Timestamp) -> StoreResult<()> {
        self.inner.set_setting(key, value, now)
    }
    fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        self.inner.settings()
    }
    fn deregister_worker(&self, worker_id: &str) -> StoreResult<()> {
        self.inner.deregister_worker(worker_id)
    }
    fn heartbeat_worker(&self, worker_id: &str, now: Timestamp) -> StoreResult<Option<bool>> {
        self.inner.heartbeat_worker(worker_id, now)
    }
    fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>> {
        self.inner.list_workers()
    }
    fn register_worker(&self, worker: &WorkerInfo) -> StoreResult<()> {
        self.inner.register_worker(worker)
    }
    fn request_stop(&self) -> StoreResult<u64> {
        self.inner.request_stop()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn change_marker(&self) -> StoreResult<Option<u64>> {
        self.inner.change_marker()
    }
}
