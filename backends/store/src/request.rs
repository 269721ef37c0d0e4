//! Parameter and result structs of store calls that take more than a few arguments.

use crate::{ClaimToken, JobId, JobState, Timestamp};

/// What [`crate::Jobs::claim`] should take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// At most this many jobs.
    pub limit: u32,
    /// Stamped on every claimed job.
    pub worker_id: String,
    /// Jobs due at or before this instant are claimable; also the new `started_at`.
    pub now: Timestamp,
    /// The lease deadline stamped on every claimed job.
    pub lease_until: Timestamp,
    /// Only jobs in these queues; empty means every queue.
    pub queues: Vec<String>,
}

/// One lease to extend: the job and the claim it must still be held under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRef {
    /// The job.
    pub id: JobId,
    /// The claim.
    pub token: ClaimToken,
}

/// A worker process's entry in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Unique per worker process (e.g. `host:pid:random`).
    pub id: String,
    /// Host id: the hostname unless overridden.
    pub host: String,
    /// OS process id on `host`.
    pub pid: u32,
    /// Number of concurrent job slots.
    pub slots: u32,
    /// Queues it serves; empty means every queue.
    pub queues: Vec<String>,
    /// When it registered.
    pub started_at: Timestamp,
    /// Its last heartbeat.
    pub heartbeat_at: Timestamp,
    /// Whether `worker stop` asked it to stop.
    pub stop_requested: bool,
}

/// What the store can do beyond the trait's baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Several OS processes may claim from the same store concurrently (SQLite file,
    /// PostgreSQL), not just threads of one process (memory).
    pub multi_process: bool,
}

impl Capabilities {
    /// Capabilities with every flag off.
    #[must_use]
    pub const fn none() -> Self {
        Capabilities {
            multi_process: false,
        }
    }

    /// Sets `multi_process`.
    #[must_use]
    pub const fn with_multi_process(mut self, yes: bool) -> Self {
        self.multi_process = yes;
        self
    }
}

/// What [`crate::Jobs::prune_finished`] deletes (or, with `dry_run`, counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneRequest {
    /// Only jobs that reached their final state strictly before this instant. A job's
    /// finish time is its `updated_at`: nothing writes a job once it is in a final state
    /// but the calls that take it out of it (a requeue) or delete it.
    pub before: Timestamp,
    /// Count what would be deleted, delete nothing.
    pub dry_run: bool,
    /// At most this many jobs (the oldest finished first).
    pub limit: u32,
    /// The states to delete from; states that are not final ([`JobState::FINAL`]) are
    /// ignored, so a running or waiting job is never pruned.
    pub states: Vec<JobState>,
}
