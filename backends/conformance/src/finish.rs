//! Cases for `finish`: what each transition writes, and the token guard.

use queuectl_store::{
    AttemptRecord, ClaimToken, Guarded, Job, JobId, JobOutput, JobRecord, JobState, JobStore,
    Transition, TransitionKind,
};

use crate::fixture::{
    at, claim_one, claim_request, enqueue_all, execution, fixture_token, insert, job_in_state,
    new_job_with_id, transition, T0,
};
use crate::TestStore;

/// Imports a `processing` job on its second attempt: one failed attempt in its history, that
/// attempt's output and error stored, and one earlier interrupt.
fn second_attempt<S: JobStore>(store: &S, id: &str) -> Job {
    let mut job = job_in_state(id, JobState::Processing);
    job.attempts = 1;
    job.interrupts = 1;
    job.exit_code = Some(3);
    job.last_error = Some("exit code 3".to_owned());
    job.started_at = Some(at(10));
    job.finished_at = Some(at(5));
    let record = JobRecord {
        job: job.clone(),
        output: Some(JobOutput {
            stdout: "first out".to_owned(),
            stderr: "first err".to_owned(),
        }),
        history: vec![first_attempt()],
    };
    store.import(&[record]).expect("import");
    job
}

fn first_attempt() -> AttemptRecord {
    AttemptRecord {
        attempt: 1,
        started_at: T0,
        finished_at: at(5),
        exit_code: Some(3),
        error: Some("exit code 3".to_owned()),
        output: JobOutput {
            stdout: "first out".to_owned(),
            stderr: "first err".to_owned(),
        },
    }
}

/// Asserts the bookkeeping every transition shares: lease and token cleared, `updated_at`.
fn assert_released_claim(job: &Job, now: queuectl_store::Timestamp) {
    assert_eq!(job.updated_at, now);
    assert_eq!(job.lease_until, None);
    assert_eq!(job.claim_token, None);
}

/// `Completed`: `completed`, one more attempt, a history entry, output replaced,
/// `last_error` and `next_run_at` cleared.
pub fn finish_completed_charges_an_attempt_and_clears_last_error<S: JobStore>(store: TestStore<S>) {
    let job = second_attempt(&*store, "ok");
    let kind = TransitionKind::Completed {
        execution: execution(0, "all good", ""),
    };
    let results = store
        .finish(&[transition(&job, kind)], at(20))
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    let record = store.get_record(&job.id).expect("get_record");
    let done = &record.job;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.interrupts, 1);
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.last_error, None);
    assert_eq!(done.next_run_at, None);
    assert_eq!(done.finished_at, Some(at(20)));
    assert_eq!(done.started_at, Some(at(10)));
    assert_eq!(done.worker_id, job.worker_id);
    assert_released_claim(done, at(20));
    assert_eq!(
        record.output,
        Some(JobOutput {
            stdout: "all good".to_owned(),
            stderr: String::new(),
        })
    );
    assert_eq!(
        record.history,
        [
            first_attempt(),
            AttemptRecord {
                attempt: 2,
                started_at: at(10),
                finished_at: at(20),
                exit_code: Some(0),
                error: None,
                output: JobOutput {
                    stdout: "all good".to_owned(),
                    stderr: String::new(),
                },
            }
        ]
    );
}

/// `Failed`: `failed` with `next_run_at = retry_at`, the error kept, an attempt charged.
pub fn finish_failed_charges_an_attempt_and_schedules_the_retry<S: JobStore>(store: TestStore<S>) {
    let job = second_attempt(&*store, "flaky");
    let kind = TransitionKind::Failed {
        execution: execution(2, "partial", "oops"),
        error: "exit code 2".to_owned(),
        retry_at: at(60),
    };
    let results = store
        .finish(&[transition(&job, kind)], at(21))
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    let record = store.get_record(&job.id).expect("get_record");
    let failed = &record.job;
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.interrupts, 1);
    assert_eq!(failed.exit_code, Some(2));
    assert_eq!(failed.last_error.as_deref(), Some("exit code 2"));
    assert_eq!(failed.next_run_at, Some(at(60)));
    assert_eq!(failed.finished_at, Some(at(21)));
    assert_released_claim(failed, at(21));
    assert_eq!(
        record.output,
        Some(JobOutput {
            stdout: "partial".to_owned(),
            stderr: "oops".to_owned(),
        })
    );
    assert_eq!(
        record.history,
        [
            first_attempt(),
            AttemptRecord {
                attempt: 2,
                started_at: at(10),
                finished_at: at(21),
                exit_code: Some(2),
                error: Some("exit code 2".to_owned()),
                output: record.output.clone().unwrap_or_default(),
            }
        ]
    );
}

/// `Dead`: `dead` with `next_run_at` cleared, the error kept, an attempt charged; a missing
/// exit code (a spawn failure) is recorded as `None`.
pub fn finish_dead_charges_an_attempt_and_dead_letters_the_job<S: JobStore>(store: TestStore<S>) {
    let job = second_attempt(&*store, "doomed");
    let mut exec = execution(0, "", "sh: not found");
    exec.exit_code = None;
    let kind = TransitionKind::Dead {
        execution: exec,
        error: "could not start".to_owned(),
    };
    let results = store
        .finish(&[transition(&job, kind)], at(22))
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    let record = store.get_record(&job.id).expect("get_record");
    let dead = &record.job;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.interrupts, 1);
    assert_eq!(dead.exit_code, None);
    assert_eq!(dead.last_error.as_deref(), Some("could not start"));
    assert_eq!(dead.next_run_at, None);
    assert_eq!(dead.finished_at, Some(at(22)));
    assert_released_claim(dead, at(22));
    assert_eq!(
        record.output.clone().map(|o| o.stderr),
        Some("sh: not found".to_owned())
    );
    assert_eq!(
        record.history.last(),
        Some(&AttemptRecord {
            attempt: 2,
            started_at: at(10),
            finished_at: at(22),
            exit_code: None,
            error: Some("could not start".to_owned()),
            output: record.output.clone().unwrap_or_default(),
        })
    );
    assert_eq!(record.history.len(), 2);
}

/// `Recovered`: back to `pending` and due now, one more interrupt, no attempt charged, no
/// history entry, output and `last_error` as they were.
pub fn finish_recovered_returns_the_job_to_pending_without_charging_an_attempt<S: JobStore>(
    store: TestStore<S>,
) {
    let job = second_attempt(&*store, "orphan");
    let results = store
        .finish(
            &[transition(
                &job,
                TransitionKind::Recovered {
                    only_if_expired: false,
                },
            )],
            at(40),
        )
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    let record = store.get_record(&job.id).expect("get_record");
    let pending = &record.job;
    assert_eq!(pending.state, JobState::Pending);
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.interrupts, 2);
    assert_eq!(pending.next_run_at, Some(at(40)));
    assert_eq!(pending.last_error.as_deref(), Some("exit code 3"));
    assert_eq!(pending.finished_at, Some(at(5)));
    assert_released_claim(pending, at(40));
    assert_eq!(record.history, [first_attempt()]);
    assert_eq!(
        record.output.map(|o| o.stdout),
        Some("first out".to_owned())
    );
}

/// `Abandoned`: `dead` with the error, one more interrupt, no attempt charged, no history.
pub fn finish_abandoned_dead_letters_the_job_without_charging_an_attempt<S: JobStore>(
    store: TestStore<S>,
) {
    let job = second_attempt(&*store, "cursed");
    let kind = TransitionKind::Abandoned {
        error: "interrupted too often".to_owned(),
        only_if_expired: false,
    };
    let results = store
        .finish(&[transition(&job, kind)], at(41))
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    let record = store.get_record(&job.id).expect("get_record");
    let dead = &record.job;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.interrupts, 2);
    assert_eq!(dead.last_error.as_deref(), Some("interrupted too often"));
    assert_eq!(dead.next_run_at, None);
    assert_released_claim(dead, at(41));
    assert_eq!(record.history, [first_attempt()]);
}

/// `Released`: back to `pending` and due now, nothing charged, no history.
pub fn finish_released_returns_the_job_to_pending_charging_nothing<S: JobStore>(
    store: TestStore<S>,
) {
    let job = second_attempt(&*store, "handed-back");
    let results = store
        .finish(&[transition(&job, TransitionKind::Released)], at(42))
        .expect("finish");
    assert_eq!(results, [Guarded::Applied]);
    let record = store.get_record(&job.id).expect("get_record");
    let pending = &record.job;
    assert_eq!(pending.state, JobState::Pending);
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.interrupts, 1);
    assert_eq!(pending.next_run_at, Some(at(42)));
    assert_released_claim(pending, at(42));
    assert_eq!(record.history, [first_attempt()]);
    // Due at once: the next claim takes it.
    assert_eq!(claim_one(&*store, at(42)).id, job.id);
}

/// A transition under another token is `Stale` and changes nothing.
pub fn finish_with_a_wrong_token_is_stale_and_changes_nothing<S: JobStore>(store: TestStore<S>) {
    let job = second_attempt(&*store, "held");
    let before = store.get_record(&job.id).expect("before");
    let wrong = ClaimToken(fixture_token("held").0 ^ 1);
    for kind in [
        TransitionKind::Completed {
            execution: execution(0, "x", ""),
        },
        TransitionKind::Recovered {
            only_if_expired: false,
        },
        TransitionKind::Released,
    ] {
        let t = Transition {
            id: job.id.clone(),
            token: wrong,
            kind,
        };
        assert_eq!(
            store.finish(&[t], at(30)).expect("finish"),
            [Guarded::Stale]
        );
    }
    assert_eq!(store.get_record(&job.id).expect("after"), before);
}

/// A transition for an id the store does not hold is `Stale`, not an error.
pub fn finish_on_a_missing_job_is_stale<S: JobStore>(store: TestStore<S>) {
    let t = Transition {
        id: JobId::new("nobody"),
        token: ClaimToken(42),
        kind: TransitionKind::Released,
    };
    assert_eq!(store.finish(&[t], T0).expect("finish"), [Guarded::Stale]);
    assert_eq!(store.counts().expect("counts").total(), 0);
}

/// Once a job has left `processing`, a second transition under the same token is `Stale`.
pub fn finish_twice_with_the_same_token_is_stale_the_second_time<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("once")]);
    let job = claim_one(&*store, T0);
    let ok = TransitionKind::Completed {
        execution: execution(0, "", ""),
    };
    assert_eq!(
        store
            .finish(&[transition(&job, ok.clone())], at(1))
            .expect("first"),
        [Guarded::Applied]
    );
    let after_first = store.get_record(&job.id).expect("after first");
    assert_eq!(
        store
            .finish(&[transition(&job, ok)], at(2))
            .expect("second"),
        [Guarded::Stale]
    );
    assert_eq!(
        store.get_record(&job.id).expect("after second"),
        after_first
    );
    assert_eq!(after_first.job.attempts, 1);
}

/// Token fencing: after a lease is recovered and the job claimed again, the first worker's
/// late result is `Stale` and the new claim stays intact.
pub fn finish_is_stale_after_the_lease_was_recovered_and_reclaimed<S: JobStore>(
    store: TestStore<S>,
) {
    enqueue_all(&*store, &[new_job_with_id("contested")]);
    let first = claim_one(&*store, T0);
    let recovered = store
        .finish(
            &[transition(
                &first,
                TransitionKind::Recovered {
                    only_if_expired: false,
                },
            )],
            at(60),
        )
        .expect("recover");
    assert_eq!(recovered, [Guarded::Applied]);
    let second = store
        .claim(&claim_request("w2", at(61), 1))
        .expect("reclaim")
        .pop()
        .expect("the recovered job is claimable");
    assert_eq!(second.id, first.id);
    assert_ne!(second.claim_token, first.claim_token);

    let late = TransitionKind::Completed {
        execution: execution(0, "late", ""),
    };
    assert_eq!(
        store
            .finish(&[transition(&first, late)], at(62))
            .expect("late finish"),
        [Guarded::Stale]
    );
    let stored = store.get_record(&first.id).expect("get_record");
    assert_eq!(stored.job, second, "the new claim is untouched");
    assert!(stored.history.is_empty());
    assert_eq!(stored.output, None);

    let on_time = TransitionKind::Completed {
        execution: execution(0, "", ""),
    };
    assert_eq!(
        store
            .finish(&[transition(&second, on_time)], at(63))
            .expect("finish"),
        [Guarded::Applied]
    );
    assert_eq!(store.get(&first.id).expect("get").attempts, 1);
}

/// A batch gets one result per transition, in order, applying the valid ones.
pub fn finish_of_a_batch_returns_one_result_per_item_in_order<S: JobStore>(store: TestStore<S>) {
    enqueue_all(
        &*store,
        &[
            new_job_with_id("a"),
            new_job_with_id("b"),
            new_job_with_id("c"),
        ],
    );
    let claimed = store.claim(&claim_request("w1", T0, 3)).expect("claim");
    assert_eq!(claimed.len(), 3);
    let done = |job: &Job| {
        transition(
            job,
            TransitionKind::Completed {
                execution: execution(0, "", ""),
            },
        )
    };
    let mut wrong_b = done(&claimed[1]);
    wrong_b.token = ClaimToken(wrong_b.token.0 ^ 1);
    let missing = Transition {
        id: JobId::new("missing"),
        ..done(&claimed[0])
    };
    let batch = [
        missing,
        done(&claimed[2]),
        wrong_b,
        transition(&claimed[0], TransitionKind::Released),
    ];
    let results = store.finish(&batch, at(5)).expect("finish");
    assert_eq!(
        results,
        [
            Guarded::Stale,
            Guarded::Applied,
            Guarded::Stale,
            Guarded::Applied
        ]
    );
    let state = |id: &str| store.get(&JobId::new(id)).expect("get").state;
    assert_eq!(state("a"), JobState::Pending);
    assert_eq!(state("b"), JobState::Processing);
    assert_eq!(state("c"), JobState::Completed);
    assert!(store.finish(&[], at(6)).expect("empty batch").is_empty());
}

/// A fixture-inserted job in any state but `processing` is not finishable, even with a
/// token that matches what it once held.
pub fn finish_on_a_job_that_is_not_processing_is_stale<S: JobStore>(store: TestStore<S>) {
    for state in [
        JobState::Pending,
        JobState::Completed,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ] {
        let mut job = job_in_state(state.as_str(), state);
        job.claim_token = Some(fixture_token(state.as_str()));
        let job = insert(&*store, job);
        let before = store.get_record(&job.id).expect("before");
        assert_eq!(
            store
                .finish(&[transition(&job, TransitionKind::Released)], at(9))
                .expect("finish"),
            [Guarded::Stale],
            "{state}"
        );
        assert_eq!(store.get_record(&job.id).expect("after"), before);
    }
}
