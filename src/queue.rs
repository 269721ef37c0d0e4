//! [`Queue`]: a scheduler over whichever store a target string names.

use std::sync::Arc;

use queuectl_store::JobStore;

use crate::{Result, Scheduler, StoreTarget};

/// A [`Scheduler`] over a store chosen at run time: what [`Queue::open`] returns.
///
/// It is the scheduler itself, so everything [`Scheduler`] offers works on it: enqueue
/// jobs ([`Scheduler::enqueue`], [`enqueue_typed`](crate::enqueue_typed)), read them
/// through [`Scheduler::store`], and hand a clone to [`WorkerPool::builder`] to run them.
/// Clones share the store and wake each other's idle workers.
///
/// Use [`Scheduler<S>`](Scheduler) with a concrete store type instead when the store is
/// fixed at compile time (`Scheduler::new(MemoryStore::new())` in a test).
///
/// [`WorkerPool::builder`]: crate::WorkerPool::builder
pub type Queue = Scheduler<Arc<dyn JobStore>>;

impl Queue {
    /// Opens the queue a target string names, creating and migrating its store on first
    /// use: a SQLite file path (or `sqlite://PATH`), a `postgres://…` URL (feature
    /// `postgres`), or `memory:`. The same strings as the command line's `--db`; see
    /// [`StoreTarget`] for the rules.
    ///
    /// ```
    /// use queuectl::{EnqueueRequest, JobState, Queue};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let queue = Queue::open(dir.path().join("jobs.db").to_str().ok_or("path")?)?;
    /// let id = queue.enqueue(EnqueueRequest::shell("echo hello"))?;
    /// assert_eq!(queue.store().get(&id)?.state, JobState::Pending);
    ///
    /// assert!(Queue::open("memory:").is_ok());
    /// assert!(Queue::open("mysql://db/jobs").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidTarget`](crate::Error::InvalidTarget) for a string that names no
    /// store (or a PostgreSQL URL without the `postgres` feature);
    /// [`Error::Store`](crate::Error::Store) when the store cannot be opened or migrated.
    pub fn open(target: &str) -> Result<Queue> {
        Ok(Scheduler::new(StoreTarget::parse(target)?.open()?))
    }
}
