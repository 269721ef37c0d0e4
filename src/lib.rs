//! queuectl: an embedded-first job queue.
//!
//! Jobs live in a store: one SQLite file by default and no server, like SQLite itself;
//! PostgreSQL when several machines share a queue; memory in tests. A [`Scheduler`] owns
//! the state machine (claim, retry with exponential backoff, dead-letter, recovery of jobs
//! whose worker died) over any [`JobStore`], and a [`WorkerPool`] claims jobs and runs each
//! one with the [`Handler`] registered for its kind: a shell command (what the `queuectl`
//! command line enqueues) or a Rust type implementing [`TypedJob`].
//!
//! ```
//! use queuectl::prelude::*; // the store traits, for `scheduler.store().get(…)`
//! use queuectl::{enqueue_typed, EnqueueRequest, JobContext, JobResult, JobState, MemoryStore};
//! use queuectl::{Scheduler, Shutdown, TypedJob, WorkerPool};
//! use serde::{Deserialize, Serialize};
//! use std::sync::Arc;
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail {
//!     to: String,
//! }
//!
//! impl TypedJob for SendEmail {
//!     const KIND: &'static str = "send-email";
//!
//!     fn run(&self, _ctx: &JobContext) -> JobResult {
//!         println!("sending mail to {}", self.to);
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> queuectl::Result<()> {
//! let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
//! let email = SendEmail { to: "ada@example.com".into() };
//! let id = enqueue_typed(&scheduler, &email, EnqueueRequest::default())?;
//!
//! // A pool in drain mode returns once no job is left to run.
//! let report = WorkerPool::builder(scheduler.clone())
//!     .typed::<SendEmail>()
//!     .drain(true)
//!     .build()
//!     .run(&Shutdown::new())?;
//! assert_eq!(report.succeeded, 1);
//! assert_eq!(scheduler.store().get(&id)?.state, JobState::Completed);
//! # Ok(())
//! # }
//! ```
//!
//! # Opening a queue
//!
//! [`Queue::open`] takes the same target strings as the command line's `--db`: a SQLite
//! file path (or `sqlite://PATH`), a `postgres://…` URL, or `memory:`. A [`Queue`] is a
//! [`Scheduler`] over whichever store that names, so jobs enqueued by an application are
//! seen by `queuectl status` and run by `queuectl worker start` on the same target, and
//! the other way round. When the store is fixed at compile time, build the scheduler
//! from the store itself: `Scheduler::new(SqliteStore::open("jobs.db")?)`.
//!
//! # Running jobs
//!
//! A [`WorkerPool`] runs in the foreground of the thread that calls [`WorkerPool::run`],
//! with one thread per slot plus a few helpers that never run job code: lease renewal
//! (every third of the lease while jobs run), a heartbeat, a recovery pass (expired
//! leases, and workers on this host whose process is gone), a check of the running jobs
//! for cancel requests, and, on PostgreSQL, a wake-up thread listening for other
//! processes' enqueues. A [`Shutdown`] stops it: graceful
//! (running jobs finish, nothing new is claimed) or immediate (running jobs are cancelled
//! and go back to `pending` uncharged). In drain mode ([`WorkerPoolBuilder::drain`]) it
//! returns by itself once no job of its queues is pending, failed or processing.
//!
//! Each job runs with the [`Handler`] registered for its `kind`: `shell` jobs through
//! [`ShellHandler`] (`sh -c COMMAND` in its own process group, with its timeout and
//! captured output), other kinds through whatever [`WorkerPoolBuilder::handler`] or
//! [`WorkerPoolBuilder::typed`] registered. A job counts as finished once its outcome is
//! recorded; until then its lease is renewed and no other worker can take it.
//!
//! ## Cancelling a running job
//!
//! [`Scheduler::cancel`] (the CLI's `cancel ID`, the dashboard's Cancel) of a `processing`
//! job records a request ([`Job::cancel_requested`]) and leaves the job `processing`. The
//! pool holding it, in any process on any host, asks the store about its running jobs
//! whenever the store's change marker moves (checked every 100 ms while jobs run) and at
//! least once a second, and passes the request on: [`JobContext::is_cancel_requested`]
//! turns true, [`JobContext::cancel_request_token`] is cancelled, [`JobContext::sleep`]
//! wakes and [`JobContext::should_stop`] says so. [`ShellHandler`] then sends SIGTERM to
//! the command's process group and SIGKILL after its grace. An in-process handler stops
//! cooperatively and returns whatever it likes: the store's guarded finish turns any
//! outcome of a job with a request into `cancelled` (`attempts` + 1, a history entry,
//! `last_error` [`CANCELLED_WHILE_RUNNING`]), and so does a recovery or a release of it.
//!
//! ```
//! # use std::time::Duration;
//! # use queuectl::{Job, JobContext, Outcome, Execution};
//! fn export(_job: &Job, ctx: &JobContext) -> Outcome {
//!     for _chunk in 0..1000 {
//!         if ctx.is_cancel_requested() {
//!             // Clean up; the job ends `cancelled` whatever is reported here.
//!             return Outcome::Failed {
//!                 execution: Execution::default(),
//!                 error: "stopped by an operator".into(),
//!             };
//!         }
//!         // … one chunk of work …
//!     }
//!     Outcome::Succeeded { execution: Execution::default() }
//! }
//! ```
//!
//! ## Liveness
//!
//! One rule decides that a registered worker is dead, used by every pool's recovery pass
//! and by [`live_workers`] and [`recover_dead_workers`] (the CLI's `status` and
//! `worker stop`): a worker on the same host (same host id, see [`default_host_id`]) whose
//! process is gone (or whose pid a later process reuses) is dead at once; any worker whose
//! heartbeat a running pool has seen stand still for three leases (at least 10 s, on its
//! monotonic clock, so wall-clock steps do not count) is dead. Recovery then kills the dead worker's orphaned job process
//! groups (same host only: each worker records its jobs' groups in a per-user directory,
//! see [`WorkerPoolBuilder::group_dir`]), puts its jobs back to `pending` uncharged and
//! removes its registry entry.
//!
//! # Typed jobs
//!
//! A type implementing [`TypedJob`] is a job: its fields are the arguments (stored as JSON
//! in the job's `command`), [`TypedJob::KIND`] names it (the job's `kind`) and
//! [`TypedJob::run`] does the work. [`enqueue_typed`] stores one and
//! [`WorkerPoolBuilder::typed`] registers the type with a pool. Retries, backoff, the
//! dead-letter queue, priorities and named queues work as for shell jobs: `Ok` completes
//! the job (`exit_code` 0), `Err` fails the attempt (`exit_code` 1, the message as its
//! `last_error`), and so does a panic.
//!
//! In-process code cannot be killed, so timeouts and cancellation are cooperative: `run`
//! checks [`JobContext::should_stop`] (or waits with [`JobContext::sleep`]) and returns
//! an error when it is true (an operator's cancel counts, see
//! [Cancelling a running job](#cancelling-a-running-job)). An error returned after the timeout passed is recorded as a
//! timeout (`exit_code` 124, "timeout after Ns").
//!
//! # What is where
//!
//! | | |
//! |---|---|
//! | the state machine | [`Scheduler`], [`EnqueueRequest`], [`Outcome`], [`Recovery`], [`QueueOverview`] (queue controls); [`Queue`] and [`StoreTarget`] to open one from a string |
//! | running jobs | [`WorkerPool`] and its [`WorkerPoolBuilder`], [`PoolReport`], [`Shutdown`], [`CancelToken`]; [`Handler`], [`JobContext`], [`ShellHandler`]; [`live_workers`] |
//! | typed jobs | [`TypedJob`], [`enqueue_typed`] |
//! | stores | [`MemoryStore`], [`SqliteStore`] ([`SqliteOptions`], [`Durability`]), `PostgresStore` and `PostgresOptions` (feature `postgres`) |
//! | the storage seam | [`JobStore`], the union of [`Jobs`], [`Coordination`] and [`ChangeFeed`] (in scope with `use queuectl::prelude::*` to call a store's methods), [`Decorator`] to wrap a store, and what they speak: [`Job`], [`JobId`], [`JobState`], [`JobRecord`], [`Timestamp`], [`Transition`], … |
//! | periodic jobs | [`Scheduler::add_schedule`], [`Scheduler::fire_due_schedules`] (which a [`WorkerPool`] given [`WorkerPoolBuilder::schedules`] calls), [`CronSpec`] (when a schedule fires, DST rules included), [`Schedule`] |
//! | settings | [`Settings`], [`SettingKey`]: the values `queuectl config` manages, stored in the queue; [`parse_duration`] and [`parse_whole_seconds`], the duration syntax they take |
//! | time | [`Clock`], [`SystemClock`], [`SteadyClock`]; `testing::ManualClock` (feature `testing`) |
//! | errors | [`Error`] and [`Result`]; [`StoreError`] inside [`Error::Store`] |
//!
//! # Features
//!
//! - **`cli`** (default): the `queuectl` binary and what only it needs (clap, anyhow,
//!   indicatif, ratatui, tracing-subscriber, the dashboard's axum and tokio). Nothing in the library depends on it; an application
//!   that embeds the engine turns it off with `default-features = false`.
//! - **`postgres`** (default): `PostgresStore` and `postgres://` targets. libpq is built
//!   from source, so no system library is needed. Without it, a `postgres://` target is
//!   an [`Error::InvalidTarget`].
//! - **`testing`**: the `testing` module for an application's own tests:
//!   a `ManualClock` that moves only when told to, and the reference model that checks a
//!   [`JobStore`] implementation.
//!
//! The SQLite and memory stores are always built.
//!
//! # Async applications
//!
//! The engine is synchronous: store calls block (SQLite and PostgreSQL go through Diesel),
//! and a pool runs one thread per slot. In an async application, run the pool on a
//! dedicated thread (or `spawn_blocking`) and enqueue with `spawn_blocking` or directly
//! (an enqueue is one short transaction); `examples/tokio_app.rs` in the repository shows both.
//!
//! # Non-goals
//!
//! - **Exactly-once execution.** Delivery is at least once: a job whose worker died is run
//!   again, so handlers should be idempotent (or check their own effects).
//! - **Enqueueing inside your application's database transaction.** The queue has its own
//!   store; a job enqueued just before your transaction rolls back stays enqueued.
//! - **An async runtime.** No tokio or other executor is pulled in; see above.
//! - **Windows.** Jobs run in their own Unix process groups and the worker reacts to
//!   Unix signals.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod clock;
mod config;
mod cron;
mod error;
mod queue;
mod scheduler;
mod target;
#[cfg(feature = "testing")]
pub mod testing;
mod typed;
mod worker;

pub use crate::clock::{Clock, SteadyClock, SystemClock};
pub use crate::config::{parse_duration, parse_whole_seconds, SettingKey, Settings};
pub use crate::cron::CronSpec;
pub use crate::error::{Error, Result};
pub use crate::queue::Queue;
pub use crate::scheduler::{
    fire_id, EnqueueRequest, FireReport, JobTemplate, Outcome, Pruned, QueueOverview, Recorded,
    Recovery, ScheduleRequest, Scheduler, PRUNE_BATCH, RETENTION_INTERVAL,
};
pub use crate::target::StoreTarget;
pub use crate::typed::{enqueue_typed, enqueue_typed_many, error_chain, JobResult, TypedJob};
pub use crate::worker::{
    apply_limits, default_host_id, exec_with_limits, limit_args, live_workers,
    recover_dead_workers, CancelToken, Handler, JobContext, MissingState, PoolReport,
    ProcessGroupGuard, ShellHandler, Shutdown, WorkerPool, WorkerPoolBuilder, DEFAULT_PREFETCH,
    TIMEOUT_EXIT_CODE,
};
pub use queuectl_store::prelude;
pub use queuectl_store::{
    AttemptRecord, AttemptStats, AttemptStatsRequest, BoxError, Call, Capabilities, ChangeFeed,
    ClaimRequest, ClaimToken, Coordination, Decorator, Enqueued, Execution, Fired, FoldedAttempts,
    Guarded, Heartbeat, Histogram, Job, JobCursor, JobFilter, JobId, JobOptions, JobOutput,
    JobPage, JobPageRequest, JobRecord, JobState, JobStore, Jobs, LeaseRef, Limits, LiveOutput,
    Marker, NewJob, PruneRequest, QueueAttempts, QueueChange, QueueSettings, QueueStats, Schedule,
    ScheduleFire, StateCounts, StoreError, StoreResult, ThroughputBucket, Timestamp, Transition,
    TransitionKind, UnknownState, Wake, WorkerInfo, CANCELLED_WHILE_RUNNING,
};
pub use queuectl_store_memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use queuectl_store_postgres::{PostgresOptions, PostgresStore};
pub use queuectl_store_sqlite::{Durability, SqliteOptions, SqliteStore};

/// The README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
