//! The job record and its state.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A job's id: an opaque, non-blank string (a UUID v4 unless the client chose one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// Wraps a string as an id. Blank ids are rejected at the input boundary, not here.
    pub fn new(id: impl Into<String>) -> Self {
        JobId(id.into())
    }

    /// A fresh random UUID v4.
    #[must_use]
    pub fn random() -> Self {
        JobId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        JobId(s.to_owned())
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        JobId(s)
    }
}

/// Where a job is in its life. The same words are used in the database, the CLI and JSON.
///
/// ```text
/// pending ──claim──▶ processing ──ok──▶ completed
///    ▲                 │  │  └──fail, budget left──▶ failed ──claim (after backoff)──▶ processing
///    │                 │  └──fail, budget spent / interrupted too often──▶ dead
///    └──recover/release┘                                                  │
///    ▲                                                                    │
///    └────────────────────────────── dlq retry ───────────────────────────┘
/// pending | failed ──cancel──▶ cancelled
/// processing ──cancel (request) ──any guarded finish or recovery──▶ cancelled
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run once `next_run_at` has passed. In: enqueue, recovery, release,
    /// `dlq retry`. Out: claim, cancel.
    Pending,
    /// Held by one worker under a claim token and a lease. In: claim. Out: finish
    /// (completed, failed, dead), recovery or release (pending).
    Processing,
    /// Ran and exited 0. Terminal.
    Completed,
    /// Ran and failed with attempts left; claimable again after `next_run_at` (its backoff).
    /// In: finish. Out: claim, cancel.
    Failed,
    /// Out of attempts, or interrupted too often: the dead-letter queue. Out: `dlq retry`.
    Dead,
    /// Cancelled by an operator before it ran again. Terminal.
    Cancelled,
}

impl JobState {
    /// Every state, in the order `status` prints them.
    pub const ALL: [JobState; 6] = [
        JobState::Pending,
        JobState::Processing,
        JobState::Completed,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The state's name as stored and printed.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Processing => "processing",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether a job in this state holds its `unique_key`: `pending`, `failed` or
    /// `processing` (it may still run).
    #[must_use]
    pub const fn holds_unique_key(self) -> bool {
        matches!(
            self,
            JobState::Pending | JobState::Failed | JobState::Processing
        )
    }

    /// Whether a claim may pick up a job in this state (once it is due).
    #[must_use]
    pub const fn is_claimable(self) -> bool {
        matches!(self, JobState::Pending | JobState::Failed)
    }

    /// The states a job ends in (`completed`, `dead`, `cancelled`): the only ones
    /// [`crate::Jobs::prune_finished`] deletes from.
    pub const FINAL: [JobState; 3] = [JobState::Completed, JobState::Dead, JobState::Cancelled];

    /// Whether a job in this state has ended: see [`JobState::FINAL`].
    #[must_use]
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Dead | JobState::Cancelled
        )
    }

    /// The states `retry` requeues from (`completed`, `failed`, `dead`, `cancelled`): every
    /// state but those of a job waiting to run or running.
    pub const RETRYABLE: [JobState; 4] = [
        JobState::Completed,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];
}

/// The error of parsing an unknown state name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown state '{}' (valid: pending, processing, completed, failed, dead, cancelled)",
            self.0
        )
    }
}

impl std::error::Error for UnknownState {}

impl FromStr for JobState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A fencing token stamped on a job by each claim.
///
/// Guarded writes (`finish`, `renew_lease`) apply only while the job is `processing` under
/// the same token, so a worker whose lease was recovered cannot overwrite a newer claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimToken(pub i64);

impl ClaimToken {
    /// A fresh random token. Stores call this once per claim call.
    #[must_use]
    pub fn random() -> Self {
        let (hi, _) = uuid::Uuid::new_v4().as_u64_pair();
        // Keep it positive so it reads well in SQL and logs; 63 random bits are plenty,
        // the guard also checks the job id.
        ClaimToken(i64::from_ne_bytes(hi.to_ne_bytes()) & i64::MAX)
    }
}

impl fmt::Display for ClaimToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A job to insert. Defaults (max retries, timeout) are resolved by the scheduler before
/// it reaches the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The id; unique in the store.
    pub id: JobId,
    /// What the job does: the `sh -c` command line for `kind = "shell"`, the serialized
    /// arguments for a typed library job.
    pub command: String,
    /// Which handler runs it: `"shell"` for CLI jobs, a job type's name for library jobs.
    pub kind: String,
    /// Total attempts allowed (0 behaves as 1).
    pub max_retries: u32,
    /// Higher runs first.
    pub priority: i32,
    /// Named queue.
    pub queue: String,
    /// Not claimable before this instant.
    pub run_at: Timestamp,
    /// Per-attempt timeout in seconds; `None` means no timeout.
    pub timeout_secs: Option<u64>,
    /// Where and how the command runs, and when the job may be stored.
    pub options: JobOptions,
}

impl NewJob {
    /// A shell job with the given command, due at `run_at`, with default options
    /// (3 attempts, priority 0, queue `default`, no timeout, a random id).
    pub fn shell(command: impl Into<String>, run_at: Timestamp) -> Self {
        NewJob {
            id: JobId::random(),
            command: command.into(),
            kind: "shell".to_owned(),
            max_retries: 3,
            priority: 0,
            queue: "default".to_owned(),
            run_at,
            timeout_secs: None,
            options: JobOptions::default(),
        }
    }
}

/// A stored job, as every read returns it (without output and history; see [`JobRecord`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The id.
    pub id: JobId,
    /// See [`NewJob::command`].
    pub command: String,
    /// See [`NewJob::kind`].
    pub kind: String,
    /// Current state.
    pub state: JobState,
    /// Finished executions, successful or not. Never charged by claim or recovery.
    pub attempts: u32,
    /// Total attempts allowed, snapshotted at enqueue.
    pub max_retries: u32,
    /// Higher runs first.
    pub priority: i32,
    /// Named queue.
    pub queue: String,
    /// Times this job's worker died (or its lease expired) while it ran.
    pub interrupts: u32,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// When any field last changed.
    pub updated_at: Timestamp,
    /// The instant requested at enqueue (or by `dlq retry`).
    pub run_at: Timestamp,
    /// When it becomes claimable: `Some` exactly while `pending` or `failed`.
    pub next_run_at: Option<Timestamp>,
    /// Per-attempt timeout in seconds.
    pub timeout_secs: Option<u64>,
    /// Exit code of the last finished attempt.
    pub exit_code: Option<i32>,
    /// Error of the last failed attempt; cleared by a success.
    pub last_error: Option<String>,
    /// The worker that claimed it last.
    pub worker_id: Option<String>,
    /// When the current or last attempt started.
    pub started_at: Option<Timestamp>,
    /// When the last attempt finished.
    pub finished_at: Option<Timestamp>,
    /// While `processing`: the lease deadline, after which recovery may take the job back.
    pub lease_until: Option<Timestamp>,
    /// While `processing`: the current claim's fencing token.
    pub claim_token: Option<ClaimToken>,
    /// While `processing`: an operator asked to stop it (`cancel`); its worker kills it
    /// and whatever its guarded finish reports, the job ends `cancelled`. `false` in
    /// every other state.
    pub cancel_requested: bool,
    /// See [`NewJob::options`]; fixed at enqueue.
    pub options: JobOptions,
}

/// What a job says about where and how its command runs (`cwd`, `env`, `limits`) and about
/// its place among other jobs (`unique_key`, `depends_on`): the job JSON's version-2
/// fields. Fixed at enqueue; every field's default means "as in version 1".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// Absolute working directory of the command; `None`: the worker's.
    pub cwd: Option<String>,
    /// Variables added to (and overriding) the worker's environment for the command.
    pub env: BTreeMap<String, String>,
    /// Resource limits applied to the command before it execs; `None`: none.
    pub limits: Option<Limits>,
    /// While a job holding this key is `pending`, `failed` or `processing`, no other job
    /// with the key is stored ([`JobState::holds_unique_key`]).
    pub unique_key: Option<String>,
    /// Jobs that must complete before this one is claimable.
    pub depends_on: Vec<JobId>,
}

/// Resource limits of a job's command, each optional and > 0. They are the job's own
/// `setrlimit` limits, inherited by everything the command starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Data memory (heap and private mappings) in MiB (`RLIMIT_DATA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// CPU time in seconds (`RLIMIT_CPU`): the kernel sends `SIGXCPU` when it is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<u64>,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// Processes of the worker's user (`RLIMIT_NPROC`, which counts every process of the
    /// user, not only the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
}

impl Limits {
    /// Whether no limit is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// One finished execution, kept in a job's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// 1-based attempt number (the job's `attempts` after it finished).
    pub attempt: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished.
    pub finished_at: Timestamp,
    /// Its exit code, if the process exited (124 for a timeout).
    pub exit_code: Option<i32>,
    /// Its error, `None` on success.
    pub error: Option<String>,
    /// What it wrote (empty when it wrote nothing, and then nothing is stored for it).
    pub output: JobOutput,
}

/// Captured output of an attempt: each stream's tail, preceded by a truncation marker line
/// when it was cut (see [`crate::truncation_marker`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobOutput {
    /// Standard output (already capped by the executor).
    pub stdout: String,
    /// Standard error (already capped by the executor).
    pub stderr: String,
}

impl JobOutput {
    /// Whether both streams are empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

/// A job with everything the store keeps about it: its history, each entry with its
/// output, and the last attempt's output apart. `show` prints it; `import` inserts it
/// verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// The job row.
    pub job: Job,
    /// Output of the last finished attempt, if any: the same as the last `history`
    /// entry's `output`. On [`crate::Jobs::import`], it stands for that entry's output when
    /// the entry's own is empty (records built before each attempt kept its output).
    pub output: Option<JobOutput>,
    /// One entry per finished attempt, oldest first.
    pub history: Vec<AttemptRecord>,
}

impl JobRecord {
    /// The history as [`crate::Jobs::import`] stores it: the entries verbatim, except that
    /// a last entry with empty output takes [`JobRecord::output`] when that is set.
    #[must_use]
    pub fn history_for_import(&self) -> Vec<AttemptRecord> {
        let mut history = self.history.clone();
        if let (Some(last), Some(output)) = (history.last_mut(), &self.output) {
            if last.output.is_empty() {
                last.output = output.clone();
            }
        }
        history
    }

    /// [`JobRecord::output`] as a store derives it from the history: the last entry's.
    #[must_use]
    pub fn last_output(history: &[AttemptRecord]) -> Option<JobOutput> {
        history.last().map(|h| h.output.clone())
    }
}

/// Which jobs `list` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Number of jobs in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// `pending` jobs (including future-dated ones).
    pub pending: u64,
    /// `processing` jobs.
    pub processing: u64,
    /// `completed` jobs.
    pub completed: u64,
    /// `failed` jobs (waiting out their backoff).
    pub failed: u64,
    /// `dead` jobs: the dead-letter queue.
    pub dead: u64,
    /// `cancelled` jobs.
    pub cancelled: u64,
}

impl StateCounts {
    /// The count for one state.
    #[must_use]
    pub fn get(&self, state: JobState) -> u64 {
        match state {
            JobState::Pending => self.pending,
            JobState::Processing => self.processing,
            JobState::Completed => self.completed,
            JobState::Failed => self.failed,
            JobState::Dead => self.dead,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// Mutable access to the count for one state.
    pub fn get_mut(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Pending => &mut self.pending,
            JobState::Processing => &mut self.processing,
            JobState::Completed => &mut self.completed,
            JobState::Failed => &mut self.failed,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        }
    }

    /// All jobs.
    #[must_use]
    pub fn total(&self) -> u64 {
        JobState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// What [`crate::Jobs::enqueue_batch`] did with one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored as a new `pending` job.
    Stored,
    /// Not stored: the job with this id holds the new job's `unique_key`.
    Held(JobId),
}
