//! Helpers for testing code that uses queuectl (feature `testing`).
//!
//! Add the feature for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! queuectl = { version = "0.1", default-features = false, features = ["testing"] }
//! ```
//!
//! - [`ManualClock`]: time that moves only when the test says so; a jump wakes the pools built on it. Give it to
//!   [`Scheduler::with_clock`](crate::Scheduler::with_clock) and a test can check delays,
//!   retry backoff and lease expiry without sleeping.
//! - [`WorkerPool::run_due`](crate::WorkerPool::run_due) (always available): runs every
//!   job that is due now on the calling thread, with the pool's handlers and state, and
//!   returns; with a `ManualClock`, advance the clock and call it again.
//! - [`model`]: the reference model that checks a [`JobStore`](crate::JobStore)
//!   implementation, for anyone writing a store or a store decorator.
//!
//! Pair them with [`MemoryStore`](crate::MemoryStore), which needs no files and starts
//! empty.
//!
//! A retry, tested without waiting for its backoff:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use queuectl::testing::ManualClock;
//! use queuectl::prelude::*;
//! use queuectl::{Clock, EnqueueRequest, JobState, MemoryStore, Outcome};
//! use queuectl::{Scheduler, Timestamp};
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_764_000_000_000)));
//! let scheduler = Scheduler::with_clock(MemoryStore::new(), clock.clone());
//! let lease = Duration::from_secs(15);
//! let id = scheduler.enqueue(EnqueueRequest::shell("deliver"))?;
//!
//! // The first attempt fails: with the default settings the job waits 2 s (2^1).
//! let job = scheduler.claim("worker-1", 1, &[], lease)?.remove(0);
//! scheduler.finish(&job, Outcome::failure("smtp timeout"))?;
//! assert_eq!(scheduler.store().get(&id)?.state, JobState::Failed);
//! assert!(scheduler.claim("worker-1", 1, &[], lease)?.is_empty());
//!
//! // Two seconds later, by the test's clock, it is due again.
//! clock.advance(Duration::from_secs(2));
//! let retry = scheduler.claim("worker-1", 1, &[], lease)?.remove(0);
//! assert_eq!((retry.id.clone(), retry.attempts), (id, 1));
//! assert_eq!(retry.started_at, Some(clock.now()));
//! # Ok::<(), queuectl::Error>(())
//! ```

pub mod model;

pub use crate::clock::ManualClock;
