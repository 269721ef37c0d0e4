//! Recovery by lease expiry against a lease renewed between the read and the write: the
//! multi-host race where another host's recovery and the owner's renewal both waited on
//! the same stalled store.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use queuectl::{Clock, EnqueueRequest, ManualClock, Scheduler};
use queuectl_store::{
    Capabilities, ClaimRequest, Guarded, Job, JobFilter, JobId, JobRecord, JobState, JobStore,
    LeaseRef, NewJob, StateCounts, StoreResult, Timestamp, Transition, WorkerInfo,
};
use queuectl_store_memory::MemoryStore;
use queuectl_store_sqlite::SqliteStore;

const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);
const LEASE: Duration = Duration::from_secs(1);

/// A store whose owner renews every lease right after `expired_leases` read it: the
/// interleaving that, before the lease guard, let a recovery steal a live job.
#[derive(Debug)]
struct RenewsAfterRead<S> {
    inner: S,
    renewed: AtomicU32,
}

/// Claims one job under a short lease, lets it expire, and runs a recovery pass during
/// which the owner renews: nothing is recovered, the owner still holds the job; a
/// recovery of the worker as known dead still takes it.
fn a_renewal_after_the_read_keeps_the_job<S: JobStore>(inner: S) {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(RenewsAfterRead {
        inner,
        renewed: AtomicU32::new(0),
    });
    let sched = Scheduler::with_clock(Arc::clone(&store), clock.clone());
    let id = sched.enqueue(EnqueueRequest::shell("true")).unwrap();
    let claimed = sched.claim("owner", 1, &[], LEASE).unwrap();
    assert_eq!(claimed.len(), 1);
    clock.advance(Duration::from_secs(5));

    let rec = sched.recover_expired().unwrap();
    assert_eq!(
        store.renewed.load(Ordering::SeqCst),
        1,
        "the race was staged"
    );
    assert!(rec.is_empty(), "recovered a renewed lease: {rec:?}");
    let job = store.get(&id).unwrap();
    assert_eq!(job.state, JobState::Processing);
    assert_eq!(job.claim_token, claimed[0].claim_token);
    assert_eq!(job.interrupts, 0);
    assert_eq!(job.lease_until, Some(clock.now().add(LEASE)));

    let rec = sched.recover_worker("owner").unwrap();
    assert_eq!(rec.recovered, std::slice::from_ref(&id));
    assert_eq!(store.get(&id).unwrap().state, JobState::Pending);
}

#[test]
fn memory_a_renewal_after_the_read_keeps_the_job() {
    a_renewal_after_the_read_keeps_the_job(MemoryStore::new());
}

#[test]
fn sqlite_a_renewal_after_the_read_keeps_the_job() {
    let dir = tempfile::tempdir().unwrap();
    a_renewal_after_the_read_keeps_the_job(SqliteStore::open(dir.path().join("r.db")).unwrap());
}

impl<S: JobStore> JobStore for RenewsAfterRead<S> {
    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>> {
        let expired = self.inner.expired_leases(now, limit)?;
        let leases: Vec<LeaseRef> = expired
            .iter()
            .filter_map(|j| {
                Some(LeaseRef {
                    id: j.id.clone(),
                    token: j.claim_token?,
                })
            })
            .collect();
        let renewed = self.inner.renew_leases(&leases, now.add(LEASE), now)?;
        let n = renewed.iter().filter(|g| g.is_applied()).count();
        self.renewed
            .fetch_add(u32::try_from(n).unwrap(), Ordering::SeqCst);
        Ok(expired)
    }
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
        self.inner.renew_leases(leases, lease_until, now)
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
