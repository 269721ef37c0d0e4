//! Recovery by lease expiry against a lease renewed between the read and the write: the
//! multi-host race where another host's recovery and the owner's renewal both waited on
//! the same stalled store.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use queuectl::prelude::*;
use queuectl::testing::ManualClock;
use queuectl::{Clock, EnqueueRequest, Scheduler};
use queuectl_store::{Call, JobState, JobStore, LeaseRef, Timestamp};
use queuectl_store_memory::MemoryStore;
use queuectl_store_sqlite::SqliteStore;

use crate::support::intercept::Intercept;

const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);
const LEASE: Duration = Duration::from_secs(1);

/// Wraps `inner` so that the owner renews every lease a lease-guarded recovery is about to
/// take, after `expired_leases` read it and before the recovery's write: the interleaving
/// that, before the lease guard, let a recovery steal a live job. The counter says how many
/// renewals landed.
fn renews_after_read<S: JobStore>(inner: S) -> (Intercept<S>, Arc<AtomicU32>) {
    let renewed = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&renewed);
    let store = Intercept::new(inner, move |inner: &S, call: &Call<'_>| {
        let Call::Finish { transitions, now } = *call else {
            return Ok(());
        };
        let leases: Vec<LeaseRef> = transitions
            .iter()
            .filter(|t| t.kind.only_if_lease_expired())
            .map(|t| LeaseRef {
                id: t.id.clone(),
                token: t.token,
            })
            .collect();
        let renewed = inner.renew_leases(&leases, now.add(LEASE), now)?;
        let n = renewed.iter().filter(|g| g.is_applied()).count();
        count.fetch_add(u32::try_from(n).unwrap(), Ordering::SeqCst);
        Ok(())
    });
    (store, renewed)
}

/// Claims one job under a short lease, lets it expire, and runs a recovery pass during
/// which the owner renews: nothing is recovered, the owner still holds the job; a
/// recovery of the worker as known dead still takes it.
fn a_renewal_after_the_read_keeps_the_job<S: JobStore>(inner: S) {
    let clock = Arc::new(ManualClock::new(T0));
    let (store, renewed) = renews_after_read(inner);
    let store = Arc::new(store);
    let sched = Scheduler::with_clock(Arc::clone(&store), clock.clone());
    let id = sched.enqueue(EnqueueRequest::shell("true")).unwrap();
    let claimed = sched.claim("owner", 1, &[], LEASE).unwrap();
    assert_eq!(claimed.len(), 1);
    clock.advance(Duration::from_secs(5));

    let rec = sched.recover_expired().unwrap();
    assert_eq!(renewed.load(Ordering::SeqCst), 1, "the race was staged");
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
