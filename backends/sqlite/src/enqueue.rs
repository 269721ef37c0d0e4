//! Enqueue: new jobs in multi-row `INSERT`s of a fixed size, each prepared once per
//! connection. (`import` uses the shared core's portable insert; this is the hot path.)

use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use queuectl_store::{Enqueued, JobId, StoreError};
use queuectl_store_sql::row::InsertJob;
use queuectl_store_sql::schema::jobs;
use queuectl_store_sql::Failure;

/// Inserts `rows` in order, all of them or (by failing, which rolls the caller's
/// transaction back) none: whole chunks of [`INSERT_CHUNK`] rows one statement each, the
/// rest one row at a time. An id that exists already is `Conflict` naming the first such
/// id in `rows`' order; `rows` must not repeat an id (the caller rejects repeats first).
/// A chunk that inserts fewer rows than it holds met such an id.
pub(crate) fn insert_new_jobs(
    conn: &mut SqliteConnection,
    rows: &[InsertJob<'_>],
) -> Result<Vec<Enqueued>, Failure> {
    if rows.iter().any(|r| r.unique_key.is_some()) {
        // A row held by its key inserts nothing, like a taken id: go row by row to tell
        // which it was.
        return insert_keyed(conn, rows);
    }
    insert_unkeyed(conn, rows)?;
    Ok(vec![Enqueued::Stored; rows.len()])
}

/// Inserts `rows` one by one; a row that inserts nothing has a taken id (`Conflict`) or a
/// key held by a job that may still run (`Held`, the row is skipped). The caller's write
/// transaction holds SQLite's write lock, so the holder found is the one that blocked the
/// insert.
fn insert_keyed(
    conn: &mut SqliteConnection,
    rows: &[InsertJob<'_>],
) -> Result<Vec<Enqueued>, Failure> {
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        if InsertJobRow(row)
            .get_result::<i64>(conn)
            .optional()?
            .is_some()
        {
            results.push(Enqueued::Stored);
            continue;
        }
        let holder = match row.unique_key {
            Some(key) => jobs::table
                .filter(jobs::unique_key.eq(key))
                // Literal, so that SQLite can use the partial index `jobs_unique_key`.
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "state IN ('pending', 'failed', 'processing')",
                ))
                .filter(jobs::id.ne(row.id))
                .select(jobs::id)
                .first::<String>(conn)
                .optional()?,
            None => None,
        };
        let id_taken = jobs::table
            .filter(jobs::id.eq(row.id))
            .select(jobs::seq)
            .first::<i64>(conn)
            .optional()?
            .is_some();
        match holder {
            Some(holder) if !id_taken => results.push(Enqueued::Held(JobId::new(holder))),
            _ => return Err(StoreError::Conflict(JobId::new(row.id)).into()),
        }
    }
    Ok(results)
}

/// Inserts rows without a unique key (see [`insert_new_jobs`]).
fn insert_unkeyed(conn: &mut SqliteConnection, rows: &[InsertJob<'_>]) -> Result<(), Failure> {
    let mut chunks = rows.chunks_exact(INSERT_CHUNK);
    for chunk in &mut chunks {
        let Some(statement) = InsertJobChunk::new(chunk) else {
            // chunks_exact yields INSERT_CHUNK rows only; the row-by-row path is correct
            // for any count anyway.
            insert_one_by_one(conn, chunk)?;
            continue;
        };
        let inserted = statement.execute(conn)?;
        if inserted != chunk.len() {
            return Err(chunk_conflict(conn, chunk, inserted));
        }
    }
    insert_one_by_one(conn, chunks.remainder())
}

/// Inserts `rows` with one cached statement per row (see [`InsertJobRow`]); no row back
/// means the id exists.
fn insert_one_by_one(conn: &mut SqliteConnection, rows: &[InsertJob<'_>]) -> Result<(), Failure> {
    for row in rows {
        if InsertJobRow(row)
            .get_result::<i64>(conn)
            .optional()?
            .is_none()
        {
            return Err(StoreError::Conflict(JobId::new(row.id)).into());
        }
    }
    Ok(())
}

/// The `Conflict` of a chunk that inserted only `inserted` of its rows. Every id of the
/// chunk is now stored, and a new row's `seq` (the rowid) is above every older one, so the
/// ids that existed before are the lowest `seq`s among them.
fn chunk_conflict(
    conn: &mut SqliteConnection,
    chunk: &[InsertJob<'_>],
    inserted: usize,
) -> Failure {
    let ids: Vec<&str> = chunk.iter().map(|r| r.id).collect();
    let stored = match jobs::table
        .filter(jobs::id.eq_any(&ids))
        .select(jobs::id)
        .order(jobs::seq.asc())
        .load::<String>(conn)
    {
        Ok(stored) => stored,
        Err(e) => return e.into(),
    };
    let existed = &stored[..stored.len().saturating_sub(inserted)];
    match ids.iter().find(|id| existed.iter().any(|e| e == *id)) {
        Some(id) => StoreError::Conflict(JobId::new(*id)).into(),
        // Unreachable while the chunk's ids are distinct; say what happened all the same.
        None => Failure::Store(StoreError::Corrupt {
            what: format!(
                "jobs: an INSERT of {} new jobs stored {inserted} and found no older id",
                chunk.len()
            ),
        }),
    }
}

/// `INSERT INTO jobs … VALUES (…) ON CONFLICT DO NOTHING RETURNING seq` for one row: a
/// statement of fixed text with a static query id, so Diesel prepares it once per
/// connection and finds it by type. `a single enqueue and the rows of a batch
/// left after its whole [`InsertJobChunk`]s run it once per row.
struct InsertJobRow<'a>(&'a InsertJob<'a>);

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
     claim_token, cwd, env, limits, unique_key, depends_on) VALUES ";

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
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.cwd)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.env)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.limits)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.unique_key)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&r.depends_on)?;
    out.push_sql(")");
    Ok(())
}

/// Rows per [`InsertJobChunk`]: 64 rows of 26 columns, far below SQLite's limit of bound
/// variables.
const INSERT_CHUNK: usize = 64;

/// `INSERT INTO jobs … VALUES (…), … ON CONFLICT DO NOTHING` for exactly [`INSERT_CHUNK`]
/// rows. Its text never changes, so like [`InsertJobRow`] it is prepared once per
/// connection; one step then inserts the whole chunk, which saves the per-statement work
/// (bind, step, reset, statement journal) of 63 single-row inserts. Build it only with
/// [`InsertJobChunk::new`], which refuses any other row count: another count would change
/// the text behind the same cached statement.
struct InsertJobChunk<'a>(&'a [InsertJob<'a>]);

impl<'a> InsertJobChunk<'a> {
    /// The statement for `rows`, if it holds exactly [`INSERT_CHUNK`] rows.
    fn new(rows: &'a [InsertJob<'a>]) -> Option<Self> {
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
struct InsertJobChunkQuery;

impl QueryId for InsertJobChunk<'_> {
    type QueryId = InsertJobChunkQuery;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<SqliteConnection> for InsertJobChunk<'_> {}

/// The static query id of [`InsertJobRow`].
#[derive(Debug)]
struct InsertJobRowQuery;

impl QueryId for InsertJobRow<'_> {
    type QueryId = InsertJobRowQuery;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for InsertJobRow<'_> {
    type SqlType = BigInt;
}

impl RunQueryDsl<SqliteConnection> for InsertJobRow<'_> {}
