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
//! Tables `jobs` (with a `BIGSERIAL seq` for insertion order), `job_attempts` (history,
//! each attempt with its stdout and stderr), `live_output` (what running attempts have
//! written so far), `settings` and `workers`, from
//! `migrations/postgres`. Timestamps are `BIGINT` milliseconds since the Unix epoch, as in
//! the SQLite store, so they round-trip exactly at the precision the contract prints.
//!
//! The schema, the row mapping and every operation both dialects express alike (reads,
//! lists, counts, cancel, requeue, prune, import, expired leases, settings, the worker
//! registry) are `queuectl-store-sql`'s, shared with the SQLite store; this crate holds the
//! connection handling, the claim, the batched finish, bulk enqueue, lease renewal,
//! `LISTEN`/`NOTIFY` and the migrations.
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
//!   batch. `import` inserts multi-row chunks that stay under 32766 bind parameters per
//!   statement (the shared core's bound, SQLite's; PostgreSQL allows 65535), all in one
//!   transaction.
//! - **Pruning.** Finished jobs stay in `jobs` until `prune`; the claim's partial index
//!   ignores them, but `list` and `counts` scan them. Prune on a schedule.

#![warn(missing_docs)]

mod claim;
mod enqueue;
mod error;
mod finish;
mod migrate;
mod notify;
mod session;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Text};
use queuectl_store::{
    ChangeFeed, ClaimRequest, ClaimToken, Coordination, Enqueued, Guarded, Job, JobId, Jobs,
    LeaseRef, Marker, NewJob, StoreError, StoreResult, Timestamp, Transition, TransitionKind, Wake,
};
use queuectl_store_sql::pg::{self, apply_transition};
use queuectl_store_sql::row::{decode_jobs, InsertJob};
use queuectl_store_sql::{Failure, Session};

use crate::error::{connect_error, describe_target, pool_error, to_store_error};
use crate::notify::{notify, Listener};
use crate::session::{Manager, SessionSetup};

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
    fn run<T>(&self, mut f: impl FnMut(&mut PgConnection) -> Result<T, Failure>) -> StoreResult<T> {
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
                Err(Failure::Store(e)) => return Err(e),
                Err(Failure::Db(e)) => {
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
}

impl PostgresStore {
    /// [`Jobs::enqueue_batch`] of a batch with unique keys, in one transaction: the insert
    /// skips rows whose key is held, then the holders of the skipped rows' keys are read.
    /// A holder that finished between the two statements (READ COMMITTED reads the newest
    /// commit) leaves a skipped row without one; the transaction then rolls back and runs
    /// again, a bounded number of times.
    fn enqueue_keyed(
        &self,
        query: &enqueue::EnqueueQuery<'_>,
        jobs: &[NewJob],
    ) -> StoreResult<Vec<Enqueued>> {
        const ROUNDS: usize = 8;
        for _ in 0..ROUNDS {
            let done = self.run(|conn| {
                conn.transaction(|conn| {
                    let stored = match query.clone().load::<enqueue::Stored>(conn) {
                        Ok(stored) => stored,
                        Err(DieselError::DatabaseError(
                            DatabaseErrorKind::UniqueViolation,
                            info,
                        )) => {
                            return match enqueue::first_taken(conn, query.ids())? {
                                Some(id) => Err(StoreError::Conflict(JobId::new(id)).into()),
                                None => Err(DieselError::DatabaseError(
                                    DatabaseErrorKind::UniqueViolation,
                                    info,
                                )
                                .into()),
                            };
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let stored: HashSet<String> = stored.into_iter().map(|r| r.id).collect();
                    let skipped: Vec<usize> = (0..query.ids().len())
                        .filter(|i| !stored.contains(query.ids()[*i]))
                        .collect();
                    if skipped.is_empty() {
                        let results = vec![Enqueued::Stored; query.ids().len()];
                        pg::link_new_jobs(conn, jobs, &results)?;
                        return Ok(Some(results));
                    }
                    // A skipped row whose id is taken as well is a Conflict, as without a key.
                    let skipped_ids: Vec<&str> = skipped.iter().map(|i| query.ids()[*i]).collect();
                    if let Some(id) = enqueue::first_taken(conn, &skipped_ids)? {
                        if !stored.contains(&id) {
                            return Err(StoreError::Conflict(JobId::new(id)).into());
                        }
                    }
                    let keys: Vec<&str> = skipped
                        .iter()
                        .filter_map(|i| query.unique_keys()[*i])
                        .collect();
                    let holders: std::collections::HashMap<String, String> =
                        enqueue::holders(conn, &keys)?.into_iter().collect();
                    let mut results = Vec::with_capacity(query.ids().len());
                    for (i, id) in query.ids().iter().enumerate() {
                        if stored.contains(*id) {
                            results.push(Enqueued::Stored);
                            continue;
                        }
                        let holder = query.unique_keys()[i].and_then(|k| holders.get(k));
                        match holder {
                            Some(h) => results.push(Enqueued::Held(JobId::new(h.as_str()))),
                            // Rolls back; the next round meets the new state.
                            None => {
                                return Err(Failure::Store(StoreError::Busy(
                                    "a unique key's holder finished during enqueue".into(),
                                )))
                            }
                        }
                    }
                    pg::link_new_jobs(conn, jobs, &results)?;
                    Ok(Some(results))
                })
                .or_else(|e| match e {
                    Failure::Store(StoreError::Busy(_)) => Ok(None),
                    e => Err(e),
                })
            })?;
            if let Some(results) = done {
                if results.contains(&Enqueued::Stored) {
                    self.wrote();
                }
                return Ok(results);
            }
        }
        Err(StoreError::Busy(
            "the holders of unique keys kept finishing during enqueue".into(),
        ))
    }
}

/// How the shared operations of `queuectl-store-sql` run here: on a pooled session (pinged
/// when it may be dead), retrying transient failures; writes in a transaction that sends
/// the `NOTIFY` when a job became claimable and, once committed, moves this handle's change
/// marker.
impl Session for PostgresStore {
    type Conn = PgConnection;

    fn read<T>(&self, op: impl FnMut(&mut PgConnection) -> Result<T, Failure>) -> StoreResult<T> {
        self.run(op)
    }

    /// `REPEATABLE READ`, read-only: every statement sees one snapshot.
    fn snapshot<T>(
        &self,
        mut op: impl FnMut(&mut PgConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        self.run(|conn| {
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run(&mut op)
        })
    }

    fn write<T>(
        &self,
        mut op: impl FnMut(&mut PgConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        self.run(|conn| conn.transaction(&mut op))
    }

    fn wake(conn: &mut PgConnection) -> Result<(), Failure> {
        Ok(notify(conn)?)
    }

    fn jobs_changed(&self) {
        self.wrote();
    }
}

/// 5, 10, 20, 40, 80 ms, plus up to 50 % jitter so colliding callers spread out.
fn retry_backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.saturating_sub(1).min(8);
    let jitter = u64::try_from(ClaimToken::random().0).unwrap_or(0) % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

/// Whether applying this transition makes its job claimable (and so wakes workers).
fn wakes_workers(kind: &TransitionKind) -> bool {
    matches!(
        kind,
        TransitionKind::Failed { .. } | TransitionKind::Recovered { .. } | TransitionKind::Released
    )
}

impl Jobs for PostgresStore {
    // ----- producer -----

    fn enqueue_batch(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = InsertJob::batch(jobs, now)?;
        let query = enqueue::EnqueueQuery::new(&rows, now.as_millis());
        if query.keyed() {
            return self.enqueue_keyed(&query, jobs);
        }
        // What the insert's result means; `conn` must be usable afterwards (outside a
        // transaction the failed statement aborted) to look up the taken id.
        let inserted = |conn: &mut PgConnection,
                        result: QueryResult<enqueue::Enqueued>|
         -> Result<(), Failure> {
            match result {
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
            }
        };
        if jobs.iter().any(|j| !j.options.depends_on.is_empty()) {
            // The jobs and their dependencies in one transaction; the insert in a savepoint
            // of its own, so that a taken id leaves the transaction able to say which.
            let stored = vec![Enqueued::Stored; rows.len()];
            self.write(|conn| {
                let result = conn.transaction(|conn| query.clone().get_result(conn));
                inserted(conn, result)?;
                pg::link_new_jobs(conn, jobs, &stored)?;
                Ok(())
            })?;
        } else {
            // One statement, committed on its own.
            self.run(|conn| {
                let result = query.clone().get_result(conn);
                inserted(conn, result)
            })?;
        }
        self.wrote();
        Ok(vec![Enqueued::Stored; rows.len()])
    }

    // ----- worker -----

    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let token = ClaimToken::random();
        let mut rows = self.run(|conn| Ok(claim::claim(conn, req, token)?))?;
        if rows.is_empty() {
            // Nothing due, or a queue this claim serves is limited (the statement then
            // claims nothing): see "Queue controls" in claim.rs.
            rows = self.write(|conn| claim::claim_under_controls(conn, req, token))?;
        }
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
            // The common case (workers reporting executions): one statement, then, in the
            // same transaction, what the jobs that ended mean to the jobs waiting on them
            // (one probe when none waits on anything). A separate statement on purpose:
            // only it sees a dependency linked while the finish waited for the parent's
            // row lock (see `pg::parent_states`).
            let done: Vec<finish::Done> = self.write(|conn| {
                let done: Vec<finish::Done> = query.clone().load(conn)?;
                let ended: Vec<&str> = done
                    .iter()
                    .filter_map(|f| usize::try_from(f.ord).ok())
                    .filter_map(|i| transitions.get(i))
                    .map(|t| t.id.as_str())
                    .collect();
                let ready = pg::settle(conn, &ended, now)?;
                if ready {
                    Self::wake(conn)?;
                }
                Ok(done)
            })?;
            let mut out = vec![Guarded::Stale; transitions.len()];
            let mut wake = false;
            for f in &done {
                if let Some(slot) = usize::try_from(f.ord).ok().and_then(|i| out.get_mut(i)) {
                    *slot = Guarded::Applied;
                }
                wake |= f.state == queuectl_store::JobState::Failed.as_str();
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
        let out = self.write(|conn| {
            let mut out = vec![Guarded::Stale; transitions.len()];
            let mut wake = false;
            for &i in &order {
                let t = &transitions[i];
                out[i] = apply_transition(conn, t, now)?;
                wake |= out[i].is_applied() && wakes_workers(&t.kind);
            }
            let ended: Vec<&str> = transitions
                .iter()
                .zip(&out)
                .filter(|(_, g)| g.is_applied())
                .map(|(t, _)| t.id.as_str())
                .collect();
            wake |= pg::settle(conn, &ended, now)?;
            if wake {
                Self::wake(conn)?;
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

    // expired_leases, prune, cancel, counts, get, get_record, import, list,
    // requeue_all_dead, requeue_dead, capabilities: written once for both SQL stores.
    queuectl_store_sql::shared_job_methods!(pg);
}

impl Coordination for PostgresStore {
    queuectl_store_sql::coordination_methods!(pg);

    fn check_schema_version(&self) -> StoreResult<()> {
        queuectl_store_sql::pg::check_schema_version(self, migrate::known_versions())
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

#[cfg(test)]
mod testutil;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use queuectl_store::JobFilter;

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
        // More rows than one statement could carry as one bind parameter per value
        // (PostgreSQL binds at most 65535).
        let rows = 2 * 65_535 / queuectl_store_sql::row::INSERT_JOB_COLUMNS + 10;
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
    fn expired_leases_read_the_partial_lease_index() {
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
            line: String,
        }
        let Some(schema) = testutil::TestSchema::new() else {
            return;
        };
        drop(schema.open());
        let mut conn = schema.raw_connection();
        diesel::sql_query("SET enable_seqscan = off")
            .execute(&mut conn)
            .unwrap();
        let query = queuectl_store_sql::pg::ExpiredLeases::new(Timestamp::from_millis(0), 10);
        let sql = diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string();
        let text = sql.split(" -- binds:").next().unwrap_or_default();
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN {text}"))
            .bind::<BigInt, _>(0_i64)
            .bind::<BigInt, _>(10_i64)
            .load::<Plan>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|p| p.line)
            .collect();
        assert!(
            plan.iter().any(|l| l.contains("jobs_lease_idx")),
            "expired_leases does not use jobs_lease_idx:\n{}",
            plan.join("\n")
        );
    }

    #[test]
    fn retry_backoff_grows_and_stays_bounded() {
        assert!(retry_backoff(1) >= Duration::from_millis(5));
        assert!(retry_backoff(1) <= Duration::from_millis(8));
        assert!(retry_backoff(MAX_RETRIES) <= Duration::from_millis(120));
    }
}
