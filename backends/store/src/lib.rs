//! The storage seam of queuectl: the [`JobStore`] trait and the types every store shares.
//!
//! This crate is what the stores (`queuectl-store-memory`, `-sqlite`, `-postgres`) depend
//! on, and nothing else: it knows no SQL and no driver. The scheduler in the `queuectl`
//! crate drives a `JobStore` and owns every policy decision (backoff, dead-lettering,
//! lease loss); a store only applies atomic, guarded changes.
//!
//! ```
//! use queuectl_store::{JobState, NewJob, Timestamp};
//!
//! let job = NewJob::shell("echo hello", Timestamp::from_millis(0));
//! assert_eq!(job.queue, "default");
//! assert_eq!("dead".parse::<JobState>(), Ok(JobState::Dead));
//! ```
#![deny(missing_docs)]

mod decorator;
mod error;
mod feed;
mod job;
mod output;
mod overview;
mod queue;
mod request;
mod schedule;
mod store;
mod time;
mod transition;

pub use crate::decorator::{Call, Decorator};
pub use crate::error::{BoxError, DependencyProblem, StoreError, StoreResult};
pub use crate::feed::{Heartbeat, Marker, Wake};
pub use crate::job::{
    AttemptRecord, ClaimToken, Enqueued, Job, JobFilter, JobId, JobOptions, JobOutput, JobRecord,
    JobState, Limits, NewJob, StateCounts, UnknownState,
};
pub use crate::output::{keep_tail, split_marker, truncation_marker, LiveOutput, OUTPUT_LIMIT};
pub use crate::overview::{
    page_matches, queue_stats_of, AttemptStats, AttemptStatsBuilder, AttemptStatsRequest,
    Histogram, JobCursor, JobPage, JobPageRequest, QueueAttempts, QueueStats, ThroughputBucket,
};
pub use crate::queue::{QueueChange, QueueSettings};
pub use crate::request::{Capabilities, ClaimRequest, LeaseRef, PruneRequest, WorkerInfo};
pub use crate::schedule::{Fired, Schedule, ScheduleFire};
pub use crate::store::{ChangeFeed, Coordination, JobStore, Jobs};
pub use crate::time::Timestamp;
pub use crate::transition::{
    Execution, Guarded, Transition, TransitionKind, CANCELLED_WHILE_RUNNING,
};

pub mod prelude {
    //! The store traits, for code that calls a concrete store's methods:
    //! `use queuectl_store::prelude::*;`. Code bounded by `S: JobStore` needs none of them.
    pub use crate::{ChangeFeed, Coordination, JobStore, Jobs};
}
