//! Queue controls as the operator sees them: pause, resume, a concurrency limit, one row per
//! queue (`queue list`, `status`), and whether a draining worker has anything left to wait
//! for. The store enforces the controls inside every claim (see
//! [`queuectl_store::Jobs::claim`]); this is the vocabulary on top.

use std::collections::{BTreeMap, HashSet};

use queuectl_store::{JobFilter, JobState, JobStore, QueueChange, QueueSettings, StateCounts};

use super::Scheduler;
use crate::{Error, Result};

/// One queue as `queue list` shows it: its controls and its jobs by state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOverview {
    /// The queue's name.
    pub queue: String,
    /// Whether workers skip its jobs.
    pub paused: bool,
    /// At most this many of its jobs run at once; `None`: no limit.
    pub concurrency: Option<u32>,
    /// Its jobs in each state.
    pub counts: StateCounts,
}

impl<S: JobStore> Scheduler<S> {
    /// Every queue that holds jobs or has settings, sorted by name (byte order), with its
    /// controls and its jobs counted by state.
    ///
    /// # Errors
    /// Store failures.
    pub fn queue_overview(&self) -> Result<Vec<QueueOverview>> {
        let mut rows: BTreeMap<String, QueueOverview> = BTreeMap::new();
        for stats in self.store.queue_stats(self.now())? {
            rows.insert(
                stats.queue.clone(),
                QueueOverview {
                    queue: stats.queue,
                    paused: false,
                    concurrency: None,
                    counts: stats.counts,
                },
            );
        }
        for settings in self.store.queue_settings()? {
            let row = rows
                .entry(settings.queue.clone())
                .or_insert_with(|| QueueOverview {
                    queue: settings.queue.clone(),
                    paused: false,
                    concurrency: None,
                    counts: StateCounts::default(),
                });
            row.paused = settings.paused;
            row.concurrency = settings.concurrency;
        }
        Ok(rows.into_values().collect())
    }

    /// Pauses `queue`: no worker claims its jobs until [`Scheduler::resume_queue`]; jobs
    /// already running finish, and enqueueing still works. Returns its settings.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a blank name; store failures.
    pub fn pause_queue(&self, queue: &str) -> Result<QueueSettings> {
        self.change_queue(queue, QueueChange::Paused(true))
    }

    /// Resumes a paused `queue` (a queue that is not paused stays as it is). Returns its
    /// settings.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a blank name; store failures.
    pub fn resume_queue(&self, queue: &str) -> Result<QueueSettings> {
        self.change_queue(queue, QueueChange::Paused(false))
    }

    /// Limits `queue` to `limit` jobs `processing` at once across every worker (`None`:
    /// no limit). Jobs already running are not stopped when the new limit is lower. Returns
    /// its settings.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a limit of 0 or a blank name; store failures.
    pub fn set_queue_concurrency(&self, queue: &str, limit: Option<u32>) -> Result<QueueSettings> {
        if limit == Some(0) {
            return Err(Error::InvalidSetting {
                key: "concurrency".to_owned(),
                message: "concurrency must be an integer of at least 1, or none".to_owned(),
            });
        }
        self.change_queue(queue, QueueChange::Concurrency(limit))
    }

    fn change_queue(&self, queue: &str, change: QueueChange) -> Result<QueueSettings> {
        if queue.trim().is_empty() {
            return Err(Error::InvalidSetting {
                key: "queue".to_owned(),
                message: "the queue name must not be blank".to_owned(),
            });
        }
        let settings = self.store.set_queue_settings(queue, change, self.now())?;
        // A resumed queue, or a raised limit, may have jobs this process's idle workers
        // can take now.
        self.notify_work();
        Ok(settings)
    }

    /// Whether a draining worker serving `queues` (empty: every queue) is done: no job of
    /// those queues is claimable now or can become so, leaving aside paused queues.
    /// Future-dated and backed-off jobs count (they become due), and so do running ones
    /// (they may fail and come back); a limited queue that is full has running jobs.
    ///
    /// # Errors
    /// Store failures.
    pub fn queues_drained(&self, queues: &[String]) -> Result<bool> {
        let active = |c: &StateCounts| c.pending + c.failed + c.processing;
        // The common cases cost what they did before queue controls: nothing active at
        // all, or no paused queue to leave aside.
        let totals = self.store.counts()?;
        if active(&totals) == 0 {
            return Ok(true);
        }
        let paused: HashSet<String> = self
            .store
            .queue_settings()?
            .into_iter()
            .filter(|s| s.paused)
            .map(|s| s.queue)
            .collect();
        // Without paused queues or pending jobs (some of which may wait on dependencies)
        // a probe per queue and state says it; otherwise the per-queue counts.
        if paused.is_empty() && totals.pending == 0 {
            if queues.is_empty() {
                return Ok(false);
            }
            for queue in queues {
                for state in [JobState::Pending, JobState::Failed, JobState::Processing] {
                    let filter = JobFilter {
                        state: Some(state),
                        queue: Some(queue.clone()),
                        limit: Some(1),
                    };
                    if !self.store.list(&filter)?.is_empty() {
                        return Ok(false);
                    }
                }
            }
            return Ok(true);
        }
        // Jobs waiting on dependencies are left aside too: one becomes claimable only when
        // its parent completes, and a parent that may still complete is active itself.
        Ok(self
            .store
            .queue_stats(self.now())?
            .iter()
            .filter(|s| queues.is_empty() || queues.contains(&s.queue))
            .filter(|s| !paused.contains(&s.queue))
            .all(|s| active(&s.counts).saturating_sub(s.waiting) == 0))
    }
}
