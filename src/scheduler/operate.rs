//! The operator's writes of contract v2 ("Operating jobs and queues"): `retry`, `delete`,
//! `prune`, `dlq purge`, and the retention pass running workers make.

use std::time::Duration;

use queuectl_store::{Job, JobId, JobState, JobStore, PruneRequest, Timestamp};

use super::Scheduler;
use crate::config::Settings;
use crate::Result;

/// Most jobs one prune transaction deletes: a prune of a large history is many short
/// transactions, so workers and other writers are never held up behind it for long (and a
/// SQLite WAL never has to hold more than one batch).
pub const PRUNE_BATCH: u32 = 500;

/// How many jobs a [`Scheduler::prune_finished`] deleted (or would delete), per state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// `cancelled` jobs.
    pub cancelled: u64,
    /// `completed` jobs.
    pub completed: u64,
    /// `dead` jobs.
    pub dead: u64,
}

impl Pruned {
    /// Every job counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.cancelled + self.completed + self.dead
    }

    fn add(&mut self, state: JobState, n: u64) {
        match state {
            JobState::Cancelled => self.cancelled += n,
            JobState::Completed => self.completed += n,
            JobState::Dead => self.dead += n,
            _ => {}
        }
    }
}

impl<S: JobStore> Scheduler<S> {
    /// `retry`: a `completed`, `failed`, `dead` or `cancelled` job back to `pending` as
    /// `dlq retry` does (attempts and `last_error` reset, due now, history kept).
    ///
    /// # Errors
    /// `NotFound`, or `WrongState` naming the state (`pending`, `processing`), nothing
    /// changed.
    pub fn retry(&self, id: &JobId) -> Result<Job> {
        let job = self.store.requeue(id, &JobState::RETRYABLE, self.now())?;
        self.notify_work();
        Ok(job)
    }

    /// `delete`: removes a job that is not `processing`, with its output and history;
    /// returns it as it was.
    ///
    /// # Errors
    /// `NotFound`, or `WrongState` for a `processing` job, nothing changed.
    pub fn delete(&self, id: &JobId) -> Result<Job> {
        Ok(self.store.delete(id, self.now())?)
    }

    /// Deletes (or with `dry_run` counts) the jobs of each final state in `rules` that
    /// finished before its cutoff, in transactions of at most [`PRUNE_BATCH`] jobs.
    ///
    /// # Errors
    /// Store failures; the batches before the failing one stay deleted.
    pub fn prune_finished(&self, rules: &[(JobState, Timestamp)], dry_run: bool) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        for &(state, before) in rules {
            let mut req = PruneRequest {
                before,
                dry_run,
                limit: if dry_run { u32::MAX } else { PRUNE_BATCH },
                states: vec![state],
            };
            loop {
                let n = self.store.prune_finished(&req)?;
                pruned.add(state, n);
                if dry_run || n < u64::from(req.limit) {
                    break;
                }
                // The cutoff stays fixed, so jobs finishing meanwhile never qualify and
                // the loop ends.
                req.limit = PRUNE_BATCH;
            }
        }
        Ok(pruned)
    }

    /// The cutoffs retention sets now: one `(state, before)` per final state whose
    /// retention setting is not 0 (keep forever).
    #[must_use]
    pub fn retention_rules(&self, settings: &Settings) -> Vec<(JobState, Timestamp)> {
        let now = self.now();
        JobState::FINAL
            .into_iter()
            .filter_map(|state| settings.retention(state).map(|keep| (state, now.sub(keep))))
            .collect()
    }

    /// One retention pass, as running workers make once a minute: deletes what the
    /// `retention-*` settings allow, in batches.
    ///
    /// # Errors
    /// Settings or store failures.
    pub fn apply_retention(&self) -> Result<Pruned> {
        let settings = self.settings()?;
        self.prune_finished(&self.retention_rules(&settings), false)
    }
}

/// How often a running worker makes a retention pass.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
