//! Guarded state changes of a claimed job: the only way a `processing` job leaves that state.
//!
//! The scheduler decides *which* transition applies (policy); the store applies it
//! atomically with the bookkeeping fixed here (mechanism). Each kind documents exactly
//! what it writes, and every store must write the same.

use crate::{ClaimToken, JobId, JobOutput, Timestamp};

/// A change to one `processing` job, applied only while the job is still `processing`
/// under `token` (see [`crate::Jobs::finish`]), and for the lease-guarded kinds only
/// while its lease is still expired (see [`TransitionKind::only_if_lease_expired`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The job.
    pub id: JobId,
    /// The claim this change belongs to.
    pub token: ClaimToken,
    /// What happens.
    pub kind: TransitionKind,
}

/// The `last_error` (and history error) of a job that ended `cancelled` because an
/// operator cancelled it while it ran.
pub const CANCELLED_WHILE_RUNNING: &str = "cancelled while running";

/// The outcome of an execution, as recorded on the job and in its history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Execution {
    /// Exit code, if the process exited (124 for a timeout, 127 for not found).
    pub exit_code: Option<i32>,
    /// Captured output.
    pub output: JobOutput,
}

/// What a [`Transition`] does.
///
/// Bookkeeping common to all kinds: `updated_at = now`; `lease_until` and `claim_token`
/// are cleared. The kinds that finish an execution (`Completed`, `Failed`, `Dead`) also
/// set `attempts += 1`, `finished_at = now`, `exit_code`, replace the stored output and
/// append one history entry (`attempt` = the new `attempts`, `started_at` = the job's
/// `started_at`, `finished_at = now`, `exit_code`, `error`).
///
/// Guard common to all kinds: the job is `processing` and its `claim_token` is the
/// transition's. `Recovered` and `Abandoned` with `only_if_expired: true` add one more
/// condition to the same atomic check: `lease_until < now` (the `now` passed to
/// [`crate::Jobs::finish`], the same comparison as [`crate::Jobs::expired_leases`]).
/// A recovery decided from an `expired_leases` read uses it, so an owner that renewed its
/// lease between that read and the write keeps its job (the transition is `Stale`); a
/// recovery of a worker known to be dead uses `only_if_expired: false`, whatever its lease
/// says. The guard changes only *whether* the write happens, never what it writes.
///
/// A cancel request overrides the kind: when an applied transition finds the job's
/// `cancel_requested` set (see [`crate::Jobs::cancel`]), it writes, whatever its kind and
/// in the same atomic write, state `cancelled`, `attempts += 1`, `finished_at = now`,
/// `last_error` = [`CANCELLED_WHILE_RUNNING`], `next_run_at` cleared, `cancel_requested`
/// cleared, `interrupts` unchanged, and one history entry with that error; `exit_code` is
/// the execution's for the kinds that carry one (and the output is replaced as usual),
/// `None` for `Recovered`, `Abandoned` and `Released` (the output is then kept). So a
/// cancel wins over an exit, a timeout or a recovery that lands after it was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionKind {
    /// It succeeded: state `completed`, `last_error` cleared, `next_run_at` cleared.
    Completed {
        /// The execution.
        execution: Execution,
    },
    /// It failed with attempts left: state `failed`, `last_error = error`,
    /// `next_run_at = retry_at`.
    Failed {
        /// The execution.
        execution: Execution,
        /// What went wrong, for people.
        error: String,
        /// When it may run again (the scheduler's backoff).
        retry_at: Timestamp,
    },
    /// It failed and the budget is spent: state `dead`, `last_error = error`,
    /// `next_run_at` cleared.
    Dead {
        /// The execution.
        execution: Execution,
        /// What went wrong, for people.
        error: String,
    },
    /// Its worker died or its lease expired: state `pending`, `interrupts += 1`,
    /// `next_run_at = now`, `attempts` unchanged, no history entry.
    Recovered {
        /// Applies only if, in addition, `lease_until < now` at write time.
        only_if_expired: bool,
    },
    /// Interrupted too often: state `dead`, `interrupts += 1`, `last_error = error`,
    /// `next_run_at` cleared, `attempts` unchanged, no history entry.
    Abandoned {
        /// Why, for people.
        error: String,
        /// Applies only if, in addition, `lease_until < now` at write time.
        only_if_expired: bool,
    },
    /// Its worker stopped at once and gave it back: state `pending`, `next_run_at = now`,
    /// `attempts` and `interrupts` unchanged, no history entry.
    Released,
}

impl TransitionKind {
    /// Whether the guard also requires `lease_until < now`: a `Recovered` or `Abandoned`
    /// with `only_if_expired: true`.
    #[must_use]
    pub fn only_if_lease_expired(&self) -> bool {
        matches!(
            self,
            TransitionKind::Recovered {
                only_if_expired: true
            } | TransitionKind::Abandoned {
                only_if_expired: true,
                ..
            }
        )
    }
}

/// Whether a guarded write was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Guarded {
    /// The job was `processing` under the token; the write happened.
    Applied,
    /// The job is missing, not `processing`, held under another token, or (for a
    /// lease-guarded kind) its lease is not expired; nothing changed.
    Stale,
}

impl Guarded {
    /// Whether the write happened.
    #[must_use]
    pub fn is_applied(self) -> bool {
        self == Guarded::Applied
    }
}
