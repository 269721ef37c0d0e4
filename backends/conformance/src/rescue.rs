//! Cases for lease upkeep and recovery: `renew_leases`, `expired_leases`, and the
//! lease-guarded recovery kinds of `finish`.

use queuectl_store::{ClaimToken, Guarded, JobId, JobState, JobStore, LeaseRef, TransitionKind};

use crate::fixture::{
    at, claim_one, claim_request, enqueue_all, ids, insert, job_in_state, lease_of,
    new_job_with_id, transition, T0,
};
use crate::TestStore;

/// A lease held under its token is extended (`lease_until`, `updated_at`); a wrong token, a
/// missing job and a job no longer `processing` are `Stale`, one result per lease in order.
pub fn renew_leases_extends_held_leases_and_reports_stale_ones<S: JobStore>(store: TestStore<S>) {
    enqueue_all(
        &*store,
        &[new_job_with_id("held"), new_job_with_id("finished")],
    );
    let held = claim_one(&*store, T0);
    let finished = claim_one(&*store, T0);
    let done = TransitionKind::Completed {
        execution: crate::fixture::execution(0, "", ""),
    };
    let applied = store
        .finish(&[transition(&finished, done)], at(1))
        .expect("finish");
    assert_eq!(applied, [Guarded::Applied]);
    let finished_before = store.get(&finished.id).expect("get finished");

    let wrong = LeaseRef {
        id: held.id.clone(),
        token: ClaimToken(crate::fixture::token_of(&held).0 ^ 1),
    };
    let missing = LeaseRef {
        id: JobId::new("missing"),
        token: crate::fixture::token_of(&held),
    };
    let results = store
        .renew_leases(
            &[wrong, lease_of(&held), missing, lease_of(&finished)],
            at(100),
            at(10),
        )
        .expect("renew");
    assert_eq!(
        results,
        [
            Guarded::Stale,
            Guarded::Applied,
            Guarded::Stale,
            Guarded::Stale
        ]
    );
    let renewed = store.get(&held.id).expect("get held");
    assert_eq!(renewed.lease_until, Some(at(100)));
    assert_eq!(renewed.updated_at, at(10));
    assert_eq!(renewed.state, JobState::Processing);
    assert_eq!(renewed.claim_token, held.claim_token);
    assert_eq!(renewed.started_at, held.started_at);
    assert_eq!(
        store.get(&finished.id).expect("get finished"),
        finished_before
    );
    assert!(store
        .renew_leases(&[], at(100), at(10))
        .expect("empty")
        .is_empty());
}

/// After a lease was recovered, renewing it under the old token is `Stale` and the job's
/// new state is untouched.
pub fn renew_leases_is_stale_after_the_lease_was_recovered<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("lost")]);
    let job = claim_one(&*store, T0);
    let recovered = store
        .finish(
            &[transition(
                &job,
                TransitionKind::Recovered {
                    only_if_expired: false,
                },
            )],
            at(40),
        )
        .expect("recover");
    assert_eq!(recovered, [Guarded::Applied]);
    let before = store.get(&job.id).expect("before");
    assert_eq!(
        store
            .renew_leases(&[lease_of(&job)], at(100), at(41))
            .expect("renew"),
        [Guarded::Stale]
    );
    assert_eq!(store.get(&job.id).expect("after"), before);
}

/// Only `processing` jobs whose `lease_until` is strictly before `now` are listed, oldest
/// lease first; listing changes nothing.
pub fn expired_leases_lists_only_processing_jobs_past_their_lease_oldest_first<S: JobStore>(
    store: TestStore<S>,
) {
    let processing = |id: &str, lease_secs: u64| {
        let mut job = job_in_state(id, JobState::Processing);
        job.lease_until = Some(at(lease_secs));
        job
    };
    insert(&*store, processing("expires-20", 20));
    insert(&*store, processing("expires-10", 10));
    insert(&*store, processing("expires-at-now", 30));
    insert(&*store, processing("alive", 90));
    insert(&*store, processing("expires-15", 15));
    // Not processing: a lease value left on such a row means nothing.
    let mut done = job_in_state("done", JobState::Completed);
    done.lease_until = Some(at(1));
    insert(&*store, done);
    insert(&*store, job_in_state("waiting", JobState::Pending));

    let before = store.list(&Default::default()).expect("list before");
    let expired = store.expired_leases(at(30), 100).expect("expired");
    assert_eq!(ids(&expired), ["expires-10", "expires-15", "expires-20"]);
    assert!(expired.iter().all(|j| j.state == JobState::Processing));
    assert_eq!(
        store.list(&Default::default()).expect("list after"),
        before,
        "expired_leases is read-only"
    );
    assert!(store
        .expired_leases(at(10), 100)
        .expect("none yet")
        .is_empty());
}

/// `expired_leases` returns at most `limit` jobs, the oldest leases.
pub fn expired_leases_honours_limit<S: JobStore>(store: TestStore<S>) {
    for (id, secs) in [("c", 3), ("a", 1), ("d", 4), ("b", 2)] {
        let mut job = job_in_state(id, JobState::Processing);
        job.lease_until = Some(at(secs));
        insert(&*store, job);
    }
    assert_eq!(
        ids(&store.expired_leases(at(60), 2).expect("2")),
        ["a", "b"]
    );
    assert!(store.expired_leases(at(60), 0).expect("0").is_empty());
}

/// The recovery round trip: a claim whose lease ran out shows up in `expired_leases`, is
/// recovered with its token, and is claimed again under a new token with `attempts` unchanged.
pub fn expired_lease_can_be_recovered_and_claimed_again_uncharged<S: JobStore>(
    store: TestStore<S>,
) {
    enqueue_all(&*store, &[new_job_with_id("crashy")]);
    let mut req = claim_request("dead-worker", T0, 1);
    req.lease_until = at(15);
    let first = store.claim(&req).expect("claim").pop().expect("one job");
    let expired = store.expired_leases(at(16), 10).expect("expired");
    assert_eq!(expired, std::slice::from_ref(&first));
    let results = store
        .finish(
            &[transition(
                &expired[0],
                TransitionKind::Recovered {
                    only_if_expired: true,
                },
            )],
            at(16),
        )
        .expect("recover");
    assert_eq!(results, [Guarded::Applied]);
    assert!(store.expired_leases(at(16), 10).expect("again").is_empty());

    let second = store
        .claim(&claim_request("w2", at(16), 1))
        .expect("reclaim")
        .pop()
        .expect("recovered job is due");
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 0);
    assert_eq!(second.interrupts, 1);
    assert_eq!(second.worker_id.as_deref(), Some("w2"));
    assert_ne!(second.claim_token, first.claim_token);
}

fn guarded_recovered() -> TransitionKind {
    TransitionKind::Recovered {
        only_if_expired: true,
    }
}

fn guarded_abandoned() -> TransitionKind {
    TransitionKind::Abandoned {
        error: "interrupted too often".to_owned(),
        only_if_expired: true,
    }
}

/// The multi-host race: a recovery read the lease as expired, then the owner renewed before
/// the recovery's write. The lease-guarded kinds are then `Stale` and leave the job with
/// its owner; the unconditional kind (a worker known to be dead) still applies.
pub fn lease_guarded_recovery_is_stale_after_a_renewal<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("alive")]);
    let mut req = claim_request("slow-owner", T0, 1);
    req.lease_until = at(15);
    let job = store.claim(&req).expect("claim").pop().expect("one job");
    let expired = store.expired_leases(at(20), 10).expect("expired");
    assert_eq!(ids(&expired), ["alive"]);

    let renewed = store
        .renew_leases(&[lease_of(&job)], at(50), at(20))
        .expect("renew");
    assert_eq!(renewed, [Guarded::Applied]);
    let before = store.get(&job.id).expect("before");

    let results = store
        .finish(
            &[
                transition(&expired[0], guarded_recovered()),
                transition(&expired[0], guarded_abandoned()),
            ],
            at(20),
        )
        .expect("guarded recovery");
    assert_eq!(results, [Guarded::Stale, Guarded::Stale]);
    assert_eq!(store.get(&job.id).expect("after"), before);
    assert_eq!(before.state, JobState::Processing);
    assert_eq!(before.lease_until, Some(at(50)));
    assert_eq!(before.interrupts, 0);

    // Still renewable by its owner: nobody took it.
    let again = store
        .renew_leases(&[lease_of(&job)], at(60), at(21))
        .expect("renew again");
    assert_eq!(again, [Guarded::Applied]);

    let results = store
        .finish(
            &[transition(
                &expired[0],
                TransitionKind::Recovered {
                    only_if_expired: false,
                },
            )],
            at(22),
        )
        .expect("unconditional recovery");
    assert_eq!(results, [Guarded::Applied]);
    let recovered = store.get(&job.id).expect("recovered");
    assert_eq!(recovered.state, JobState::Pending);
    assert_eq!(recovered.interrupts, 1);
}

/// A lease that is still expired at write time is recovered (or abandoned) by the
/// lease-guarded kinds, writing exactly what the unconditional kinds write; a lease ending
/// exactly at `now` is not expired (`lease_until < now`, as in `expired_leases`).
pub fn lease_guarded_recovery_applies_to_an_expired_lease<S: JobStore>(store: TestStore<S>) {
    enqueue_all(
        &*store,
        &[new_job_with_id("lost"), new_job_with_id("cursed")],
    );
    let mut req = claim_request("dead-worker", T0, 2);
    req.lease_until = at(15);
    let claimed = store.claim(&req).expect("claim");
    let [lost, cursed] = &claimed[..] else {
        panic!("claimed {claimed:?}");
    };

    let at_the_edge = store
        .finish(
            &[
                transition(lost, guarded_recovered()),
                transition(cursed, guarded_abandoned()),
            ],
            at(15),
        )
        .expect("at the edge");
    assert_eq!(at_the_edge, [Guarded::Stale, Guarded::Stale]);
    assert_eq!(
        store.get(&lost.id).expect("lost").state,
        JobState::Processing
    );

    let results = store
        .finish(
            &[
                transition(lost, guarded_recovered()),
                transition(cursed, guarded_abandoned()),
            ],
            at(16),
        )
        .expect("recover");
    assert_eq!(results, [Guarded::Applied, Guarded::Applied]);

    let pending = store.get(&lost.id).expect("lost");
    assert_eq!(pending.state, JobState::Pending);
    assert_eq!(pending.attempts, 0);
    assert_eq!(pending.interrupts, 1);
    assert_eq!(pending.next_run_at, Some(at(16)));
    assert_eq!(pending.updated_at, at(16));
    assert_eq!((pending.claim_token, pending.lease_until), (None, None));

    let record = store.get_record(&cursed.id).expect("cursed");
    let dead = &record.job;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 0);
    assert_eq!(dead.interrupts, 1);
    assert_eq!(dead.last_error.as_deref(), Some("interrupted too often"));
    assert_eq!(dead.next_run_at, None);
    assert_eq!(dead.updated_at, at(16));
    assert_eq!((dead.claim_token, dead.lease_until), (None, None));
    assert!(record.history.is_empty());
    assert!(store
        .expired_leases(at(16), 10)
        .expect("none left")
        .is_empty());
}
