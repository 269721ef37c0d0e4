//! Cases for cancelling a running job: `cancel` on a `processing` job records a request,
//! `cancel_requests` reports it to the holder, and every guarded write that applies to such
//! a job ends it `cancelled` (a cancel wins over an exit, a timeout or a recovery that lands
//! after it was recorded), also when a cancel and a finish race.

use std::sync::Arc;

use queuectl_store::{
    ClaimToken, Guarded, Job, JobId, JobState, JobStore, LeaseRef, StoreError, StoreResult,
    TransitionKind, CANCELLED_WHILE_RUNNING,
};

use crate::fixture::{
    at, claim_request, enqueue_all, execution, lease_of, new_job_with_id, transition, T0,
};
use crate::TestStore;

/// Claims every job enqueued so far, at `T0`, as worker `w1`.
fn claim_all<S: JobStore>(store: &S) -> Vec<Job> {
    store
        .claim(&claim_request("w1", T0, 1000))
        .expect("fixture claim")
}

/// Runs `op` again while the store says it is busy, as the scheduler would.
fn retrying<T>(mut op: impl FnMut() -> StoreResult<T>) -> StoreResult<T> {
    loop {
        match op() {
            Err(e) if e.is_transient() => std::thread::yield_now(),
            other => return other,
        }
    }
}

/// Asserts what a job ended `cancelled` while running looks like: one more attempt, the
/// error, no retry, no claim, no request left, and one history entry saying so.
fn assert_cancelled_while_running<S: JobStore>(
    store: &S,
    id: &JobId,
    exit_code: Option<i32>,
    now: queuectl_store::Timestamp,
) {
    let record = store.get_record(id).expect("record");
    let job = &record.job;
    assert_eq!(job.state, JobState::Cancelled, "{id}");
    assert_eq!(job.attempts, 1, "{id}");
    assert_eq!(
        job.last_error.as_deref(),
        Some(CANCELLED_WHILE_RUNNING),
        "{id}"
    );
    assert_eq!(job.exit_code, exit_code, "{id}");
    assert_eq!(job.next_run_at, None, "{id}");
    assert_eq!(job.finished_at, Some(now), "{id}");
    assert_eq!(job.updated_at, now, "{id}");
    assert_eq!((job.lease_until, job.claim_token), (None, None), "{id}");
    assert!(!job.cancel_requested, "{id}: the request is cleared");
    assert_eq!(record.history.len(), 1, "{id}");
    let h = &record.history[0];
    assert_eq!(
        (h.attempt, h.started_at, h.finished_at, h.exit_code),
        (1, T0, now, exit_code),
        "{id}"
    );
    assert_eq!(h.error.as_deref(), Some(CANCELLED_WHILE_RUNNING), "{id}");
}

/// `cancel` of a `processing` job sets `cancel_requested` (and `updated_at`) and leaves it
/// `processing` under its claim; a second cancel is harmless. `cancel_requests` names the
/// requested jobs among the given leases, in their order, and nothing held under another
/// token, not requested or missing.
pub fn cancel_of_a_processing_job_records_a_request_and_keeps_it_running<S: JobStore>(
    store: TestStore<S>,
) {
    enqueue_all(
        &*store,
        &[
            new_job_with_id("a"),
            new_job_with_id("b"),
            new_job_with_id("c"),
        ],
    );
    let held = claim_all(&*store);
    let [a, b, c] = [&held[0], &held[1], &held[2]];
    assert!(!a.cancel_requested, "a fresh claim has no request");

    let requested = store.cancel(&a.id, at(5)).expect("cancel a");
    assert_eq!(requested.state, JobState::Processing);
    assert!(requested.cancel_requested);
    assert_eq!(requested.updated_at, at(5));
    assert_eq!(requested.claim_token, a.claim_token);
    assert_eq!(requested.lease_until, a.lease_until);
    assert_eq!(requested.attempts, 0);
    assert_eq!(store.get(&a.id).expect("get a"), requested);

    let again = store.cancel(&a.id, at(6)).expect("second cancel");
    assert_eq!(again.state, JobState::Processing);
    assert!(again.cancel_requested);
    store.cancel(&c.id, at(6)).expect("cancel c");

    let wrong = LeaseRef {
        id: c.id.clone(),
        token: ClaimToken(crate::fixture::token_of(c).0 ^ 1),
    };
    let missing = LeaseRef {
        id: JobId::new("missing"),
        token: crate::fixture::token_of(a),
    };
    let found = store
        .cancel_requests(&[lease_of(c), lease_of(b), wrong, missing, lease_of(a)])
        .expect("cancel_requests");
    assert_eq!(found, [c.id.clone(), a.id.clone()]);
    assert!(store.cancel_requests(&[]).expect("empty").is_empty());
    assert!(!store.get(&b.id).expect("get b").cancel_requested);
    // Still held: nobody else may claim it, and a renewal keeps working.
    assert!(store
        .claim(&claim_request("w2", at(7), 10))
        .expect("claim")
        .is_empty());
    let renewed = store
        .renew_leases(&[lease_of(a)], at(100), at(7))
        .expect("renew");
    assert_eq!(renewed, [Guarded::Applied]);
}

/// Whatever execution a worker reports for a job with a cancel request (success, a failure
/// with attempts left, a failure that spends the budget), the guarded finish ends it
/// `cancelled`: one attempt charged with the reported exit code and output, `last_error`
/// `cancelled while running`, one history entry. Jobs in the same batch without a request
/// finish as reported.
pub fn any_reported_execution_of_a_cancel_requested_job_ends_it_cancelled<S: JobStore>(
    store: TestStore<S>,
) {
    let ids = ["ok", "failed", "dead", "plain"];
    enqueue_all(&*store, &ids.map(new_job_with_id));
    let held = claim_all(&*store);
    for job in &held[..3] {
        store.cancel(&job.id, at(1)).expect("cancel");
    }
    let now = at(2);
    let batch = [
        transition(
            &held[0],
            TransitionKind::Completed {
                execution: execution(0, "out-ok", ""),
            },
        ),
        transition(
            &held[1],
            TransitionKind::Failed {
                execution: execution(143, "", "err"),
                error: "exit code 143".to_owned(),
                retry_at: at(60),
            },
        ),
        transition(
            &held[2],
            TransitionKind::Dead {
                execution: execution(124, "", ""),
                error: "timeout after 1s".to_owned(),
            },
        ),
        transition(
            &held[3],
            TransitionKind::Completed {
                execution: execution(0, "plain", ""),
            },
        ),
    ];
    let results = store.finish(&batch, now).expect("finish");
    assert_eq!(results, [Guarded::Applied; 4]);
    assert_cancelled_while_running(&*store, &held[0].id, Some(0), now);
    assert_cancelled_while_running(&*store, &held[1].id, Some(143), now);
    assert_cancelled_while_running(&*store, &held[2].id, Some(124), now);
    let ok = store.get_record(&held[0].id).expect("record");
    assert_eq!(ok.output.expect("output").stdout, "out-ok");
    let plain = store.get(&held[3].id).expect("plain");
    assert_eq!(plain.state, JobState::Completed);
    assert_eq!(plain.last_error, None);

    // The same, one transition per call (the row-by-row path of batching stores).
    enqueue_all(&*store, &[new_job_with_id("single")]);
    let single = claim_all(&*store).remove(0);
    store.cancel(&single.id, at(3)).expect("cancel");
    let failed = TransitionKind::Failed {
        execution: execution(1, "", ""),
        error: "exit code 1".to_owned(),
        retry_at: at(60),
    };
    let results = store
        .finish(&[transition(&single, failed)], now)
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    assert_cancelled_while_running(&*store, &single.id, Some(1), now);
    assert!(store
        .claim(&claim_request("w2", at(120), 10))
        .expect("claim")
        .is_empty());
}

/// A recovery (lease expired, or its worker is dead), an abandonment or a release of a job
/// with a cancel request ends it `cancelled`, not `pending` or `dead`: one attempt charged,
/// no exit code, `interrupts` unchanged, one history entry.
pub fn recovery_or_release_of_a_cancel_requested_job_ends_it_cancelled<S: JobStore>(
    store: TestStore<S>,
) {
    let ids = ["expired", "dead-worker", "released", "abandoned"];
    enqueue_all(&*store, &ids.map(new_job_with_id));
    let held = claim_all(&*store);
    for job in &held {
        store.cancel(&job.id, at(1)).expect("cancel");
    }
    // Past the lease, so the lease-guarded recovery applies.
    let now = at(3600);
    let batch = [
        transition(
            &held[0],
            TransitionKind::Recovered {
                only_if_expired: true,
            },
        ),
        transition(
            &held[1],
            TransitionKind::Recovered {
                only_if_expired: false,
            },
        ),
        transition(&held[2], TransitionKind::Released),
        transition(
            &held[3],
            TransitionKind::Abandoned {
                error: "interrupted too often".to_owned(),
                only_if_expired: false,
            },
        ),
    ];
    let results = store.finish(&batch, now).expect("finish");
    assert_eq!(results, [Guarded::Applied; 4]);
    for job in &held {
        assert_cancelled_while_running(&*store, &job.id, None, now);
        assert_eq!(store.get(&job.id).expect("get").interrupts, 0);
    }
    assert!(store
        .claim(&claim_request("w2", at(7200), 10))
        .expect("claim")
        .is_empty());
}

/// Once the finish has landed, a cancel is `WrongState` naming the final state (with
/// nothing changed); so is a cancel of a job that already ended `cancelled` while running.
pub fn cancel_after_the_finish_landed_names_the_final_state<S: JobStore>(store: TestStore<S>) {
    enqueue_all(
        &*store,
        &[
            new_job_with_id("done"),
            new_job_with_id("dead"),
            new_job_with_id("stopped"),
        ],
    );
    let held = claim_all(&*store);
    store.cancel(&held[2].id, at(1)).expect("cancel");
    let batch = [
        transition(
            &held[0],
            TransitionKind::Completed {
                execution: execution(0, "", ""),
            },
        ),
        transition(
            &held[1],
            TransitionKind::Dead {
                execution: execution(1, "", ""),
                error: "exit code 1".to_owned(),
            },
        ),
        transition(
            &held[2],
            TransitionKind::Completed {
                execution: execution(0, "", ""),
            },
        ),
    ];
    assert_eq!(
        store.finish(&batch, at(2)).expect("finish"),
        [Guarded::Applied; 3]
    );
    for (job, state) in held
        .iter()
        .zip([JobState::Completed, JobState::Dead, JobState::Cancelled])
    {
        let before = store.get(&job.id).expect("get");
        match store.cancel(&job.id, at(3)) {
            Err(StoreError::WrongState { id, state: s }) => {
                assert_eq!((id, s), (job.id.clone(), state));
            }
            other => panic!("expected WrongState({state}), got {other:?}"),
        }
        assert_eq!(store.get(&job.id).expect("get"), before);
        assert!(!before.cancel_requested);
    }
}

/// A cancel and a finish of the same running jobs, from two threads at once, resolve to
/// exactly one outcome each: a cancel that was recorded (returned `Ok`) makes the job end
/// `cancelled`; a cancel that came too late fails naming `completed`, and the job is
/// `completed` as reported. Either way the fields agree with the outcome.
pub fn concurrent_cancel_and_finish_resolve_to_one_outcome<S: JobStore>(store: TestStore<S>) {
    const JOBS: usize = 60;
    let jobs: Vec<_> = (0..JOBS)
        .map(|i| new_job_with_id(&format!("race-{i:02}")))
        .collect();
    store.enqueue_many(&jobs, T0).expect("enqueue_many");
    let held = claim_all(&*store);
    assert_eq!(held.len(), JOBS);
    let store = Arc::new(store);
    let now = at(2);
    let (cancels, finishes) = std::thread::scope(|scope| {
        let canceller = {
            let store = Arc::clone(&store);
            let held = &held;
            scope.spawn(move || {
                held.iter()
                    .map(|job| retrying(|| store.cancel(&job.id, at(1))))
                    .collect::<Vec<_>>()
            })
        };
        let finisher = {
            let store = Arc::clone(&store);
            let held = &held;
            scope.spawn(move || {
                held.iter()
                    .map(|job| {
                        let done = TransitionKind::Completed {
                            execution: execution(0, "", ""),
                        };
                        retrying(|| store.finish(&[transition(job, done.clone())], now))
                            .expect("finish")
                    })
                    .collect::<Vec<_>>()
            })
        };
        (
            canceller.join().expect("canceller panicked"),
            finisher.join().expect("finisher panicked"),
        )
    });
    let (mut won, mut lost) = (0, 0);
    for ((job, cancel), finished) in held.iter().zip(cancels).zip(finishes) {
        assert_eq!(finished, [Guarded::Applied], "{}", job.id);
        let record = store.get_record(&job.id).expect("record");
        assert_eq!(record.history.len(), 1, "{}", job.id);
        assert_eq!(record.job.attempts, 1, "{}", job.id);
        assert!(!record.job.cancel_requested, "{}", job.id);
        match cancel {
            Ok(_) => {
                won += 1;
                assert_cancelled_while_running(&**store, &job.id, Some(0), now);
            }
            Err(StoreError::WrongState { state, .. }) => {
                lost += 1;
                assert_eq!(state, JobState::Completed, "{}", job.id);
                assert_eq!(record.job.state, JobState::Completed, "{}", job.id);
                assert_eq!(record.job.last_error, None, "{}", job.id);
                assert_eq!(record.history[0].error, None, "{}", job.id);
            }
            Err(e) => panic!("{}: cancel failed: {e}", job.id),
        }
    }
    assert_eq!(won + lost, JOBS);
    eprintln!("cancel won {won} races, the finish {lost}");
}
