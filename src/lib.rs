//! queuectl: an embedded-first job queue.
//!
//! One SQLite file and no server by default, like SQLite itself; the same engine runs on
//! PostgreSQL when one machine is no longer enough, and in memory for tests. The
//! [`Scheduler`] owns the state machine (claim, retry with exponential backoff,
//! dead-letter, crash recovery) over any [`JobStore`].
//!
//! ```
//! use queuectl::prelude::*;
//! use queuectl::{EnqueueRequest, Outcome, Scheduler};
//! use queuectl_store_memory::MemoryStore;
//! use std::time::Duration;
//!
//! let scheduler = Scheduler::new(MemoryStore::new());
//! let id = scheduler.enqueue(EnqueueRequest::shell("echo hello"))?;
//! let jobs = scheduler.claim("worker-1", 10, &[], Duration::from_secs(15))?;
//! assert_eq!(jobs[0].id, id);
//! scheduler.finish(&jobs[0], Outcome::success())?;
//! assert_eq!(scheduler.store().get(&id)?.attempts, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Non-goals: distributed transactions with your application's database, cron syntax,
//! a web UI.
#![warn(missing_docs)]

pub mod bench;
mod clock;
pub mod config;
mod error;
pub mod input;
mod scheduler;
mod target;
#[cfg(feature = "testing")]
pub mod testing;
pub mod typed;
pub mod worker;

#[cfg(any(test, feature = "testing"))]
pub use crate::clock::ManualClock;
pub use crate::clock::{Clock, SystemClock};
pub use crate::config::{SettingKey, Settings};
pub use crate::error::{Error, Result};
pub use crate::scheduler::{
    backoff_delay, recovery_transition, EnqueueRequest, ExponentialBackoff, Outcome, Recovery,
    RetryPolicy, Scheduler, MAX_COMMAND_BYTES, MAX_ID_BYTES, MAX_INTERRUPTS, MIN_DELAY,
};
pub use crate::target::{open_store, StoreTarget};
pub use queuectl_store::{
    AttemptRecord, Call, Capabilities, ChangeFeed, ClaimRequest, ClaimToken, Coordination,
    Decorator, Execution, Guarded, Heartbeat, Job, JobFilter, JobId, JobOutput, JobRecord,
    JobState, JobStore, Jobs, LeaseRef, Marker, NewJob, StateCounts, StoreError, Timestamp,
    Transition, TransitionKind, Wake, WorkerInfo,
};

pub use queuectl_store::prelude;

/// The README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
