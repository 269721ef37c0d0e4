//! `PostgresStore`: a queuectl [`JobStore`](queuectl_store::JobStore) on PostgreSQL, for one queue shared by many
//! worker processes and machines.
//!
//! It is the same store as the SQLite one, with a server: every call is one statement or one
//! transaction on a pooled connection (Diesel + r2d2), the schema is created and upgraded by
//! embedded migrations on connect, and claims use `FOR UPDATE SKIP LOCKED` so any number of
//! workers can claim concurrently without blocking each other or taking the same job. It is
//! not a general PostgreSQL job library: no triggers, no stored procedures, no extensions.
//!
//! ```no_run
//! use queuectl_store::prelude::*;
//! use queuectl_store::{ClaimRequest, NewJob, Timestamp};
//! use queuectl_store_postgres::PostgresStore;
//! use std::time::Duration;
//!
//! # fn main() -> queuectl_store::StoreResult<()> {
//! let store = PostgresStore::connect("postgres://queuectl@db.internal/queuectl")?;
//! let now = Timestamp::now();
//! store.enqueue(&NewJob::shell("echo hello", now), now)?;
//!
//! // A worker: claim, or sleep until a producer anywhere enqueues.
//! let req = ClaimRequest {
//!     limit: 4,
//!     worker_id: "host:1234".into(),
//!     now,
//!     lease_until: now.add(Duration::from_secs(15)),
//!     queues: vec![],
//! };
//! if store.claim(&req)?.is_empty() {
//!     store.wait_for_notification(Duration::from_secs(1))?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! Tables `jobs` (with a `BIGSERIAL seq` for insertion order), `job_output` (the last
//! attempt's stdout and stderr), `job_attempts` (history), `settings` and `workers`, from
//! `migrations/postgres`. Timestamps are `BIGINT` milliseconds since the Unix epoch, as in
//! the SQLite store, so they round-trip exactly at the precision the contract prints.
//!
//! # Deviations and tuning
//! - **Change marker.** [`ChangeFeed::change_marker`] is the sum of two counters: job writes
//!   committed through this handle (any write, seen at once), and `NOTIFY`s received by
//!   this handle's listening connection (see [`PostgresStore::wait_for_notification`]),
//!   which report other handles' and processes' writes a few milliseconds after they
//!   commit. Only writes that make a job claimable notify (enqueue, import, `dlq retry`, a
//!   finish to `failed`, a recovered or released job): another process's completions,
//!   claims, cancels and prunes do not move this handle's marker, because they never give
//!   an idle worker something to claim. A dropped listening connection also moves it,
//!   since notifications may have been missed. Like every marker it says nothing about
//!   time passing: a job delayed into the future needs the scheduler's own poll.
//! - **Wake-up latency.** [`ChangeFeed::wait_for_change`] (what the worker pool's wake-up
//!   thread blocks in) and [`PostgresStore::wait_for_notification`] wait on the listening
//!   connection. Diesel offers no blocking wait on the socket, so the listener polls its
//!   non-blocking read every 1–8 ms: wake-ups take a few milliseconds, an idle wait issues
//!   no query.
//! - **Round trips.** A claim is one prepared statement, cached per connection; a batch of
//!   `Completed` / `Failed` / `Dead` transitions is one statement however large (see
//!   `finish.rs`); other transition kinds are applied row by row in one transaction.
//! - **Durability.** Every write waits for its commit to be flushed (the server's default
//!   `synchronous_commit = on`), which bounds single-job calls by the disk's flush latency.
//!   `?options=-csynchronous_commit%3Doff` in the URL trades that for throughput: a server
//!   crash may lose the last fraction of a second of commits, so a job may run again.
//! - **Schemas.** With [`PostgresOptions::schema`] every pooled connection runs
//!   `SET search_path TO <schema>`; several independent queues (or test runs) can share a
//!   database, and notifications carry the schema so they do not wake each other.
//! - **Pool size.** [`PostgresOptions::pool_size`] (default 8) bounds this handle's server
//!   connections, plus one listening connection once a worker waits. Size it to the number
//!   of threads that call the store at once; PostgreSQL's `max_connections` (default 100)
//!   caps all processes together, so many workers each with a large pool run out of server
//!   slots before they run out of jobs.
//! - **Timeouts.** [`PostgresOptions::connect_timeout`] (default 5 s) becomes libpq's
//!   `connect_timeout` (whole seconds, at least 2) unless the URL sets one, and is also how
//!   long a call waits for a free pooled connection before [`StoreError::Busy`] (or
//!   [`StoreError::Unavailable`] when the server cannot be reached).
//! - **Retries.** Serialization failures, deadlocks and lock timeouts are retried up to
//!   five times with a short growing backoff, then returned as [`StoreError::Busy`]. At the
//!   default `READ COMMITTED` isolation the store's own statements do not deadlock (rows are
//!   locked in id order), so retries only matter under a stricter server default.
//! - **TLS.** libpq is built without OpenSSL (`bundled_without_openssl`): `sslmode=prefer`
//!   (the default) connects in plain text, `sslmode=require` fails.
//! - **Connection checks.** A pooled connection is pinged before use only when it sat idle
//!   for over a second or another one of this handle was found dead since (a ping per call
//!   was a round trip per call), and replaced if dead. A server restart while the handle is
//!   idle costs no failed call; one during a burst of calls fails the call that first meets
//!   a dead connection with [`StoreError::Unavailable`], and the calls after it run on
//!   fresh connections.
//! - **Batch size.** `enqueue_many` sends each column as one array: one statement for any
//!   batch. `import` inserts in chunks that stay under PostgreSQL's 65535 bind parameters
//!   per statement, all in one transaction.
//! - **Pruning.** Finished jobs stay in `jobs` until `prune`; the claim's partial index
//!   ignores them, but `list` and `counts` scan them. Prune on a schedule.

#![warn(missing_docs)]

mod claim;
mod enqueue;
mod error;
mod finish;
mod migrate;
mod notify;
mod row;
mod schema;
mod session;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::dsl::count_star;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Text};
use diesel::upsert::excluded;
use queuectl_store::{
    Capabilities, ChangeFeed, ClaimRequest, ClaimToken, Coordination, Guarded, Heartbeat, Job,
    JobFilter, JobId, JobRecord, JobState, Jobs, LeaseRef, Marker, NewJob, StateCounts, StoreError,
    StoreResult, Timestamp, Transition, TransitionKind, Wake, WorkerInfo,
};

use crate::error::{connect_error, describe_target, pool_error, to_store_error};
use crate::notify::{notify, Listener};
use crate::row::{
    AttemptRow, InsertAttemptRow, InsertJobRow, JobRow, OutputRow, WorkerRow,
    INSERT_ATTEMPT_PARAMS, INSERT_JOB_PARAMS,
};
use crate::schema::{job_attempts, job_output, jobs, settings, workers};
use crate::session::{Manager, SessionSetup};

/// PostgreSQL's limit on bind parameters in one statement.
const MAX_BIND_PARAMS: usize = 65_535;

/// Transient failures are retried this many times before [`StoreError::Busy`].
const MAX_RETRIES: u32 = 5;

/// How [`PostgresStore::connect_with`] connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Maximum pooled connections of this handle (at least 1; default 8).
    pub pool_size: u32,
    /// Keep the tables in this schema (created if missing) instead of the connection's
    /// default `search_path`.
    pub schema: Option<String>,
    /// Bound on opening a connection and on waiting for a pooled one (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 8,
            schema: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`JobStore`](queuectl_store::JobStore) on a PostgreSQL database. Cheap to share: wrap it in an `Arc`.
pub struct PostgresStore {
    pool: Pool<Manager>,
    listener: Listener,
    /// `user@host:port/db`, for messages (never the password).
    target: String,
    /// The schema the tables live in, as PostgreSQL resolved it.
    schema: String,
    /// Job writes committed through this handle; half of the change marker.
    local_writes: AtomicU64,
    /// Pooled connections found dead so far (see session.rs).
    lost_connections: AtomicU64,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .field("listener", &self.listener)
            .field("local_writes", &self.local_writes.load(Ordering::Relaxed))
            .finish()
    }
}

/// A failure inside a transaction: a driver error (maybe retried) or a decided outcome
/// that must roll the transaction back (a conflict, a wrong state).
enum TxError {
    Db(DieselError),
    Store(StoreError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Db(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

type TxResult<T> = Result<T, TxError>;

/// `url` with libpq's `connect_timeout` set, unless the caller set it.
fn with_connect_timeout(url: &str, timeout: Duration) -> String {
    if url.contains("connect_timeout") {
        return url.to_owned();
    }
    let secs = (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).max(1);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}connect_timeout={secs}")
    } else {
        format!("{url} connect_timeout={secs}")
    }
}

impl PostgresStore {
    /// Connects with [`PostgresOptions::default`].
    ///
    /// # Errors
    /// See [`PostgresStore::connect_with`].
    pub fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, PostgresOptions::default())
    }

    /// Connects to `url` (a `postgres://` URL or a libpq `key=value` string), creates the
    /// schema if asked, runs pending migrations under an advisory lock (safe when several
    /// processes start at once) and opens the pool.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with a one-line reason when the server cannot be reached
    /// within `connect_timeout` or refuses the login; [`StoreError::Migration`] when the
    /// schema cannot be created or upgraded.
    pub fn connect_with(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let target = describe_target(url);
        if let Some(schema) = &options.schema {
            if schema.is_empty() || schema.contains('\0') {
                return Err(StoreError::Unavailable {
                    message: format!("invalid schema name {schema:?}"),
                    source: None,
                });
            }
        }
        let url = with_connect_timeout(url, options.connect_timeout);

        // Migrate on a connection of its own first: it gives the clearest connect error
        // and holds the advisory lock for exactly the migration.
        let mut conn = PgConnection::establish(&url).map_err(|e| connect_error(&e, &target))?;
        let current_schema = |conn: &mut PgConnection| -> StoreResult<Option<String>> {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Nullable<Text>>(
                "current_schema()",
            ))
            .get_result(conn)
            .map_err(to_store_error)
        };
        let no_schema = || {
            StoreError::Migration(
                "no schema selected: the search_path names no existing schema \
                 (create it first, or choose one that exists)"
                    .to_owned(),
            )
        };
        // Checked before migrating: the migration's own error ("no schema has been selected
        // to create in") does not say what to do.
        if options.schema.is_none() && current_schema(&mut conn)?.is_none() {
            return Err(no_schema());
        }
        migrate::run(&mut conn, options.schema.as_deref())?;
        let schema = current_schema(&mut conn)?.ok_or_else(no_schema)?;
        drop(conn);

        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout.max(Duration::from_millis(100)))
            // No `SELECT 1` per checkout: sessions are pinged only after sitting idle
            // (session.rs).
            .test_on_check_out(false)
            .connection_customizer(Box::new(SessionSetup {
                schema: options.schema.clone(),
            }))
            .build(Manager::new(url.clone()))
            .map_err(|e| pool_error(&e, &target))?;

        Ok(PostgresStore {
            pool,
            listener: Listener::new(url, target.clone(), schema.clone()),
            target,
            schema,
            local_writes: AtomicU64::new(0),
            lost_connections: AtomicU64::new(0),
        })
    }

    /// The schema holding the tables, as PostgreSQL resolved it.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Blocks until a job becomes claimable anywhere (a `NOTIFY` from any process using
    /// this database and schema) or `timeout` passes; returns whether a notification came.
    ///
    /// The first call opens this handle's listening connection; writes committed before
    /// that are not reported (claim once after the first call to catch them). A
    /// notification delivered but not yet read counts, so "claim, then wait" loses no
    /// wake-up. Returns `true` spuriously after the listening connection was lost and
    /// reopened. Wake-up latency is a few milliseconds (see the crate docs).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the listening connection cannot be opened or breaks.
    pub fn wait_for_notification(&self, timeout: Duration) -> StoreResult<bool> {
        self.listener.wait(timeout)
    }

    /// Records a committed job write for [`ChangeFeed::change_marker`].
    fn wrote(&self) {
        self.local_writes.fetch_add(1, Ordering::AcqRel);
    }

    fn conn(&self) -> StoreResult<PooledConnection<Manager>> {
        self.pool.get().map_err(|e| pool_error(&e, &self.target))
    }

    /// Runs `f` on a pooled connection, retrying transient failures a bounded number of
    /// times (a failed statement or transaction has rolled back, so a retry is safe).
    fn run<T>(&self, mut f: impl FnMut(&mut PgConnection) -> TxResult<T>) -> StoreResult<T> {
        let mut session = self.conn()?;
        // A session that may be dead is pinged first (session.rs). Dead ones (a server
        // restart kills every pooled connection) leave the pool; nothing was sent on them,
        // so take another, at most once per pooled connection plus a fresh one.
        let mut dead = 0;
        while let Err(e) = session.checked(&self.lost_connections) {
            dead += 1;
            if dead > self.pool.max_size() {
                return Err(to_store_error(e));
            }
            drop(session);
            session = self.conn()?;
        }
        let mut attempt = 0;
        loop {
            let conn = session
                .checked(&self.lost_connections)
                .map_err(to_store_error)?;
            let err = match f(conn) {
                Ok(v) => return Ok(v),
                Err(TxError::Store(e)) => return Err(e),
                Err(TxError::Db(e)) => {
                    session.note_error(&e, &self.lost_connections);
                    to_store_error(e)
                }
            };
            if !err.is_transient() || attempt >= MAX_RETRIES {
                return Err(err);
            }
            attempt += 1;
            std::thread::sleep(retry_backoff(attempt));
        }
    }

    /// [`Self::run`] with `f` inside one transaction.
    fn transaction<T>(
        &self,
        mut f: impl FnMut(&mut PgConnection) -> TxResult<T>,
    ) -> StoreResult<T> {
        self.run(|conn| conn.transaction(&mut f))
    }
}

/// 5, 10, 20, 40, 80 ms, plus up to 50 % jitter so colliding callers spread out.
fn retry_backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.saturating_sub(1).min(8);
    let jitter = u64::try_from(ClaimToken::random().0).unwrap_or(0) % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

/// Rejects an id repeated within one batch, naming it.
fn check_unique_ids<'a>(ids: impl Iterator<Item = &'a JobId>) -> StoreResult<()> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            return Err(StoreError::Conflict(id.clone()));
        }
    }
    Ok(())
}

/// Inserts job rows in chunks; returns each id's `seq`. An existing id rolls back the
/// whole transaction with [`StoreError::Conflict`] naming the first such id.
fn insert_jobs(
    conn: &mut PgConnection,
    rows: &[InsertJobRow<'_>],
) -> TxResult<HashMap<String, i64>> {
    let mut seqs = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(MAX_BIND_PARAMS / INSERT_JOB_PARAMS) {
        // ON CONFLICT DO NOTHING instead of catching the unique violation: the statement
        // tells exactly which ids were taken, without parsing error text.
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
    Ok(seqs)
}

/// The job row matching a guarded write: still `processing` under `token`.
macro_rules! guarded {
    ($id:expr, $token:expr) => {
        jobs::table
            .filter(jobs::id.eq($id))
            .filter(jobs::state.eq(JobState::Processing.as_str()))
            .filter(jobs::claim_token.eq($token))
    };
}

/// [`guarded!`], and for a lease-guarded kind also `lease_until < now`: in the same `WHERE`,
/// which PostgreSQL re-checks on the newest row version, so a renewal committed between the
/// recovery's read and its write makes the recovery stale.
macro_rules! recoverable {
    ($id:expr, $token:expr, $kind:expr, $now:expr) => {
        guarded!($id, $token).filter(
            jobs::lease_until
                .lt($now)
                .or((!$kind.only_if_lease_expired()).into_sql::<diesel::sql_types::Bool>()),
        )
    };
}

/// Applies one transition if its guard holds; returns whether it applied.
fn apply_transition(conn: &mut PgConnection, t: &Transition, now: Timestamp) -> TxResult<bool> {
    let now_ms = now.as_millis();
    let id = t.id.as_str();
    let token = t.token.0;
    let (execution, state, error, next_run_at) = match &t.kind {
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
        TransitionKind::Recovered { .. } | TransitionKind::Released => {
            let bump = i64::from(matches!(t.kind, TransitionKind::Recovered { .. }));
            let n = diesel::update(recoverable!(id, token, &t.kind, now_ms))
                .set((
                    jobs::state.eq(JobState::Pending.as_str()),
                    jobs::interrupts.eq(jobs::interrupts + bump),
                    jobs::next_run_at.eq(Some(now_ms)),
                    jobs::updated_at.eq(now_ms),
                    jobs::lease_until.eq(None::<i64>),
                    jobs::claim_token.eq(None::<i64>),
                ))
                .execute(conn)?;
            return Ok(n > 0);
        }
        TransitionKind::Abandoned { error, .. } => {
            let n = diesel::update(recoverable!(id, token, &t.kind, now_ms))
                .set((
                    jobs::state.eq(JobState::Dead.as_str()),
                    jobs::interrupts.eq(jobs::interrupts + 1),
                    jobs::last_error.eq(Some(error.as_str())),
                    jobs::next_run_at.eq(None::<i64>),
                    jobs::updated_at.eq(now_ms),
                    jobs::lease_until.eq(None::<i64>),
                    jobs::claim_token.eq(None::<i64>),
                ))
                .execute(conn)?;
            return Ok(n > 0);
        }
    };
    let updated: Option<(i64, i64, Option<i64>)> = diesel::update(guarded!(id, token))
        .set((
            jobs::state.eq(state.as_str()),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::finished_at.eq(Some(now_ms)),
            jobs::exit_code.eq(execution.exit_code),
            jobs::last_error.eq(error),
            jobs::next_run_at.eq(next_run_at),
            jobs::updated_at.eq(now_ms),
            jobs::lease_until.eq(None::<i64>),
            jobs::claim_token.eq(None::<i64>),
        ))
        .returning((jobs::seq, jobs::attempts, jobs::started_at))
        .get_result(conn)
        .optional()?;
    let Some((seq, attempts, started_at)) = updated else {
        return Ok(false);
    };
    diesel::insert_into(job_output::table)
        .values(OutputRow {
            job_seq: seq,
            stdout: execution.output.stdout.clone(),
            stderr: execution.output.stderr.clone(),
        })
        .on_conflict(job_output::job_seq)
        .do_update()
        .set((
            job_output::stdout.eq(excluded(job_output::stdout)),
            job_output::stderr.eq(excluded(job_output::stderr)),
        ))
        .execute(conn)?;
    diesel::insert_into(job_attempts::table)
        .values(InsertAttemptRow {
            job_seq: seq,
            attempt: attempts,
            // A processing job always has `started_at`; an imported one might not.
            started_at: started_at.unwrap_or(now_ms),
            finished_at: now_ms,
            exit_code: execution.exit_code,
            error,
        })
        .execute(conn)?;
    Ok(true)
}

/// Whether applying this transition makes its job claimable (and so wakes workers).
fn wakes_workers(kind: &TransitionKind) -> bool {
    matches!(
        kind,
        TransitionKind::Failed { .. } | TransitionKind::Recovered { .. } | TransitionKind::Released
    )
}

/// The row of `id`, or `NotFound`.
fn load_job(conn: &mut PgConnection, id: &JobId) -> TxResult<JobRow> {
    jobs::table
        .filter(jobs::id.eq(id.as_str()))
        .select(JobRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(id.clone()).into())
}

/// `WrongState` naming `id`'s current state, or `NotFound`.
fn wrong_state(conn: &mut PgConnection, id: &JobId) -> TxError {
    match load_job(conn, id) {
        Ok(row) => match row.into_job() {
            Ok(job) => StoreError::WrongState {
                id: id.clone(),
                state: job.state,
            }
            .into(),
            Err(e) => e.into(),
        },
        Err(e) => e,
    }
}

fn decode_jobs(rows: Vec<JobRow>) -> StoreResult<Vec<Job>> {
    rows.into_iter().map(JobRow::into_job).collect()
}

impl Jobs for PostgresStore {
    // ----- producer -----

    fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        check_unique_ids(jobs.iter().map(|j| &j.id))?;
        let rows = jobs
            .iter()
            .map(|j| InsertJobRow::from_new(j, now))
            .collect::<StoreResult<Vec<_>>>()?;
        let query = enqueue::EnqueueQuery::new(&rows, now.as_millis());
        self.run(
            |conn| match query.clone().get_result::<enqueue::Enqueued>(conn) {
                Ok(done) if usize::try_from(done.inserted).ok() == Some(rows.len()) => Ok(()),
                Ok(done) => Err(StoreError::Backend {
                    message: format!("enqueue stored {} of {} jobs", done.inserted, rows.len()),
                    source: None,
                }
                .into()),
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                    // Which id was taken is looked up, not parsed out of the server's
                    // (translatable) message; nothing was stored either way.
                    match enqueue::first_taken(conn, query.ids())? {
                        Some(id) => Err(StoreError::Conflict(JobId::new(id)).into()),
                        None => Err(DieselError::DatabaseError(
                            DatabaseErrorKind::UniqueViolation,
                            info,
                        )
                        .into()),
                    }
                }
                Err(e) => Err(e.into()),
            },
        )?;
        self.wrote();
        Ok(())
    }

    // ----- worker -----

    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let token = ClaimToken::random();
        let rows = self.run(|conn| Ok(claim::claim(conn, req, token)?))?;
        if !rows.is_empty() {
            self.wrote();
        }
        decode_jobs(rows)
    }

    fn finish(&self, transitions: &[Transition], now: Timestamp) -> StoreResult<Vec<Guarded>> {
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(query) = finish::FinishQuery::new(transitions, now) {
            // The common case (workers reporting executions): one statement.
            let done: Vec<finish::Finished> = self.run(|conn| Ok(query.clone().load(conn)?))?;
            let mut out = vec![Guarded::Stale; transitions.len()];
            let mut wake = false;
            for f in &done {
                if let Some(slot) = usize::try_from(f.ord).ok().and_then(|i| out.get_mut(i)) {
                    *slot = Guarded::Applied;
                }
                wake |= f.state == JobState::Failed.as_str();
            }
            if !done.is_empty() {
                self.wrote();
            }
            if wake {
                // After the commit, in a statement of its own: a failed job is due only
                // after its backoff, so a wake-up a moment later loses nothing.
                self.run(|conn| Ok(notify(conn)?))?;
            }
            return Ok(out);
        }
        // Lock rows in id order (stable, so the first of two transitions of one job wins):
        // concurrent finishes and renewals then never wait on each other in a cycle.
        let mut order: Vec<usize> = (0..transitions.len()).collect();
        order.sort_by(|&a, &b| transitions[a].id.cmp(&transitions[b].id));
        let out = self.transaction(|conn| {
            let mut out = vec![Guarded::Stale; transitions.len()];
            let mut wake = false;
            for &i in &order {
                let t = &transitions[i];
                if apply_transition(conn, t, now)? {
                    out[i] = Guarded::Applied;
                    wake |= wakes_workers(&t.kind);
                }
            }
            if wake {
                notify(conn)?;
            }
            Ok(out)
        })?;
        if out.iter().any(|g| g.is_applied()) {
            self.wrote();
        }
        Ok(out)
    }

    fn renew_leases(
        &self,
        leases: &[LeaseRef],
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Guarded>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(QueryableByName)]
        struct Renewed {
            #[diesel(sql_type = Text)]
            id: String,
            #[diesel(sql_type = BigInt)]
            claim_token: i64,
        }
        let ids: Vec<&str> = leases.iter().map(|l| l.id.as_str()).collect();
        let tokens: Vec<i64> = leases.iter().map(|l| l.token.0).collect();
        // One statement; the CTE locks the rows in id order, like `finish`.
        let renewed: Vec<Renewed> = self.run(|conn| {
            Ok(diesel::sql_query(
                "WITH l AS MATERIALIZED ( \
                   SELECT j.seq FROM jobs j \
                   JOIN unnest($3::text[], $4::bigint[]) AS r(id, token) \
                     ON j.id = r.id AND j.claim_token = r.token \
                   WHERE j.state = 'processing' \
                   ORDER BY j.id FOR UPDATE OF j) \
                 UPDATE jobs SET lease_until = $1, updated_at = $2 \
                 FROM l WHERE jobs.seq = l.seq AND jobs.state = 'processing' \
                 RETURNING jobs.id, jobs.claim_token",
            )
            .bind::<BigInt, _>(lease_until.as_millis())
            .bind::<BigInt, _>(now.as_millis())
            .bind::<Array<Text>, _>(&ids)
            .bind::<Array<BigInt>, _>(&tokens)
            .load(conn)?)
        })?;
        if !renewed.is_empty() {
            self.wrote();
        }
        let applied: HashSet<(String, i64)> =
            renewed.into_iter().map(|r| (r.id, r.claim_token)).collect();
        Ok(leases
            .iter()
            .map(|l| {
                if applied.contains(&(l.id.as_str().to_owned(), l.token.0)) {
                    Guarded::Applied
                } else {
                    Guarded::Stale
                }
            })
            .collect())
    }

    // ----- maintenance -----

    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>> {
        let rows = self.run(|conn| {
            Ok(jobs::table
                .filter(jobs::state.eq(JobState::Processing.as_str()))
                .filter(jobs::lease_until.lt(now.as_millis()))
                .order((jobs::lease_until.asc(), jobs::seq.asc()))
                .limit(i64::from(limit))
                .select(JobRow::as_select())
                .load(conn)?)
        })?;
        decode_jobs(rows)
    }

    fn prune(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        // The locking subquery re-checks state and age on rows changed since its snapshot
        // (a `dlq retry` racing the prune), so a job that just left a terminal state is never
        // deleted. Output and history go with the row (ON DELETE CASCADE).
        let n = self.run(|conn| {
            Ok(diesel::sql_query(
                "DELETE FROM jobs WHERE seq IN ( \
                   SELECT seq FROM jobs \
                   WHERE state IN ('completed', 'dead', 'cancelled') AND updated_at < $1 \
                   ORDER BY updated_at, seq LIMIT $2 \
                   FOR UPDATE SKIP LOCKED)",
            )
            .bind::<BigInt, _>(before.as_millis())
            .bind::<BigInt, _>(i64::from(limit))
            .execute(conn)?)
        })?;
        if n > 0 {
            self.wrote();
        }
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    // ----- operator -----

    fn cancel(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        let row = self.transaction(|conn| {
            let row: Option<JobRow> =
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
            row.ok_or_else(|| wrong_state(conn, id))
        })?;
        self.wrote();
        row.into_job()
    }

    fn counts(&self) -> StoreResult<StateCounts> {
        let rows: Vec<(String, i64)> = self.run(|conn| {
            Ok(jobs::table
                .group_by(jobs::state)
                .select((jobs::state, count_star()))
                .load(conn)?)
        })?;
        let mut counts = StateCounts::default();
        for (state, n) in rows {
            let state = state.parse::<JobState>().map_err(|e| StoreError::Corrupt {
                what: e.to_string(),
            })?;
            *counts.get_mut(state) = u64::try_from(n).unwrap_or(0);
        }
        Ok(counts)
    }

    fn get(&self, id: &JobId) -> StoreResult<Job> {
        self.run(|conn| load_job(conn, id))?.into_job()
    }

    fn get_record(&self, id: &JobId) -> StoreResult<JobRecord> {
        // REPEATABLE READ: the row, output and history come from one snapshot.
        let (row, output, history) = self.run(|conn| {
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run(|conn| {
                    let row = load_job(conn, id)?;
                    let output: Option<OutputRow> = job_output::table
                        .find(row.seq)
                        .select(OutputRow::as_select())
                        .first(conn)
                        .optional()?;
                    let history: Vec<AttemptRow> = job_attempts::table
                        .filter(job_attempts::job_seq.eq(row.seq))
                        .order(job_attempts::seq.asc())
                        .select(AttemptRow::as_select())
                        .load(conn)?;
                    Ok::<_, TxError>((row, output, history))
                })
        })?;
        Ok(JobRecord {
            job: row.into_job()?,
            output: output.map(OutputRow::into_output),
            history: history
                .into_iter()
                .map(|a| a.into_record(id))
                .collect::<StoreResult<_>>()?,
        })
    }

    fn import(&self, records: &[JobRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        check_unique_ids(records.iter().map(|r| &r.job.id))?;
        let rows = records
            .iter()
            .map(|r| InsertJobRow::from_job(&r.job))
            .collect::<StoreResult<Vec<_>>>()?;
        self.transaction(|conn| {
            let seqs = insert_jobs(conn, &rows)?;
            let seq_of = |id: &JobId| seqs.get(id.as_str()).copied().unwrap_or_default();
            let outputs: Vec<OutputRow> = records
                .iter()
                .filter_map(|r| {
                    r.output.as_ref().map(|o| OutputRow {
                        job_seq: seq_of(&r.job.id),
                        stdout: o.stdout.clone(),
                        stderr: o.stderr.clone(),
                    })
                })
                .collect();
            for chunk in outputs.chunks(MAX_BIND_PARAMS / 3) {
                diesel::insert_into(job_output::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            let attempts: Vec<InsertAttemptRow<'_>> = records
                .iter()
                .flat_map(|r| {
                    let seq = seq_of(&r.job.id);
                    r.history
                        .iter()
                        .map(move |a| InsertAttemptRow::from_record(seq, a))
                })
                .collect();
            for chunk in attempts.chunks(MAX_BIND_PARAMS / INSERT_ATTEMPT_PARAMS) {
                diesel::insert_into(job_attempts::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            notify(conn)?;
            Ok(())
        })?;
        self.wrote();
        Ok(())
    }

    fn list(&self, filter: &JobFilter) -> StoreResult<Vec<Job>> {
        let rows = self.run(|conn| {
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
                query = query.limit(i64::from(limit));
            }
            Ok(query.load(conn)?)
        })?;
        decode_jobs(rows)
    }

    fn requeue_all_dead(&self, now: Timestamp) -> StoreResult<u64> {
        let n = self.transaction(|conn| {
            let n = diesel::update(jobs::table.filter(jobs::state.eq(JobState::Dead.as_str())))
                .set(requeue_changes(now))
                .execute(conn)?;
            if n > 0 {
                notify(conn)?;
            }
            Ok(n)
        })?;
        if n > 0 {
            self.wrote();
        }
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn requeue_dead(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        let row = self.transaction(|conn| {
            let row: Option<JobRow> = diesel::update(
                jobs::table
                    .filter(jobs::id.eq(id.as_str()))
                    .filter(jobs::state.eq(JobState::Dead.as_str())),
            )
            .set(requeue_changes(now))
            .returning(JobRow::as_returning())
            .get_result(conn)
            .optional()?;
            match row {
                Some(row) => {
                    notify(conn)?;
                    Ok(row)
                }
                None => Err(wrong_state(conn, id)),
            }
        })?;
        self.wrote();
        row.into_job()
    }

    // ----- introspection -----

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_multi_process(true)
    }
}

impl Coordination for PostgresStore {
    // ----- settings -----

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.run(|conn| {
            Ok(settings::table
                .find(key)
                .select(settings::value)
                .first(conn)
                .optional()?)
        })
    }

    fn set_setting(&self, key: &str, value: &str, now: Timestamp) -> StoreResult<()> {
        self.run(|conn| {
            diesel::insert_into(settings::table)
                .values((
                    settings::key.eq(key),
                    settings::value.eq(value),
                    settings::updated_at.eq(now.as_millis()),
                ))
                .on_conflict(settings::key)
                .do_update()
                .set((
                    settings::value.eq(excluded(settings::value)),
                    settings::updated_at.eq(excluded(settings::updated_at)),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        let mut all: Vec<(String, String)> = self.run(|conn| {
            Ok(settings::table
                .select((settings::key, settings::value))
                .load(conn)?)
        })?;
        // Sorted here, not by ORDER BY: the database collation may not be byte order.
        all.sort();
        Ok(all)
    }

    // ----- worker registry -----

    fn deregister_worker(&self, worker_id: &str) -> StoreResult<()> {
        self.run(|conn| {
            diesel::delete(workers::table.filter(workers::id.eq(worker_id))).execute(conn)?;
            Ok(())
        })
    }

    fn heartbeat_worker(&self, worker_id: &str, now: Timestamp) -> StoreResult<Heartbeat> {
        self.run(|conn| {
            Ok(
                diesel::update(workers::table.filter(workers::id.eq(worker_id)))
                    .set(workers::heartbeat_at.eq(now.as_millis()))
                    .returning(workers::stop_requested)
                    .get_result(conn)
                    .optional()?
                    .map_or(Heartbeat::Unregistered, Heartbeat::registered),
            )
        })
    }

    fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>> {
        let rows: Vec<WorkerRow> = self.run(|conn| {
            Ok(workers::table
                .order(workers::seq.asc())
                .select(WorkerRow::as_select())
                .load(conn)?)
        })?;
        rows.into_iter().map(WorkerRow::into_info).collect()
    }

    fn register_worker(&self, worker: &WorkerInfo) -> StoreResult<()> {
        let row = WorkerRow::from_info(worker);
        self.run(|conn| {
            // Re-registering replaces the entry but keeps its place in registration order.
            diesel::insert_into(workers::table)
                .values(&row)
                .on_conflict(workers::id)
                .do_update()
                .set(&row)
                .execute(conn)?;
            Ok(())
        })
    }

    fn request_stop(&self) -> StoreResult<u64> {
        let n = self.run(|conn| {
            Ok(diesel::update(workers::table)
                .set(workers::stop_requested.eq(true))
                .execute(conn)?)
        })?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl ChangeFeed for PostgresStore {
    fn change_marker(&self) -> StoreResult<Marker> {
        // Both halves only grow, so the sum changes whenever either does.
        let heard = self.listener.poll()?;
        Ok(Marker::At(
            heard.wrapping_add(self.local_writes.load(Ordering::Acquire)),
        ))
    }

    fn wait_for_change(&self, timeout: Duration) -> StoreResult<Wake> {
        Ok(if self.listener.wait(timeout)? {
            Wake::Changed
        } else {
            Wake::TimedOut
        })
    }
}

/// What `dlq retry` writes.
#[allow(clippy::type_complexity)]
fn requeue_changes(
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

#[cfg(test)]
mod testutil;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeout_is_added_once_in_either_url_form() {
        let t = Duration::from_millis(2500);
        assert_eq!(
            with_connect_timeout("postgres://u@h/db", t),
            "postgres://u@h/db?connect_timeout=3"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db?sslmode=disable", t),
            "postgres://u@h/db?sslmode=disable&connect_timeout=3"
        );
        assert_eq!(
            with_connect_timeout("host=h dbname=db", Duration::ZERO),
            "host=h dbname=db connect_timeout=1"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?connect_timeout=9", t),
            "postgres://h/db?connect_timeout=9"
        );
    }

    #[test]
    fn an_unreachable_server_is_unavailable_with_a_one_line_message() {
        // Port 1 on loopback: nothing listens there, so the connect is refused at once.
        let err = PostgresStore::connect_with(
            "postgres://someone:hunter2@127.0.0.1:1/db",
            PostgresOptions {
                connect_timeout: Duration::from_secs(2),
                ..PostgresOptions::default()
            },
        )
        .expect_err("nothing listens on port 1");
        let text = err.to_string();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        assert!(text.contains("someone@127.0.0.1:1/db"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(!text.contains('\n') && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_bad_schema_name_is_refused_before_connecting() {
        let err = PostgresStore::connect_with(
            "postgres://127.0.0.1:1/db",
            PostgresOptions {
                schema: Some(String::new()),
                ..PostgresOptions::default()
            },
        )
        .expect_err("empty schema");
        assert!(err.to_string().contains("invalid schema name"), "{err}");
    }

    #[test]
    fn a_batch_larger_than_the_bind_parameter_limit_is_all_or_nothing_and_in_order() {
        let Some(schema) = testutil::TestSchema::new() else {
            return;
        };
        let store = schema.open();
        let now = Timestamp::from_millis(1_000);
        // More rows than one statement could carry as one bind parameter per value.
        let rows = 2 * MAX_BIND_PARAMS / INSERT_JOB_PARAMS + 10;
        let jobs: Vec<NewJob> = (0..rows)
            .map(|i| {
                let mut job = NewJob::shell("true", now);
                job.id = JobId::new(format!("job-{i:05}"));
                job
            })
            .collect();
        store.enqueue(&jobs[rows - 1], now).unwrap();
        // The last job collides: none of the thousands before it is stored.
        let err = store.enqueue_many(&jobs, now).unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(ref id) if *id == jobs[rows - 1].id),
            "{err:?}"
        );
        assert_eq!(store.counts().unwrap().total(), 1);

        store.enqueue_many(&jobs[..rows - 1], now).unwrap();
        let listed = store.list(&JobFilter::default()).unwrap();
        assert_eq!(listed.len(), rows);
        // Insertion order follows the batch order.
        assert_eq!(listed[0].id, jobs[rows - 1].id);
        assert!(listed[1..].iter().zip(&jobs).all(|(a, b)| a.id == b.id));
    }

    /// A server restart kills every pooled connection. After the idle threshold the next
    /// call pings, finds the connections dead, and runs on a fresh one; during a burst,
    /// at most the call that first meets a dead connection fails, and every other pooled
    /// connection is checked before its next use.
    #[test]
    fn pooled_connections_killed_by_the_server_are_replaced() {
        let Some(schema) = testutil::TestSchema::new() else {
            return;
        };
        let app = schema.name.clone();
        let sep = if schema.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}application_name={app}", schema.url);
        let store = PostgresStore::connect_with(&url, schema.options()).unwrap();
        let now = Timestamp::from_millis(1_000);
        store.enqueue(&NewJob::shell("true", now), now).unwrap();
        let kill = || {
            let mut conn = schema.raw_connection();
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
            )
            .bind::<Text, _>(&app)
            .execute(&mut conn)
            .unwrap()
        };

        assert!(kill() >= 1, "the pool holds a connection");
        // Past the idle threshold: the ping finds the corpse, the call never sees it.
        std::thread::sleep(session::PING_AFTER_IDLE + Duration::from_millis(100));
        assert_eq!(store.counts().unwrap().total(), 1);

        assert!(kill() >= 1);
        // Straight away: a connection used within the second is not pinged, so this call
        // may meet a dead one and fail (or, when the pool hands out one that is pinged
        // anyway, succeed)...
        match store.counts() {
            Ok(c) => assert_eq!(c.total(), 1),
            Err(StoreError::Unavailable { .. }) => {}
            Err(other) => panic!("expected Unavailable, got {other:?}"),
        }
        // ... and then every other pooled connection is checked: the next call works.
        assert_eq!(store.counts().unwrap().total(), 1);
        assert_eq!(store.counts().unwrap().total(), 1);
    }

    #[test]
    fn retry_backoff_grows_and_stays_bounded() {
        assert!(retry_backoff(1) >= Duration::from_millis(5));
        assert!(retry_backoff(1) <= Duration::from_millis(8));
        assert!(retry_backoff(MAX_RETRIES) <= Duration::from_millis(120));
    }
}
