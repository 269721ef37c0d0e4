//! The job operations both dialects express alike, each written once.
//!
//! This file is compiled once per connection type, as part of [`crate::sqlite`] and of
//! [`crate::pg`] (see the crate docs): `Conn` is that module's connection, so every body is
//! plain Diesel on a concrete connection, without trait bounds, type-checked and optimised
//! for each dialect as hand-written code would be. Each public operation is one
//! [`queuectl_store::Jobs`] method, run through the store's [`Session`]; the SQL is the
//! subset both dialects speak (`RETURNING`, `ON CONFLICT`, subqueries), and the few places
//! where they would read it differently say so.

use std::collections::HashMap;

use diesel::dsl::{count_star, AsSelect, SqlTypeOf};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Untyped};
use queuectl_store::{
    AttemptRecord, ClaimRequest, ClaimToken, Guarded, Job, JobFilter, JobId, JobRecord, JobState,
    LeaseRef, LiveOutput, StateCounts, StoreError, StoreResult, Timestamp, Transition,
    TransitionKind, CANCELLED_WHILE_RUNNING,
};

use super::Conn;
use crate::outcome::{reject_repeats, Finished};
use crate::row::{
    count_of, decode_jobs, limit_of, state_from_db, AttemptRow, InsertAttempt, InsertJob,
    InsertLive, JobRow, LiveRow, INSERT_ATTEMPT_COLUMNS, INSERT_JOB_COLUMNS,
};
use crate::schema::{job_attempts, jobs, live_output};
use crate::{Failure, Session};

/// The backend of [`Conn`].
type Db = <Conn as Connection>::Backend;

// ----- worker -----

/// [`Jobs::put_live_output`](queuectl_store::Jobs::put_live_output): the guard (the job is
/// `processing` under the token) and the upsert in one transaction, without touching the
/// job's row or waking anyone.
///
/// # Errors
/// Only driver failures.
pub fn put_live_output<S: Session<Conn = Conn>>(
    store: &S,
    lease: &LeaseRef,
    output: &LiveOutput,
    now: Timestamp,
) -> StoreResult<Guarded> {
    let capped = output.clone().capped();
    store.write(|conn| {
        let seq: Option<i64> = jobs::table
            .filter(jobs::id.eq(lease.id.as_str()))
            .filter(jobs::state.eq(JobState::Processing.as_str()))
            .filter(jobs::claim_token.eq(lease.token.0))
            .select(jobs::seq)
            .first(conn)
            .optional()?;
        let Some(seq) = seq else {
            return Ok(Guarded::Stale);
        };
        let row = InsertLive::new(seq, lease.token, &capped, now);
        diesel::insert_into(live_output::table)
            .values(&row)
            .on_conflict(live_output::job_seq)
            .do_update()
            .set(&row)
            .execute(conn)?;
        Ok(Guarded::Applied)
    })
}

// ----- maintenance -----

/// [`Jobs::expired_leases`](queuectl_store::Jobs::expired_leases).
///
/// # Errors
/// Only driver failures.
pub fn expired_leases<S: Session<Conn = Conn>>(
    store: &S,
    now: Timestamp,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    decode_jobs(store.read(|conn| Ok(ExpiredLeases::new(now, limit).load(conn)?))?)
}

/// `SELECT * FROM jobs WHERE state = 'processing' AND lease_until < $now ORDER BY
/// lease_until, seq LIMIT $limit`: `processing` jobs whose lease ended before `now`, oldest
/// lease first, read in order from the partial index of `processing` rows (SQLite
/// `jobs_lease`, PostgreSQL `jobs_lease_idx`). The state test is literal SQL, not a bound
/// value: only then can a planner prove that the query stays inside that index. The table
/// is named through the dialect module's `JOBS_BY_LEASE`, which lets SQLite add the
/// index hint its planner needs. Written as a query type rather than `sql_query` so that
/// each connection prepares it once.
#[derive(Debug)]
pub struct ExpiredLeases {
    now: i64,
    limit: i64,
}

impl ExpiredLeases {
    /// The query for leases that ended before `now`, at most `limit` jobs.
    #[must_use]
    pub fn new(now: Timestamp, limit: u32) -> Self {
        ExpiredLeases {
            now: now.as_millis(),
            limit: limit_of(limit),
        }
    }
}

impl QueryFragment<Db> for ExpiredLeases {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT * FROM ");
        out.push_sql(super::JOBS_BY_LEASE);
        out.push_sql(" WHERE state = 'processing' AND lease_until < ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" ORDER BY lease_until, seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        Ok(())
    }
}

crate::statement!(ExpiredLeases, Conn, Untyped);

// ----- operator -----

/// [`Jobs::cancel`](queuectl_store::Jobs::cancel): `pending` or `failed` → `cancelled`;
/// `processing` → a cancel request. Two guarded statements in one write transaction: a
/// finish that commits in between makes the second match nothing, and the error then
/// names the state the finish wrote.
///
/// # Errors
/// `NotFound`, or `WrongState` naming the job's state.
pub fn cancel<S: Session<Conn = Conn>>(store: &S, id: &JobId, now: Timestamp) -> StoreResult<Job> {
    let row = store.write(|conn| {
        let row =
            diesel::update(jobs::table.filter(jobs::id.eq(id.as_str())).filter(
                jobs::state.eq_any([JobState::Pending.as_str(), JobState::Failed.as_str()]),
            ))
            .set((
                jobs::state.eq(JobState::Cancelled.as_str()),
                jobs::next_run_at.eq(None::<i64>),
                jobs::updated_at.eq(now.as_millis()),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)
            .optional()?;
        if let Some(row) = row {
            // The jobs waiting on it will never run: cancel them too, transitively.
            super::deps::cascade(conn, id.as_str(), "was cancelled", now)?;
            return Ok(row);
        }
        let requested = diesel::update(
            jobs::table
                .filter(jobs::id.eq(id.as_str()))
                .filter(jobs::state.eq(JobState::Processing.as_str())),
        )
        .set((
            jobs::cancel_requested.eq(true),
            jobs::updated_at.eq(now.as_millis()),
        ))
        .returning(JobRow::as_returning())
        .get_result(conn)
        .optional()?;
        match requested {
            Some(row) => {
                // Workers waiting for store notifications (PostgreSQL) look at once.
                S::wake(conn)?;
                Ok(row)
            }
            None => Err(not_applicable(conn, id)),
        }
    })?;
    store.jobs_changed();
    row.into_job()
}

/// [`Jobs::cancel_requests`](queuectl_store::Jobs::cancel_requests): one query by id.
///
/// # Errors
/// Only driver failures.
pub fn cancel_requests<S: Session<Conn = Conn>>(
    store: &S,
    leases: &[LeaseRef],
) -> StoreResult<Vec<JobId>> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = leases.iter().map(|l| l.id.as_str()).collect();
    let requested: Vec<(String, Option<i64>)> = store.read(|conn| {
        Ok(jobs::table
            .filter(jobs::id.eq_any(&ids))
            .filter(jobs::state.eq(JobState::Processing.as_str()))
            .filter(jobs::cancel_requested.eq(true))
            .select((jobs::id, jobs::claim_token))
            .load(conn)?)
    })?;
    Ok(leases
        .iter()
        .filter(|l| {
            requested
                .iter()
                .any(|(id, token)| id == l.id.as_str() && *token == Some(l.token.0))
        })
        .map(|l| l.id.clone())
        .collect())
}

/// [`Jobs::counts`](queuectl_store::Jobs::counts).
///
/// # Errors
/// Only driver failures, or a stored state that is no state.
pub fn counts<S: Session<Conn = Conn>>(store: &S) -> StoreResult<StateCounts> {
    let rows: Vec<(String, i64)> = store.read(|conn| {
        Ok(jobs::table
            .group_by(jobs::state)
            .select((jobs::state, count_star()))
            .load(conn)?)
    })?;
    let mut counts = StateCounts::default();
    for (state, n) in rows {
        *counts.get_mut(state_from_db(&state)?) = u64::try_from(n).unwrap_or(0);
    }
    Ok(counts)
}

/// [`Jobs::get`](queuectl_store::Jobs::get).
///
/// # Errors
/// `NotFound`.
pub fn get<S: Session<Conn = Conn>>(store: &S, id: &JobId) -> StoreResult<Job> {
    match store.read(|conn| find_job(conn, id))? {
        Some(row) => row.into_job(),
        None => Err(StoreError::NotFound(id.clone())),
    }
}

/// [`Jobs::live_output`](queuectl_store::Jobs::live_output): the published output, if it
/// belongs to the job's current claim.
///
/// # Errors
/// `NotFound`.
pub fn live_output<S: Session<Conn = Conn>>(
    store: &S,
    id: &JobId,
) -> StoreResult<Option<LiveOutput>> {
    let found = store.snapshot(|conn| {
        let Some(row) = find_job(conn, id)? else {
            return Ok(None);
        };
        let live = live_output::table
            .find(row.seq)
            .select(LiveRow::as_select())
            .first(conn)
            .optional()?;
        Ok(Some((row, live)))
    })?;
    let Some((row, live)) = found else {
        return Err(StoreError::NotFound(id.clone()));
    };
    let job = row.into_job()?;
    Ok(live.and_then(|live| {
        (job.state == JobState::Processing && job.claim_token == Some(live.token()))
            .then(|| live.into_output())
    }))
}

/// [`Jobs::get_record`](queuectl_store::Jobs::get_record): the row and its history (each
/// entry with its output) from one snapshot.
///
/// # Errors
/// `NotFound`.
pub fn get_record<S: Session<Conn = Conn>>(store: &S, id: &JobId) -> StoreResult<JobRecord> {
    let found = store.snapshot(|conn| {
        let Some(row) = find_job(conn, id)? else {
            return Ok(None);
        };
        let history = job_attempts::table
            .filter(job_attempts::job_seq.eq(row.seq))
            .order(job_attempts::seq.asc())
            .select(AttemptRow::as_select())
            .load(conn)?;
        Ok(Some((row, history)))
    })?;
    let Some((row, history)) = found else {
        return Err(StoreError::NotFound(id.clone()));
    };
    let history: Vec<AttemptRecord> = history
        .into_iter()
        .map(|h| h.into_record(id))
        .collect::<StoreResult<_>>()?;
    Ok(JobRecord {
        job: row.into_job()?,
        output: JobRecord::last_output(&history),
        history,
    })
}

/// [`Jobs::import`](queuectl_store::Jobs::import): the records in chunks of multi-row
/// inserts, all in one transaction.
///
/// # Errors
/// `Conflict` naming the first id that exists (or repeats); nothing is stored.
pub fn import<S: Session<Conn = Conn>>(store: &S, records: &[JobRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    reject_repeats(records.iter().map(|r| &r.job.id))?;
    let rows = records
        .iter()
        .map(|r| InsertJob::from_job(&r.job))
        .collect::<StoreResult<Vec<_>>>()?;
    store.write(|conn| {
        let seqs = insert_jobs(conn, &rows)?;
        let histories: Vec<Vec<AttemptRecord>> =
            records.iter().map(JobRecord::history_for_import).collect();
        let history: Vec<InsertAttempt<'_>> = histories
            .iter()
            .zip(&seqs)
            .flat_map(|(h, seq)| h.iter().map(|h| InsertAttempt::new(*seq, h)))
            .collect();
        for chunk in history.chunks(rows_per_insert(INSERT_ATTEMPT_COLUMNS)) {
            diesel::insert_into(job_attempts::table)
                .values(chunk)
                .execute(conn)?;
        }
        let imported: Vec<&Job> = records.iter().map(|r| &r.job).collect();
        super::deps::link_imported(conn, &imported, &seqs)?;
        S::wake(conn)
    })?;
    store.jobs_changed();
    Ok(())
}

/// [`Jobs::list`](queuectl_store::Jobs::list).
///
/// # Errors
/// Only driver failures.
pub fn list<S: Session<Conn = Conn>>(store: &S, filter: &JobFilter) -> StoreResult<Vec<Job>> {
    decode_jobs(store.read(|conn| Ok(list_query(filter).load(conn)?))?)
}

/// A query for whole job rows (boxed: its filters depend on the call).
pub type JobQuery<'a> = jobs::BoxedQuery<'a, Db, SqlTypeOf<AsSelect<JobRow, Db>>>;

/// Jobs matching `filter` in insertion order: through the index on `(state, seq)` when
/// filtered by state.
#[must_use]
pub fn list_query(filter: &JobFilter) -> JobQuery<'_> {
    let mut query = jobs::table
        .select(JobRow::as_select())
        .order(jobs::seq.asc())
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(jobs::state.eq(state.as_str()));
    }
    if let Some(queue) = &filter.queue {
        query = query.filter(jobs::queue.eq(queue.as_str()));
    }
    if let Some(limit) = filter.limit {
        query = query.limit(limit_of(limit));
    }
    query
}

/// [`Jobs::requeue_all_dead`](queuectl_store::Jobs::requeue_all_dead).
///
/// # Errors
/// Only driver failures.
pub fn requeue_all_dead<S: Session<Conn = Conn>>(store: &S, now: Timestamp) -> StoreResult<u64> {
    let n = store.write(|conn| {
        // A dead job whose unique key another job holds stays dead (requeueing it would
        // make two holders); see `requeue_dead`.
        let key_free = diesel::dsl::sql::<Bool>(
            "(unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs h \
              WHERE h.unique_key = jobs.unique_key \
              AND h.state IN ('pending', 'failed', 'processing')))",
        );
        let n = diesel::update(
            jobs::table
                .filter(jobs::state.eq(JobState::Dead.as_str()))
                .filter(key_free),
        )
        .set(requeued(now))
        .execute(conn)?;
        if n > 0 {
            S::wake(conn)?;
        }
        Ok(n)
    })?;
    if n > 0 {
        store.jobs_changed();
    }
    Ok(count_of(n))
}

/// What `dlq retry` and `retry` write (see [`Jobs::requeue`](queuectl_store::Jobs::requeue)).
#[allow(clippy::type_complexity)]
pub(super) fn requeued(
    now: Timestamp,
) -> (
    diesel::dsl::Eq<jobs::state, &'static str>,
    diesel::dsl::Eq<jobs::attempts, i64>,
    diesel::dsl::Eq<jobs::interrupts, i64>,
    diesel::dsl::Eq<jobs::last_error, Option<String>>,
    diesel::dsl::Eq<jobs::run_at, i64>,
    diesel::dsl::Eq<jobs::next_run_at, Option<i64>>,
    diesel::dsl::Eq<jobs::updated_at, i64>,
) {
    let now = now.as_millis();
    (
        jobs::state.eq(JobState::Pending.as_str()),
        jobs::attempts.eq(0),
        jobs::interrupts.eq(0),
        jobs::last_error.eq(None),
        jobs::run_at.eq(now),
        jobs::next_run_at.eq(Some(now)),
        jobs::updated_at.eq(now),
    )
}

// ----- pieces for the dialects' own code -----

/// Applies one guarded transition inside the caller's write transaction; see
/// [`TransitionKind`] for what each kind writes, including the override of a job with a
/// cancel request (decided inside the one `UPDATE`, on the row it locks). The dialects'
/// batched finishes take this path for what they do not batch (recoveries, releases, a job
/// named twice).
///
/// # Errors
/// Only driver failures.
pub fn apply_transition(
    conn: &mut Conn,
    t: &Transition,
    now: Timestamp,
) -> Result<Guarded, Failure> {
    let finished = Finished::of(&t.kind);
    let Some(row) = GuardedWrite::new(t, now).load::<Written>(conn)?.pop() else {
        return Ok(Guarded::Stale);
    };
    let cancelled = row.state == JobState::Cancelled.as_str();
    if finished.is_none() && !cancelled {
        // The attempt ended without a history entry: what it published goes with it.
        delete_live(conn, row.seq)?;
        return Ok(Guarded::Applied);
    }
    let attempt = u32::try_from(row.attempts).map_err(|_| {
        Failure::Store(StoreError::Corrupt {
            what: format!("job {}: attempts {} is out of range", t.id, row.attempts),
        })
    })?;
    let record = AttemptRecord {
        attempt,
        // A processing job always has started_at (claim sets it); an imported one might not.
        started_at: row.started_at.map_or(now, Timestamp::from_millis),
        finished_at: now,
        exit_code: row.exit_code,
        error: row.last_error,
        output: finished
            .map(|f| f.execution.output.clone())
            .unwrap_or_default(),
    };
    diesel::insert_into(job_attempts::table)
        .values(&InsertAttempt::new(row.seq, &record))
        .execute(conn)?;
    delete_live(conn, row.seq)?;
    Ok(Guarded::Applied)
}

/// Deletes what the ended attempt of job `seq` published while it ran (usually nothing:
/// then this reads one index page and writes nothing).
fn delete_live(conn: &mut Conn, seq: i64) -> Result<(), Failure> {
    diesel::delete(live_output::table.find(seq)).execute(conn)?;
    Ok(())
}

/// What [`GuardedWrite`] returns of the row it changed.
#[derive(Debug, QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    started_at: Option<i64>,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Integer>)]
    exit_code: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

/// The guarded `UPDATE` of one transition, every kind in one shape:
///
/// ```sql
/// UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE $state END,
///   attempts = attempts + CASE WHEN cancel_requested THEN 1 ELSE $charged END, …,
///   cancel_requested = FALSE
/// WHERE id = $id AND state = 'processing' AND claim_token = $token [AND lease_until < $now]
/// RETURNING seq, attempts, started_at, state, exit_code, last_error
/// ```
///
/// Every `CASE` reads the row as it was before the write, so a cancel request recorded
/// before this statement took the row turns any kind into `cancelled` (PostgreSQL
/// re-evaluates the whole statement on the newest row version after a concurrent write).
struct GuardedWrite<'a> {
    id: &'a str,
    token: i64,
    now: i64,
    only_if_expired: bool,
    state: &'static str,
    /// Whether the kind finishes an execution (`attempts`, `finished_at`, `exit_code`).
    finishes: bool,
    exit_code: Option<i32>,
    /// `Some` to write this `last_error`; `None` to keep (recovery) or clear (success).
    error: Option<&'a str>,
    clear_error: bool,
    interrupts: i64,
    next_run_at: Option<i64>,
}

impl<'a> GuardedWrite<'a> {
    fn new(t: &'a Transition, now: Timestamp) -> Self {
        let now_ms = now.as_millis();
        let mut w = GuardedWrite {
            id: t.id.as_str(),
            token: t.token.0,
            now: now_ms,
            only_if_expired: t.kind.only_if_lease_expired(),
            state: JobState::Pending.as_str(),
            finishes: false,
            exit_code: None,
            error: None,
            clear_error: false,
            interrupts: 0,
            next_run_at: None,
        };
        if let Some(f) = Finished::of(&t.kind) {
            w.state = f.state.as_str();
            w.finishes = true;
            w.exit_code = f.execution.exit_code;
            w.error = f.error;
            w.clear_error = f.error.is_none();
            w.next_run_at = f.next_run_at;
            return w;
        }
        match &t.kind {
            TransitionKind::Abandoned { error, .. } => {
                w.state = JobState::Dead.as_str();
                w.interrupts = 1;
                w.error = Some(error.as_str());
            }
            TransitionKind::Recovered { .. } => {
                w.interrupts = 1;
                w.next_run_at = Some(now_ms);
            }
            _ => w.next_run_at = Some(now_ms),
        }
        w
    }
}

impl QueryFragment<Db> for GuardedWrite<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        const IF_CANCEL: &str = "CASE WHEN cancel_requested THEN ";
        out.push_sql("UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE ");
        out.push_bind_param::<Text, _>(&self.state)?;
        out.push_sql(" END, attempts = attempts + ");
        out.push_sql(if self.finishes {
            "1"
        } else {
            "CASE WHEN cancel_requested THEN 1 ELSE 0 END"
        });
        out.push_sql(", interrupts = interrupts + ");
        out.push_sql(IF_CANCEL);
        out.push_sql("0 ELSE ");
        out.push_bind_param::<BigInt, _>(&self.interrupts)?;
        out.push_sql(" END, finished_at = ");
        if self.finishes {
            out.push_bind_param::<BigInt, _>(&self.now)?;
            out.push_sql(", exit_code = ");
            out.push_bind_param::<Nullable<Integer>, _>(&self.exit_code)?;
        } else {
            out.push_sql(IF_CANCEL);
            out.push_bind_param::<BigInt, _>(&self.now)?;
            out.push_sql(" ELSE finished_at END, exit_code = ");
            out.push_sql(IF_CANCEL);
            out.push_sql("NULL ELSE exit_code END");
        }
        out.push_sql(", last_error = ");
        out.push_sql(IF_CANCEL);
        out.push_bind_param::<Text, _>(&CANCELLED_WHILE_RUNNING)?;
        out.push_sql(" ELSE ");
        match self.error {
            Some(_) => out.push_bind_param::<Nullable<Text>, _>(&self.error)?,
            None if self.clear_error => out.push_sql("NULL"),
            None => out.push_sql("last_error"),
        }
        out.push_sql(" END, next_run_at = ");
        out.push_sql(IF_CANCEL);
        out.push_sql("NULL ELSE ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.next_run_at)?;
        out.push_sql(
            " END, cancel_requested = FALSE, lease_until = NULL, claim_token = NULL, updated_at = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(&self.id)?;
        out.push_sql(" AND state = 'processing' AND claim_token = ");
        out.push_bind_param::<BigInt, _>(&self.token)?;
        if self.only_if_expired {
            // A recovery decided from an expired-lease read must not apply if the owner
            // renewed meanwhile: checked in the same WHERE, atomically.
            out.push_sql(" AND lease_until < ");
            out.push_bind_param::<BigInt, _>(&self.now)?;
        }
        out.push_sql(" RETURNING seq, attempts, started_at, state, exit_code, last_error");
        Ok(())
    }
}

crate::statement!(GuardedWrite<'_>, Conn, Untyped);

/// What a claim writes on each job it takes, as the `SET` list of the dialect's claim
/// `UPDATE`: `processing`, the worker, the claim's token and lease, `started_at =
/// updated_at = now`, `next_run_at` cleared ([`Jobs::claim`](queuectl_store::Jobs::claim)).
/// How the due jobs are picked and kept from other claimers is the dialect's own.
#[derive(Debug)]
pub struct ClaimStamp<'a> {
    worker_id: &'a str,
    token: i64,
    lease_until: i64,
    now: i64,
}

impl<'a> ClaimStamp<'a> {
    /// The stamp of the claim `req` under `token`.
    #[must_use]
    pub fn new(req: &'a ClaimRequest, token: ClaimToken) -> Self {
        ClaimStamp {
            worker_id: &req.worker_id,
            token: token.0,
            lease_until: req.lease_until.as_millis(),
            now: req.now.as_millis(),
        }
    }
}

impl QueryFragment<Db> for ClaimStamp<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("state = 'processing', next_run_at = NULL, worker_id = ");
        out.push_bind_param::<Text, _>(&self.worker_id)?;
        out.push_sql(", claim_token = ");
        out.push_bind_param::<BigInt, _>(&self.token)?;
        out.push_sql(", lease_until = ");
        out.push_bind_param::<BigInt, _>(&self.lease_until)?;
        out.push_sql(", started_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        Ok(())
    }
}

/// `KeyHeld` if another job that may still run holds the unique key of job `id`.
pub(super) fn check_key_free(conn: &mut Conn, id: &JobId) -> Result<(), Failure> {
    let key: Option<Option<String>> = jobs::table
        .filter(jobs::id.eq(id.as_str()))
        .select(jobs::unique_key)
        .first(conn)
        .optional()?;
    let Some(Some(key)) = key else {
        return Ok(());
    };
    let holder: Option<String> = jobs::table
        .filter(jobs::unique_key.eq(&key))
        // Literal, so that SQLite can use the partial index `jobs_unique_key`.
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "state IN ('pending', 'failed', 'processing')",
        ))
        .filter(jobs::id.ne(id.as_str()))
        .select(jobs::id)
        .first(conn)
        .optional()?;
    match holder {
        Some(holder) => Err(StoreError::KeyHeld {
            key,
            holder: JobId::new(holder),
        }
        .into()),
        None => Ok(()),
    }
}

/// The stored job `id`, if any.
fn find_job(conn: &mut Conn, id: &JobId) -> Result<Option<JobRow>, Failure> {
    Ok(jobs::table
        .filter(jobs::id.eq(id.as_str()))
        .select(JobRow::as_select())
        .first(conn)
        .optional()?)
}

/// The error for a guarded operator write that matched no row: `NotFound`, or
/// `WrongState` naming the state the job is in.
pub(super) fn not_applicable(conn: &mut Conn, id: &JobId) -> Failure {
    let state = jobs::table
        .filter(jobs::id.eq(id.as_str()))
        .select(jobs::state)
        .first::<String>(conn)
        .optional();
    match state {
        Err(e) => e.into(),
        Ok(None) => StoreError::NotFound(id.clone()).into(),
        Ok(Some(s)) => match state_from_db(&s) {
            Ok(state) => StoreError::WrongState {
                id: id.clone(),
                state,
            }
            .into(),
            Err(e) => e.into(),
        },
    }
}

/// Inserts `rows` in order, all of them or (by failing, which rolls the caller's
/// transaction back) none; returns their `seq`s in order. An id that exists already is
/// `Conflict` naming the first such id. `rows` must not repeat an id.
fn insert_jobs(conn: &mut Conn, rows: &[InsertJob<'_>]) -> Result<Vec<i64>, Failure> {
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(rows_per_insert(INSERT_JOB_COLUMNS)) {
        // ON CONFLICT DO NOTHING instead of catching the unique violation: the rows that
        // come back say exactly which ids were taken, without parsing error text.
        let got: Vec<(String, i64)> = diesel::insert_into(jobs::table)
            .values(chunk)
            .on_conflict(jobs::id)
            .do_nothing()
            .returning((jobs::id, jobs::seq))
            .get_results(conn)?;
        let fresh = got.len();
        seqs.extend(got);
        if fresh < chunk.len() {
            let taken = chunk.iter().find(|r| !seqs.contains_key(r.id));
            let id = taken.map_or_else(|| JobId::new(""), |r| JobId::new(r.id));
            return Err(StoreError::Conflict(id).into());
        }
    }
    Ok(rows
        .iter()
        .map(|r| seqs.get(r.id).copied().unwrap_or_default())
        .collect())
}

/// Most rows of one multi-row `INSERT` of `columns` columns: SQLite binds at most 32766
/// variables per statement (PostgreSQL 65535), so this fits both.
const fn rows_per_insert(columns: usize) -> usize {
    const MAX_VARIABLES: usize = 32_766;
    MAX_VARIABLES / columns
}
