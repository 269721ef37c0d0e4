//! The pool under store faults (issue #12): a store that refuses writes for a while (a
//! full disk), and a store that cannot be reached (a partition).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use queuectl::prelude::*;
use queuectl::{
    Call, EnqueueRequest, Job, JobContext, JobId, JobState, JobStore, Outcome, Scheduler, Shutdown,
    StoreError, WorkerPool, WorkerPoolBuilder,
};
use queuectl_store_memory::MemoryStore;

use crate::support::intercept::Intercept;

use super::{join, spawn, wait_until, HANG};

/// A memory store that fails the calls `refuse` picks while `full` is set, with the error a
/// full disk gives.
/// Also returns how many finishes it refused.
fn refusing(
    full: &Arc<AtomicBool>,
    refuse: fn(&Call<'_>) -> bool,
) -> (Arc<Intercept<MemoryStore>>, Arc<AtomicU32>) {
    let full = Arc::clone(full);
    let refused_finishes = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&refused_finishes);
    let store = Arc::new(Intercept::new(MemoryStore::new(), move |_, call| {
        if full.load(Ordering::SeqCst) && refuse(call) {
            if matches!(call, Call::Finish { .. } | Call::FinishAndClaim { .. }) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            return Err(StoreError::Backend {
                message: format!("database or disk is full ({})", call.name()),
                source: None,
            });
        }
        Ok(())
    }));
    (store, refused_finishes)
}

fn builder<S: JobStore + Clone>(scheduler: Scheduler<S>, dir: &Path) -> WorkerPoolBuilder<S> {
    WorkerPool::builder(scheduler)
        .poll_interval(Duration::from_millis(10))
        .lease(Duration::from_secs(2))
        .recovery_interval(Duration::from_millis(100))
        .host_id("test-host")
        .group_dir(dir.join("groups"))
}

/// Enqueues `n` jobs of kind `count`.
fn enqueue_counted<S: JobStore>(scheduler: &Scheduler<S>, n: usize) -> Vec<JobId> {
    (0..n)
        .map(|i| {
            scheduler
                .enqueue(EnqueueRequest {
                    command: format!("{i}"),
                    kind: Some("count".to_owned()),
                    ..EnqueueRequest::default()
                })
                .unwrap()
        })
        .collect()
}

/// Item 1: the disk fills while jobs run (every write refused), then frees up. Every
/// result the worker could not record is recorded once the store accepts writes again:
/// every job ends `completed`, each run exactly once, without waiting for the worker to
/// exit.
#[test]
fn results_refused_by_a_full_store_are_recorded_once_it_accepts_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let full = Arc::new(AtomicBool::new(false));
    let (store, refused) = refusing(&full, |c| c.is_write());
    let scheduler = Scheduler::new(store);
    let ids = enqueue_counted(&scheduler, 20);
    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let filling = Arc::clone(&full);
    let filled = AtomicBool::new(false);
    let shutdown = Shutdown::new();
    let pool = builder(scheduler.clone(), dir.path())
        .slots(2)
        .claim_batch(4)
        .handler("count", move |job: &Job, _: &JobContext| {
            let mut runs = seen.lock();
            *runs.entry(job.id.clone()).or_default() += 1;
            // The disk fills (once) while the first jobs run.
            if runs.len() >= 3 && !filled.swap(true, Ordering::SeqCst) {
                filling.store(true, Ordering::SeqCst);
            }
            Outcome::success()
        })
        .build();
    let handle = spawn(pool, &shutdown);
    // Staged: a finish was refused, and a held job's lease has run out (renewals are
    // refused too), so only the worker itself can still record it.
    wait_until("a result is refused", || refused.load(Ordering::SeqCst) > 0);
    wait_until("a held job's lease expires", || {
        let now = scheduler.now();
        ids.iter().any(|id| {
            let job = scheduler.store().get(id).unwrap();
            job.state == JobState::Processing && job.lease_until.is_some_and(|t| t < now)
        })
    });
    full.store(false, Ordering::SeqCst);
    wait_until("every job is completed", || {
        ids.iter()
            .all(|id| scheduler.store().get(id).unwrap().state == JobState::Completed)
    });
    shutdown.request_graceful();
    let report = join(handle);
    assert_eq!(report.succeeded, 20);
    let runs = runs.lock();
    assert_eq!(runs.len(), 20);
    assert!(
        runs.values().all(|n| *n == 1),
        "each job ran once: {runs:?}"
    );
    for id in &ids {
        assert_eq!(scheduler.store().get(id).unwrap().attempts, 1);
    }
}

/// Item 1, at exit: results that still cannot be recorded when the worker stops are not
/// orphaned: the worker stays registered (with its pid), so that once its process is gone
/// the recovery of any later `status`, `list` or worker on this host puts them back, as
/// for a crashed worker.
#[test]
fn a_worker_that_exits_with_unrecorded_results_stays_registered_for_recovery() {
    fn finishes(call: &Call<'_>) -> bool {
        matches!(call, Call::Finish { .. } | Call::FinishAndClaim { .. })
    }
    let dir = tempfile::tempdir().unwrap();
    let full = Arc::new(AtomicBool::new(true));
    let (store, _) = refusing(&full, finishes);
    let scheduler = Scheduler::new(store);
    let ids = enqueue_counted(&scheduler, 2);
    let shutdown = Shutdown::new();
    let pool = builder(scheduler.clone(), dir.path())
        .claim_batch(1)
        .handler("count", |_: &Job, _: &JobContext| Outcome::success())
        .build();
    let worker = pool.id().to_owned();
    let handle = spawn(pool, &shutdown);
    wait_until("both jobs ran", || {
        ids.iter()
            .all(|id| scheduler.store().get(id).unwrap().worker_id.is_some())
    });
    shutdown.request_graceful();
    let started = std::time::Instant::now();
    let report = join(handle);
    assert!(started.elapsed() < HANG);
    assert_eq!(report.succeeded, 0);
    full.store(false, Ordering::SeqCst);
    let workers = scheduler.store().list_workers().unwrap();
    assert!(
        workers.iter().any(|w| w.id == worker),
        "the worker stays registered while jobs it holds are unrecorded"
    );
    for id in &ids {
        let job = scheduler.store().get(id).unwrap();
        assert_eq!(job.state, JobState::Processing);
        assert_eq!(job.worker_id.as_deref(), Some(worker.as_str()));
    }
}

/// Item 5: a worker cut off from the store (every call of its connection blocks, as in a
/// network partition) kills its job before the lease can expire for a worker of another
/// host, which then recovers and runs it: the two runs never overlap.
#[test]
fn a_partitioned_worker_kills_its_job_before_another_host_can_take_it() {
    let shared = Arc::new(MemoryStore::new());
    partitioned_worker_case(Arc::clone(&shared), shared);
}

/// The same over PostgreSQL: each worker has its own connection pool, and worker A's calls
/// block before they reach the server.
#[cfg(feature = "postgres")]
#[test]
fn a_partitioned_worker_on_postgres_kills_its_job_before_another_host_can_take_it() {
    let Some(schema) = crate::support::pg::PgSchema::new() else {
        return;
    };
    partitioned_worker_case(schema.store(), Arc::new(schema.store()));
}

/// Worker A (its store `inner_a` behind a wrapper that can block every call) runs a job;
/// worker B of another host (on `store_b`, the same data) is seen by A; A is cut off; B
/// recovers and runs the job. A's run must end before B's starts.
fn partitioned_worker_case<A: JobStore, B: JobStore + Clone>(inner_a: A, store_b: B) {
    use std::time::Instant;

    let dir = tempfile::tempdir().unwrap();
    let partitioned = Arc::new(AtomicBool::new(false));
    let blocked = Arc::clone(&partitioned);
    let seen_by_a = Arc::new(AtomicU32::new(0));
    let looks = Arc::clone(&seen_by_a);
    // Worker A's connection: blocks every call while partitioned.
    let store_a = Arc::new(Intercept::new(inner_a, move |_, call| {
        if matches!(call, Call::ListWorkers) {
            looks.fetch_add(1, Ordering::SeqCst);
        }
        while blocked.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }));
    let scheduler_a = Scheduler::new(store_a);
    let scheduler_b = Scheduler::new(store_b);
    let id = scheduler_b
        .enqueue(EnqueueRequest {
            command: "x".to_owned(),
            kind: Some("mark".to_owned()),
            ..EnqueueRequest::default()
        })
        .unwrap();
    // (worker, "start" | "end", when)
    let marks: Marks = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    type Marks = Arc<Mutex<Vec<(&'static str, &'static str, Instant)>>>;
    fn pool<S: JobStore + Clone>(
        scheduler: Scheduler<S>,
        host: &'static str,
        dir: &Path,
        marks: &Marks,
        done: &Arc<AtomicBool>,
    ) -> WorkerPool<S> {
        let marks = Arc::clone(marks);
        let done = Arc::clone(done);
        WorkerPool::builder(scheduler)
            .poll_interval(Duration::from_millis(10))
            .lease(Duration::from_secs(1))
            .recovery_interval(Duration::from_millis(20))
            .host_id(host)
            .group_dir(dir.join(host))
            .handler("mark", move |_: &Job, ctx: &JobContext| {
                marks.lock().push((host, "start", Instant::now()));
                while !ctx.is_cancelled() && !done.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(2));
                }
                marks.lock().push((host, "end", Instant::now()));
                Outcome::success()
            })
            .build()
    }
    let shutdown = Shutdown::new();
    let a = spawn(
        pool(scheduler_a.clone(), "host-a", dir.path(), &marks, &done),
        &shutdown,
    );
    wait_until("worker A runs the job", || marks.lock().len() == 1);
    let b = spawn(
        pool(scheduler_b.clone(), "host-b", dir.path(), &marks, &done),
        &shutdown,
    );
    // Let A's recovery pass see B registered, then cut A off.
    wait_until("B is registered", || {
        scheduler_b.store().list_workers().unwrap().len() == 2
    });
    let looked = seen_by_a.load(Ordering::SeqCst);
    wait_until("A looked at the registry since", || {
        seen_by_a.load(Ordering::SeqCst) >= looked + 2
    });
    partitioned.store(true, Ordering::SeqCst);
    wait_until("worker B runs the job", || {
        marks
            .lock()
            .iter()
            .any(|(w, what, _)| *w == "host-b" && *what == "start")
    });
    done.store(true, Ordering::SeqCst);
    wait_until("B completes it", || {
        scheduler_b.store().get(&id).unwrap().state == JobState::Completed
    });
    partitioned.store(false, Ordering::SeqCst);
    shutdown.request_graceful();
    join(a);
    join(b);
    let marks = marks.lock();
    let at = |w: &str, what: &str| {
        marks
            .iter()
            .find(|(m, x, _)| *m == w && *x == what)
            .map(|(_, _, t)| *t)
            .unwrap()
    };
    assert!(
        at("host-a", "end") < at("host-b", "start"),
        "the partitioned worker's run overlapped the recovering worker's: {marks:?}"
    );
}

/// A store call whose commit landed but whose acknowledgement was lost (the worker sees a
/// transient error and sends it again): a re-sent finish finds its jobs already recorded,
/// and a lost claim's jobs are held by nobody. Every job still ends `completed`, each run
/// exactly once, a stranded claim recovered once its lease ran out (its owner, alive,
/// knows it does not hold it).
fn lost_acknowledgement_case(method: &'static str, claim_batch: u32) {
    use queuectl_store_conformance::{Fault, FaultyStore};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let scheduler = Scheduler::new(Arc::clone(&store));
    let ids = enqueue_counted(&scheduler, 12);
    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let armed = Arc::clone(&store);
    let shutdown = Shutdown::new();
    let pool = builder(scheduler.clone(), dir.path())
        .slots(1)
        .claim_batch(claim_batch)
        .handler("count", move |job: &Job, _: &JobContext| {
            let mut runs = seen.lock();
            *runs.entry(job.id.clone()).or_default() += 1;
            if runs.len() == 3 {
                armed.fail_next_call_to(method, Fault::LostAck);
            }
            Outcome::success()
        })
        .build();
    let handle = spawn(pool, &shutdown);
    wait_until("the lost acknowledgement is staged", || {
        store.faults_injected() == 1
    });
    wait_until("every job is completed", || {
        ids.iter()
            .all(|id| scheduler.store().get(id).unwrap().state == JobState::Completed)
    });
    shutdown.request_graceful();
    join(handle);
    let runs = runs.lock();
    assert_eq!(runs.len(), 12);
    assert!(
        runs.values().all(|n| *n == 1),
        "each job ran once: {runs:?}"
    );
    for id in &ids {
        assert_eq!(scheduler.store().get(id).unwrap().attempts, 1);
    }
}

#[test]
fn a_finish_and_claim_whose_acknowledgement_was_lost_strands_nothing() {
    lost_acknowledgement_case("finish_and_claim", 2);
}

#[test]
fn a_claim_whose_acknowledgement_was_lost_strands_nothing() {
    // The case waits until a plain claim (the pool's claim after an idle wait) was hit.
    lost_acknowledgement_case("claim", 1);
}
