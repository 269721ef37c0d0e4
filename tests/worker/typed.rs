//! Typed jobs end to end: enqueue a struct, run it in a pool, retry it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use queuectl::prelude::*;
use queuectl::typed::{enqueue_typed, TypedJob};
use queuectl::worker::{JobContext, Shutdown, WorkerPool};
use queuectl::{EnqueueRequest, JobState, Scheduler};
use queuectl_store_memory::MemoryStore;
use serde::{Deserialize, Serialize};

use super::{manual_clock, wait_until};

static FLAKY_RUNS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Serialize, Deserialize)]
struct Flaky {
    fail_first: u32,
}

impl TypedJob for Flaky {
    const KIND: &'static str = "flaky";

    fn run(&self, ctx: &JobContext) -> Result<(), String> {
        FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
        if ctx.attempt() <= self.fail_first {
            Err(format!("flaked on attempt {}", ctx.attempt()))
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_typed_job_is_stored_as_json_retried_and_completed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let scheduler = Scheduler::with_clock(Arc::new(MemoryStore::new()), clock.clone());
    let id = enqueue_typed(
        &scheduler,
        &Flaky { fail_first: 1 },
        EnqueueRequest {
            queue: Some("typed".to_owned()),
            ..EnqueueRequest::default()
        },
    )
    .unwrap();
    let stored = scheduler.store().get(&id).unwrap();
    assert_eq!(
        (
            stored.kind.as_str(),
            stored.command.as_str(),
            stored.queue.as_str()
        ),
        ("flaky", r#"{"fail_first":1}"#, "typed")
    );

    let pool = WorkerPool::builder(scheduler.clone())
        .typed::<Flaky>()
        .drain(true)
        .poll_interval(Duration::from_millis(10))
        .lease(Duration::from_secs(5))
        .group_dir(dir.path().join("groups"))
        .build();
    let handle = std::thread::spawn(move || pool.run(&Shutdown::new()).unwrap());
    wait_until("the first attempt failed", || {
        scheduler.store().get(&id).unwrap().state == JobState::Failed
    });
    let failed = scheduler.store().get(&id).unwrap();
    assert_eq!(failed.last_error.as_deref(), Some("flaked on attempt 1"));
    assert_eq!(failed.exit_code, Some(1));
    clock.advance(Duration::from_secs(3600));
    wait_until("the pool drained", || handle.is_finished());
    let report = handle.join().unwrap();
    assert_eq!((report.succeeded, report.failed), (1, 1));
    let done = scheduler.store().get(&id).unwrap();
    assert_eq!(
        (done.state, done.attempts, done.exit_code),
        (JobState::Completed, 2, Some(0))
    );
    assert_eq!(FLAKY_RUNS.load(Ordering::SeqCst), 2);
}

#[test]
fn undecodable_typed_arguments_fail_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
    let id = scheduler
        .enqueue(EnqueueRequest {
            command: "not json".to_owned(),
            kind: Some(Flaky::KIND.to_owned()),
            max_retries: Some(1),
            ..EnqueueRequest::default()
        })
        .unwrap();
    WorkerPool::builder(scheduler.clone())
        .typed::<Flaky>()
        .drain(true)
        .poll_interval(Duration::from_millis(10))
        .group_dir(dir.path().join("groups"))
        .build()
        .run(&Shutdown::new())
        .unwrap();
    let job = scheduler.store().get(&id).unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert!(job
        .last_error
        .unwrap()
        .starts_with("cannot decode the flaky job's arguments"));
}
