//! Cases for the operator's writes of contract v2 ("Operating jobs and queues"): `requeue`
//! from a set of states (`retry`), `delete`, `prune_finished` (`prune`, `dlq purge`,
//! retention) and `find_ids_by_prefix` (id prefixes).

use queuectl_store::{
    AttemptRecord, JobFilter, JobId, JobOutput, JobRecord, JobState, JobStore, PruneRequest,
    StoreError,
};

use crate::fixture::{at, claim_one, ids, insert, job_in_state, new_job_with_id, T0};
use crate::TestStore;

/// A job in `state` with an output and one attempt of history, imported.
fn with_history<S: JobStore>(store: &S, id: &str, state: JobState) -> JobRecord {
    let mut job = job_in_state(id, state);
    job.attempts = 2;
    job.interrupts = 1;
    job.last_error = Some("exit code 1".to_owned());
    if state == JobState::Failed {
        job.next_run_at = Some(at(3600));
    }
    let record = JobRecord {
        job,
        output: Some(JobOutput {
            stdout: format!("out of {id}"),
            stderr: format!("err of {id}"),
        }),
        history: vec![AttemptRecord {
            attempt: 1,
            started_at: T0,
            finished_at: at(1),
            exit_code: Some(1),
            error: Some("exit code 1".to_owned()),
            output: JobOutput {
                stdout: format!("out of {id}"),
                stderr: format!("err of {id}"),
            },
        }],
    };
    store
        .import(std::slice::from_ref(&record))
        .expect("import fixture");
    record
}

fn expect_wrong_state<T: std::fmt::Debug>(result: Result<T, StoreError>, state: JobState) {
    match result {
        Err(StoreError::WrongState { state: s, .. }) => assert_eq!(s, state),
        other => panic!("expected WrongState({state}), got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound(_))),
        "expected NotFound, got {result:?}"
    );
}

// ----- requeue -----

/// `requeue` from the retryable states makes a `completed`, `failed`, `dead` or
/// `cancelled` job `pending` and due now, with attempts, interrupts, `last_error` and any
/// backoff reset, keeping command, `max_retries`, output and history.
pub fn requeue_from_states_resets_each_retryable_state_keeping_history<S: JobStore>(
    store: TestStore<S>,
) {
    for state in JobState::RETRYABLE {
        let before = with_history(&*store, state.as_str(), state);
        let job = store
            .requeue(&before.job.id, &JobState::RETRYABLE, at(100))
            .expect("requeue");
        assert_eq!(job.state, JobState::Pending, "{state}");
        assert_eq!((job.attempts, job.interrupts), (0, 0), "{state}");
        assert_eq!(job.last_error, None, "{state}");
        assert_eq!(job.next_run_at, Some(at(100)), "{state}: due now");
        assert_eq!((job.run_at, job.updated_at), (at(100), at(100)));
        assert_eq!(job.command, before.job.command);
        assert_eq!(job.max_retries, before.job.max_retries);
        let after = store.get_record(&job.id).expect("get_record");
        assert_eq!(after.job, job, "returns the job as stored");
        assert_eq!(after.history, before.history, "{state}: history kept");
        assert_eq!(after.output, before.output, "{state}: output kept");
    }
    let claimed = store
        .claim(&crate::fixture::claim_request("w1", at(100), 10))
        .expect("claim");
    assert_eq!(
        claimed.len(),
        JobState::RETRYABLE.len(),
        "all claimable at once"
    );
}

/// `requeue` of a job in a state outside `from` is `WrongState` naming it with nothing
/// changed, which is also what a caller gets whose view is stale: a job requeued and
/// claimed by someone else meanwhile is not touched. An unknown id is `NotFound`.
pub fn requeue_from_states_leaves_a_job_that_changed_state_meanwhile<S: JobStore>(
    store: TestStore<S>,
) {
    // Seen dead by one operator; another retries it and a worker claims it.
    let dead = with_history(&*store, "raced", JobState::Dead);
    store
        .requeue(&dead.job.id, &[JobState::Dead], at(10))
        .expect("first retry");
    let running = claim_one(&*store, at(10));
    assert_eq!(running.id, dead.job.id);
    expect_wrong_state(
        store.requeue(&dead.job.id, &JobState::RETRYABLE, at(11)),
        JobState::Processing,
    );
    assert_eq!(store.get(&dead.job.id).expect("get"), running, "untouched");
    for state in [JobState::Pending, JobState::Processing] {
        let job = insert(&*store, job_in_state(state.as_str(), state));
        expect_wrong_state(store.requeue(&job.id, &JobState::RETRYABLE, at(5)), state);
        assert_eq!(store.get(&job.id).expect("get"), job);
    }
    // A completed job is not requeued by a call that accepts only dead ones.
    let done = insert(&*store, job_in_state("done", JobState::Completed));
    expect_wrong_state(
        store.requeue(&done.id, &[JobState::Dead], at(12)),
        JobState::Completed,
    );
    assert_eq!(store.get(&done.id).expect("get"), done);
    expect_not_found(store.requeue(&JobId::new("ghost"), &JobState::RETRYABLE, at(1)));
}

// ----- delete -----

/// `delete` removes a job in any state but `processing` with its output and history, and
/// returns it; its id is free again, and a new job under it starts with nothing.
pub fn delete_removes_the_job_with_its_output_and_history<S: JobStore>(store: TestStore<S>) {
    let keep = insert(&*store, job_in_state("keep", JobState::Completed));
    for state in JobState::ALL {
        if state == JobState::Processing {
            continue;
        }
        let before = with_history(&*store, state.as_str(), state);
        let deleted = store.delete(&before.job.id, at(50)).expect("delete");
        assert_eq!(deleted, before.job, "{state}: returns the job as it was");
        expect_not_found(store.get_record(&before.job.id));
        expect_not_found(store.delete(&before.job.id, at(51)));
    }
    assert_eq!(
        ids(&store.list(&JobFilter::default()).expect("list")),
        ["keep"]
    );
    assert_eq!(store.get(&keep.id).expect("kept"), keep);
    store
        .enqueue(&new_job_with_id("dead"), at(60))
        .expect("the id is free again");
    let fresh = store.get_record(&JobId::new("dead")).expect("get_record");
    assert_eq!(
        (fresh.job.attempts, fresh.job.state),
        (0, JobState::Pending)
    );
    assert_eq!(fresh.output, None, "no output of the deleted job");
    assert_eq!(fresh.history, [], "no attempts of the deleted job");
}

/// `delete` of a `processing` job is `WrongState` and changes nothing (its worker still
/// finishes it); an unknown id is `NotFound`.
pub fn delete_refuses_a_processing_job_and_unknown_ids<S: JobStore>(store: TestStore<S>) {
    store
        .enqueue(&new_job_with_id("busy"), T0)
        .expect("enqueue");
    let running = claim_one(&*store, at(1));
    expect_wrong_state(store.delete(&running.id, at(2)), JobState::Processing);
    assert_eq!(store.get(&running.id).expect("get"), running);
    let done = store
        .finish(
            &[crate::fixture::transition(
                &running,
                queuectl_store::TransitionKind::Completed {
                    execution: crate::fixture::execution(0, "", ""),
                },
            )],
            at(3),
        )
        .expect("finish");
    assert!(done[0].is_applied(), "the worker's finish still applies");
    expect_not_found(store.delete(&JobId::new("ghost"), at(4)));
}

// ----- prune_finished -----

/// Imports one job per state finished (last updated) at each of `at(10)` and `at(20)`.
fn two_of_each_state<S: JobStore>(store: &S) {
    for state in JobState::ALL {
        for (age, updated) in [("old", at(10)), ("new", at(20))] {
            let mut job = job_in_state(&format!("{age}-{state}"), state);
            job.updated_at = updated;
            insert(store, job);
        }
    }
}

fn prune_req(states: &[JobState], before_secs: u64, limit: u32, dry_run: bool) -> PruneRequest {
    PruneRequest {
        before: at(before_secs),
        dry_run,
        limit,
        states: states.to_vec(),
    }
}

/// `prune_finished` deletes only jobs in the requested final states that finished before
/// `before` (exclusive), never a waiting or running job even when asked to.
pub fn prune_finished_deletes_only_the_requested_states_older_than_before<S: JobStore>(
    store: TestStore<S>,
) {
    two_of_each_state(&*store);
    let n = store
        .prune_finished(&prune_req(&[JobState::Completed], 20, 100, false))
        .expect("prune completed");
    assert_eq!(
        n, 1,
        "only old-completed: new-completed finished exactly at before"
    );
    let n = store
        .prune_finished(&prune_req(
            &[
                JobState::Pending,
                JobState::Processing,
                JobState::Failed,
                JobState::Cancelled,
            ],
            30,
            100,
            false,
        ))
        .expect("prune cancelled");
    assert_eq!(n, 2, "both cancelled jobs; the other states are not final");
    let left = store.list(&JobFilter::default()).expect("list");
    assert_eq!(
        ids(&left),
        [
            "old-pending",
            "new-pending",
            "old-processing",
            "new-processing",
            "new-completed",
            "old-failed",
            "new-failed",
            "old-dead",
            "new-dead",
        ]
    );
    expect_not_found(store.get_record(&JobId::new("old-completed")));
    assert_eq!(
        store
            .prune_finished(&prune_req(&[], 1000, 100, false))
            .expect("no states"),
        0
    );
}

/// `prune_finished` deletes at most `limit` jobs, oldest finished first (not insertion
/// order), and a dry run counts the same jobs without deleting any.
pub fn prune_finished_honours_limit_oldest_first_and_dry_run<S: JobStore>(store: TestStore<S>) {
    // Inserted newest-finished first.
    for i in 0..5u64 {
        let mut job = job_in_state(&format!("done-{i}"), JobState::Dead);
        job.updated_at = at(50 - i);
        insert(&*store, job);
    }
    let dead = [JobState::Dead];
    assert_eq!(
        store
            .prune_finished(&prune_req(&dead, 60, 0, false))
            .expect("0"),
        0
    );
    assert_eq!(
        store
            .prune_finished(&prune_req(&dead, 60, 100, true))
            .expect("dry"),
        5
    );
    assert_eq!(
        store
            .prune_finished(&prune_req(&dead, 48, 100, true))
            .expect("dry"),
        2,
        "finished at 46 and 47"
    );
    assert_eq!(
        store
            .prune_finished(&prune_req(&dead, 60, 3, true))
            .expect("dry"),
        3
    );
    assert_eq!(
        store.counts().expect("counts").dead,
        5,
        "a dry run deletes nothing"
    );
    assert_eq!(
        store
            .prune_finished(&prune_req(&dead, 60, 2, false))
            .expect("2"),
        2
    );
    let left = store.list(&JobFilter::default()).expect("list");
    assert_eq!(
        ids(&left),
        ["done-0", "done-1", "done-2"],
        "the two oldest went"
    );
    assert_eq!(
        store
            .prune_finished(&prune_req(&dead, 60, 10, false))
            .expect("rest"),
        3
    );
    assert_eq!(store.counts().expect("counts").total(), 0);
}

// ----- find_ids_by_prefix -----

/// `find_ids_by_prefix` matches ids starting with the prefix byte for byte, in byte order,
/// at most `limit`: `%`, `_` and `\` are literal characters, not patterns.
pub fn find_ids_by_prefix_matches_literally_in_byte_order_up_to_limit<S: JobStore>(
    store: TestStore<S>,
) {
    let all = ["b", "abc", "a_c", "a%c", "ab", "a\\c", "äx", "a", "Ab"];
    for id in all {
        store.enqueue(&new_job_with_id(id), T0).expect("enqueue");
    }
    let find = |prefix: &str, limit: u32| -> Vec<String> {
        store
            .find_ids_by_prefix(prefix, limit)
            .expect("find")
            .into_iter()
            .map(|id| id.as_str().to_owned())
            .collect()
    };
    assert_eq!(find("a%", 10), ["a%c"], "% is no wildcard");
    assert_eq!(find("a_", 10), ["a_c"], "_ is no wildcard");
    assert_eq!(find("a\\", 10), ["a\\c"], "\\ escapes nothing");
    assert_eq!(find("ab", 10), ["ab", "abc"]);
    assert_eq!(find("ab", 1), ["ab"]);
    assert_eq!(find("a", 0), Vec::<String>::new());
    assert_eq!(find("A", 10), ["Ab"], "case matters");
    assert_eq!(find("ä", 10), ["äx"]);
    assert_eq!(find("abcd", 10), Vec::<String>::new());
    assert_eq!(find("zz", 10), Vec::<String>::new());
    assert_eq!(
        find("", 100),
        ["Ab", "a", "a%c", "a\\c", "a_c", "ab", "abc", "b", "äx"],
        "byte order"
    );
}
