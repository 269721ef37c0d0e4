//! Cases for a job's version-2 options: they round-trip, and a `unique_key` is held by at
//! most one job that may still run (`pending`, `failed`, `processing`), atomically, from
//! any number of threads.

use std::sync::Arc;

use queuectl_store::{
    Enqueued, JobId, JobOptions, JobState, JobStore, Limits, NewJob, StoreError, TransitionKind,
};

use crate::fixture::{claim_one, execution, insert, job_in_state, new_job_with_id, transition, T0};
use crate::TestStore;

fn keyed(id: &str, key: &str) -> NewJob {
    let mut job = new_job_with_id(id);
    job.options.unique_key = Some(key.to_owned());
    job
}

/// Every option is stored as given and read back by `get`, `list` and `claim`.
pub fn job_options_round_trip_through_enqueue_get_list_and_claim<S: JobStore>(store: TestStore<S>) {
    let mut job = new_job_with_id("opts");
    job.options = JobOptions {
        cwd: Some("/srv/app dir".into()),
        env: [
            ("A".to_owned(), "1=2".to_owned()),
            ("EMPTY".to_owned(), String::new()),
            ("ünï".to_owned(), "\"quoted\"\n".to_owned()),
        ]
        .into(),
        limits: Some(Limits {
            memory_mb: Some(512),
            cpu_seconds: Some(5),
            open_files: None,
            processes: Some(64),
        }),
        unique_key: Some("key/1".into()),
        depends_on: Vec::new(),
    };
    store.enqueue(&job, T0).expect("enqueue");
    assert_eq!(store.get(&job.id).expect("get").options, job.options);
    let listed = store.list(&Default::default()).expect("list");
    assert_eq!(listed[0].options, job.options);
    assert_eq!(claim_one(&*store, T0).options, job.options);
}

/// A key held by a pending, failed or processing job makes `enqueue_batch` skip the new job,
/// naming the holder; a key of a completed, dead or cancelled job is free.
pub fn enqueue_batch_skips_a_job_whose_unique_key_is_held<S: JobStore>(store: TestStore<S>) {
    for (i, state) in [JobState::Pending, JobState::Failed, JobState::Processing]
        .into_iter()
        .enumerate()
    {
        let key = format!("held-{i}");
        let mut holder = job_in_state(&format!("holder-{i}"), state);
        holder.options.unique_key = Some(key.clone());
        insert(&*store, holder.clone());
        let got = store
            .enqueue_batch(&[keyed(&format!("new-{i}"), &key)], T0)
            .expect("enqueue_batch");
        assert_eq!(got, [Enqueued::Held(holder.id.clone())], "{state}");
        assert!(matches!(
            store.get(&JobId::new(format!("new-{i}"))),
            Err(StoreError::NotFound(_))
        ));
    }
    for (i, state) in [JobState::Completed, JobState::Dead, JobState::Cancelled]
        .into_iter()
        .enumerate()
    {
        let key = format!("free-{i}");
        let mut old = job_in_state(&format!("old-{i}"), state);
        old.options.unique_key = Some(key.clone());
        insert(&*store, old);
        let got = store
            .enqueue_batch(&[keyed(&format!("fresh-{i}"), &key)], T0)
            .expect("enqueue_batch");
        assert_eq!(got, [Enqueued::Stored], "{state}");
    }
    // In one batch: the held job is skipped, the others stored, in order.
    let got = store
        .enqueue_batch(
            &[
                new_job_with_id("plain"),
                keyed("again", "held-0"),
                keyed("other", "k"),
            ],
            T0,
        )
        .expect("enqueue_batch");
    assert_eq!(
        got,
        [
            Enqueued::Stored,
            Enqueued::Held(JobId::new("holder-0")),
            Enqueued::Stored
        ]
    );
}

/// Once its holder completes, the key is free: the next enqueue stores a new job.
pub fn a_unique_key_is_free_again_once_its_holder_completed<S: JobStore>(store: TestStore<S>) {
    store.enqueue(&keyed("first", "k"), T0).expect("enqueue");
    let job = claim_one(&*store, T0);
    let again = store
        .enqueue_batch(&[keyed("second", "k")], T0)
        .expect("enqueue_batch");
    assert_eq!(again, [Enqueued::Held(JobId::new("first"))]);
    let done = TransitionKind::Completed {
        execution: execution(0, "", ""),
    };
    store.finish(&[transition(&job, done)], T0).expect("finish");
    let got = store
        .enqueue_batch(&[keyed("second", "k")], T0)
        .expect("enqueue_batch");
    assert_eq!(got, [Enqueued::Stored]);
}

/// `requeue_dead` of a job whose key another job now holds is refused, naming the holder.
pub fn requeue_dead_refuses_a_job_whose_unique_key_is_held<S: JobStore>(store: TestStore<S>) {
    let mut dead = job_in_state("dead", JobState::Dead);
    dead.options.unique_key = Some("k".into());
    insert(&*store, dead);
    store.enqueue(&keyed("live", "k"), T0).expect("enqueue");
    match store.requeue_dead(&JobId::new("dead"), T0) {
        Err(StoreError::KeyHeld { key, holder }) => {
            assert_eq!((key.as_str(), holder.as_str()), ("k", "live"));
        }
        other => panic!("expected KeyHeld, got {other:?}"),
    }
    assert_eq!(
        store.get(&JobId::new("dead")).expect("get").state,
        JobState::Dead
    );
}

/// Sixteen threads enqueueing jobs with one key at once store exactly one; every other call
/// names that job as the holder.
pub fn concurrent_enqueues_of_one_unique_key_store_exactly_one_job<S: JobStore>(
    store: TestStore<S>,
) {
    const THREADS: usize = 16;
    let store = Arc::new(store);
    let results: Vec<Enqueued> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = Arc::clone(&store);
                scope.spawn(move || loop {
                    match store.enqueue_batch(&[keyed(&format!("racer-{t}"), "race")], T0) {
                        Ok(mut got) => return got.remove(0),
                        Err(e) if e.is_transient() => continue,
                        Err(e) => panic!("enqueue failed: {e}"),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("enqueuing thread panicked"))
            .collect()
    });
    let stored = store.list(&Default::default()).expect("list");
    assert_eq!(stored.len(), 1, "{stored:#?}");
    let winner = &stored[0].id;
    let stored_count = results.iter().filter(|r| **r == Enqueued::Stored).count();
    assert_eq!(stored_count, 1, "{results:?}");
    for r in &results {
        if let Enqueued::Held(holder) = r {
            assert_eq!(holder, winner);
        }
    }
}
