//! Rows ↔ store types: the only place that knows how a field is encoded in a column.
//!
//! Encodings: timestamps are INTEGER milliseconds since the epoch ([`Timestamp::as_millis`]);
//! states are their lowercase names; `u32` counters are stored as INTEGER (64-bit, so every
//! `u32` fits); `timeout_secs` is an INTEGER and values above `i64::MAX` are refused rather
//! than wrapped; a worker's queues are a JSON array of strings. Decoding never trusts the
//! file: a value out of its type's range is [`StoreError::Corrupt`], not a panic.

use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use queuectl_store::{
    AttemptRecord, ClaimToken, Job, JobId, JobOutput, JobState, NewJob, StoreError, StoreResult,
    Timestamp, WorkerInfo,
};

use crate::schema::{job_attempts, job_output, jobs, workers};

/// A `jobs` row as read back (also the shape the claim's `RETURNING` produces).
#[derive(Debug, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct JobRow {
    pub(crate) seq: i64,
    id: String,
    command: String,
    kind: String,
    state: String,
    attempts: i64,
    max_retries: i64,
    priority: i32,
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
}

impl JobRow {
    /// Decodes the row.
    pub(crate) fn into_job(self) -> StoreResult<Job> {
        let id = JobId::new(self.id);
        let state = self
            .state
            .parse::<JobState>()
            .map_err(|e| StoreError::Corrupt {
                what: format!("job {id}: {e}"),
            })?;
        Ok(Job {
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
            id,
        })
    }
}

/// A `jobs` row to insert (`seq` is assigned by SQLite, so it sorts after every existing row).
#[derive(Debug, Insertable)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
pub(crate) struct InsertJob<'a> {
    id: &'a str,
    command: &'a str,
    kind: &'a str,
    state: &'static str,
    attempts: i64,
    max_retries: i64,
    priority: i32,
    queue: &'a str,
    interrupts: i64,
    created_at: i64,
    updated_at: i64,
    run_at: i64,
    next_run_at: Option<i64>,
    timeout_secs: Option<i64>,
    exit_code: Option<i32>,
    last_error: Option<&'a str>,
    worker_id: Option<&'a str>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    lease_until: Option<i64>,
    claim_token: Option<i64>,
}

impl<'a> InsertJob<'a> {
    /// A fresh `pending` job as `enqueue` stores it.
    pub(crate) fn from_new(job: &'a NewJob, now: Timestamp) -> StoreResult<Self> {
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
        })
    }

    /// A complete job, verbatim (for `import`).
    pub(crate) fn from_job(job: &'a Job) -> StoreResult<Self> {
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
        })
    }

    /// The id of the row.
    pub(crate) fn id(&self) -> &'a str {
        self.id
    }
}

/// A `job_output` row to insert (or replace).
#[derive(Debug, Insertable)]
#[diesel(table_name = job_output)]
pub(crate) struct InsertOutput<'a> {
    job_seq: i64,
    stdout: &'a str,
    stderr: &'a str,
}

/// Bind parameters per [`InsertOutput`] row.
pub(crate) const INSERT_OUTPUT_COLUMNS: usize = 3;

impl<'a> InsertOutput<'a> {
    /// The row holding `output` for job `job_seq`.
    pub(crate) fn new(job_seq: i64, output: &'a JobOutput) -> Self {
        InsertOutput {
            job_seq,
            stdout: &output.stdout,
            stderr: &output.stderr,
        }
    }
}

/// A `job_output` row as read back.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = job_output, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct OutputRow {
    stdout: String,
    stderr: String,
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

/// A `job_attempts` row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = job_attempts, treat_none_as_default_value = false)]
pub(crate) struct InsertAttempt<'a> {
    job_seq: i64,
    attempt: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: Option<i32>,
    error: Option<&'a str>,
}

/// Bind parameters per [`InsertAttempt`] row.
pub(crate) const INSERT_ATTEMPT_COLUMNS: usize = 6;

impl<'a> InsertAttempt<'a> {
    /// The history entry for job `job_seq`.
    pub(crate) fn new(job_seq: i64, record: &'a AttemptRecord) -> Self {
        InsertAttempt {
            job_seq,
            attempt: i64::from(record.attempt),
            started_at: record.started_at.as_millis(),
            finished_at: record.finished_at.as_millis(),
            exit_code: record.exit_code,
            error: record.error.as_deref(),
        }
    }
}

/// A `job_attempts` row as read back.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = job_attempts, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct AttemptRow {
    attempt: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: Option<i32>,
    error: Option<String>,
}

impl AttemptRow {
    /// Decodes the row of job `id`.
    pub(crate) fn into_record(self, id: &JobId) -> StoreResult<AttemptRecord> {
        Ok(AttemptRecord {
            attempt: count_from_db(self.attempt, "history attempt", id)?,
            started_at: Timestamp::from_millis(self.started_at),
            finished_at: Timestamp::from_millis(self.finished_at),
            exit_code: self.exit_code,
            error: self.error,
        })
    }
}

/// A `workers` row, both ways (`seq` is left to SQLite on insert).
#[derive(Debug, Insertable, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = workers, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct WorkerRow {
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
    pub(crate) fn from_info(worker: &WorkerInfo) -> StoreResult<Self> {
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
    pub(crate) fn into_info(self) -> StoreResult<WorkerInfo> {
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

/// The name stored for `state`.
pub(crate) fn state_to_db(state: JobState) -> &'static str {
    state.as_str()
}

/// Decodes a stored state name.
pub(crate) fn state_from_db(s: &str) -> StoreResult<JobState> {
    s.parse::<JobState>().map_err(|e| StoreError::Corrupt {
        what: e.to_string(),
    })
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

/// `INSERT INTO jobs … VALUES (…) ON CONFLICT DO NOTHING RETURNING seq` for one row: a
/// statement of fixed text with a static query id, so Diesel prepares it once per
/// connection and finds it by type. `import`, a single enqueue and the rows of a batch
/// left after its whole [`InsertJobChunk`]s run it once per row.
pub(crate) struct InsertJobRow<'a>(pub(crate) &'a InsertJob<'a>);

impl QueryFragment<Sqlite> for InsertJobRow<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(INSERT_JOBS_PREFIX);
        push_values(self.0, &mut out)?;
        out.push_sql(" ON CONFLICT DO NOTHING RETURNING seq");
        Ok(())
    }
}

/// The column list every jobs `INSERT` of this module starts with.
const INSERT_JOBS_PREFIX: &str =
    "INSERT INTO jobs (id, command, kind, state, attempts, max_retries, priority, \
     queue, interrupts, created_at, updated_at, run_at, next_run_at, timeout_secs, \
     exit_code, last_error, worker_id, started_at, finished_at, lease_until, \
     claim_token) VALUES ";

/// Pushes `(…)`, the bound values of one row in the order of [`INSERT_JOBS_PREFIX`].
fn push_values<'b>(r: &'b InsertJob<'b>, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
    out.push_sql("(");
    out.push_bind_param::<Text, _>(&r.id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&r.command)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&r.kind)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&r.state)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&r.attempts)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&r.max_retries)?;
    out.push_sql(", ");
    out.push_bind_param::<Integer, _>(&r.priority)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&r.queue)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&r.interrupts)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&r.created_at)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&r.updated_at)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&r.run_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&r.next_run_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&r.timeout_secs)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Integer>, _>(&r.exit_code)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.last_error)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.worker_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&r.started_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&r.finished_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&r.lease_until)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&r.claim_token)?;
    out.push_sql(")");
    Ok(())
}

/// Rows per [`InsertJobChunk`]: 64 rows of 21 columns, far below SQLite's limit of bound
/// variables.
pub(crate) const INSERT_CHUNK: usize = 64;

/// `INSERT INTO jobs … VALUES (…), … ON CONFLICT DO NOTHING` for exactly [`INSERT_CHUNK`]
/// rows. Its text never changes, so like [`InsertJobRow`] it is prepared once per
/// connection; one step then inserts the whole chunk, which saves the per-statement work
/// (bind, step, reset, statement journal) of 63 single-row inserts. Build it only with
/// [`InsertJobChunk::new`], which refuses any other row count: another count would change
/// the text behind the same cached statement.
pub(crate) struct InsertJobChunk<'a>(&'a [InsertJob<'a>]);

impl<'a> InsertJobChunk<'a> {
    /// The statement for `rows`, if it holds exactly [`INSERT_CHUNK`] rows.
    pub(crate) fn new(rows: &'a [InsertJob<'a>]) -> Option<Self> {
        (rows.len() == INSERT_CHUNK).then_some(InsertJobChunk(rows))
    }
}

impl QueryFragment<Sqlite> for InsertJobChunk<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(INSERT_JOBS_PREFIX);
        for (i, row) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            push_values(row, &mut out)?;
        }
        out.push_sql(" ON CONFLICT DO NOTHING");
        Ok(())
    }
}

/// The static query id of [`InsertJobChunk`].
#[derive(Debug)]
pub(crate) struct InsertJobChunkQuery;

impl QueryId for InsertJobChunk<'_> {
    type QueryId = InsertJobChunkQuery;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<SqliteConnection> for InsertJobChunk<'_> {}

/// The static query id of [`InsertJobRow`].
#[derive(Debug)]
pub(crate) struct InsertJobRowQuery;

impl QueryId for InsertJobRow<'_> {
    type QueryId = InsertJobRowQuery;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for InsertJobRow<'_> {
    type SqlType = BigInt;
}

impl RunQueryDsl<SqliteConnection> for InsertJobRow<'_> {}
