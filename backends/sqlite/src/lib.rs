//! [`SqliteStore`]: a queuectl [`JobStore`](queuectl_store::JobStore) in one SQLite file, through Diesel.
//!
//! This is queuectl's default store: no server, one file, shared safely by any number of
//! worker and CLI processes on the same host. SQLite itself is bundled (one copy, shared
//! with every other crate of the build), so the binary needs no system library. The schema
//! is created and upgraded by embedded migrations whenever a store is opened.
//!
//! It is not a network database: the file must live on a local filesystem (SQLite's
//! WAL mode needs shared memory between the processes using it).
//!
//! ```
//! use queuectl_store::prelude::*;
//! use queuectl_store::{ClaimRequest, NewJob, Timestamp};
//! use queuectl_store_sqlite::SqliteStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("queue.db"))?;
//!
//! let now = Timestamp::from_millis(1_764_000_000_000);
//! let job = NewJob::shell("echo hello", now);
//! store.enqueue(&job, now)?;
//!
//! let claimed = store.claim(&ClaimRequest {
//!     limit: 1,
//!     worker_id: "worker-1".into(),
//!     now,
//!     lease_until: now.add(std::time::Duration::from_secs(15)),
//!     queues: Vec::new(),
//! })?;
//! assert_eq!(claimed[0].id, job.id);
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//!
//! - Every connection runs in WAL mode (readers never block the writer or each other) with
//!   `foreign_keys = ON`, `synchronous = NORMAL` (or `FULL`, see [`Durability`]),
//!   `temp_store = MEMORY` and a busy timeout ([`SqliteOptions::busy_timeout`]).
//! - Every write is one `BEGIN IMMEDIATE` transaction, which takes the file's write lock
//!   up front. A transaction therefore never fails half-way because another writer got
//!   there first, and its reads are the state it writes over. Writers of one store handle
//!   also queue on an in-process mutex first, so threads of one process hand the lock to
//!   each other at once instead of sleeping in SQLite's busy handler.
//! - Hot statements (claim, the batched finish in `finish.rs`, the enqueue inserts)
//!   have fixed SQL text and are prepared once per connection. A finish of many executions
//!   costs three statements per group of transitions that write the same values (a claimed
//!   batch of successes is one group), not three per job; an enqueue of many jobs costs one
//!   statement per 64 of them.
//! - A held lock is waited out: first by SQLite's busy handler, then by re-running the whole
//!   transaction with backoff until [`SqliteOptions::max_busy_wait`] (30 s by default) has
//!   passed. Only then does a call fail, with [`StoreError::Busy`]; SQLite's own
//!   "database is locked" never reaches the caller.
//! - The claim selects due jobs through a partial index holding only `pending` and
//!   `failed` rows in claim order, so its cost does not grow with finished jobs; expired
//!   leases are found through a partial index of the `processing` rows.
//! - Timestamps are stored as INTEGER milliseconds since the epoch, exactly as
//!   [`Timestamp`] holds them: every timestamp round-trips unchanged.
//! - [`ChangeFeed::change_marker`] is SQLite's `PRAGMA data_version` read on a dedicated
//!   connection that never writes (see that method's docs here).
//!
//! # Deviations and tuning
//!
//! - **Writers are serialised.** SQLite allows one writer at a time per file; claims,
//!   finishes and enqueues from all processes take turns. Each is a short transaction, so
//!   this matters only at thousands of jobs per second. Batch where you can:
//!   [`Jobs::enqueue_many`] and [`Jobs::finish`] with several transitions cost one
//!   transaction (and one fsync at most) for the whole batch.
//! - **Durability.** The default, [`Durability::Normal`], never corrupts the file, but a
//!   power loss (not a process crash) may roll back the last few commits.
//!   [`Durability::Full`] syncs on every commit, which is several times slower on most
//!   disks.
//! - **Busy waits.** [`SqliteOptions::busy_timeout`] bounds one wait inside SQLite;
//!   [`SqliteOptions::max_busy_wait`] bounds a whole call. Lower the latter in interactive
//!   tools that prefer a quick [`StoreError::Busy`] to a long wait.
//! - **Pool size.** [`SqliteOptions::pool_size`] connections serve reads concurrently;
//!   writes queue on the file lock whatever the pool size, so more connections than worker
//!   threads gains nothing.
//! - **Claim results** are ordered in Rust by the pick order: SQLite's `RETURNING` has no
//!   order (see `claim.rs`).
//! - **Network filesystems** (NFS, SMB) are not supported: WAL needs shared memory.
//! - **Out-of-range values**: a `timeout_secs` above `i64::MAX` is refused with
//!   [`StoreError::Backend`] instead of being wrapped.
#![warn(missing_docs)]

mod claim;
mod error;
mod finish;
mod migrate;
mod row;
mod schema;

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::{count_star, AsSelect, SqlTypeOf};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use parking_lot::Mutex;
use queuectl_store::{
    Capabilities, ChangeFeed, ClaimRequest, Coordination, Guarded, Heartbeat, Job, JobFilter,
    JobId, JobRecord, JobState, Jobs, LeaseRef, Marker, NewJob, StateCounts, StoreError,
    StoreResult, Timestamp, Transition, TransitionKind, WorkerInfo,
};

use crate::error::{pool_error, Failure};
use crate::row::{
    state_from_db, state_to_db, AttemptRow, InsertAttempt, InsertJob, InsertJobChunk, InsertJobRow,
    InsertOutput, JobRow, OutputRow, WorkerRow, INSERT_ATTEMPT_COLUMNS, INSERT_CHUNK,
    INSERT_OUTPUT_COLUMNS,
};
use crate::schema::{job_attempts, job_output, jobs, settings, workers};

/// How hard a commit tries to survive a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: safe against process crashes; a power loss may lose the
    /// last commits but never corrupts the file. SQLite's recommendation for WAL mode.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is on disk before it returns.
    Full,
}

/// Tuning for [`SqliteStore::open_with`]. Start from [`SqliteOptions::default`].
///
/// ```
/// use std::time::Duration;
/// use queuectl_store_sqlite::{Durability, SqliteOptions};
///
/// let opts = SqliteOptions::default()
///     .durability(Durability::Full)
///     .max_busy_wait(Duration::from_secs(5));
/// assert_eq!(opts.pool_size, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Longest single wait inside SQLite for a lock (`PRAGMA busy_timeout`); default 5 s.
    pub busy_timeout: Duration,
    /// Commit durability; default [`Durability::Normal`].
    pub durability: Durability,
    /// Longest a call waits out a locked database (or a full pool) in total before it
    /// fails with [`StoreError::Busy`]; default 30 s.
    pub max_busy_wait: Duration,
    /// Pooled connections (at least 1); default 8.
    pub pool_size: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Normal,
            max_busy_wait: Duration::from_secs(30),
            pool_size: 8,
        }
    }
}

impl SqliteOptions {
    /// Sets [`SqliteOptions::busy_timeout`].
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`SqliteOptions::durability`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`SqliteOptions::max_busy_wait`].
    #[must_use]
    pub fn max_busy_wait(mut self, wait: Duration) -> Self {
        self.max_busy_wait = wait;
        self
    }

    /// Sets [`SqliteOptions::pool_size`] (0 counts as 1).
    #[must_use]
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }
}

/// A [`JobStore`](queuectl_store::JobStore) in one SQLite file, shareable by threads and processes.
///
/// Cheap to share behind an `Arc`; every method takes `&self`. Open several handles on
/// one file (in one process or many) freely: they coordinate through SQLite's file locks.
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    pool: Pool<ConnectionManager<SqliteConnection>>,
    /// Reads `PRAGMA data_version` for [`ChangeFeed::change_marker`]; never writes, so every
    /// commit (by the pool or another process) counts as "another connection's" for it.
    marker: Mutex<SqliteConnection>,
    /// Held for the whole of every write transaction: SQLite lets one writer in at a time
    /// anyway, and threads of this process that queue here are handed the lock at once,
    /// instead of polling the file lock through SQLite's busy handler (which sleeps for
    /// milliseconds). Other processes still meet at the file lock.
    write_lock: Mutex<()>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options, and brings
    /// its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] saying why the file cannot be opened (e.g. its directory
    /// does not exist, or it is not a SQLite database); [`StoreError::Migration`] if the
    /// schema cannot be upgraded; [`StoreError::Busy`] if other processes kept the file
    /// locked for the whole bounded wait.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit options.
    ///
    /// Opening is idempotent and safe to race: several processes opening a fresh file at
    /// once create the schema exactly once.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let url = database_url(&path)?;
        let setup = ConnectionSetup::new(&options);
        create_owner_only(&path);

        let mut first = retry(options.max_busy_wait, || {
            let mut conn = SqliteConnection::establish(&url)
                .map_err(|e| Failure::Store(open_error(&path, e)))?;
            setup.apply(&mut conn)?;
            Ok(conn)
        })
        .map_err(|e| unavailable_unless_busy(&path, e))?;
        retry(options.max_busy_wait, || migrate::run_pending(&mut first))
            .map_err(|e| unavailable_unless_busy(&path, e))?;

        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            // SQLite connections do not go stale; keeping them keeps their statement caches.
            .idle_timeout(None)
            .max_lifetime(None)
            .test_on_check_out(false)
            .connection_timeout(options.max_busy_wait.max(Duration::from_millis(1)))
            // r2d2 would log connection errors (raw SQLite text) through `log`; each one
            // also reaches the caller of the failing call, mapped.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .connection_customizer(Box::new(setup))
            .build(ConnectionManager::new(url))
            .map_err(|e| StoreError::Unavailable {
                message: format!("cannot open database at {}", path.display()),
                source: Some(Box::new(e)),
            })?;

        Ok(SqliteStore {
            path,
            options,
            pool,
            marker: Mutex::new(first),
            write_lock: Mutex::new(()),
        })
    }

    /// The database file's path, as given to [`SqliteStore::open`].
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options this store was opened with.
    #[must_use]
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Runs `op` on a pooled connection, re-running it while the database is busy.
    fn run<T>(
        &self,
        mut op: impl FnMut(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        retry(self.options.max_busy_wait, || {
            let mut conn = self.connection()?;
            op(&mut conn)
        })
    }

    /// Runs `op` in a `BEGIN IMMEDIATE` transaction, re-running the whole transaction
    /// while the database is busy. Any error rolls it back.
    fn write<T>(
        &self,
        mut op: impl FnMut(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        // Bounded like every other wait for the database: a writer of this process stuck
        // behind another process's lock must not hold the others here forever.
        let Some(_writer) = self.write_lock.try_lock_for(self.options.max_busy_wait) else {
            return Err(StoreError::Busy(format!(
                "other writers of this process kept the database busy for over {}",
                human(self.options.max_busy_wait)
            )));
        };
        self.run(|conn| conn.immediate_transaction(&mut op))
    }

    /// Runs `op` in a read transaction: one consistent snapshot for several statements.
    fn read<T>(
        &self,
        mut op: impl FnMut(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        self.run(|conn| conn.transaction(&mut op))
    }

    fn connection(&self) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, Failure> {
        self.pool.get().map_err(|e| Failure::Store(pool_error(e)))
    }
}

/// Per-connection settings, applied to every new connection.
#[derive(Clone, Debug)]
struct ConnectionSetup {
    pragmas: String,
}

impl ConnectionSetup {
    fn new(options: &SqliteOptions) -> Self {
        let busy_ms = u64::try_from(options.busy_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .min(i32::MAX as u64);
        let synchronous = match options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        // busy_timeout first: switching to WAL takes a lock that may be busy.
        // temp_store = MEMORY: a batched claim or finish outgrows the in-memory statement
        // journal, and SQLite would otherwise create, write and delete a temp file for it
        // on every such statement.
        // wal_autocheckpoint = 10000 pages (about 40 MB of WAL, default 1000): a checkpoint
        // copies every page changed since the last one back into the file and syncs it, so
        // checkpointing ten times less often writes a page changed by many commits (the
        // indexes' pages, the table's last page) once instead of up to ten times, and syncs
        // ten times less often; with 4 KB frames per B-tree each enqueue touches, the
        // default checkpointed every 200 or so single-job commits. journal_size_limit
        // truncates a WAL that outgrew that (a checkpoint held back by a long reader) back
        // to 64 MB once it is reset. Neither changes what a commit guarantees.
        ConnectionSetup {
            pragmas: format!(
                "PRAGMA busy_timeout = {busy_ms};\n\
                 PRAGMA journal_mode = WAL;\n\
                 PRAGMA synchronous = {synchronous};\n\
                 PRAGMA foreign_keys = ON;\n\
                 PRAGMA temp_store = MEMORY;\n\
                 PRAGMA wal_autocheckpoint = 10000;\n\
                 PRAGMA journal_size_limit = 67108864;"
            ),
        }
    }

    fn apply(&self, conn: &mut SqliteConnection) -> QueryResult<()> {
        conn.batch_execute(&self.pragmas)
    }
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        self.apply(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Runs `op` until it succeeds, fails with something other than a busy database, or
/// `max_wait` has passed; then maps the error. Each attempt may itself wait up to the
/// busy timeout inside SQLite; between attempts it sleeps with jittered exponential
/// backoff so that competing processes do not retry in lockstep.
fn retry<T>(max_wait: Duration, mut op: impl FnMut() -> Result<T, Failure>) -> StoreResult<T> {
    const FIRST_PAUSE: Duration = Duration::from_millis(2);
    const LONGEST_PAUSE: Duration = Duration::from_millis(100);

    let deadline = Instant::now() + max_wait;
    let mut pause = FIRST_PAUSE;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(f) if f.is_busy() => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(StoreError::Busy(format!(
                        "other connections kept the database file locked for over {}",
                        human(max_wait)
                    )));
                }
                let jittered = pause.mul_f64(0.5 + jitter());
                std::thread::sleep(jittered.min(deadline - now));
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            Err(f) => return Err(f.into_store_error()),
        }
    }
}

/// `30 s`, `250 ms`: a wait as people read it.
fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A uniformly distributed value in `[0, 1)`, from the randomly keyed std hasher.
fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    // 53 random bits scaled into [0, 1): exact in an f64.
    bits as f64 / (1u64 << 53) as f64
}

/// Creates a missing database file readable and writable by its owner only (0600), before
/// SQLite opens it: jobs' commands and output may hold secrets. SQLite gives the `-wal` and
/// `-shm` files the database file's mode, so they are 0600 too. An existing file is left as
/// it is; a failure here is left for SQLite's open to report in its own words.
fn create_owner_only(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The path as Diesel's SQLite driver wants it: UTF-8, and never read as a URI.
fn database_url(path: &Path) -> StoreResult<String> {
    let Some(s) = path.to_str() else {
        return Err(StoreError::Unavailable {
            message: format!(
                "cannot open database at {}: the path is not valid UTF-8",
                path.display()
            ),
            source: None,
        });
    };
    if s.is_empty() {
        return Err(StoreError::Unavailable {
            message: "cannot open database: the path is empty".to_owned(),
            source: None,
        });
    }
    // The driver opens with SQLITE_OPEN_URI, which would read "file:…" as a URI with
    // query parameters; a "./" prefix keeps such a relative name a plain file name.
    if s.starts_with("file:") {
        Ok(format!("./{s}"))
    } else {
        Ok(s.to_owned())
    }
}

fn open_error(path: &Path, e: diesel::ConnectionError) -> StoreError {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let why = match parent {
        Some(dir) if !dir.exists() => format!("directory {} does not exist", dir.display()),
        Some(dir) if !dir.is_dir() => format!("{} is not a directory", dir.display()),
        _ if path.is_dir() => "it is a directory".to_owned(),
        _ => "SQLite could not open or create the file".to_owned(),
    };
    StoreError::Unavailable {
        message: format!("cannot open database at {}: {why}", path.display()),
        source: Some(Box::new(e)),
    }
}

/// Errors while opening are about the file, whatever the driver called them; busy and
/// migration errors keep their own meaning.
fn unavailable_unless_busy(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Busy(_) | StoreError::Migration(_) | StoreError::Unavailable { .. } => e,
        StoreError::Corrupt { .. } => StoreError::Unavailable {
            message: format!(
                "cannot open database at {}: it is not a SQLite database, or it is damaged",
                path.display()
            ),
            source: Some(Box::new(e)),
        },
        other => StoreError::Unavailable {
            message: format!("cannot open database at {}", path.display()),
            source: Some(Box::new(other)),
        },
    }
}

/// Most rows of one multi-row `INSERT`: SQLite allows 32766 bound variables per statement.
const fn rows_per_insert(columns: usize) -> usize {
    const MAX_VARIABLES: usize = 32_766;
    MAX_VARIABLES / columns
}

/// Fails with `Conflict` naming the first id that repeats an earlier one in `ids`.
fn reject_repeats<'a>(ids: impl IntoIterator<Item = &'a JobId>) -> StoreResult<()> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(StoreError::Conflict(id.clone()));
        }
    }
    Ok(())
}

/// Inserts `rows` in order, all of them or (by failing, which rolls the caller's
/// transaction back) none; returns their `seq`s in order. An id that already exists is
/// `Conflict`. `rows` must not repeat an id (see [`reject_repeats`]).
fn insert_jobs(conn: &mut SqliteConnection, rows: &[InsertJob<'_>]) -> Result<Vec<i64>, Failure> {
    let mut seqs = Vec::with_capacity(rows.len());
    for row in rows {
        // One cached statement per row (see `InsertJobRow`); no row back means the id exists.
        match InsertJobRow(row).get_result::<i64>(conn).optional()? {
            Some(seq) => seqs.push(seq),
            None => return Err(StoreError::Conflict(JobId::new(row.id())).into()),
        }
    }
    Ok(seqs)
}

/// Inserts `rows` like [`insert_jobs`] without reading their `seq`s back: whole chunks of
/// [`INSERT_CHUNK`] rows one statement each, the rest one row at a time. A chunk that
/// inserts fewer rows than it holds met an id that already exists (repeats within `rows`
/// are rejected before), which is `Conflict` naming the first such id in `rows`' order,
/// as the row-by-row path would.
fn insert_new_jobs(conn: &mut SqliteConnection, rows: &[InsertJob<'_>]) -> Result<(), Failure> {
    let mut chunks = rows.chunks_exact(INSERT_CHUNK);
    for chunk in &mut chunks {
        let Some(statement) = InsertJobChunk::new(chunk) else {
            // chunks_exact yields INSERT_CHUNK rows only; the row-by-row path is correct
            // for any count anyway.
            insert_jobs(conn, chunk)?;
            continue;
        };
        let inserted = statement.execute(conn)?;
        if inserted != chunk.len() {
            return Err(chunk_conflict(conn, chunk, inserted));
        }
    }
    insert_jobs(conn, chunks.remainder()).map(drop)
}

/// The `Conflict` of a chunk that inserted only `inserted` of its rows. Every id of the
/// chunk is now stored, and a new row's `seq` (the rowid) is above every older one, so the
/// ids that existed before are the lowest `seq`s among them.
fn chunk_conflict(
    conn: &mut SqliteConnection,
    chunk: &[InsertJob<'_>],
    inserted: usize,
) -> Failure {
    let ids: Vec<&str> = chunk.iter().map(|r| r.id()).collect();
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

/// The stored job `id`, if any.
fn find_job(conn: &mut SqliteConnection, id: &JobId) -> Result<Option<JobRow>, Failure> {
    Ok(jobs::table
        .filter(jobs::id.eq(id.as_str()))
        .select(JobRow::as_select())
        .first(conn)
        .optional()?)
}

fn decode(row: JobRow) -> Result<Job, Failure> {
    row.into_job().map_err(Failure::Store)
}

/// The error for a guarded operator write that matched no row: `NotFound`, or
/// `WrongState` naming the state the job is in.
fn not_applicable(conn: &mut SqliteConnection, id: &JobId) -> Failure {
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

/// Applies one guarded transition; see [`TransitionKind`] for what each kind writes.
fn apply_transition(
    conn: &mut SqliteConnection,
    t: &Transition,
    now: Timestamp,
) -> Result<Guarded, Failure> {
    let now_ms = now.as_millis();
    let held = jobs::table
        .filter(jobs::id.eq(t.id.as_str()))
        .filter(jobs::state.eq(state_to_db(JobState::Processing)))
        .filter(jobs::claim_token.eq(t.token.0));
    // A recovery decided from an expired-lease read must not apply if the owner renewed
    // meanwhile: the lease test is part of the same WHERE, so it is checked atomically.
    let unguarded = !t.kind.only_if_lease_expired();
    let recoverable = held.filter(
        jobs::lease_until
            .lt(now_ms)
            .or(unguarded.into_sql::<diesel::sql_types::Bool>()),
    );
    let released = (
        jobs::updated_at.eq(now_ms),
        jobs::lease_until.eq(None::<i64>),
        jobs::claim_token.eq(None::<i64>),
    );

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
            let n = diesel::update(recoverable)
                .set((
                    released,
                    jobs::state.eq(state_to_db(JobState::Pending)),
                    jobs::interrupts.eq(jobs::interrupts + bump),
                    jobs::next_run_at.eq(Some(now_ms)),
                ))
                .execute(conn)?;
            return Ok(guarded(n));
        }
        TransitionKind::Abandoned { error, .. } => {
            let n = diesel::update(recoverable)
                .set((
                    released,
                    jobs::state.eq(state_to_db(JobState::Dead)),
                    jobs::interrupts.eq(jobs::interrupts + 1),
                    jobs::last_error.eq(Some(error.as_str())),
                    jobs::next_run_at.eq(None::<i64>),
                ))
                .execute(conn)?;
            return Ok(guarded(n));
        }
    };

    // An execution finished: one statement for all three outcomes, so it is prepared once.
    let finished: Option<(i64, i64, Option<i64>)> = diesel::update(held)
        .set((
            released,
            jobs::state.eq(state_to_db(state)),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::finished_at.eq(Some(now_ms)),
            jobs::exit_code.eq(execution.exit_code),
            jobs::last_error.eq(error),
            jobs::next_run_at.eq(next_run_at),
        ))
        .returning((jobs::seq, jobs::attempts, jobs::started_at))
        .get_result(conn)
        .optional()?;
    let Some((seq, attempts, started_at)) = finished else {
        return Ok(Guarded::Stale);
    };
    let attempt = u32::try_from(attempts).map_err(|_| {
        Failure::Store(StoreError::Corrupt {
            what: format!("job {}: attempts {attempts} is out of range", t.id),
        })
    })?;
    let record = queuectl_store::AttemptRecord {
        attempt,
        // A processing job always has started_at (claim sets it); an imported one might not.
        started_at: started_at.map_or(now, Timestamp::from_millis),
        finished_at: now,
        exit_code: execution.exit_code,
        error: error.map(str::to_owned),
    };
    diesel::insert_into(job_attempts::table)
        .values(&InsertAttempt::new(seq, &record))
        .execute(conn)?;
    diesel::replace_into(job_output::table)
        .values(&InsertOutput::new(seq, &execution.output))
        .execute(conn)?;
    Ok(Guarded::Applied)
}

/// A query for whole job rows (boxed: its filters depend on the call).
type JobQuery<'a> = jobs::BoxedQuery<'a, Sqlite, SqlTypeOf<AsSelect<JobRow, Sqlite>>>;

/// `processing` jobs whose lease ended before `now`, oldest lease first, read in order from
/// the partial index `jobs_lease`. Hand-written for the same reasons as the claim (see
/// `claim.rs`): the state test must be the index's literal `WHERE`, and `INDEXED BY` keeps
/// the planner from preferring `jobs_state` on a table without statistics. It runs about
/// once a second, so it is not worth a cached statement.
fn expired_leases_query(
    now: Timestamp,
    limit: u32,
) -> diesel::query_builder::BoxedSqlQuery<'static, Sqlite, diesel::query_builder::SqlQuery> {
    diesel::sql_query(
        "SELECT seq, id, command, kind, state, attempts, max_retries, priority, queue, \
         interrupts, created_at, updated_at, run_at, next_run_at, timeout_secs, exit_code, \
         last_error, worker_id, started_at, finished_at, lease_until, claim_token \
         FROM jobs INDEXED BY jobs_lease \
         WHERE state = 'processing' AND lease_until < ? \
         ORDER BY lease_until, seq LIMIT ?",
    )
    .into_boxed()
    .bind::<BigInt, _>(now.as_millis())
    .bind::<BigInt, _>(limit_of(limit))
}

/// Jobs matching `filter` in insertion order (index `jobs_state` when filtered by state).
fn list_query(filter: &JobFilter) -> JobQuery<'_> {
    let mut query = jobs::table
        .select(JobRow::as_select())
        .order(jobs::seq.asc())
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(jobs::state.eq(state_to_db(state)));
    }
    if let Some(queue) = &filter.queue {
        query = query.filter(jobs::queue.eq(queue.as_str()));
    }
    if let Some(limit) = filter.limit {
        query = query.limit(limit_of(limit));
    }
    query
}

/// Applies `transitions` as [`Jobs::finish`] says, inside the caller's immediate
/// transaction. Executions finished by a worker take three statements per group (see
/// `finish.rs`); anything else (recovery, release, a job named twice) one transition at a
/// time.
fn finish_in(
    conn: &mut SqliteConnection,
    transitions: &[Transition],
    now: Timestamp,
) -> Result<Vec<Guarded>, Failure> {
    let batched = finish::all_executions(transitions)
        // Ids travel as JSON text; one with a NUL would not survive the round trip.
        && transitions.iter().all(|t| !t.id.as_str().contains('\0'))
        && reject_repeats(transitions.iter().map(|t| &t.id)).is_ok();
    if batched {
        return finish::finish_executions(conn, transitions, now);
    }
    transitions
        .iter()
        .map(|t| apply_transition(conn, t, now))
        .collect()
}

fn guarded(rows: usize) -> Guarded {
    if rows == 1 {
        Guarded::Applied
    } else {
        Guarded::Stale
    }
}

fn limit_of(limit: u32) -> i64 {
    i64::from(limit)
}

fn count_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

const TERMINAL: [&str; 3] = ["completed", "dead", "cancelled"];

impl Jobs for SqliteStore {
    // ----- producer -----

    fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        reject_repeats(jobs.iter().map(|j| &j.id))?;
        let rows = jobs
            .iter()
            .map(|j| InsertJob::from_new(j, now))
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(|conn| insert_new_jobs(conn, &rows))
    }

    // ----- worker -----

    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        self.write(|conn| claim::claim(conn, req))
    }

    fn finish(&self, transitions: &[Transition], now: Timestamp) -> StoreResult<Vec<Guarded>> {
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|conn| finish_in(conn, transitions, now))
    }

    fn finish_and_claim(
        &self,
        transitions: &[Transition],
        now: Timestamp,
        req: &ClaimRequest,
    ) -> StoreResult<(Vec<Guarded>, Vec<Job>)> {
        // One transaction, one commit: a worker at claim batch 1 pays one commit per job
        // instead of two.
        self.write(|conn| {
            let finished = finish_in(conn, transitions, now)?;
            let claimed = claim::claim(conn, req)?;
            Ok((finished, claimed))
        })
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
        self.write(|conn| {
            leases
                .iter()
                .map(|lease| {
                    let n = diesel::update(
                        jobs::table
                            .filter(jobs::id.eq(lease.id.as_str()))
                            .filter(jobs::state.eq(state_to_db(JobState::Processing)))
                            .filter(jobs::claim_token.eq(lease.token.0)),
                    )
                    .set((
                        jobs::lease_until.eq(Some(lease_until.as_millis())),
                        jobs::updated_at.eq(now.as_millis()),
                    ))
                    .execute(conn)?;
                    Ok(guarded(n))
                })
                .collect()
        })
    }

    // ----- maintenance -----

    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>> {
        let rows: Vec<JobRow> =
            self.run(|conn| Ok(expired_leases_query(now, limit).load(conn)?))?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    fn prune(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let n = self.write(|conn| {
            // Output and history go with their job (ON DELETE CASCADE). The subquery
            // reads the table being deleted from, which Diesel types through an alias.
            let old = diesel::alias!(jobs as old);
            let doomed = old
                .filter(old.field(jobs::state).eq_any(TERMINAL))
                .filter(old.field(jobs::updated_at).lt(before.as_millis()))
                .order(old.field(jobs::seq).asc())
                .limit(limit_of(limit))
                .select(old.field(jobs::seq));
            Ok(diesel::delete(jobs::table.filter(jobs::seq.eq_any(doomed))).execute(conn)?)
        })?;
        Ok(count_of(n))
    }

    // ----- operator -----

    fn cancel(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        self.write(|conn| {
            let row = diesel::update(
                jobs::table
                    .filter(jobs::id.eq(id.as_str()))
                    .filter(jobs::state.eq_any(["pending", "failed"])),
            )
            .set((
                jobs::state.eq(state_to_db(JobState::Cancelled)),
                jobs::next_run_at.eq(None::<i64>),
                jobs::updated_at.eq(now.as_millis()),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)
            .optional()?;
            match row {
                Some(row) => decode(row),
                None => Err(not_applicable(conn, id)),
            }
        })
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
            *counts.get_mut(state_from_db(&state)?) = u64::try_from(n).unwrap_or(0);
        }
        Ok(counts)
    }

    fn get(&self, id: &JobId) -> StoreResult<Job> {
        match self.run(|conn| find_job(conn, id))? {
            Some(row) => row.into_job(),
            None => Err(StoreError::NotFound(id.clone())),
        }
    }

    fn get_record(&self, id: &JobId) -> StoreResult<JobRecord> {
        let found = self.read(|conn| {
            let Some(row) = find_job(conn, id)? else {
                return Ok(None);
            };
            let output = job_output::table
                .find(row.seq)
                .select(OutputRow::as_select())
                .first(conn)
                .optional()?;
            let history = job_attempts::table
                .filter(job_attempts::job_seq.eq(row.seq))
                .order(job_attempts::seq.asc())
                .select(AttemptRow::as_select())
                .load(conn)?;
            Ok(Some((row, output, history)))
        })?;
        let Some((row, output, history)) = found else {
            return Err(StoreError::NotFound(id.clone()));
        };
        Ok(JobRecord {
            job: row.into_job()?,
            output: output.map(OutputRow::into_output),
            history: history
                .into_iter()
                .map(|h| h.into_record(id))
                .collect::<StoreResult<_>>()?,
        })
    }

    fn import(&self, records: &[JobRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        reject_repeats(records.iter().map(|r| &r.job.id))?;
        let rows = records
            .iter()
            .map(|r| InsertJob::from_job(&r.job))
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(|conn| {
            let seqs = insert_jobs(conn, &rows)?;
            let outputs: Vec<InsertOutput<'_>> = records
                .iter()
                .zip(&seqs)
                .filter_map(|(r, seq)| r.output.as_ref().map(|o| InsertOutput::new(*seq, o)))
                .collect();
            for chunk in outputs.chunks(rows_per_insert(INSERT_OUTPUT_COLUMNS)) {
                diesel::insert_into(job_output::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            let history: Vec<InsertAttempt<'_>> = records
                .iter()
                .zip(&seqs)
                .flat_map(|(r, seq)| r.history.iter().map(|h| InsertAttempt::new(*seq, h)))
                .collect();
            for chunk in history.chunks(rows_per_insert(INSERT_ATTEMPT_COLUMNS)) {
                diesel::insert_into(job_attempts::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    fn list(&self, filter: &JobFilter) -> StoreResult<Vec<Job>> {
        let rows = self.run(|conn| Ok(list_query(filter).load(conn)?))?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    fn requeue_all_dead(&self, now: Timestamp) -> StoreResult<u64> {
        let n = self.write(|conn| {
            Ok(
                diesel::update(jobs::table.filter(jobs::state.eq(state_to_db(JobState::Dead))))
                    .set(requeued(now))
                    .execute(conn)?,
            )
        })?;
        Ok(count_of(n))
    }

    fn requeue_dead(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        self.write(|conn| {
            let row = diesel::update(
                jobs::table
                    .filter(jobs::id.eq(id.as_str()))
                    .filter(jobs::state.eq(state_to_db(JobState::Dead))),
            )
            .set(requeued(now))
            .returning(JobRow::as_returning())
            .get_result(conn)
            .optional()?;
            match row {
                Some(row) => decode(row),
                None => Err(not_applicable(conn, id)),
            }
        })
    }

    // ----- introspection -----

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_multi_process(true)
    }
}

impl Coordination for SqliteStore {
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
        self.write(|conn| {
            diesel::insert_into(settings::table)
                .values((
                    settings::key.eq(key),
                    settings::value.eq(value),
                    settings::updated_at.eq(now.as_millis()),
                ))
                .on_conflict(settings::key)
                .do_update()
                .set((
                    settings::value.eq(value),
                    settings::updated_at.eq(now.as_millis()),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        self.run(|conn| {
            Ok(settings::table
                .order(settings::key.asc())
                .select((settings::key, settings::value))
                .load(conn)?)
        })
    }

    // ----- worker registry -----

    fn deregister_worker(&self, worker_id: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::delete(workers::table.filter(workers::id.eq(worker_id))).execute(conn)?;
            Ok(())
        })
    }

    fn heartbeat_worker(&self, worker_id: &str, now: Timestamp) -> StoreResult<Heartbeat> {
        self.write(|conn| {
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
        let rows = self.run(|conn| {
            Ok(workers::table
                .order(workers::seq.asc())
                .select(WorkerRow::as_select())
                .load(conn)?)
        })?;
        rows.into_iter().map(WorkerRow::into_info).collect()
    }

    fn register_worker(&self, worker: &WorkerInfo) -> StoreResult<()> {
        let row = WorkerRow::from_info(worker)?;
        self.write(|conn| {
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
        let n = self.write(|conn| {
            Ok(diesel::update(workers::table)
                .set(workers::stop_requested.eq(true))
                .execute(conn)?)
        })?;
        Ok(count_of(n))
    }
}

impl ChangeFeed for SqliteStore {
    /// `PRAGMA data_version` on a connection reserved for it.
    ///
    /// SQLite changes a connection's `data_version` whenever *another* connection commits
    /// to the file, whichever process it belongs to; its own commits do not count. The
    /// reserved connection never writes after opening, so every later commit (from this
    /// handle's pool, other handles, other processes) is "another connection's", and the
    /// value alone is a complete marker: no local write counter needs to be combined
    /// with it. The value is per connection, so markers of two handles are not comparable
    /// with each other, only with earlier markers of the same handle.
    fn change_marker(&self) -> StoreResult<Marker> {
        #[derive(QueryableByName)]
        struct DataVersion {
            #[diesel(sql_type = BigInt)]
            data_version: i64,
        }
        let mut conn = self.marker.lock();
        let version = retry(self.options.max_busy_wait, || {
            Ok(diesel::sql_query("PRAGMA data_version").get_result::<DataVersion>(&mut *conn)?)
        })?;
        Ok(Marker::At(u64::from_ne_bytes(
            version.data_version.to_ne_bytes(),
        )))
    }
}

/// What `dlq retry` writes (see [`Jobs::requeue_dead`]).
#[allow(clippy::type_complexity)]
fn requeued(
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
        jobs::state.eq(state_to_db(JobState::Pending)),
        jobs::attempts.eq(0),
        jobs::interrupts.eq(0),
        jobs::last_error.eq(None),
        jobs::run_at.eq(now),
        jobs::next_run_at.eq(Some(now)),
        jobs::updated_at.eq(now),
    )
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{BigInt, Text};

    use super::*;

    fn temp_store(options: SqliteOptions) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_with(dir.path().join("t.db"), options).expect("open");
        (dir, store)
    }

    #[derive(QueryableByName)]
    struct Int {
        #[diesel(sql_type = BigInt)]
        v: i64,
    }

    #[derive(QueryableByName)]
    struct Str {
        #[diesel(sql_type = Text)]
        v: String,
    }

    /// A pragma's value; `PRAGMA busy_timeout` names its column `timeout`.
    fn pragma_int(store: &SqliteStore, name: &str) -> i64 {
        let column = if name == "busy_timeout" {
            "timeout"
        } else {
            name
        };
        store
            .run(|c| {
                Ok(
                    diesel::sql_query(format!("SELECT {column} AS v FROM pragma_{name}"))
                        .get_result::<Int>(c)?,
                )
            })
            .expect("pragma")
            .v
    }

    #[test]
    fn every_pooled_connection_gets_the_pragmas() {
        let options = SqliteOptions::default()
            .durability(Durability::Full)
            .busy_timeout(Duration::from_millis(1234))
            .pool_size(2);
        let (_dir, store) = temp_store(options);
        // Hold one connection so the next checkout is a different one.
        let _held = store.connection().expect("first connection");
        let mode = store
            .run(|c| {
                Ok(
                    diesel::sql_query("SELECT journal_mode AS v FROM pragma_journal_mode")
                        .get_result::<Str>(c)?,
                )
            })
            .expect("journal_mode");
        assert_eq!(mode.v, "wal");
        assert_eq!(pragma_int(&store, "synchronous"), 2, "FULL");
        assert_eq!(pragma_int(&store, "foreign_keys"), 1);
        assert_eq!(pragma_int(&store, "busy_timeout"), 1234);

        let (_dir, normal) = temp_store(SqliteOptions::default());
        assert_eq!(pragma_int(&normal, "synchronous"), 1, "NORMAL");
    }

    #[test]
    fn prune_takes_output_and_history_with_the_job() {
        use queuectl_store::{AttemptRecord, JobOutput};

        let (_dir, store) = temp_store(SqliteOptions::default());
        let t = Timestamp::from_millis(1_000);
        let mut job = NewJob::shell("true", t);
        job.id = JobId::new("old");
        store.enqueue(&job, t).expect("enqueue");
        let mut record = store.get_record(&job.id).expect("record");
        store
            .prune(Timestamp::from_millis(i64::MAX), 10)
            .expect("nothing terminal yet");
        record.job.id = JobId::new("done");
        record.job.state = JobState::Completed;
        record.job.next_run_at = None;
        record.output = Some(JobOutput {
            stdout: "out".into(),
            stderr: "err".into(),
        });
        record.history = vec![AttemptRecord {
            attempt: 1,
            started_at: t,
            finished_at: t,
            exit_code: Some(0),
            error: None,
        }];
        store.import(&[record]).expect("import");

        assert_eq!(
            store
                .prune(Timestamp::from_millis(2_000), 10)
                .expect("prune"),
            1
        );
        let count = |table: &str| {
            store
                .run(|c| {
                    Ok(
                        diesel::sql_query(format!("SELECT count(*) AS v FROM {table}"))
                            .get_result::<Int>(c)?,
                    )
                })
                .expect("count")
                .v
        };
        assert_eq!(
            (count("jobs"), count("job_output"), count("job_attempts")),
            (1, 0, 0)
        );
    }

    #[derive(QueryableByName)]
    struct PlanRow {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    fn plan<Q: diesel::query_builder::QueryFragment<Sqlite>>(
        store: &SqliteStore,
        query: &Q,
    ) -> Vec<String> {
        let sql = diesel::debug_query::<Sqlite, _>(query).to_string();
        let text = sql
            .split(" -- binds:")
            .next()
            .unwrap_or_default()
            .to_owned();
        store
            .run(
                |c| Ok(diesel::sql_query(format!("EXPLAIN QUERY PLAN {text}")).load::<PlanRow>(c)?),
            )
            .expect("plan")
            .into_iter()
            .map(|r| r.detail)
            .collect()
    }

    #[test]
    fn expired_leases_and_lists_by_state_read_an_index_in_order() {
        let (_dir, store) = temp_store(SqliteOptions::default());
        let expired = plan(&store, &expired_leases_query(Timestamp::EPOCH, 10));
        assert!(
            expired.iter().any(|d| d.contains("USING INDEX jobs_lease")),
            "{expired:?}"
        );
        assert!(
            !expired.iter().any(|d| d.contains("TEMP B-TREE")),
            "{expired:?}"
        );

        let filter = JobFilter {
            state: Some(JobState::Dead),
            queue: Some("q".into()),
            limit: Some(5),
        };
        let listed = plan(&store, &list_query(&filter));
        assert!(
            listed.iter().any(|d| d.contains("USING INDEX jobs_state")),
            "{listed:?}"
        );
        assert!(
            !listed.iter().any(|d| d.contains("TEMP B-TREE")),
            "{listed:?}"
        );
    }

    #[test]
    fn retry_gives_up_with_busy_after_the_bounded_wait() {
        let mut calls = 0;
        let result: StoreResult<()> = retry(Duration::from_millis(30), || {
            calls += 1;
            Err(Failure::Db(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new("database is locked".to_owned()),
            )))
        });
        let err = result.expect_err("busy");
        assert!(err.is_transient(), "{err:?}");
        assert!(!err.to_string().contains("database is locked"), "{err}");
        assert!(calls > 1, "retried {calls} times");
    }

    #[test]
    fn retry_does_not_repeat_decided_errors() {
        let mut calls = 0;
        let result: StoreResult<()> = retry(Duration::from_secs(30), || {
            calls += 1;
            Err(StoreError::NotFound(JobId::new("x")).into())
        });
        assert!(matches!(result, Err(StoreError::NotFound(_))));
        assert_eq!(calls, 1);
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn file_colon_names_stay_file_names() {
        assert_eq!(
            database_url(Path::new("file:x.db?mode=ro")).expect("url"),
            "./file:x.db?mode=ro"
        );
        assert_eq!(
            database_url(Path::new("/tmp/q.db")).expect("url"),
            "/tmp/q.db"
        );
        assert!(database_url(Path::new("")).is_err());
    }
}
