//! Rows ↔ store types: the only place that knows how a field is encoded in a column, for
//! both dialects.
//!
//! Encodings: timestamps are 64-bit integer milliseconds since the epoch
//! ([`Timestamp::as_millis`]); states are their lowercase names; `u32` counters are 64-bit
//! integers (so every `u32` fits); `timeout_secs` is a 64-bit integer and values above
//! `i64::MAX` are refused rather than wrapped; a worker's queues are a JSON array of strings
//! in a text column. Decoding never trusts the database: a value out of its type's range is
//! [`StoreError::Corrupt`], not a panic.

use std::collections::BTreeMap;

use diesel::prelude::*;
use queuectl_store::{
    AttemptRecord, ClaimToken, Job, JobId, JobOptions, JobOutput, JobState, LiveOutput, NewJob,
    QueueSettings, Schedule, StoreError, StoreResult, Timestamp, WorkerInfo,
};

use crate::schema::{job_attempts, jobs, live_output, queue_settings, schedules, workers};

/// A `jobs` row as read back: by [`Selectable`] in the shared queries, by name
/// ([`QueryableByName`]) from a dialect's hand-written claim.
#[derive(Debug, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs)]
#[cfg_attr(feature = "sqlite", diesel(check_for_backend(diesel::sqlite::Sqlite)))]
#[cfg_attr(feature = "postgres", diesel(check_for_backend(diesel::pg::Pg)))]
pub struct JobRow {
    /// Insertion order.
    pub seq: i64,
    id: String,
    command: String,
    kind: String,
    /// The state's name.
    pub(crate) state: String,
    attempts: i64,
    max_retries: i64,
    /// See [`Job::priority`].
    pub priority: i32,
    queue: String,
    interrupts: i64,
    created_at: i64,
    updated_at: i64,
    run_at: i64,
    next_run_at: Option<i64>,
    timeout_secs: Option<i64>,
    exit_code: Option<i32>,
    last_error: Option<String>,
    worker_id: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    lease_until: Option<i64>,
    claim_token: Option<i64>,
    cancel_requested: bool,
    cwd: Option<String>,
    env: Option<String>,
    limits: Option<String>,
    unique_key: Option<String>,
    depends_on: Option<String>,
}

impl JobRow {
    /// Decodes the row.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the job and the field that holds an impossible value.
    pub fn into_job(self) -> StoreResult<Job> {
        let id = JobId::new(self.id);
        let state = self
            .state
            .parse::<JobState>()
            .map_err(|e| StoreError::Corrupt {
                what: format!("job {id}: {e}"),
            })?;
        let options = JobOptions {
            env: match &self.env {
                None => BTreeMap::new(),
                Some(text) => serde_json::from_str(text).map_err(|_| bad_json(&id, "env"))?,
            },
            limits: match &self.limits {
                None => None,
                Some(text) => {
                    Some(serde_json::from_str(text).map_err(|_| bad_json(&id, "limits"))?)
                }
            },
            depends_on: match &self.depends_on {
                None => Vec::new(),
                Some(text) => {
                    serde_json::from_str(text).map_err(|_| bad_json(&id, "depends_on"))?
                }
            },
            cwd: self.cwd,
            unique_key: self.unique_key,
        };
        Ok(Job {
            options,
            attempts: count_from_db(self.attempts, "attempts", &id)?,
            max_retries: count_from_db(self.max_retries, "max_retries", &id)?,
            interrupts: count_from_db(self.interrupts, "interrupts", &id)?,
            timeout_secs: match self.timeout_secs {
                None => None,
                Some(v) => Some(u64::try_from(v).map_err(|_| corrupt(&id, "timeout_secs", v))?),
            },
            command: self.command,
            kind: self.kind,
            state,
            priority: self.priority,
            queue: self.queue,
            created_at: Timestamp::from_millis(self.created_at),
            updated_at: Timestamp::from_millis(self.updated_at),
            run_at: Timestamp::from_millis(self.run_at),
            next_run_at: self.next_run_at.map(Timestamp::from_millis),
            exit_code: self.exit_code,
            last_error: self.last_error,
            worker_id: self.worker_id,
            started_at: self.started_at.map(Timestamp::from_millis),
            finished_at: self.finished_at.map(Timestamp::from_millis),
            lease_until: self.lease_until.map(Timestamp::from_millis),
            claim_token: self.claim_token.map(ClaimToken),
            cancel_requested: self.cancel_requested,
            id,
        })
    }
}

/// Decodes rows in order.
///
/// # Errors
/// As [`JobRow::into_job`].
pub fn decode_jobs(rows: Vec<JobRow>) -> StoreResult<Vec<Job>> {
    rows.into_iter().map(JobRow::into_job).collect()
}

/// A `jobs` row to insert: every column but `seq`, which the database assigns, so a new row
/// sorts after every existing one. The fields are public for the dialects' bulk inserts,
/// which bind them column by column.
#[derive(Debug, Insertable)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
pub struct InsertJob<'a> {
    /// See [`Job::id`].
    pub id: &'a str,
    /// See [`Job::command`].
    pub command: &'a str,
    /// See [`Job::kind`].
    pub kind: &'a str,
    /// The state's name.
    pub state: &'static str,
    /// See [`Job::attempts`].
    pub attempts: i64,
    /// See [`Job::max_retries`].
    pub max_retries: i64,
    /// See [`Job::priority`].
    pub priority: i32,
    /// See [`Job::queue`].
    pub queue: &'a str,
    /// See [`Job::interrupts`].
    pub interrupts: i64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
    /// Milliseconds since the epoch.
    pub run_at: i64,
    /// Milliseconds since the epoch.
    pub next_run_at: Option<i64>,
    /// Seconds.
    pub timeout_secs: Option<i64>,
    /// See [`Job::exit_code`].
    pub exit_code: Option<i32>,
    /// See [`Job::last_error`].
    pub last_error: Option<&'a str>,
    /// See [`Job::worker_id`].
    pub worker_id: Option<&'a str>,
    /// Milliseconds since the epoch.
    pub started_at: Option<i64>,
    /// Milliseconds since the epoch.
    pub finished_at: Option<i64>,
    /// Milliseconds since the epoch.
    pub lease_until: Option<i64>,
    /// The claim's fencing token.
    pub claim_token: Option<i64>,
    /// See [`Job::cancel_requested`].
    pub cancel_requested: bool,
    /// See [`JobOptions::cwd`].
    pub cwd: Option<&'a str>,
    /// See [`JobOptions::env`], as JSON; `None` when empty.
    pub env: Option<String>,
    /// See [`JobOptions::limits`], as JSON.
    pub limits: Option<String>,
    /// See [`JobOptions::unique_key`].
    pub unique_key: Option<&'a str>,
    /// See [`JobOptions::depends_on`], as JSON; `None` when empty.
    pub depends_on: Option<String>,
}

/// Bind parameters per [`InsertJob`] row.
pub const INSERT_JOB_COLUMNS: usize = 27;

impl<'a> InsertJob<'a> {
    /// A fresh `pending` job as `enqueue` stores it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a timeout too large to store.
    pub fn from_new(job: &'a NewJob, now: Timestamp) -> StoreResult<Self> {
        let (env, limits, depends_on) = options_to_db(&job.options)?;
        Ok(InsertJob {
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
            timeout_secs: timeout_to_db(job.timeout_secs, &job.id)?,
            exit_code: None,
            last_error: None,
            worker_id: None,
            started_at: None,
            finished_at: None,
            lease_until: None,
            claim_token: None,
            cancel_requested: false,
            cwd: job.options.cwd.as_deref(),
            env,
            limits,
            unique_key: job.options.unique_key.as_deref(),
            depends_on,
        })
    }

    /// The rows `enqueue_many` inserts for `jobs`, in order.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming the first id that repeats an earlier one (a batch is
    /// all or nothing, so nothing may be inserted); [`StoreError::Backend`] for a timeout too
    /// large to store.
    pub fn batch(jobs: &'a [NewJob], now: Timestamp) -> StoreResult<Vec<Self>> {
        crate::reject_repeats(jobs.iter().map(|j| &j.id))?;
        jobs.iter().map(|j| InsertJob::from_new(j, now)).collect()
    }

    /// A complete job, verbatim (for `import`).
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a timeout too large to store.
    pub fn from_job(job: &'a Job) -> StoreResult<Self> {
        let (env, limits, depends_on) = options_to_db(&job.options)?;
        Ok(InsertJob {
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
            timeout_secs: timeout_to_db(job.timeout_secs, &job.id)?,
            exit_code: job.exit_code,
            last_error: job.last_error.as_deref(),
            worker_id: job.worker_id.as_deref(),
            started_at: job.started_at.map(Timestamp::as_millis),
            finished_at: job.finished_at.map(Timestamp::as_millis),
            lease_until: job.lease_until.map(Timestamp::as_millis),
            claim_token: job.claim_token.map(|t| t.0),
            cancel_requested: job.cancel_requested,
            cwd: job.options.cwd.as_deref(),
            env,
            limits,
            unique_key: job.options.unique_key.as_deref(),
            depends_on,
        })
    }
}

/// A `live_output` row to insert (or replace).
#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = live_output)]
pub struct InsertLive<'a> {
    job_seq: i64,
    claim_token: i64,
    stdout: &'a str,
    stderr: &'a str,
    stdout_cut: i64,
    stderr_cut: i64,
    updated_at: i64,
}

impl<'a> InsertLive<'a> {
    /// The row holding `output` (already capped) of job `job_seq`'s claim `token`.
    #[must_use]
    pub fn new(job_seq: i64, token: ClaimToken, output: &'a LiveOutput, now: Timestamp) -> Self {
        let cut = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        InsertLive {
            job_seq,
            claim_token: token.0,
            stdout: &output.stdout,
            stderr: &output.stderr,
            stdout_cut: cut(output.stdout_cut),
            stderr_cut: cut(output.stderr_cut),
            updated_at: now.as_millis(),
        }
    }
}

/// A `live_output` row as read back.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = live_output)]
#[cfg_attr(feature = "sqlite", diesel(check_for_backend(diesel::sqlite::Sqlite)))]
#[cfg_attr(feature = "postgres", diesel(check_for_backend(diesel::pg::Pg)))]
pub struct LiveRow {
    claim_token: i64,
    stdout: String,
    stderr: String,
    stdout_cut: i64,
    stderr_cut: i64,
}

impl LiveRow {
    /// The claim it belongs to.
    #[must_use]
    pub fn token(&self) -> ClaimToken {
        ClaimToken(self.claim_token)
    }

    /// Decodes the row.
    #[must_use]
    pub fn into_output(self) -> LiveOutput {
        LiveOutput {
            stdout: self.stdout,
            stderr: self.stderr,
            stdout_cut: u64::try_from(self.stdout_cut).unwrap_or(0),
            stderr_cut: u64::try_from(self.stderr_cut).unwrap_or(0),
        }
    }
}

/// A `job_attempts` row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = job_attempts, treat_none_as_default_value = false)]
pub struct InsertAttempt<'a> {
    job_seq: i64,
    attempt: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: Option<i32>,
    error: Option<&'a str>,
    stdout: Option<&'a str>,
    stderr: Option<&'a str>,
}

/// Bind parameters per [`InsertAttempt`] row.
pub const INSERT_ATTEMPT_COLUMNS: usize = 8;

impl<'a> InsertAttempt<'a> {
    /// The history entry `record` of job `job_seq`.
    #[must_use]
    pub fn new(job_seq: i64, record: &'a AttemptRecord) -> Self {
        InsertAttempt {
            job_seq,
            attempt: i64::from(record.attempt),
            started_at: record.started_at.as_millis(),
            finished_at: record.finished_at.as_millis(),
            exit_code: record.exit_code,
            error: record.error.as_deref(),
            stdout: stored_text(&record.output.stdout),
            stderr: stored_text(&record.output.stderr),
        }
    }
}

/// How a captured stream is stored: `NULL` when empty.
#[must_use]
pub fn stored_text(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// A `job_attempts` row as read back.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = job_attempts)]
#[cfg_attr(feature = "sqlite", diesel(check_for_backend(diesel::sqlite::Sqlite)))]
#[cfg_attr(feature = "postgres", diesel(check_for_backend(diesel::pg::Pg)))]
pub struct AttemptRow {
    attempt: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: Option<i32>,
    error: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
}

impl AttemptRow {
    /// Decodes the row of job `id`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an impossible attempt number.
    pub fn into_record(self, id: &JobId) -> StoreResult<AttemptRecord> {
        Ok(AttemptRecord {
            attempt: count_from_db(self.attempt, "history attempt", id)?,
            started_at: Timestamp::from_millis(self.started_at),
            finished_at: Timestamp::from_millis(self.finished_at),
            exit_code: self.exit_code,
            error: self.error,
            output: JobOutput {
                stdout: self.stdout.unwrap_or_default(),
                stderr: self.stderr.unwrap_or_default(),
            },
        })
    }
}

/// A `workers` row, both ways (`seq` is left to the database on insert).
#[derive(Debug, Insertable, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = workers)]
#[cfg_attr(feature = "sqlite", diesel(check_for_backend(diesel::sqlite::Sqlite)))]
#[cfg_attr(feature = "postgres", diesel(check_for_backend(diesel::pg::Pg)))]
pub struct WorkerRow {
    id: String,
    host: String,
    pid: i64,
    slots: i64,
    queues: String,
    started_at: i64,
    heartbeat_at: i64,
    stop_requested: bool,
}

impl WorkerRow {
    /// Encodes a registry entry.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the queue names cannot be encoded.
    pub fn from_info(worker: &WorkerInfo) -> StoreResult<Self> {
        let queues = serde_json::to_string(&worker.queues)
            .map_err(|e| StoreError::backend("encoding a worker's queues", e))?;
        Ok(WorkerRow {
            id: worker.id.clone(),
            host: worker.host.clone(),
            pid: i64::from(worker.pid),
            slots: i64::from(worker.slots),
            queues,
            started_at: worker.started_at.as_millis(),
            heartbeat_at: worker.heartbeat_at.as_millis(),
            stop_requested: worker.stop_requested,
        })
    }

    /// Decodes the row.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the worker and the field that holds an impossible value.
    pub fn into_info(self) -> StoreResult<WorkerInfo> {
        let bad = |what: &str, value: &dyn std::fmt::Display| StoreError::Corrupt {
            what: format!("worker {}: {what} {value}", self.id),
        };
        let pid = u32::try_from(self.pid).map_err(|_| bad("pid", &self.pid))?;
        let slots = u32::try_from(self.slots).map_err(|_| bad("slots", &self.slots))?;
        let queues = serde_json::from_str::<Vec<String>>(&self.queues)
            .map_err(|_| bad("queues", &self.queues))?;
        Ok(WorkerInfo {
            id: self.id,
            host: self.host,
            pid,
            slots,
            queues,
            started_at: Timestamp::from_millis(self.started_at),
            heartbeat_at: Timestamp::from_millis(self.heartbeat_at),
            stop_requested: self.stop_requested,
        })
    }
}

/// A `schedules` row, both ways.
#[derive(Debug, Insertable, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = schedules, treat_none_as_null = true)]
#[cfg_attr(feature = "sqlite", diesel(check_for_backend(diesel::sqlite::Sqlite)))]
#[cfg_attr(feature = "postgres", diesel(check_for_backend(diesel::pg::Pg)))]
pub struct ScheduleRow {
    name: String,
    schedule: String,
    tz: String,
    job: String,
    next_run_at: i64,
    last_run_at: Option<i64>,
    paused: bool,
    created_at: i64,
}

impl ScheduleRow {
    /// Encodes a schedule.
    #[must_use]
    pub fn from_schedule(s: &Schedule) -> Self {
        ScheduleRow {
            name: s.name.clone(),
            schedule: s.schedule.clone(),
            tz: s.tz.clone(),
            job: s.job.clone(),
            next_run_at: s.next_run_at.as_millis(),
            last_run_at: s.last_run_at.map(Timestamp::as_millis),
            paused: s.paused,
            created_at: s.created_at.as_millis(),
        }
    }

    /// Decodes the row.
    #[must_use]
    pub fn into_schedule(self) -> Schedule {
        Schedule {
            name: self.name,
            schedule: self.schedule,
            tz: self.tz,
            job: self.job,
            next_run_at: Timestamp::from_millis(self.next_run_at),
            last_run_at: self.last_run_at.map(Timestamp::from_millis),
            paused: self.paused,
            created_at: Timestamp::from_millis(self.created_at),
        }
    }
}

/// Decodes a stored state name.
///
/// # Errors
/// [`StoreError::Corrupt`] for a name that is no state.
pub fn state_from_db(s: &str) -> StoreResult<JobState> {
    s.parse::<JobState>().map_err(|e| StoreError::Corrupt {
        what: e.to_string(),
    })
}

/// A `LIMIT` as the database takes it.
#[must_use]
pub fn limit_of(limit: u32) -> i64 {
    i64::from(limit)
}

/// A row count as the store reports it.
#[must_use]
pub fn count_of(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

/// The JSON columns of `options`: `env`, `limits` and `depends_on`, `None` when empty.
fn options_to_db(
    options: &JobOptions,
) -> StoreResult<(Option<String>, Option<String>, Option<String>)> {
    let json = |what: &str, v: Result<String, serde_json::Error>| {
        v.map_err(|e| StoreError::backend(format!("encoding a job's {what}"), e))
    };
    let env = if options.env.is_empty() {
        None
    } else {
        Some(json("env", serde_json::to_string(&options.env))?)
    };
    let limits = match &options.limits {
        None => None,
        Some(l) => Some(json("limits", serde_json::to_string(l))?),
    };
    let depends_on = if options.depends_on.is_empty() {
        None
    } else {
        Some(json(
            "depends_on",
            serde_json::to_string(&options.depends_on),
        )?)
    };
    Ok((env, limits, depends_on))
}

fn bad_json(id: &JobId, field: &str) -> StoreError {
    StoreError::Corrupt {
        what: format!("job {id}: {field} is not valid JSON of its type"),
    }
}

fn count_from_db(v: i64, field: &str, id: &JobId) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| corrupt(id, field, v))
}

fn corrupt(id: &JobId, field: &str, v: i64) -> StoreError {
    StoreError::Corrupt {
        what: format!("job {id}: {field} {v} is out of range"),
    }
}

fn timeout_to_db(timeout: Option<u64>, id: &JobId) -> StoreResult<Option<i64>> {
    match timeout {
        None => Ok(None),
        Some(secs) => i64::try_from(secs)
            .map(Some)
            .map_err(|_| StoreError::Backend {
                message: format!("job {id}: timeout of {secs} s is too large to store"),
                source: None,
            }),
    }
}

/// A `queue_settings` row.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = queue_settings)]
#[cfg_attr(feature = "sqlite", diesel(check_for_backend(diesel::sqlite::Sqlite)))]
#[cfg_attr(feature = "postgres", diesel(check_for_backend(diesel::pg::Pg)))]
pub struct QueueSettingsRow {
    queue: String,
    paused: bool,
    concurrency: Option<i64>,
    updated_at: i64,
}

impl QueueSettingsRow {
    /// Encodes a queue's settings, changed at `now`.
    #[must_use]
    pub fn from_settings(settings: &QueueSettings, now: Timestamp) -> Self {
        QueueSettingsRow {
            queue: settings.queue.clone(),
            paused: settings.paused,
            concurrency: settings.concurrency.map(i64::from),
            updated_at: now.as_millis(),
        }
    }

    /// Decodes the row.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a limit outside `u32`.
    pub fn into_settings(self) -> StoreResult<QueueSettings> {
        let concurrency = match self.concurrency {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| StoreError::Corrupt {
                what: format!("queue {}: concurrency {n}", self.queue),
            })?),
        };
        Ok(QueueSettings {
            queue: self.queue,
            paused: self.paused,
            concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_job() -> Job {
        Job {
            id: JobId::new("a"),
            command: "echo a".into(),
            kind: "shell".into(),
            state: JobState::Processing,
            attempts: u32::MAX,
            max_retries: 3,
            priority: i32::MIN,
            queue: "q".into(),
            interrupts: 2,
            created_at: Timestamp::from_millis(-5),
            updated_at: Timestamp::from_millis(i64::MAX),
            run_at: Timestamp::from_millis(7),
            next_run_at: None,
            timeout_secs: Some(i64::MAX as u64),
            exit_code: Some(-1),
            last_error: Some("boom".into()),
            worker_id: Some("w".into()),
            started_at: Some(Timestamp::from_millis(8)),
            finished_at: None,
            lease_until: Some(Timestamp::from_millis(9)),
            claim_token: Some(ClaimToken(i64::MAX)),
            cancel_requested: true,
            options: JobOptions {
                cwd: Some("/tmp/a b".into()),
                env: [("K".to_owned(), "v=\"1\"".to_owned())].into(),
                limits: Some(queuectl_store::Limits {
                    cpu_seconds: Some(5),
                    ..queuectl_store::Limits::default()
                }),
                unique_key: Some("k".into()),
                depends_on: vec![JobId::new("p")],
            },
        }
    }

    fn read_back(row: &InsertJob<'_>) -> JobRow {
        JobRow {
            seq: 1,
            id: row.id.to_owned(),
            command: row.command.to_owned(),
            kind: row.kind.to_owned(),
            state: row.state.to_owned(),
            attempts: row.attempts,
            max_retries: row.max_retries,
            priority: row.priority,
            queue: row.queue.to_owned(),
            interrupts: row.interrupts,
            created_at: row.created_at,
            updated_at: row.updated_at,
            run_at: row.run_at,
            next_run_at: row.next_run_at,
            timeout_secs: row.timeout_secs,
            exit_code: row.exit_code,
            last_error: row.last_error.map(str::to_owned),
            worker_id: row.worker_id.map(str::to_owned),
            started_at: row.started_at,
            finished_at: row.finished_at,
            lease_until: row.lease_until,
            claim_token: row.claim_token,
            cancel_requested: row.cancel_requested,
            cwd: row.cwd.map(str::to_owned),
            env: row.env.clone(),
            limits: row.limits.clone(),
            unique_key: row.unique_key.map(str::to_owned),
            depends_on: row.depends_on.clone(),
        }
    }

    #[test]
    fn a_job_round_trips_through_its_row_at_the_extremes() {
        let job = sample_job();
        let row = InsertJob::from_job(&job).expect("encode");
        assert_eq!(read_back(&row).into_job().expect("decode"), job);
    }

    #[test]
    fn a_timeout_beyond_i64_is_refused_not_wrapped() {
        let mut job = sample_job();
        job.timeout_secs = Some(u64::MAX);
        assert!(matches!(
            InsertJob::from_job(&job),
            Err(StoreError::Backend { .. })
        ));
    }

    #[test]
    fn out_of_range_and_unknown_values_decode_as_corrupt() {
        let job = sample_job();
        let row = InsertJob::from_job(&job).expect("encode");

        let mut bad = read_back(&row);
        bad.state = "running".into();
        assert!(matches!(bad.into_job(), Err(StoreError::Corrupt { .. })));

        let mut bad = read_back(&row);
        bad.attempts = -1;
        assert!(matches!(bad.into_job(), Err(StoreError::Corrupt { .. })));

        let mut bad = read_back(&row);
        bad.timeout_secs = Some(-3);
        assert!(matches!(bad.into_job(), Err(StoreError::Corrupt { .. })));

        let mut bad = read_back(&row);
        bad.env = Some("[1]".into());
        assert!(matches!(bad.into_job(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn worker_queues_round_trip_as_json() {
        let info = WorkerInfo {
            id: "h:1:x".into(),
            host: "h".into(),
            pid: u32::MAX,
            slots: 3,
            queues: vec!["a,b".into(), "\"q\"".into(), String::new()],
            started_at: Timestamp::from_millis(1),
            heartbeat_at: Timestamp::from_millis(2),
            stop_requested: true,
        };
        let row = WorkerRow::from_info(&info).expect("encode");
        assert_eq!(row.into_info().expect("decode"), info);
    }
}
