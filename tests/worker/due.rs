//! Time travel with a `ManualClock`: moving it wakes an idle pool at once, and
//! `WorkerPool::run_due` runs exactly what is due, in the test's own thread.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use queuectl::prelude::*;
use queuectl::{
    Call, Clock, Decorator, EnqueueRequest, Job, JobId, JobState, Outcome, Scheduler, StoreError,
};
use queuectl::{JobContext, Shutdown, WorkerPool};
use queuectl_store::StoreResult;
use queuectl_store_memory::MemoryStore;

use super::{manual_clock, wait_until};

fn shell(command: &str) -> EnqueueRequest {
    EnqueueRequest::shell(command)
}

#[test]
fn advancing_a_manual_clock_wakes_an_idle_pool_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let scheduler = Scheduler::with_clock(Arc::new(MemoryStore::new()), clock.clone());
    let id = scheduler
        .enqueue(EnqueueRequest {
            run_at: Some(clock.now().add(Duration::from_secs(60))),
            ..shell("true")
        })
        .unwrap();
    // An idle slot would otherwise look again only after an hour: neither the store's
    // change marker nor the real clock moves when the manual clock does.
    let pool = WorkerPool::builder(scheduler.clone())
        .poll_interval(Duration::from_secs(3600))
        .lease(Duration::from_secs(5))
        .group_dir(dir.path().join("groups"))
        .build();
    let shutdown = Shutdown::new();
    let handle = {
        let shutdown = shutdown.clone();
        thread::spawn(move || pool.run(&shutdown).unwrap())
    };
    wait_until("the worker registered", || {
        !scheduler.store().list_workers().unwrap().is_empty()
    });
    // Let the slot's first claim find nothing and go to sleep.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(scheduler.store().get(&id).unwrap().state, JobState::Pending);

    clock.advance(Duration::from_secs(60));
    wait_until("the job that became due ran", || {
        scheduler.store().get(&id).unwrap().state == JobState::Completed
    });
    shutdown.request_graceful();
    wait_until("the pool exits", || handle.is_finished());
    assert_eq!(handle.join().unwrap().succeeded, 1);
}

#[test]
fn run_due_runs_what_is_due_including_follow_ups_and_leaves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let scheduler = Scheduler::with_clock(Arc::new(MemoryStore::new()), clock.clone());
    let now = scheduler.enqueue(shell("true")).unwrap();
    let later = scheduler
        .enqueue(EnqueueRequest {
            run_at: Some(clock.now().add(Duration::from_secs(3600))),
            ..shell("true")
        })
        .unwrap();
    let failing = scheduler
        .enqueue(EnqueueRequest {
            max_retries: Some(2),
            ..shell("exit 3")
        })
        .unwrap();
    let parent = scheduler
        .enqueue(EnqueueRequest {
            kind: Some("fan-out".to_owned()),
            command: "child".to_owned(),
            ..EnqueueRequest::default()
        })
        .unwrap();
    // A handler that enqueues a job due at once: run_due runs it too.
    let enqueuer = scheduler.clone();
    let pool = WorkerPool::builder(scheduler.clone())
        .handler("fan-out", move |job: &Job, _: &JobContext| {
            match enqueuer.enqueue(EnqueueRequest {
                id: Some(job.command.as_str().into()),
                ..shell("true")
            }) {
                Ok(_) => Outcome::success(),
                Err(e) => Outcome::failure(e.to_string()),
            }
        })
        .group_dir(dir.path().join("groups"))
        .build();

    let report = pool.run_due().unwrap();
    assert_eq!((report.succeeded, report.failed), (3, 1));
    let state = |id: &JobId| scheduler.store().get(id).unwrap().state;
    assert_eq!(state(&now), JobState::Completed);
    assert_eq!(state(&parent), JobState::Completed);
    assert_eq!(state(&"child".into()), JobState::Completed);
    assert_eq!(state(&later), JobState::Pending, "not due yet");
    // The retry waits out its backoff, which the manual clock never passes by itself.
    assert_eq!(state(&failing), JobState::Failed);
    assert!(
        scheduler.store().list_workers().unwrap().is_empty(),
        "the run deregistered"
    );

    // Nothing is due until the clock moves.
    assert_eq!(
        pool.run_due().unwrap(),
        queuectl::PoolReport {
            worker_id: pool.id().to_owned(),
            ..Default::default()
        }
    );
    clock.advance(Duration::from_secs(3600));
    let report = pool.run_due().unwrap();
    assert_eq!((report.succeeded, report.failed), (1, 1));
    assert_eq!(state(&later), JobState::Completed);
    assert_eq!(state(&failing), JobState::Dead);
}

/// A store whose claims fail, as a broken connection would.
#[derive(Debug)]
struct FailingClaims(MemoryStore);

impl Decorator for FailingClaims {
    type Inner = MemoryStore;
    fn inner(&self) -> &MemoryStore {
        &self.0
    }
    fn before(&self, call: &Call<'_>) -> StoreResult<()> {
        match call {
            Call::Claim { .. } => Err(StoreError::Busy("claims are broken".to_owned())),
            _ => Ok(()),
        }
    }
}

#[test]
fn run_due_returns_a_failing_claim_instead_of_retrying_forever() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::new(Arc::new(FailingClaims(MemoryStore::new())));
    scheduler.enqueue(shell("true")).unwrap();
    let err = WorkerPool::builder(scheduler.clone())
        .group_dir(dir.path().join("groups"))
        .build()
        .run_due()
        .unwrap_err();
    assert!(err.to_string().contains("claims are broken"), "{err}");
    assert!(
        scheduler.store().list_workers().unwrap().is_empty(),
        "the run deregistered"
    );
}
