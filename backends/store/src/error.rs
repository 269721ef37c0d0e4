//! The one error type every store returns.

use std::error::Error as StdError;
use std::fmt;

use crate::{JobId, JobState};

/// A boxed error from a store's driver, kept as the `source` of [`StoreError::Backend`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong in a store call.
///
/// The scheduler and the CLI branch on the semantic variants; driver details stay behind
/// [`StoreError::Backend`] and never appear in a public signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No job has this id.
    #[error("job {0} not found")]
    NotFound(JobId),
    /// A job with this id already exists; the stored job was left untouched.
    #[error("a job with id {0} already exists")]
    Conflict(JobId),
    /// Another job that is `pending`, `failed` or `processing` holds this unique key, so the
    /// operation (a retry) would make two; nothing changed.
    #[error("unique key '{key}' is held by job {holder}")]
    KeyHeld {
        /// The key.
        key: String,
        /// The job holding it.
        holder: JobId,
    },
    /// A dependency makes the operation impossible (an enqueue naming a parent that does
    /// not exist or ended `dead` or `cancelled`, a retry of a dependant whose parent did);
    /// nothing changed.
    #[error("job {job}: dependency {parent} {problem}")]
    Dependency {
        /// The job being enqueued or retried.
        job: JobId,
        /// The parent at fault.
        parent: JobId,
        /// What is wrong with it.
        problem: DependencyProblem,
    },
    /// The job exists but is not in a state the operation accepts; nothing changed.
    #[error("job {id} is {state}")]
    WrongState {
        /// The job.
        id: JobId,
        /// The state it is in.
        state: JobState,
    },
    /// The store stayed busy (locked, pool exhausted, serialization failure) for longer than
    /// its bounded wait. Transient: the same call may succeed later.
    #[error("the store is busy: {0}")]
    Busy(String),
    /// A stored value could not be decoded (unknown state string, malformed row).
    #[error("corrupt data in the store: {what}")]
    Corrupt {
        /// What could not be decoded.
        what: String,
    },
    /// Creating or upgrading the schema failed.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The store was migrated by a newer queuectl: its schema has a migration this build
    /// does not know, so this build can neither read nor write it safely. Nothing was
    /// changed. Not transient: only a newer queuectl (or restoring a backup) helps.
    #[error(
        "the store was migrated by a newer queuectl (store schema version {theirs}, this \
         queuectl knows up to {ours}); use a queuectl at least as new as the one that \
         migrated it"
    )]
    NewerSchema {
        /// The newest migration this build knows (its schema version).
        ours: String,
        /// The newest migration recorded in the store.
        theirs: String,
    },
    /// The store cannot be opened or reached (bad path, permission, server down).
    #[error("cannot open the store: {message}")]
    Unavailable {
        /// What was tried and why it failed, in words for people.
        message: String,
        /// The driver's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// Any other driver failure.
    #[error("store error: {message}")]
    Backend {
        /// What the store was doing.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// A [`StoreError::Backend`] with a message and a source.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether retrying the same call later may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy(_))
    }

    /// The id of the job this error is about, if any.
    #[must_use]
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            StoreError::NotFound(id) | StoreError::Conflict(id) => Some(id),
            StoreError::WrongState { id, .. } => Some(id),
            StoreError::KeyHeld { holder, .. } => Some(holder),
            StoreError::Dependency { job, .. } => Some(job),
            _ => None,
        }
    }
}

/// The result type of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with a dependency; see [`StoreError::Dependency`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DependencyProblem {
    /// No job has that id.
    Unknown,
    /// The parent is `dead`: it will never complete.
    Dead,
    /// The parent is `cancelled`: it will never complete.
    Cancelled,
    /// The parent was deleted before it completed.
    Deleted,
    /// The job names itself.
    Itself,
    /// The parent comes later in the same batch (a job may depend only on stored jobs
    /// and on jobs earlier in its batch, which also rules out cycles).
    LaterInBatch,
}

impl fmt::Display for DependencyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DependencyProblem::Unknown => "does not exist",
            DependencyProblem::Dead => "is dead",
            DependencyProblem::Cancelled => "is cancelled",
            DependencyProblem::Deleted => "was deleted before it completed",
            DependencyProblem::Itself => "is the job itself (a cycle)",
            DependencyProblem::LaterInBatch => {
                "comes later in the batch (a job may depend only on stored jobs and on jobs \
                 earlier in its batch, so no cycle can form)"
            }
        })
    }
}
