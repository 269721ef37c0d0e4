//! Row ↔ type mapping: the only place that knows how columns encode `Job` fields.
//!
//! Timestamps are `BIGINT` milliseconds ([`Timestamp::as_millis`]); `u32` counters are
//! `BIGINT`; `timeout_secs` is `BIGINT` (a `u64` above `i64::MAX` is refused, not clamped);
//! states are their lowercase names. Reading a value that does not fit its type is
//! [`StoreError::Corrupt`], never a panic.

use diesel::prelude::*;
use queuectl_store::{
    AttemptRecord, ClaimToken, Job, JobId, JobOutput, JobState, NewJob, StoreError, StoreResult,
    Timestamp, WorkerInfo,
};

use crate::schema::{job_attempts, job_output, jobs, workers};

/// A `jobs` row as read.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub(crate) struct JobRow {
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) command: String,
    pub(crate) kind: String,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) max_retries: i64,
    pub(crate) priority: i32,
    pub(crate) queue: String,
    pub(crate) interrupts: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) run_at: i64,
    pub(crate) next_run_at: Option<i64>,
    pub(crate) timeout_secs: Option<i64>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) last_error: Option<String>,
    pub(crate) worker_id: Option<String>,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) lease_until: Option<i64>,
    pub(crate) claim_token: Option<i64>,
}

impl JobRow {
    /// Decodes the row.
    pub(crate) fn into_job(self) -> StoreResult<Job> {
        let id = self.id;
        let corrupt = |field: &str, value: &dyn std::fmt::Display| StoreError::Corrupt {
            what: format!("job {id}: {field} = {value}"),
        };
        let state = self
            .state
            .parse::<JobState>()
            .map_err(|_| corrupt("state", &self.state))?;
        let count = |field: &str, v: i64| u32::try_from(v).map_err(|_| corrupt(field, &v));
        let timeout_secs = match self.timeout_secs {
            Some(v) => Some(u64::try_from(v).map_err(|_| corrupt("timeout_secs", &v))?),
            None => None,
        };
        Ok(Job {
            command: self.command,
            kind: self.kind,
            state,
            attempts: count("attempts", self.attempts)?,
            max_retries: count("max_retries", self.max_retries)?,
            priority: self.priority,
            queue: self.queue,
            interrupts: count("interrupts", self.interrupts)?,
            created_at: Timestamp::from_millis(self.created_at),
            updated_at: Timestamp::from_millis(self.updated_at),
            run_at: Timestamp::from_millis(self.run_at),
            next_run_at: self.next_run_at.map(Timestamp::from_millis),
            timeout_secs,
            exit_code: self.exit_code,
            last_error: self.last_error,
            worker_id: self.worker_id,
            started_at: self.started_at.map(Timestamp::from_millis),
            finished_at: self.finished_at.map(Timestamp::from_millis),
            lease_until: self.lease_until.map(Timestamp::from_millis),
            claim_token: self.claim_token.map(ClaimToken),
            id: JobId::new(id),
        })
    }
}

/// Encodes `timeout_secs`, refusing values `BIGINT` cannot hold.
fn encode_timeout(id: &JobId, timeout_secs: Option<u64>) -> StoreResult<Option<i64>> {
    timeout_secs
        .map(|t| {
            i64::try_from(t).map_err(|_| StoreError::Backend {
                message: format!("job {id}: a timeout of {t} seconds is too large to store"),
                source: None,
            })
        })
        .transpose()
}

/// A `jobs` row to insert, with every column but `seq`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = jobs)]
pub(crate) struct InsertJobRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) command: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) state: &'static str,
    pub(crate) attempts: i64,
    pub(crate) max_retries: i64,
    pub(crate) priority: i32,
    pub(crate) queue: &'a str,
    pub(crate) interrupts: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) run_at: i64,
    pub(crate) next_run_at: Option<i64>,
    pub(crate) timeout_secs: Option<i64>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) last_error: Option<&'a str>,
    pub(crate) worker_id: Option<&'a str>,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) lease_until: Option<i64>,
    pub(crate) claim_token: Option<i64>,
}

/// Bind parameters per [`InsertJobRow`]; batch inserts are chunked by it.
pub(crate) const INSERT_JOB_PARAMS: usize = 21;

impl<'a> InsertJobRow<'a> {
    /// The row `enqueue` inserts: pending, never run.
    pub(crate) fn from_new(job: &'a NewJob, now: Timestamp) -> StoreResult<Self> {
        Ok(InsertJobRow {
            id: job.id.as_str(),
            command: &job.command,
            kind: &job.kind,
            state: JobState::Pending.as_str(),
            attempts: 0,
            max_retries: i64::from(job.max_retries),
            priority: job.priority,
            queue: &job.queue,
            interrupts: 0,
            created_at: now.as_millis(),
            updated_at: now.as_millis(),
            run_at: job.run_at.as_millis(),
            next_run_at: Some(job.run_at.as_millis()),
            timeout_secs: encode_timeout(&job.id, job.timeout_secs)?,
            exit_code: None,
            last_error: None,
            worker_id: None,
            started_at: None,
            finished_at: None,
            lease_until: None,
            claim_token: None,
        })
    }

    /// The row `import` inserts: the job verbatim.
    pub(crate) fn from_job(job: &'a Job) -> StoreResult<Self> {
        Ok(InsertJobRow {
            id: job.id.as_str(),
            command: &job.command,
            kind: &job.kind,
            state: job.state.as_str(),
            attempts: i64::from(job.attempts),
            max_retries: i64::from(job.max_retries),
            priority: job.priority,
            queue: &job.queue,
            interrupts: i64::from(job.interrupts),
            created_at: job.created_at.as_millis(),
            updated_at: job.updated_at.as_millis(),
            run_at: job.run_at.as_millis(),
            next_run_at: job.next_run_at.map(Timestamp::as_millis),
            timeout_secs: encode_timeout(&job.id, job.timeout_secs)?,
            exit_code: job.exit_code,
            last_error: job.last_error.as_deref(),
            worker_id: job.worker_id.as_deref(),
            started_at: job.started_at.map(Timestamp::as_millis),
            finished_at: job.finished_at.map(Timestamp::as_millis),
            lease_until: job.lease_until.map(Timestamp::as_millis),
            claim_token: job.claim_token.map(|t| t.0),
        })
    }
}

/// A `job_output` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = job_output, check_for_backend(diesel::pg::Pg))]
pub(crate) struct OutputRow {
    pub(crate) job_seq: i64,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl OutputRow {
    /// Decodes the row.
    pub(crate) fn into_output(self) -> JobOutput {
        JobOutput {
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// A `job_attempts` row as read.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = job_attempts, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AttemptRow {
    pub(crate) attempt: i64,
    pub(crate) started_at: i64,
    pub(crate) finished_at: i64,
    pub(crate) exit_code: Option<i32>,
    pub(crate) error: Option<String>,
}

impl AttemptRow {
    /// Decodes the row; `job` names the job in a corruption error.
    pub(crate) fn into_record(self, job: &JobId) -> StoreResult<AttemptRecord> {
        Ok(AttemptRecord {
            attempt: u32::try_from(self.attempt).map_err(|_| StoreError::Corrupt {
                what: format!("job {job}: history attempt = {}", self.attempt),
            })?,
            started_at: Timestamp::from_millis(self.started_at),
            finished_at: Timestamp::from_millis(self.finished_at),
            exit_code: self.exit_code,
            error: self.error,
        })
    }
}

/// A `job_attempts` row to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = job_attempts)]
pub(crate) struct InsertAttemptRow<'a> {
    pub(crate) job_seq: i64,
    pub(crate) attempt: i64,
    pub(crate) started_at: i64,
    pub(crate) finished_at: i64,
    pub(crate) exit_code: Option<i32>,
    pub(crate) error: Option<&'a str>,
}

/// Bind parameters per [`InsertAttemptRow`].
pub(crate) const INSERT_ATTEMPT_PARAMS: usize = 6;

impl<'a> InsertAttemptRow<'a> {
    /// The row for one history entry of job `job_seq`.
    pub(crate) fn from_record(job_seq: i64, rec: &'a AttemptRecord) -> Self {
        InsertAttemptRow {
            job_seq,
            attempt: i64::from(rec.attempt),
            started_at: rec.started_at.as_millis(),
            finished_at: rec.finished_at.as_millis(),
            exit_code: rec.exit_code,
            error: rec.error.as_deref(),
        }
    }
}

/// A `workers` row, as read and as written (without `seq`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = workers, check_for_backend(diesel::pg::Pg))]
pub(crate) struct WorkerRow {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: i64,
    pub(crate) slots: i64,
    pub(crate) queues: Vec<String>,
    pub(crate) started_at: i64,
    pub(crate) heartbeat_at: i64,
    pub(crate) stop_requested: bool,
}

impl WorkerRow {
    /// Encodes a worker.
    pub(crate) fn from_info(w: &WorkerInfo) -> Self {
        WorkerRow {
            id: w.id.clone(),
            host: w.host.clone(),
            pid: i64::from(w.pid),
            slots: i64::from(w.slots),
            queues: w.queues.clone(),
            started_at: w.started_at.as_millis(),
            heartbeat_at: w.heartbeat_at.as_millis(),
            stop_requested: w.stop_requested,
        }
    }

    /// Decodes the row.
    pub(crate) fn into_info(self) -> StoreResult<WorkerInfo> {
        let id = self.id;
        let corrupt = |field: &str, v: i64| StoreError::Corrupt {
            what: format!("worker {id}: {field} = {v}"),
        };
        Ok(WorkerInfo {
            host: self.host,
            pid: u32::try_from(self.pid).map_err(|_| corrupt("pid", self.pid))?,
            slots: u32::try_from(self.slots).map_err(|_| corrupt("slots", self.slots))?,
            queues: self.queues,
            started_at: Timestamp::from_millis(self.started_at),
            heartbeat_at: Timestamp::from_millis(self.heartbeat_at),
            stop_requested: self.stop_requested,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, attempts: i64) -> JobRow {
        JobRow {
            seq: 1,
            id: "a".into(),
            command: "true".into(),
            kind: "shell".into(),
            state: state.into(),
            attempts,
            max_retries: 3,
            priority: 0,
            queue: "default".into(),
            interrupts: 0,
            created_at: 1,
            updated_at: 2,
            run_at: 3,
            next_run_at: Some(3),
            timeout_secs: Some(10),
            exit_code: None,
            last_error: None,
            worker_id: None,
            started_at: None,
            finished_at: None,
            lease_until: None,
            claim_token: Some(7),
        }
    }

    #[test]
    fn decodes_a_valid_row() {
        let job = row("failed", 2).into_job().expect("valid row");
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.attempts, 2);
        assert_eq!(job.timeout_secs, Some(10));
        assert_eq!(job.claim_token, Some(ClaimToken(7)));
        assert_eq!(job.next_run_at, Some(Timestamp::from_millis(3)));
    }

    #[test]
    fn unknown_state_and_negative_counts_are_corrupt() {
        assert!(matches!(
            row("running", 0).into_job(),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            row("pending", -1).into_job(),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn oversized_timeout_is_refused_not_clamped() {
        let mut job = NewJob::shell("true", Timestamp::EPOCH);
        job.timeout_secs = Some(u64::MAX);
        assert!(InsertJobRow::from_new(&job, Timestamp::EPOCH).is_err());
    }
}
