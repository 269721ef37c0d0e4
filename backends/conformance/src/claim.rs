//! Cases for `claim`.

use queuectl_store::{JobId, JobState, JobStore, NewJob, TransitionKind};

use crate::fixture::{
    at, claim_request, enqueue_all, execution, ids, insert, job_in_state, new_job_with_id,
    transition, T0,
};
use crate::TestStore;

/// Claim takes higher priority first, then the earlier `next_run_at`, then insertion order.
pub fn claim_orders_by_priority_then_next_run_at_then_insertion<S: JobStore>(store: TestStore<S>) {
    let job = |id: &str, priority: i32, due_secs: u64| NewJob {
        priority,
        run_at: at(due_secs),
        ..new_job_with_id(id)
    };
    enqueue_all(
        &*store,
        &[
            job("low-early", -1, 0),
            job("mid-late-1", 0, 5),
            job("mid-late-2", 0, 5),
            job("mid-early", 0, 1),
            job("high-latest", 10, 9),
            job("mid-late-3", 0, 5),
        ],
    );
    let claimed = store
        .claim(&claim_request("w1", at(10), 10))
        .expect("claim");
    assert_eq!(
        ids(&claimed),
        [
            "high-latest",
            "mid-early",
            "mid-late-1",
            "mid-late-2",
            "mid-late-3",
            "low-early"
        ]
    );
}

/// Claim returns at most `limit` jobs, leaves the rest pending, and a limit of 0 claims none.
pub fn claim_respects_limit<S: JobStore>(store: TestStore<S>) {
    let jobs: Vec<NewJob> = (0..5)
        .map(|i| new_job_with_id(&format!("job-{i}")))
        .collect();
    enqueue_all(&*store, &jobs);
    assert!(store
        .claim(&claim_request("w1", T0, 0))
        .expect("claim 0")
        .is_empty());
    let claimed = store.claim(&claim_request("w1", T0, 2)).expect("claim 2");
    assert_eq!(ids(&claimed), ["job-0", "job-1"]);
    let counts = store.counts().expect("counts");
    assert_eq!((counts.processing, counts.pending), (2, 3));
    let rest = store.claim(&claim_request("w1", T0, 10)).expect("claim 10");
    assert_eq!(ids(&rest), ["job-2", "job-3", "job-4"]);
}

/// A job whose `next_run_at` is later than `now` is not claimed until `now` reaches it.
pub fn claim_skips_jobs_due_in_the_future<S: JobStore>(store: TestStore<S>) {
    let later = NewJob {
        run_at: at(60),
        ..new_job_with_id("later")
    };
    enqueue_all(&*store, &[later]);
    assert!(store
        .claim(&claim_request("w1", at(59), 10))
        .expect("claim early")
        .is_empty());
    assert_eq!(
        store.get(&JobId::new("later")).expect("get").state,
        JobState::Pending
    );
    let claimed = store
        .claim(&claim_request("w1", at(60), 10))
        .expect("claim on time");
    assert_eq!(ids(&claimed), ["later"]);
}

/// A failed job is claimable again only once its `retry_at` has passed.
pub fn claim_takes_failed_jobs_only_after_retry_at<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("flaky")]);
    let job = crate::fixture::claim_one(&*store, T0);
    let failed = TransitionKind::Failed {
        execution: execution(1, "", "boom"),
        error: "exit code 1".to_owned(),
        retry_at: at(8),
    };
    let results = store
        .finish(&[transition(&job, failed)], at(2))
        .expect("finish");
    assert!(results[0].is_applied());
    assert_eq!(
        store.get(&job.id).expect("get").next_run_at,
        Some(at(8)),
        "retry_at becomes next_run_at"
    );
    assert!(store
        .claim(&claim_request("w1", at(7), 10))
        .expect("claim during backoff")
        .is_empty());
    let again = store
        .claim(&claim_request("w1", at(8), 10))
        .expect("claim after backoff");
    assert_eq!(ids(&again), ["flaky"]);
    assert_eq!(again[0].attempts, 1);
}

/// Claim takes only jobs in the requested queues; an empty list means every queue.
pub fn claim_filters_by_queues_and_empty_means_all<S: JobStore>(store: TestStore<S>) {
    let job = |id: &str, queue: &str| NewJob {
        queue: queue.to_owned(),
        ..new_job_with_id(id)
    };
    enqueue_all(
        &*store,
        &[
            job("d1", "default"),
            job("m1", "mail"),
            job("r1", "reports"),
            job("m2", "mail"),
            job("d2", "default"),
        ],
    );
    let mut req = claim_request("w1", T0, 10);
    req.queues = vec!["mail".to_owned()];
    assert_eq!(ids(&store.claim(&req).expect("mail")), ["m1", "m2"]);
    req.queues = vec!["reports".to_owned(), "nowhere".to_owned()];
    assert_eq!(ids(&store.claim(&req).expect("reports")), ["r1"]);
    req.queues = Vec::new();
    assert_eq!(ids(&store.claim(&req).expect("all")), ["d1", "d2"]);
}

/// A claimed job is `processing` with the worker, a token, the lease and `started_at`
/// stamped, `next_run_at` cleared and `attempts` unchanged; the stored row matches.
pub fn claim_stamps_worker_token_lease_and_start<S: JobStore>(store: TestStore<S>) {
    let mut earlier = job_in_state("retry-me", JobState::Failed);
    earlier.attempts = 2;
    earlier.interrupts = 1;
    insert(&*store, earlier);
    let mut req = claim_request("worker-7", at(3), 1);
    req.lease_until = at(45);
    let claimed = store.claim(&req).expect("claim");
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!(job.state, JobState::Processing);
    assert_eq!(job.worker_id.as_deref(), Some("worker-7"));
    assert!(job.claim_token.is_some());
    assert_eq!(job.lease_until, Some(at(45)));
    assert_eq!(job.started_at, Some(at(3)));
    assert_eq!(job.updated_at, at(3));
    assert_eq!(job.next_run_at, None);
    assert_eq!(job.attempts, 2, "claim never charges an attempt");
    assert_eq!(job.interrupts, 1);
    assert_eq!(
        &store.get(&job.id).expect("get"),
        job,
        "claim returns the row as stored"
    );
}

/// Each claim call stamps a fresh token; the jobs of one call share it.
pub fn claim_gives_each_call_a_fresh_token<S: JobStore>(store: TestStore<S>) {
    let jobs: Vec<NewJob> = (0..4).map(|i| new_job_with_id(&format!("j{i}"))).collect();
    enqueue_all(&*store, &jobs);
    let first = store.claim(&claim_request("w1", T0, 2)).expect("first");
    let second = store.claim(&claim_request("w2", T0, 2)).expect("second");
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 2);
    assert_eq!(first[0].claim_token, first[1].claim_token);
    assert_eq!(second[0].claim_token, second[1].claim_token);
    assert_ne!(first[0].claim_token, second[0].claim_token);
    assert_ne!(ids(&first), ids(&second));
}

/// Jobs in states other than `pending` and `failed` are never claimed, even when old.
pub fn claim_ignores_jobs_in_unclaimable_states<S: JobStore>(store: TestStore<S>) {
    for state in [
        JobState::Processing,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
    ] {
        insert(&*store, job_in_state(state.as_str(), state));
    }
    assert!(store
        .claim(&claim_request("w1", at(3600), 10))
        .expect("claim")
        .is_empty());
}
