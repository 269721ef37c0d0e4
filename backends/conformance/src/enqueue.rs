//! Cases for `enqueue`, `enqueue_many`, `import` and how values round-trip.

use queuectl_store::{
    AttemptRecord, Job, JobId, JobOutput, JobRecord, JobState, JobStore, NewJob, StoreError,
    Timestamp, TransitionKind,
};

use crate::fixture::{
    at, claim_one, execution, ids, job_in_state, new_job, new_job_with_id, transition, T0,
};
use crate::TestStore;

/// A job enqueued is read back pending, with attempts 0 and the documented timestamps.
pub fn enqueue_then_get_round_trips<S: JobStore>(store: TestStore<S>) {
    let new = new_job("echo hi");
    store.enqueue(&new, T0).expect("enqueue");
    let job = store.get(&new.id).expect("get");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.command, "echo hi");
    assert_eq!(job.created_at, T0);
    assert_eq!(job.updated_at, T0);
    assert_eq!(job.next_run_at, Some(T0));
    assert_eq!(job.claim_token, None);
}

/// Every field of a `NewJob` is stored as given; the rest start empty, and the record has no
/// output and no history.
pub fn enqueue_stores_every_field_of_the_new_job<S: JobStore>(store: TestStore<S>) {
    let new = NewJob {
        options: Default::default(),
        id: JobId::new("custom-id"),
        command: "make report".to_owned(),
        kind: "report".to_owned(),
        max_retries: 7,
        priority: -5,
        queue: "reports".to_owned(),
        run_at: at(90),
        timeout_secs: Some(120),
    };
    store.enqueue(&new, at(1)).expect("enqueue");
    let record = store.get_record(&new.id).expect("get_record");
    let expected = Job {
        options: Default::default(),
        id: new.id.clone(),
        command: new.command.clone(),
        kind: new.kind.clone(),
        state: JobState::Pending,
        attempts: 0,
        max_retries: 7,
        priority: -5,
        queue: "reports".to_owned(),
        interrupts: 0,
        created_at: at(1),
        updated_at: at(1),
        run_at: at(90),
        next_run_at: Some(at(90)),
        timeout_secs: Some(120),
        exit_code: None,
        last_error: None,
        worker_id: None,
        started_at: None,
        finished_at: None,
        lease_until: None,
        claim_token: None,
        cancel_requested: false,
    };
    assert_eq!(
        record,
        JobRecord {
            job: expected,
            output: None,
            history: Vec::new(),
        }
    );
}

/// Enqueuing an id that exists is a `Conflict` naming it, and the stored job is untouched.
pub fn enqueue_of_a_duplicate_id_is_a_conflict_and_leaves_the_stored_job_untouched<S: JobStore>(
    store: TestStore<S>,
) {
    let original = new_job_with_id("dup");
    store.enqueue(&original, T0).expect("first");
    let job = claim_one(&*store, T0);
    let before = store.get_record(&job.id).expect("before");
    let again = NewJob {
        command: "rm -rf /tmp/x".to_owned(),
        priority: 99,
        ..new_job_with_id("dup")
    };
    match store.enqueue(&again, at(5)) {
        Err(StoreError::Conflict(id)) => assert_eq!(id.as_str(), "dup"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get_record(&job.id).expect("after"), before);
    assert_eq!(store.counts().expect("counts").total(), 1);
}

/// `enqueue_many` stores every job, in order, each as `enqueue` would.
pub fn enqueue_many_stores_every_job_in_order<S: JobStore>(store: TestStore<S>) {
    let jobs: Vec<NewJob> = ["b", "a", "c"].into_iter().map(new_job_with_id).collect();
    store.enqueue_many(&jobs, at(3)).expect("enqueue_many");
    let listed = store.list(&Default::default()).expect("list");
    assert_eq!(ids(&listed), ["b", "a", "c"]);
    assert!(listed
        .iter()
        .all(|j| j.state == JobState::Pending && j.created_at == at(3) && j.attempts == 0));
    store.enqueue_many(&[], at(4)).expect("an empty batch");
    assert_eq!(store.counts().expect("counts").pending, 3);
}

/// A batch repeating an id within itself stores nothing.
pub fn enqueue_many_with_a_duplicate_inside_the_batch_stores_nothing<S: JobStore>(
    store: TestStore<S>,
) {
    let jobs: Vec<NewJob> = ["x", "y", "x"].into_iter().map(new_job_with_id).collect();
    match store.enqueue_many(&jobs, T0) {
        Err(StoreError::Conflict(id)) => assert_eq!(id.as_str(), "x"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.counts().expect("counts").total(), 0);
    assert!(matches!(
        store.get(&JobId::new("y")),
        Err(StoreError::NotFound(_))
    ));
}

/// A batch containing an id that already exists stores nothing and leaves that job alone.
pub fn enqueue_many_with_an_existing_id_stores_nothing<S: JobStore>(store: TestStore<S>) {
    store.enqueue(&new_job_with_id("old"), T0).expect("enqueue");
    let before = store.get(&JobId::new("old")).expect("before");
    let jobs: Vec<NewJob> = ["new-1", "old", "new-2"]
        .into_iter()
        .map(new_job_with_id)
        .collect();
    match store.enqueue_many(&jobs, at(1)) {
        Err(StoreError::Conflict(id)) => assert_eq!(id.as_str(), "old"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        ids(&store.list(&Default::default()).expect("list")),
        ["old"]
    );
    assert_eq!(store.get(&JobId::new("old")).expect("after"), before);
}

/// `import` stores records verbatim in every state (tokens, leases, output, history
/// included), after existing jobs in insertion order.
pub fn import_round_trips_full_records_in_every_state<S: JobStore>(store: TestStore<S>) {
    store
        .enqueue(&new_job_with_id("already-here"), T0)
        .expect("enqueue");
    let records: Vec<JobRecord> = JobState::ALL
        .into_iter()
        .map(|state| {
            let mut job = job_in_state(&format!("imported-{state}"), state);
            job.kind = "typed".to_owned();
            job.priority = 3;
            job.queue = "q2".to_owned();
            job.interrupts = 2;
            job.timeout_secs = Some(9);
            job.run_at = at(2);
            job.created_at = at(1);
            job.updated_at = at(7);
            let finished = job.finished_at.is_some();
            let output = JobOutput {
                stdout: format!("out of {state}"),
                stderr: "warn\n".to_owned(),
            };
            JobRecord {
                output: finished.then(|| output.clone()),
                history: if finished {
                    vec![AttemptRecord {
                        attempt: 1,
                        started_at: T0,
                        finished_at: at(4),
                        exit_code: job.exit_code,
                        error: job.last_error.clone(),
                        output,
                    }]
                } else {
                    Vec::new()
                },
                job,
            }
        })
        .collect();
    store.import(&records).expect("import");
    for record in &records {
        assert_eq!(
            &store.get_record(&record.job.id).expect("get_record"),
            record
        );
        assert_eq!(store.get(&record.job.id).expect("get"), record.job);
    }
    let listed = store.list(&Default::default()).expect("list");
    let mut expected = vec!["already-here".to_owned()];
    expected.extend(records.iter().map(|r| r.job.id.to_string()));
    assert_eq!(ids(&listed), expected);
}

/// `import` with a duplicate (inside the batch or against a stored job) is a `Conflict`
/// and stores nothing.
pub fn import_is_all_or_nothing_on_a_duplicate_id<S: JobStore>(store: TestStore<S>) {
    let record = |id: &str| JobRecord {
        job: job_in_state(id, JobState::Completed),
        output: None,
        history: Vec::new(),
    };
    store.import(&[record("kept")]).expect("import");
    let before = store.get_record(&JobId::new("kept")).expect("before");
    match store.import(&[record("fresh"), record("kept")]) {
        Err(StoreError::Conflict(id)) => assert_eq!(id.as_str(), "kept"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.import(&[record("twin"), record("twin")]) {
        Err(StoreError::Conflict(id)) => assert_eq!(id.as_str(), "twin"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        ids(&store.list(&Default::default()).expect("list")),
        ["kept"]
    );
    assert_eq!(
        store.get_record(&JobId::new("kept")).expect("after"),
        before
    );
}

/// Every timestamp field keeps its exact millisecond value, including negative ones, odd
/// milliseconds and the saturated extremes `Timestamp::add`/`sub` can produce.
pub fn timestamps_round_trip_exactly_at_millisecond_precision<S: JobStore>(store: TestStore<S>) {
    let values = [
        Timestamp::from_millis(1_764_350_109_123),
        Timestamp::from_millis(1),
        Timestamp::EPOCH,
        Timestamp::from_millis(-1),
        Timestamp::from_millis(-86_400_001),
        // 9999-12-31T23:59:59.999Z
        Timestamp::from_millis(253_402_300_799_999),
        Timestamp::from_millis(i64::MAX),
        Timestamp::from_millis(i64::MIN),
    ];
    for (i, t) in values.into_iter().enumerate() {
        let new = NewJob {
            run_at: t,
            ..new_job_with_id(&format!("enqueued-{i}"))
        };
        store.enqueue(&new, t).expect("enqueue");
        let job = store.get(&new.id).expect("get");
        assert_eq!(
            (job.run_at, job.next_run_at, job.created_at, job.updated_at),
            (t, Some(t), t, t),
            "{}",
            t.as_millis()
        );

        let mut job = job_in_state(&format!("imported-{i}"), JobState::Processing);
        job.created_at = t;
        job.updated_at = t;
        job.run_at = t;
        job.started_at = Some(t);
        job.finished_at = Some(t);
        job.lease_until = Some(t);
        let record = JobRecord {
            job,
            output: Some(JobOutput::default()),
            history: vec![AttemptRecord {
                attempt: 1,
                started_at: t,
                finished_at: t,
                exit_code: None,
                error: None,
                output: JobOutput::default(),
            }],
        };
        store.import(std::slice::from_ref(&record)).expect("import");
        assert_eq!(
            store.get_record(&record.job.id).expect("get_record"),
            record,
            "{}",
            t.as_millis()
        );
    }
}

/// Unicode and very long strings (command, id, queue, errors, output) come back byte for byte.
pub fn unicode_and_very_long_strings_round_trip<S: JobStore>(store: TestStore<S>) {
    let long: String = "päck 🚀 'quoted' \"double\" \\ \t ; $(x) "
        .chars()
        .cycle()
        .take(300_000)
        .collect();
    let command = format!("echo '{long}'\nsecond line\r\n日本語 ✓");
    let new = NewJob {
        id: JobId::new("id-ünïcödé-🦀"),
        command: command.clone(),
        queue: "queue-ß-∑".to_owned(),
        ..new_job("unused")
    };
    store.enqueue(&new, T0).expect("enqueue");
    assert_eq!(store.get(&new.id).expect("get").command, command);

    let job = claim_one(&*store, T0);
    let error = format!("échec: {}", long.chars().take(1_000).collect::<String>());
    let kind = TransitionKind::Dead {
        execution: execution(1, &long, "ошибка ✗"),
        error: error.clone(),
    };
    let results = store
        .finish(&[transition(&job, kind)], at(1))
        .expect("finish");
    assert!(results[0].is_applied());
    let record = store.get_record(&new.id).expect("get_record");
    assert_eq!(record.job.command, command);
    assert_eq!(record.job.queue, "queue-ß-∑");
    assert_eq!(record.job.last_error.as_deref(), Some(error.as_str()));
    let output = record.output.expect("output stored");
    assert_eq!(output.stdout, long);
    assert_eq!(output.stderr, "ошибка ✗");
    assert_eq!(record.history[0].error.as_deref(), Some(error.as_str()));
}
