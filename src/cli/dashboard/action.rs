//! What the dashboard's buttons do. Each action is one variant: its route name, its label,
//! where it is offered, and the scheduler call it makes. Adding one (queue pause/resume,
//! once the store has them) is one variant and its match arms;
//! the routes, the buttons, the CSRF and read-only checks come with it.
//!
//! - [`JobAction`]: `POST /job/<name>` with form fields `id` and `csrf`, a button on the
//!   job's page in the states it applies to.
//! - [`BulkAction`]: `POST /jobs/<name>` with the field `csrf`, a button on the list of
//!   the state it acts on. (Purging the DLQ belongs here.)
//! - [`QueueAction`]: `POST /queue/<name>` with the fields `queue` and `csrf`, a button on
//!   each of the overview's queue rows.

use queuectl::{JobId, JobState, QueueSettings};

use crate::cli::open_store::Sched;

/// An action on one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobAction {
    /// `completed`, `failed`, `dead` or `cancelled` → `pending` with a fresh budget (`retry`).
    Retry,
    /// `pending` or `failed` → `cancelled`; `processing` → a cancel request its worker
    /// carries out (`cancel`).
    Cancel,
    /// Removes a job that is not `processing`, with its output and history (`delete`).
    Delete,
}

impl JobAction {
    /// Every job action, in the order the buttons appear.
    pub(crate) const ALL: [JobAction; 3] = [JobAction::Retry, JobAction::Cancel, JobAction::Delete];

    /// The route segment and form value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Cancel => "cancel",
            JobAction::Delete => "delete",
        }
    }

    /// The action named `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The button's text.
    pub(crate) fn label(self) -> &'static str {
        match self {
            JobAction::Retry => "Retry",
            JobAction::Cancel => "Cancel",
            JobAction::Delete => "Delete",
        }
    }

    /// Whether the button is offered for a job in `state`.
    pub(crate) fn offered(self, state: JobState) -> bool {
        match self {
            JobAction::Retry => JobState::RETRYABLE.contains(&state),
            JobAction::Cancel => matches!(
                state,
                JobState::Pending | JobState::Failed | JobState::Processing
            ),
            JobAction::Delete => state != JobState::Processing,
        }
    }

    /// A question the page asks before doing it, if it cannot be undone.
    pub(crate) fn confirm(self) -> Option<&'static str> {
        match self {
            JobAction::Retry => None,
            JobAction::Cancel => Some(
                "Cancel this job? A running job is stopped (TERM, then KILL). It will not run \
                 again unless retried.",
            ),
            JobAction::Delete => {
                Some("Delete this job with its output and history? This cannot be undone.")
            }
        }
    }

    /// What the job's page says after it was done.
    pub(crate) fn done(self) -> &'static str {
        match self {
            JobAction::Retry => "Requeued: the job is pending with a fresh budget of attempts.",
            JobAction::Cancel => {
                "Cancelled. A running job stays processing until its worker has stopped it \
                 (within seconds), then ends cancelled."
            }
            JobAction::Delete => "Deleted.",
        }
    }

    /// Where the browser goes once it was done: the job's page, or for a deleted job (which
    /// has no page any more) the list of jobs.
    pub(crate) fn redirect(self, job_page: &str) -> String {
        match self {
            JobAction::Delete => "/jobs".to_owned(),
            JobAction::Retry | JobAction::Cancel => format!("{job_page}&done={}", self.name()),
        }
    }

    /// Does it.
    pub(crate) fn apply(self, sched: &Sched, id: &JobId) -> queuectl::Result<()> {
        match self {
            JobAction::Retry => sched.retry(id).map(drop),
            JobAction::Cancel => sched.cancel(id).map(drop),
            JobAction::Delete => sched.delete(id).map(drop),
        }
    }
}

/// An action on every job of a state at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BulkAction {
    /// Every `dead` job → `pending` (`dlq retry --all`).
    RetryAllDead,
    /// Deletes every `dead` job (`dlq purge`).
    PurgeDead,
}

impl BulkAction {
    /// Every bulk action.
    pub(crate) const ALL: [BulkAction; 2] = [BulkAction::RetryAllDead, BulkAction::PurgeDead];

    /// The route segment.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BulkAction::RetryAllDead => "retry-all-dead",
            BulkAction::PurgeDead => "purge-dead",
        }
    }

    /// The action named `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The button's text.
    pub(crate) fn label(self) -> &'static str {
        match self {
            BulkAction::RetryAllDead => "Retry all dead jobs",
            BulkAction::PurgeDead => "Purge the dead-letter queue",
        }
    }

    /// The state whose list offers it.
    pub(crate) fn offered_on(self) -> JobState {
        match self {
            BulkAction::RetryAllDead | BulkAction::PurgeDead => JobState::Dead,
        }
    }

    /// A question the page asks before doing it.
    pub(crate) fn confirm(self) -> Option<&'static str> {
        match self {
            BulkAction::RetryAllDead => Some("Requeue every dead job?"),
            BulkAction::PurgeDead => {
                Some("Delete every dead job with its output and history? This cannot be undone.")
            }
        }
    }

    /// What the list says after it was done, given how many jobs it changed.
    pub(crate) fn done(self, n: u64) -> String {
        match self {
            BulkAction::RetryAllDead => {
                format!("Requeued {n} dead job{}.", if n == 1 { "" } else { "s" })
            }
            BulkAction::PurgeDead => {
                format!("Purged {n} dead job{}.", if n == 1 { "" } else { "s" })
            }
        }
    }

    /// Does it; returns how many jobs it changed.
    pub(crate) fn apply(self, sched: &Sched) -> queuectl::Result<u64> {
        match self {
            BulkAction::RetryAllDead => sched.requeue_all_dead(),
            BulkAction::PurgeDead => crate::cli::cmd::dlq::purge(sched, false),
        }
    }
}

/// An action on one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueAction {
    /// No worker starts the queue's jobs (`queue pause`).
    Pause,
    /// Workers start them again (`queue resume`).
    Resume,
}

impl QueueAction {
    /// Every queue action.
    pub(crate) const ALL: [QueueAction; 2] = [QueueAction::Pause, QueueAction::Resume];

    /// The route segment.
    pub(crate) fn name(self) -> &'static str {
        match self {
            QueueAction::Pause => "pause",
            QueueAction::Resume => "resume",
        }
    }

    /// The action named `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The button's text.
    pub(crate) fn label(self) -> &'static str {
        match self {
            QueueAction::Pause => "Pause",
            QueueAction::Resume => "Resume",
        }
    }

    /// The one button a queue's row offers: pause a running queue, resume a paused one.
    pub(crate) fn offered(paused: bool) -> Self {
        if paused {
            QueueAction::Resume
        } else {
            QueueAction::Pause
        }
    }

    /// Does it; returns the queue's settings after it.
    pub(crate) fn apply(self, sched: &Sched, queue: &str) -> queuectl::Result<QueueSettings> {
        match self {
            QueueAction::Pause => sched.pause_queue(queue),
            QueueAction::Resume => sched.resume_queue(queue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in JobAction::ALL {
            assert_eq!(JobAction::from_name(a.name()), Some(a));
        }
        for a in BulkAction::ALL {
            assert_eq!(BulkAction::from_name(a.name()), Some(a));
        }
        assert_eq!(JobAction::from_name("destroy"), None);
        for a in QueueAction::ALL {
            assert_eq!(QueueAction::from_name(a.name()), Some(a));
        }
    }

    #[test]
    fn buttons_are_offered_only_where_the_store_accepts_them() {
        let offered = |a: JobAction| -> Vec<JobState> {
            JobState::ALL
                .into_iter()
                .filter(|s| a.offered(*s))
                .collect()
        };
        assert_eq!(
            offered(JobAction::Retry),
            [
                JobState::Completed,
                JobState::Failed,
                JobState::Dead,
                JobState::Cancelled
            ]
        );
        assert_eq!(
            offered(JobAction::Delete),
            [
                JobState::Pending,
                JobState::Completed,
                JobState::Failed,
                JobState::Dead,
                JobState::Cancelled
            ]
        );
        assert_eq!(
            offered(JobAction::Cancel),
            [JobState::Pending, JobState::Processing, JobState::Failed]
        );
    }
}
