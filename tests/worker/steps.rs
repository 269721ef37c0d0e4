//! Wall-clock steps (issue #12, item 2): a clock that follows real time plus an offset a
//! test can step, under running pools.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use queuectl::prelude::*;
use queuectl::{
    Call, Clock, EnqueueRequest, Job, JobContext, JobId, JobState, JobStore, Outcome, Scheduler,
    Shutdown, SteadyClock, Timestamp, WorkerPool, WorkerPoolBuilder,
};
use queuectl_store_memory::MemoryStore;

use crate::support::intercept::Intercept;

use super::{join, spawn, wait_until};

/// The system's wall time plus an offset that [`SteppedWall::step`] moves at once, as an
/// NTP step or `date -s` moves the wall clock.
#[derive(Debug, Default)]
struct SteppedWall {
    offset_ms: AtomicI64,
}

impl SteppedWall {
    fn step(&self, by_ms: i64) {
        self.offset_ms.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for SteppedWall {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(Timestamp::now().as_millis() + self.offset_ms.load(Ordering::SeqCst))
    }
}

const HOUR_MS: i64 = 3_600_000;

/// A memory store that counts `list_workers` calls: each recovery pass makes one.
fn counting_store() -> (Arc<Intercept<MemoryStore>>, Arc<AtomicU64>) {
    let passes = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&passes);
    let store = Intercept::new(MemoryStore::new(), move |_, call| {
        if matches!(call, Call::ListWorkers) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    (Arc::new(store), passes)
}

fn builder<S: JobStore + Clone>(
    scheduler: Scheduler<S>,
    dir: &Path,
    host: &str,
) -> WorkerPoolBuilder<S> {
    WorkerPool::builder(scheduler)
        .poll_interval(Duration::from_millis(10))
        .recovery_interval(Duration::from_millis(20))
        .host_id(host)
        .group_dir(dir.join("groups"))
}

fn enqueue_n<S: JobStore>(scheduler: &Scheduler<S>, n: usize, kind: &str) -> Vec<JobId> {
    (0..n)
        .map(|i| {
            scheduler
                .enqueue(EnqueueRequest {
                    command: format!("{i}"),
                    kind: Some(kind.to_owned()),
                    ..EnqueueRequest::default()
                })
                .unwrap()
        })
        .collect()
}

/// Two pools each run one job that waits for the test; the wall clock steps 60 s forward
/// while they run; both keep their jobs (not declared dead, no lease recovered) through
/// many recovery passes, and each job runs once.
fn forward_step_keeps_live_workers(host_a: &str, host_b: &str, lease: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(SteppedWall::default());
    let (store, passes) = counting_store();
    let scheduler = Scheduler::with_clock(store, Arc::new(SteadyClock::new(wall.clone())));
    let ids = enqueue_n(&scheduler, 2, "hold");
    let release = Arc::new(AtomicBool::new(false));
    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let shutdown = Shutdown::new();
    let pool = |host: &str| {
        let release = Arc::clone(&release);
        let runs = Arc::clone(&runs);
        builder(scheduler.clone(), dir.path(), host)
            .lease(lease)
            .claim_batch(1)
            .handler("hold", move |job: &Job, _: &JobContext| {
                *runs.lock().entry(job.id.clone()).or_default() += 1;
                while !release.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(5));
                }
                Outcome::success()
            })
            .build()
    };
    let (a, b) = (pool(host_a), pool(host_b));
    let workers = [a.id().to_owned(), b.id().to_owned()];
    let handles = [spawn(a, &shutdown), spawn(b, &shutdown)];
    wait_until("each pool runs one job", || runs.lock().len() == 2);
    let holders = || -> Vec<Option<String>> {
        ids.iter()
            .map(|id| scheduler.store().get(id).unwrap().worker_id)
            .collect()
    };
    let before = holders();
    wall.step(60_000);
    // Watch for well over a lease (several renewals) and many recovery passes.
    let start = passes.load(Ordering::SeqCst);
    let watched = std::time::Instant::now();
    wait_until("many recovery passes after the step", || {
        passes.load(Ordering::SeqCst) >= start + 40 && watched.elapsed() >= lease * 2
    });
    for id in &ids {
        let job = scheduler.store().get(id).unwrap();
        assert_eq!(
            (job.state, job.interrupts),
            (JobState::Processing, 0),
            "a live worker's job was taken after a forward step"
        );
    }
    assert_eq!(holders(), before);
    let registered: Vec<String> = scheduler
        .store()
        .list_workers()
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    for w in &workers {
        assert!(registered.contains(w), "{w} was declared dead");
    }
    release.store(true, Ordering::SeqCst);
    wait_until("both jobs complete", || {
        ids.iter()
            .all(|id| scheduler.store().get(id).unwrap().state == JobState::Completed)
    });
    shutdown.request_graceful();
    for h in handles {
        join(h);
    }
    assert!(runs.lock().values().all(|n| *n == 1), "ran twice: {runs:?}");
}

#[test]
fn a_forward_step_does_not_make_live_workers_of_one_host_kill_each_other() {
    forward_step_keeps_live_workers("host-a", "host-a", Duration::from_secs(5));
}

#[test]
fn a_forward_step_does_not_make_live_workers_of_two_hosts_take_each_others_jobs() {
    forward_step_keeps_live_workers("host-a", "host-b", Duration::from_secs(1));
}

/// Runs a draining pool on `scheduler` and waits until `ids` are all completed.
fn drain_completes<S: JobStore + Clone>(scheduler: &Scheduler<S>, ids: &[JobId]) {
    let dir = tempfile::tempdir().unwrap();
    let pool = builder(scheduler.clone(), dir.path(), "host-a")
        .lease(Duration::from_secs(5))
        .slots(2)
        .drain(true)
        .handler("noop", |_: &Job, _: &JobContext| Outcome::success())
        .build();
    let handle = spawn(pool, &Shutdown::new());
    wait_until("the backlog is done", || {
        ids.iter()
            .all(|id| scheduler.store().get(id).unwrap().state == JobState::Completed)
    });
    assert_eq!(join(handle).succeeded, u64::try_from(ids.len()).unwrap());
}

/// A backward step of an hour in a running process: the backlog enqueued before it is
/// still due (the process's clock does not go back).
#[test]
fn a_backward_step_does_not_future_date_the_backlog_of_a_running_process() {
    let wall = Arc::new(SteppedWall::default());
    let scheduler = Scheduler::with_clock(
        Arc::new(MemoryStore::new()),
        Arc::new(SteadyClock::new(wall.clone())),
    );
    let ids = enqueue_n(&scheduler, 20, "noop");
    wall.step(-HOUR_MS);
    drain_completes(&scheduler, &ids);
}

/// A worker started after a backward step of an hour (a new process, whose clock has
/// seen nothing yet) catches up with the jobs enqueued before the step.
#[test]
fn a_worker_started_after_a_backward_step_runs_the_backlog_at_once() {
    let store = Arc::new(MemoryStore::new());
    let before = Scheduler::with_clock(
        Arc::clone(&store),
        Arc::new(SteadyClock::new(Arc::new(SteppedWall::default()))),
    );
    let ids = enqueue_n(&before, 20, "noop");
    let stepped = Arc::new(SteppedWall::default());
    stepped.step(-HOUR_MS);
    let after = Scheduler::with_clock(store, Arc::new(SteadyClock::new(stepped)));
    drain_completes(&after, &ids);
}
