//! Cases for concurrent use from several threads, and the change marker idle workers watch.

use std::collections::HashSet;
use std::sync::Arc;

use queuectl_store::{Guarded, JobId, JobStore, Marker, NewJob, StoreError, TransitionKind};

use crate::fixture::{at, claim_one, claim_request, execution, new_job_with_id, transition, T0};
use crate::TestStore;

/// Threads claiming at once from one shared store.
const THREADS: usize = 8;

/// Eight threads claiming in small batches from one shared store never get the same job,
/// and together claim every job exactly once.
pub fn concurrent_claims_never_return_the_same_job<S: JobStore>(store: TestStore<S>) {
    const JOBS: usize = 240;
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| new_job_with_id(&format!("job-{i:03}")))
        .collect();
    store.enqueue_many(&jobs, T0).expect("enqueue_many");
    let store = Arc::new(store);
    let per_thread: Vec<Vec<JobId>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = Arc::clone(&store);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let req = claim_request(&format!("w{t}"), T0, 3);
                        let batch = match store.claim(&req) {
                            Ok(batch) => batch,
                            // A busy store is allowed to say so; the caller retries.
                            Err(e) if e.is_transient() => continue,
                            Err(e) => panic!("claim failed: {e}"),
                        };
                        if batch.is_empty() {
                            return mine;
                        }
                        for job in batch {
                            assert_eq!(job.worker_id.as_deref(), Some(req.worker_id.as_str()));
                            mine.push(job.id);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("claiming thread panicked"))
            .collect()
    });
    let mut seen = HashSet::new();
    for id in per_thread.iter().flatten() {
        assert!(seen.insert(id.clone()), "{id} was claimed twice");
    }
    assert_eq!(seen.len(), JOBS, "every job is claimed");
    let counts = store.counts().expect("counts");
    assert_eq!(
        (counts.processing, counts.pending),
        (u64::try_from(JOBS).expect("small"), 0)
    );
}

/// Threads racing to finish the same claim: exactly one transition applies.
pub fn concurrent_finishes_of_one_claim_apply_exactly_once<S: JobStore>(store: TestStore<S>) {
    store
        .enqueue(&new_job_with_id("raced"), T0)
        .expect("enqueue");
    let job = claim_one(&*store, T0);
    let results: Vec<Guarded> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                let job = &job;
                scope.spawn(move || {
                    let kind = TransitionKind::Completed {
                        execution: execution(0, &format!("thread {t}"), ""),
                    };
                    let t = [transition(job, kind)];
                    loop {
                        match store.finish(&t, at(1)) {
                            Ok(r) => return r[0],
                            Err(e) if e.is_transient() => continue,
                            Err(e) => panic!("finish failed: {e}"),
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("finishing thread panicked"))
            .collect()
    });
    let applied = results.iter().filter(|g| g.is_applied()).count();
    assert_eq!(applied, 1, "{results:?}");
    let record = store.get_record(&job.id).expect("get_record");
    assert_eq!(record.job.attempts, 1);
    assert_eq!(record.history.len(), 1);
}

/// Threads enqueuing the same id at once: exactly one succeeds, the others get `Conflict`.
pub fn concurrent_enqueues_of_one_id_store_it_exactly_once<S: JobStore>(store: TestStore<S>) {
    let outcomes: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                scope.spawn(move || {
                    let new = NewJob {
                        command: format!("echo {t}"),
                        ..new_job_with_id("contested")
                    };
                    loop {
                        match store.enqueue(&new, T0) {
                            Err(e) if e.is_transient() => continue,
                            other => return other,
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("enqueuing thread panicked"))
            .collect()
    });
    let ok = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("expected Conflict, got {e:?}"),
        }
    }
    assert_eq!(store.counts().expect("counts").pending, 1);
}

/// If the store offers a change marker, it changes after an enqueue and after each job write
/// that makes work claimable (recovery, `requeue_dead`), and after a cancel.
pub fn change_marker_changes_after_job_writes<S: JobStore>(store: TestStore<S>) {
    let Marker::At(mut last) = store.change_marker().expect("change_marker") else {
        eprintln!("skipped: this store has no change marker");
        return;
    };
    let mut assert_changed = |what: &str| {
        let Marker::At(now) = store.change_marker().expect("change_marker") else {
            panic!("a store with a change marker keeps it");
        };
        assert_ne!(now, last, "the change marker did not move after {what}");
        last = now;
    };
    store.enqueue(&new_job_with_id("a"), T0).expect("enqueue");
    assert_changed("enqueue");
    store
        .enqueue_many(&[new_job_with_id("b"), new_job_with_id("c")], T0)
        .expect("enqueue_many");
    assert_changed("enqueue_many");
    let job = claim_one(&*store, T0);
    assert_changed("claim");
    let results = store
        .finish(
            &[transition(
                &job,
                TransitionKind::Recovered {
                    only_if_expired: false,
                },
            )],
            at(1),
        )
        .expect("recover");
    assert_eq!(results, [Guarded::Applied]);
    assert_changed("finish");
    store.cancel(&JobId::new("c"), at(2)).expect("cancel");
    assert_changed("cancel");
    let job = claim_one(&*store, at(3));
    let dead = TransitionKind::Abandoned {
        error: "interrupted too often".to_owned(),
        only_if_expired: false,
    };
    let results = store
        .finish(&[transition(&job, dead)], at(4))
        .expect("abandon");
    assert_eq!(results, [Guarded::Applied]);
    assert_changed("finish (abandoned)");
    store.requeue_dead(&job.id, at(5)).expect("requeue_dead");
    assert_changed("requeue_dead");
}
