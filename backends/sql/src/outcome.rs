//! What a transition writes, read once for every place that applies transitions.

use queuectl_store::{
    Execution, Guarded, JobId, JobState, StoreError, StoreResult, TransitionKind,
};

/// What a transition that finishes an execution writes: the new state, the execution (exit
/// code and output), the error and, for a retry, when the job is due again.
#[derive(Clone, Copy, Debug)]
pub struct Finished<'a> {
    /// `completed`, `failed` or `dead`.
    pub state: JobState,
    /// Exit code and output of the execution.
    pub execution: &'a Execution,
    /// The job's new `last_error`.
    pub error: Option<&'a str>,
    /// The job's new `next_run_at`, in milliseconds (a retry's due time).
    pub next_run_at: Option<i64>,
}

impl<'a> Finished<'a> {
    /// What `kind` writes, if it finishes an execution (`Completed`, `Failed`, `Dead`);
    /// `None` for the kinds that end a claim without one.
    #[must_use]
    pub fn of(kind: &'a TransitionKind) -> Option<Self> {
        let (execution, state, error, next_run_at) = match kind {
            TransitionKind::Completed { execution } => (execution, JobState::Completed, None, None),
            TransitionKind::Failed {
                execution,
                error,
                retry_at,
            } => (
                execution,
                JobState::Failed,
                Some(error.as_str()),
                Some(retry_at.as_millis()),
            ),
            TransitionKind::Dead { execution, error } => {
                (execution, JobState::Dead, Some(error.as_str()), None)
            }
            TransitionKind::Recovered { .. }
            | TransitionKind::Released
            | TransitionKind::Abandoned { .. } => return None,
        };
        Some(Finished {
            state,
            execution,
            error,
            next_run_at,
        })
    }
}

/// `Applied` when a guarded single-row write changed its row, else `Stale`.
pub fn guarded(rows: usize) -> Guarded {
    if rows == 1 {
        Guarded::Applied
    } else {
        Guarded::Stale
    }
}

/// Fails with `Conflict` naming the first id that repeats an earlier one in `ids`: a batch
/// is all or nothing, and one that names a job twice is refused before it touches the
/// database.
///
/// # Errors
/// [`StoreError::Conflict`].
pub fn reject_repeats<'a>(ids: impl IntoIterator<Item = &'a JobId>) -> StoreResult<()> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(StoreError::Conflict(id.clone()));
        }
    }
    Ok(())
}
