//! An application that embeds the queue on SQLite: a typed job with its handler, a worker
//! pool that drains the queue, and a look at the outcome.
//!
//! ```text
//! cargo run --example embedded_sqlite
//! ```
//!
//! The queue file lives in a fresh temporary directory, removed at exit. Point the same
//! code at a path of your own and `queuectl status --db PATH` shows these jobs too.

use std::sync::Arc;
use std::time::Duration;

use queuectl::prelude::*; // the store traits: scheduler.store().counts(), .list(…)
use queuectl::{
    enqueue_typed, EnqueueRequest, JobContext, JobFilter, JobResult, JobState, Scheduler, Shutdown,
    SqliteStore, TypedJob, WorkerPool,
};
use serde::{Deserialize, Serialize};

/// Make a thumbnail of an image. The fields are the job's arguments, stored as JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Thumbnail {
    image: String,
    width: u32,
}

impl TypedJob for Thumbnail {
    const KIND: &'static str = "thumbnail";

    fn run(&self, ctx: &JobContext) -> JobResult {
        if self.width == 0 {
            // A failed attempt: retried with backoff while the job has attempts left, then
            // dead-lettered with this message as its last error.
            return Err(format!("{}: a width of 0 makes no thumbnail", self.image).into());
        }
        // Real work would go here; a handler that waits should use ctx.sleep (or check
        // ctx.should_stop) so that timeouts and shutdowns stop it.
        if ctx.sleep(Duration::from_millis(5)) {
            return Err("stopped".into());
        }
        println!(
            "attempt {}: {} at {} px",
            ctx.attempt(),
            self.image,
            self.width
        );
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("jobs.db");
    // Created and migrated on first use; every later open of the file sees the same queue.
    // Behind an Arc: the pool and the application share one store (and its connections).
    let scheduler = Scheduler::new(Arc::new(SqliteStore::open(&path)?));

    for (image, width) in [("cat.png", 128), ("dog.png", 256), ("broken.png", 0)] {
        let job = Thumbnail {
            image: image.to_owned(),
            width,
        };
        // The options of any job apply: queue, priority, run_at, retries, timeout.
        let opts = EnqueueRequest {
            max_retries: Some(1),
            timeout_secs: Some(30),
            ..EnqueueRequest::default()
        };
        let id = enqueue_typed(&scheduler, &job, opts)?;
        println!("enqueued {id}: {job:?}");
    }
    // Shell jobs share the queue with typed ones.
    scheduler.enqueue(EnqueueRequest::shell("echo a shell job, run by sh -c"))?;

    // Two slots; drain mode returns once nothing is left to run.
    let report = WorkerPool::builder(scheduler.clone())
        .typed::<Thumbnail>()
        .slots(2)
        .drain(true)
        .poll_interval(Duration::from_millis(20))
        .build()
        .run(&Shutdown::new())?;
    println!(
        "pool {}: {} succeeded, {} failed",
        report.worker_id, report.succeeded, report.failed
    );

    let counts = scheduler.store().counts()?;
    let dead = scheduler.store().list(&JobFilter {
        state: Some(JobState::Dead),
        ..JobFilter::default()
    })?;
    for job in &dead {
        println!(
            "dead: {} ({})",
            job.id,
            job.last_error.as_deref().unwrap_or("")
        );
    }
    if (counts.completed, counts.dead) != (3, 1) || (report.succeeded, report.failed) != (3, 1) {
        return Err(format!("unexpected outcome: {counts:?}, {report:?}").into());
    }
    Ok(())
}
