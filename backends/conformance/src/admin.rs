//! Cases for operator calls (`cancel`, `counts`, `get`, `get_record`, `list`, `prune`,
//! `requeue_dead`, `requeue_all_dead`), settings and the worker registry.

use queuectl_store::{
    AttemptRecord, Heartbeat, Job, JobFilter, JobId, JobOutput, JobRecord, JobState, JobStore,
    NewJob, StateCounts, StoreError,
};

use crate::fixture::{at, ids, insert, job_in_state, new_job_with_id, worker, T0};
use crate::TestStore;

fn expect_wrong_state<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    id: &str,
    state: JobState,
) {
    match result {
        Err(StoreError::WrongState { id: got, state: s }) => {
            assert_eq!((got.as_str(), s), (id, state));
        }
        other => panic!("expected WrongState({id}, {state}), got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, id: &str) {
    match result {
        Err(StoreError::NotFound(got)) => assert_eq!(got.as_str(), id),
        other => panic!("expected NotFound({id}), got {other:?}"),
    }
}

// ----- cancel -----

/// `pending` and `failed` jobs become `cancelled` with `next_run_at` cleared; a cancelled
/// job is never claimed.
pub fn cancel_moves_pending_and_failed_jobs_to_cancelled<S: JobStore>(store: TestStore<S>) {
    for state in [JobState::Pending, JobState::Failed] {
        let job = insert(&*store, job_in_state(state.as_str(), state));
        let cancelled = store.cancel(&job.id, at(9)).expect("cancel");
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert_eq!(cancelled.next_run_at, None);
        assert_eq!(cancelled.updated_at, at(9));
        assert_eq!(cancelled.attempts, job.attempts);
        assert_eq!(cancelled.last_error, job.last_error);
        assert_eq!(store.get(&job.id).expect("get"), cancelled);
    }
    assert!(store
        .claim(&crate::fixture::claim_request("w1", at(99), 10))
        .expect("claim")
        .is_empty());
}

/// Cancelling a job in a final state is `WrongState` naming it, with nothing changed;
/// an unknown id is `NotFound`. (A `processing` job gets a cancel request: `cancel.rs`.)
pub fn cancel_rejects_other_states_and_unknown_ids<S: JobStore>(store: TestStore<S>) {
    for state in [JobState::Completed, JobState::Dead, JobState::Cancelled] {
        let job = insert(&*store, job_in_state(state.as_str(), state));
        expect_wrong_state(store.cancel(&job.id, at(1)), state.as_str(), state);
        assert_eq!(store.get(&job.id).expect("get"), job);
    }
    expect_not_found(store.cancel(&JobId::new("ghost"), at(1)), "ghost");
}

// ----- counts, get, list -----

/// `counts` tallies every job by state.
pub fn counts_tally_jobs_by_state<S: JobStore>(store: TestStore<S>) {
    assert_eq!(store.counts().expect("empty"), StateCounts::default());
    let per_state = [
        (JobState::Pending, 3),
        (JobState::Processing, 2),
        (JobState::Completed, 4),
        (JobState::Failed, 1),
        (JobState::Dead, 2),
        (JobState::Cancelled, 1),
    ];
    for (state, n) in per_state {
        for i in 0..n {
            insert(&*store, job_in_state(&format!("{state}-{i}"), state));
        }
    }
    // A future-dated pending job still counts as pending.
    let later = NewJob {
        run_at: at(3600),
        ..new_job_with_id("later")
    };
    store.enqueue(&later, T0).expect("enqueue");
    let counts = store.counts().expect("counts");
    assert_eq!(
        counts,
        StateCounts {
            pending: 4,
            processing: 2,
            completed: 4,
            failed: 1,
            dead: 2,
            cancelled: 1,
        }
    );
    assert_eq!(counts.total(), 14);
}

/// `get` and `get_record` of an unknown id are `NotFound` naming it.
pub fn get_and_get_record_of_an_unknown_id_are_not_found<S: JobStore>(store: TestStore<S>) {
    insert(&*store, job_in_state("known", JobState::Pending));
    expect_not_found(store.get(&JobId::new("unknown")), "unknown");
    expect_not_found(store.get_record(&JobId::new("unknown")), "unknown");
    // Ids are exact: no case folding or trimming.
    expect_not_found(store.get(&JobId::new("KNOWN")), "KNOWN");
    expect_not_found(store.get(&JobId::new("known ")), "known ");
}

/// `list` returns jobs in insertion order, filtered by state and queue, at most `limit`.
pub fn list_filters_by_state_and_queue_in_insertion_order_up_to_limit<S: JobStore>(
    store: TestStore<S>,
) {
    let mut created = 100;
    let mut job = |id: &str, state: JobState, queue: &str| {
        let mut job = job_in_state(id, state);
        job.queue = queue.to_owned();
        // Insertion order, not priority or creation time, decides the listing order.
        created -= 1;
        job.priority = created;
        job.created_at = at(created.unsigned_abs().into());
        insert(&*store, job);
    };
    job("p1", JobState::Pending, "default");
    job("d1", JobState::Dead, "mail");
    job("p2", JobState::Pending, "mail");
    job("c1", JobState::Completed, "default");
    job("p3", JobState::Pending, "default");
    job("d2", JobState::Dead, "default");

    let list = |filter: JobFilter| store.list(&filter).expect("list");
    assert_eq!(
        ids(&list(JobFilter::default())),
        ["p1", "d1", "p2", "c1", "p3", "d2"]
    );
    let pending = JobFilter {
        state: Some(JobState::Pending),
        ..JobFilter::default()
    };
    assert_eq!(ids(&list(pending.clone())), ["p1", "p2", "p3"]);
    let mail = JobFilter {
        queue: Some("mail".to_owned()),
        ..JobFilter::default()
    };
    assert_eq!(ids(&list(mail)), ["d1", "p2"]);
    let default_dead = JobFilter {
        state: Some(JobState::Dead),
        queue: Some("default".to_owned()),
        limit: None,
    };
    assert_eq!(ids(&list(default_dead)), ["d2"]);
    let first_two_pending = JobFilter {
        limit: Some(2),
        ..pending
    };
    assert_eq!(ids(&list(first_two_pending)), ["p1", "p2"]);
    let none = JobFilter {
        limit: Some(0),
        ..JobFilter::default()
    };
    assert!(list(none).is_empty());
    let failed = JobFilter {
        state: Some(JobState::Failed),
        ..JobFilter::default()
    };
    assert!(list(failed).is_empty());
}

// ----- prune -----

/// `prune` deletes terminal jobs (`completed`, `dead`, `cancelled`) last updated before
/// `before`, with their output and history, and nothing else.
pub fn prune_deletes_only_terminal_jobs_older_than_before<S: JobStore>(store: TestStore<S>) {
    for state in JobState::ALL {
        for (age, updated) in [("old", at(10)), ("new", at(20))] {
            let mut job = job_in_state(&format!("{age}-{state}"), state);
            job.updated_at = updated;
            let finished = job.finished_at.is_some();
            store
                .import(&[JobRecord {
                    output: finished.then(JobOutput::default),
                    history: if finished {
                        vec![AttemptRecord {
                            attempt: 1,
                            started_at: T0,
                            finished_at: T0,
                            exit_code: Some(0),
                            error: None,
                            output: JobOutput::default(),
                        }]
                    } else {
                        Vec::new()
                    },
                    job,
                }])
                .expect("import");
        }
    }
    // `before` is exclusive: a job updated exactly then stays.
    assert_eq!(store.prune(at(20), 100).expect("prune"), 3);
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
            "new-dead",
            "new-cancelled"
        ]
    );
    for gone in ["old-completed", "old-dead", "old-cancelled"] {
        expect_not_found(store.get_record(&JobId::new(gone)), gone);
    }
    // The ids are free again.
    store
        .enqueue(&new_job_with_id("old-dead"), at(30))
        .expect("reuse a pruned id");
    assert_eq!(
        store
            .get_record(&JobId::new("old-dead"))
            .expect("get_record")
            .history,
        []
    );
}

/// `prune` deletes at most `limit` jobs per call and reports how many.
pub fn prune_honours_limit<S: JobStore>(store: TestStore<S>) {
    for i in 0..5 {
        insert(
            &*store,
            job_in_state(&format!("done-{i}"), JobState::Completed),
        );
    }
    assert_eq!(store.prune(at(60), 0).expect("prune 0"), 0);
    assert_eq!(store.prune(at(60), 2).expect("prune 2"), 2);
    assert_eq!(store.counts().expect("counts").completed, 3);
    assert_eq!(store.prune(at(60), 10).expect("prune rest"), 3);
    assert_eq!(store.prune(at(60), 10).expect("prune none"), 0);
    assert_eq!(store.counts().expect("counts").total(), 0);
}

// ----- requeue -----

/// A dead job set up the way the scheduler leaves one: out of attempts, interrupted, with an
/// error and a history.
fn dead_with_history<S: JobStore>(store: &S, id: &str) -> JobRecord {
    let mut job = job_in_state(id, JobState::Dead);
    job.attempts = 3;
    job.interrupts = 2;
    job.max_retries = 3;
    job.command = format!("exit 1 # {id}");
    job.run_at = at(1);
    let record = JobRecord {
        job,
        output: Some(JobOutput {
            stdout: String::new(),
            stderr: "failed".to_owned(),
        }),
        history: (1..=3)
            .map(|attempt| AttemptRecord {
                attempt,
                started_at: at(u64::from(attempt) * 10),
                finished_at: at(u64::from(attempt) * 10 + 1),
                exit_code: Some(1),
                error: Some("exit code 1".to_owned()),
                output: if attempt == 3 {
                    JobOutput {
                        stdout: String::new(),
                        stderr: "failed".to_owned(),
                    }
                } else {
                    JobOutput::default()
                },
            })
            .collect(),
    };
    store
        .import(std::slice::from_ref(&record))
        .expect("import dead job");
    record
}

/// `requeue_dead` makes a dead job `pending` and due now with `attempts`, `interrupts` and
/// `last_error` reset, keeping command, `max_retries` and history.
pub fn requeue_dead_resets_counters_and_keeps_command_and_history<S: JobStore>(
    store: TestStore<S>,
) {
    let before = dead_with_history(&*store, "lazarus");
    let job = store
        .requeue_dead(&before.job.id, at(500))
        .expect("requeue");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.interrupts, 0);
    assert_eq!(job.last_error, None);
    assert_eq!(job.run_at, at(500));
    assert_eq!(job.next_run_at, Some(at(500)));
    assert_eq!(job.updated_at, at(500));
    assert_eq!(job.command, before.job.command);
    assert_eq!(job.max_retries, 3);
    assert_eq!(job.created_at, before.job.created_at);
    let after = store.get_record(&job.id).expect("get_record");
    assert_eq!(after.job, job, "returns the job as stored");
    assert_eq!(after.history, before.history);
    let claimed = crate::fixture::claim_one(&*store, at(500));
    assert_eq!(claimed.id, job.id);
}

/// `requeue_dead` of a job in any other state is `WrongState` naming it, with nothing
/// changed; an unknown id is `NotFound`.
pub fn requeue_dead_rejects_other_states_and_unknown_ids<S: JobStore>(store: TestStore<S>) {
    for state in JobState::ALL {
        if state == JobState::Dead {
            continue;
        }
        let mut job = job_in_state(state.as_str(), state);
        job.attempts = 2;
        job.interrupts = 1;
        let job = insert(&*store, job);
        expect_wrong_state(store.requeue_dead(&job.id, at(1)), state.as_str(), state);
        assert_eq!(store.get(&job.id).expect("get"), job);
    }
    expect_not_found(store.requeue_dead(&JobId::new("ghost"), at(1)), "ghost");
}

/// `requeue_all_dead` requeues every dead job as `requeue_dead` does, counts them, and
/// leaves other jobs alone.
pub fn requeue_all_dead_requeues_every_dead_job_and_counts_them<S: JobStore>(store: TestStore<S>) {
    assert_eq!(store.requeue_all_dead(T0).expect("none"), 0);
    let a = dead_with_history(&*store, "dead-a");
    let failed = insert(&*store, job_in_state("failed", JobState::Failed));
    let b = dead_with_history(&*store, "dead-b");
    assert_eq!(store.requeue_all_dead(at(70)).expect("requeue all"), 2);
    for before in [a, b] {
        let after = store.get_record(&before.job.id).expect("get_record");
        let expected: Job = Job {
            state: JobState::Pending,
            attempts: 0,
            interrupts: 0,
            last_error: None,
            run_at: at(70),
            next_run_at: Some(at(70)),
            updated_at: at(70),
            ..after.job.clone()
        };
        assert_eq!(after.job, expected);
        assert_eq!(after.job.command, before.job.command);
        assert_eq!(after.history, before.history);
    }
    assert_eq!(store.get(&failed.id).expect("failed"), failed);
    assert_eq!(store.counts().expect("counts").dead, 0);
    assert_eq!(store.requeue_all_dead(at(71)).expect("again"), 0);
}

// ----- settings -----

/// Settings read back as set, `None` when never set, replaced by a later set, and listed
/// sorted by key.
pub fn settings_round_trip_and_list_sorted_by_key<S: JobStore>(store: TestStore<S>) {
    assert_eq!(store.setting("max-retries").expect("unset"), None);
    assert!(store.settings().expect("empty").is_empty());
    store
        .set_setting("max-retries", "5", T0)
        .expect("set max-retries");
    store
        .set_setting("backoff-base", "2.5", T0)
        .expect("set backoff-base");
    store
        .set_setting("lease-seconds", "15", T0)
        .expect("set lease");
    store
        .set_setting("max-retries", "7", at(1))
        .expect("replace");
    assert_eq!(
        store.setting("max-retries").expect("get"),
        Some("7".to_owned())
    );
    assert_eq!(store.setting("job-timeout").expect("unset"), None);
    assert_eq!(
        store.settings().expect("list"),
        [
            ("backoff-base".to_owned(), "2.5".to_owned()),
            ("lease-seconds".to_owned(), "15".to_owned()),
            ("max-retries".to_owned(), "7".to_owned()),
        ]
    );
}

// ----- worker registry -----

/// Workers are listed in registration order; re-registering replaces the entry; a
/// deregistered worker disappears, and deregistering an unknown one is fine.
pub fn workers_register_list_and_deregister<S: JobStore>(store: TestStore<S>) {
    assert!(store.list_workers().expect("empty").is_empty());
    let a = worker("host-a:1:x");
    let mut b = worker("host-b:2:y");
    b.host = "host-b".to_owned();
    b.queues = Vec::new();
    let c = worker("host-a:3:z");
    for w in [&a, &b, &c] {
        store.register_worker(w).expect("register");
    }
    assert_eq!(
        store.list_workers().expect("list"),
        [a.clone(), b.clone(), c.clone()]
    );

    let mut b2 = b.clone();
    b2.slots = 8;
    b2.heartbeat_at = at(5);
    store.register_worker(&b2).expect("re-register");
    let listed = store.list_workers().expect("list");
    assert_eq!(listed.len(), 3);
    assert!(listed.contains(&b2));
    assert!(!listed.contains(&b));

    store.deregister_worker(&b.id).expect("deregister");
    store
        .deregister_worker("never-registered")
        .expect("deregister unknown");
    assert_eq!(store.list_workers().expect("list"), [a, c]);
}

/// A heartbeat is recorded and answers `Recorded`; after `request_stop` it answers
/// `StopRequested`; for an unregistered worker it answers `Unregistered`.
pub fn worker_heartbeat_reports_stop_requests_and_unknown_workers<S: JobStore>(
    store: TestStore<S>,
) {
    assert_eq!(store.request_stop().expect("nobody to stop"), 0);
    let w1 = worker("w1");
    let w2 = worker("w2");
    store.register_worker(&w1).expect("register w1");
    store.register_worker(&w2).expect("register w2");
    assert_eq!(
        store.heartbeat_worker("w1", at(3)).expect("heartbeat"),
        Heartbeat::Recorded
    );
    let listed = store.list_workers().expect("list");
    assert_eq!(listed[0].heartbeat_at, at(3));
    assert_eq!(listed[1].heartbeat_at, T0);

    assert_eq!(store.request_stop().expect("request_stop"), 2);
    assert_eq!(
        store.heartbeat_worker("w1", at(4)).expect("heartbeat"),
        Heartbeat::StopRequested
    );
    assert!(store
        .list_workers()
        .expect("list")
        .iter()
        .all(|w| w.stop_requested));

    store.deregister_worker("w2").expect("deregister");
    assert_eq!(
        store.heartbeat_worker("w2", at(5)).expect("gone"),
        Heartbeat::Unregistered
    );
    assert_eq!(
        store.heartbeat_worker("stranger", at(5)).expect("unknown"),
        Heartbeat::Unregistered
    );
    assert_eq!(store.list_workers().expect("list").len(), 1);
}
