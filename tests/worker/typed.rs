//! Typed jobs end to end: enqueue a struct, run it in a pool, retry it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use queuectl::prelude::*;
use queuectl::{enqueue_typed, enqueue_typed_many, JobResult, TypedJob};
use queuectl::{EnqueueRequest, JobState, Scheduler};
use queuectl::{JobContext, Shutdown, WorkerPool};
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

    fn run(&self, ctx: &JobContext) -> JobResult {
        FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
        if ctx.attempt() <= self.fail_first {
            Err(format!("flaked on attempt {}", ctx.attempt()).into())
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

/// The application's mail client, as a trait so a test can hand the pool a fake.
trait Mailer: Send + Sync {
    fn send(&self, to: &str, subject: &str) -> std::io::Result<()>;
}

/// Records what it sends; refuses addresses without an `@` like a real relay would.
#[derive(Default)]
struct FakeMailer {
    sent: parking_lot::Mutex<Vec<String>>,
}

impl Mailer for FakeMailer {
    fn send(&self, to: &str, subject: &str) -> std::io::Result<()> {
        if !to.contains('@') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("550 no such mailbox: {to}"),
            ));
        }
        self.sent.lock().push(format!("{to}: {subject}"));
        Ok(())
    }
}

/// An application error with a source, as `thiserror` would write it.
#[derive(Debug)]
struct Delivery {
    to: String,
    source: std::io::Error,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "delivering to {}", self.to)
    }
}

impl std::error::Error for Delivery {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SendEmail {
    to: String,
    subject: String,
}

impl TypedJob for SendEmail {
    const KIND: &'static str = "send-email";

    fn run(&self, ctx: &JobContext) -> JobResult {
        let signature = ctx.state::<String>()?;
        ctx.state::<dyn Mailer>()?
            .send(&self.to, &format!("{} {signature}", self.subject))
            .map_err(|source| Delivery {
                to: self.to.clone(),
                source,
            })?;
        Ok(())
    }
}

fn email(to: &str) -> SendEmail {
    SendEmail {
        to: to.to_owned(),
        subject: "hello".to_owned(),
    }
}

#[test]
fn typed_jobs_on_sqlite_get_shared_state_and_record_their_error_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = queuectl_store_sqlite::SqliteStore::open(dir.path().join("q.db")).unwrap();
    let scheduler = Scheduler::new(Arc::new(store));
    let once = EnqueueRequest {
        max_retries: Some(1),
        ..EnqueueRequest::default()
    };
    let emails = [
        email("a@example.com"),
        email("nobody"),
        email("b@example.com"),
    ];
    let ids = enqueue_typed_many(&scheduler, emails.iter().map(|e| (e, once.clone()))).unwrap();
    assert_eq!(ids.len(), 3);

    let mailer = Arc::new(FakeMailer::default());
    let shared: Arc<dyn Mailer> = mailer.clone();
    let report = WorkerPool::builder(scheduler.clone())
        .typed::<SendEmail>()
        .state(shared)
        .state(Arc::new("-- the team".to_owned()))
        .group_dir(dir.path().join("groups"))
        .build()
        .run_due()
        .unwrap();

    assert_eq!((report.succeeded, report.failed), (2, 1));
    assert_eq!(
        *mailer.sent.lock(),
        [
            "a@example.com: hello -- the team",
            "b@example.com: hello -- the team"
        ]
    );
    let bad = scheduler.store().get(&ids[1]).unwrap();
    assert_eq!(bad.state, JobState::Dead);
    assert_eq!(bad.exit_code, Some(1));
    assert_eq!(
        bad.last_error.as_deref(),
        Some("delivering to nobody: 550 no such mailbox: nobody")
    );
}

#[test]
fn a_handler_asking_for_state_nobody_gave_fails_naming_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
    let id = enqueue_typed(
        &scheduler,
        &email("a@example.com"),
        EnqueueRequest {
            max_retries: Some(1),
            ..EnqueueRequest::default()
        },
    )
    .unwrap();
    let report = WorkerPool::builder(scheduler.clone())
        .typed::<SendEmail>()
        .state(Arc::new("sig".to_owned()))
        .group_dir(dir.path().join("groups"))
        .build()
        .run_due()
        .unwrap();
    assert_eq!(report.failed, 1);
    let error = scheduler.store().get(&id).unwrap().last_error.unwrap();
    assert!(
        error.starts_with("no state of type dyn ") && error.contains("Mailer"),
        "{error}"
    );
}

#[test]
fn a_typed_batch_is_stored_all_or_nothing() {
    let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
    let with_id = |id: &str| EnqueueRequest {
        id: Some(id.into()),
        ..EnqueueRequest::default()
    };
    enqueue_typed(&scheduler, &email("first@example.com"), with_id("taken")).unwrap();

    // A duplicate of a stored job: nothing of the batch is stored.
    let (a, b) = (email("a@example.com"), email("b@example.com"));
    let err = enqueue_typed_many(&scheduler, [(&a, with_id("new")), (&b, with_id("taken"))]);
    assert!(err.is_err());
    assert_eq!(scheduler.store().counts().unwrap().total(), 1);
    // A duplicate within the batch: the same.
    let err = enqueue_typed_many(&scheduler, [(&a, with_id("x")), (&b, with_id("x"))]);
    assert!(err.is_err());
    assert_eq!(scheduler.store().counts().unwrap().total(), 1);

    let ids = enqueue_typed_many(
        &scheduler,
        [(&a, with_id("new")), (&b, EnqueueRequest::default())],
    )
    .unwrap();
    assert_eq!(ids[0].as_str(), "new");
    let stored = scheduler.store().get(&ids[1]).unwrap();
    assert_eq!(
        (stored.kind.as_str(), stored.command.as_str()),
        ("send-email", r#"{"to":"b@example.com","subject":"hello"}"#)
    );
    assert_eq!(
        enqueue_typed_many::<_, SendEmail, _>(&scheduler, []).unwrap(),
        Vec::new()
    );
}
