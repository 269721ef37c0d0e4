//! The worker pool inside a tokio application.
//!
//! ```text
//! cargo run --example tokio_app
//! ```
//!
//! The engine is synchronous: store calls block and a pool runs one thread per slot. So:
//! - the pool runs on tokio's blocking thread pool (`spawn_blocking`), for as long as the
//!   application runs; a dedicated `std::thread` works the same;
//! - async code enqueues through `spawn_blocking` too (an enqueue is one short transaction,
//!   but it may wait for SQLite's write lock, which an async task must not do in place);
//! - the application stops the pool through a [`Shutdown`]: here once every job it
//!   enqueued has completed, or at Ctrl-C, whichever comes first. A graceful stop lets the
//!   running jobs finish and claims nothing new.
//!
//! The queue file lives in a fresh temporary directory, removed at exit.

use std::time::Duration;

use queuectl::{
    enqueue_typed, EnqueueRequest, JobContext, JobResult, Queue, Shutdown, TypedJob, WorkerPool,
};
use serde::{Deserialize, Serialize};

/// Send a welcome message. The fields are the job's arguments, stored as JSON.
#[derive(Serialize, Deserialize)]
struct Welcome {
    user: String,
}

impl TypedJob for Welcome {
    const KIND: &'static str = "welcome";

    fn run(&self, ctx: &JobContext) -> JobResult {
        // Runs on one of the pool's threads, not on the async runtime: blocking is fine.
        if ctx.sleep(Duration::from_millis(10)) {
            return Err("stopped before the message went out".into());
        }
        println!("welcome, {}", self.user);
        Ok(())
    }
}

const USERS: [&str; 5] = ["ada", "grace", "edsger", "barbara", "ken"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let target = format!("sqlite://{}", dir.path().join("jobs.db").display());
    // Opening creates and migrates the file: blocking work, so off the async threads.
    let queue = tokio::task::spawn_blocking(move || Queue::open(&target)).await??;

    // The pool: started once, on a blocking thread, running until told to stop.
    let shutdown = Shutdown::new();
    let pool = WorkerPool::builder(queue.clone())
        .typed::<Welcome>()
        .slots(2)
        .poll_interval(Duration::from_millis(50))
        .build();
    let pool_shutdown = shutdown.clone();
    let running = tokio::task::spawn_blocking(move || pool.run(&pool_shutdown));

    // Enqueue from async code, e.g. a request handler; the pool wakes at once.
    for user in USERS {
        let queue = queue.clone();
        let id = tokio::task::spawn_blocking(move || {
            let job = Welcome {
                user: user.to_owned(),
            };
            enqueue_typed(&queue, &job, EnqueueRequest::default())
        })
        .await??;
        println!("enqueued {id}");
    }

    // Run until the work is done or the user presses Ctrl-C (or, as this is an example
    // that CI runs, until a deadline that only a bug would reach).
    let expected = USERS.len() as u64;
    let outcome = tokio::select! {
        done = all_completed(queue.clone(), expected) => done,
        _ = tokio::signal::ctrl_c() => {
            println!("Ctrl-C: stopping");
            Ok(())
        }
        () = tokio::time::sleep(Duration::from_secs(60)) => {
            Err("the jobs did not complete within 60 s".into())
        }
    };
    // Stop the pool in every case, then report.
    shutdown.request_graceful();
    let report = running.await??;
    println!(
        "pool stopped: {} succeeded, {} failed",
        report.succeeded, report.failed
    );
    outcome
}

/// Waits until `n` jobs have completed, looking at the store every 20 ms.
async fn all_completed(queue: Queue, n: u64) -> Result<(), BoxError> {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let queue = queue.clone();
        let counts = tokio::task::spawn_blocking(move || queue.store().counts()).await??;
        if counts.completed >= n {
            return Ok(());
        }
    }
}
