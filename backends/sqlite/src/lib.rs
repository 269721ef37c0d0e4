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
//! - The schema, the row mapping and every operation both SQL dialects express alike
//!   (reads, lists, counts, cancel, requeue, prune, import, expired leases, settings, the
//!   worker registry) are `queuectl-store-sql`'s, shared with the PostgreSQL store; this
//!   crate holds the connection handling, the claim, the batched finish, bulk enqueue,
//!   lease renewal and the migrations, and runs the shared operations through its
//!   `Session` (reads on a pooled connection, writes as below).
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
//! - [`ChangeFeed::wait_for_change`] (Linux) waits on an inotify watch of the store's
//!   directory for writes to the database file or its WAL: every commit of any process on
//!   the host wakes idle workers within a millisecond, without polling (`watch.rs`).
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
mod enqueue;
mod error;
mod finish;
mod migrate;
#[cfg(target_os = "linux")]
mod watch;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::BigInt;
use parking_lot::Mutex;
use queuectl_store::{
    ChangeFeed, ClaimRequest, Coordination, Enqueued, Guarded, Job, JobState, Jobs, LeaseRef,
    Marker, NewJob, StoreError, StoreResult, Timestamp, Transition, Wake,
};
use queuectl_store_sql::row::InsertJob;
use queuectl_store_sql::schema::jobs;
use queuectl_store_sql::sqlite::{self, apply_transition};
use queuectl_store_sql::{guarded, reject_repeats, Failure, Session};

use crate::error::{failure_to_store_error, is_busy_failure, pool_error};

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
    /// The inotify watch behind [`ChangeFeed::wait_for_change`], set up on first use (so
    /// only a waiting worker pays for it); `None` where inotify refused.
    #[cfg(target_os = "linux")]
    watch: OnceLock<Option<watch::Watch>>,
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
        let created = create_owner_only(&path);
        let opened = Self::open_created(path.clone(), &url, options);
        if opened.is_err() && created {
            remove_half_made(&path);
        }
        opened
    }

    /// The rest of [`SqliteStore::open_with`], once the file exists.
    fn open_created(path: PathBuf, url: &str, options: SqliteOptions) -> StoreResult<Self> {
        let url = url.to_owned();
        let setup = ConnectionSetup::new(&options);

        let mut first = retry(options.max_busy_wait, || {
            let mut conn = SqliteConnection::establish(&url)
                .map_err(|e| Failure::Store(open_error(&path, e)))?;
            migrate::refuse_foreign(&mut conn)?;
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
            #[cfg(target_os = "linux")]
            watch: OnceLock::new(),
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

    fn connection(&self) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, Failure> {
        self.pool.get().map_err(|e| Failure::Store(pool_error(e)))
    }
}

/// How the shared operations of `queuectl-store-sql` run here: reads on a pooled
/// connection, writes in `BEGIN IMMEDIATE` transactions behind the in-process writer lock,
/// every one re-run while the file is busy. Nothing to announce: `data_version` (the change
/// marker) sees every commit.
impl Session for SqliteStore {
    type Conn = SqliteConnection;

    fn read<T>(
        &self,
        op: impl FnMut(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        self.run(op)
    }

    /// A deferred transaction: one consistent snapshot for several statements.
    fn snapshot<T>(
        &self,
        mut op: impl FnMut(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> StoreResult<T> {
        self.run(|conn| conn.transaction(&mut op))
    }

    /// A `BEGIN IMMEDIATE` transaction, re-run whole while the database is busy. Any error
    /// rolls it back.
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
            Err(f) if is_busy_failure(&f) => {
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
            Err(f) => return Err(failure_to_store_error(f)),
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
fn create_owner_only(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// After a failed open of a file this open created: removes it if it is still empty (a
/// full disk, a read-only directory), with any `-wal` and `-shm` files, so nothing
/// half-made is left. A file another process has meanwhile filled is left alone.
fn remove_half_made(path: &Path) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) && std::fs::remove_file(path).is_ok() {
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let _ = std::fs::remove_file(side);
        }
    }
}

/// Why a file at `path` cannot be written, found by trying (an error path only): the file
/// system is read-only, the directory is not writable (SQLite creates its `-wal` and
/// `-shm` files next to the database), the disk is full, or the file is read-only.
/// `None` when nothing of the sort shows.
pub(crate) fn diagnose_unwritable(path: &Path) -> Option<String> {
    use std::io::{ErrorKind, Write as _};

    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let mut probe = path.as_os_str().to_owned();
    probe.push(format!("-queuectl-probe-{}", std::process::id()));
    let probe = PathBuf::from(probe);
    let tried = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(&[0; 64 * 1024]).and_then(|()| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    match tried {
        Err(e) if e.kind() == ErrorKind::ReadOnlyFilesystem => {
            Some(format!("the file system of {} is read-only", dir.display()))
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Some(format!(
            "directory {} is read-only for this user (SQLite creates the -wal and -shm \
             files next to the database)",
            dir.display()
        )),
        Err(e) if e.kind() == ErrorKind::StorageFull || e.kind() == ErrorKind::QuotaExceeded => {
            Some("the disk is full".to_owned())
        }
        _ if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) => {
            Some("the file is read-only".to_owned())
        }
        _ => None,
    }
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
        _ => diagnose_unwritable(path)
            .unwrap_or_else(|| "SQLite could not open or create the file".to_owned()),
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
        StoreError::Busy(_)
        | StoreError::Migration(_)
        | StoreError::NewerSchema { .. }
        | StoreError::Unavailable { .. } => e,
        StoreError::Corrupt { .. } => StoreError::Unavailable {
            message: format!(
                "cannot open database at {}: it is not a SQLite database, or it is damaged",
                path.display()
            ),
            source: Some(Box::new(e)),
        },
        other => {
            // The store's own words for the failure (never raw SQLite text), or what the
            // file system says when those are generic.
            let why = match diagnose_unwritable(path) {
                Some(why) => why,
                None => match &other {
                    StoreError::Backend { message, .. } => message.clone(),
                    _ => other.to_string(),
                },
            };
            StoreError::Unavailable {
                message: format!("cannot open database at {}: {why}", path.display()),
                source: Some(Box::new(other)),
            }
        }
    }
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
    let results = if batched {
        finish::finish_executions(conn, transitions, now)?
    } else {
        transitions
            .iter()
            .map(|t| apply_transition(conn, t, now))
            .collect::<Result<Vec<_>, _>>()?
    };
    // What the jobs that reached a final state mean to the jobs waiting on them, in the
    // same transaction (one probe when no job waits on anything).
    let ended: Vec<&str> = transitions
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_applied())
        .map(|(t, _)| t.id.as_str())
        .collect();
    sqlite::settle(conn, &ended, now)?;
    Ok(results)
}

impl Jobs for SqliteStore {
    // ----- producer -----

    fn enqueue_batch(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = InsertJob::batch(jobs, now)?;
        self.write(|conn| {
            let outcomes = enqueue::insert_new_jobs(conn, &rows)?;
            sqlite::link_new_jobs(conn, jobs, &outcomes)?;
            Ok(outcomes)
        })
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
                            .filter(jobs::state.eq(JobState::Processing.as_str()))
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

    // expired_leases, prune, cancel, counts, get, get_record, import, list,
    // requeue_all_dead, requeue_dead, capabilities: written once for both SQL stores.
    queuectl_store_sql::shared_job_methods!(sqlite);
}

impl Coordination for SqliteStore {
    queuectl_store_sql::coordination_methods!(sqlite);

    fn check_schema_version(&self) -> StoreResult<()> {
        queuectl_store_sql::sqlite::check_schema_version(self, migrate::known_versions())
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

    /// On Linux: inotify on the store's directory, woken by any write to the database
    /// file or its WAL (every commit, from any process on this host; see `watch.rs`).
    /// Elsewhere, or where inotify is unavailable, [`Wake::Unsupported`]: workers poll
    /// [`ChangeFeed::change_marker`].
    fn wait_for_change(&self, timeout: Duration) -> StoreResult<Wake> {
        #[cfg(target_os = "linux")]
        {
            let Some(watch) = self.watch.get_or_init(|| watch::Watch::new(&self.path)) else {
                return Ok(Wake::Unsupported);
            };
            match watch.wait(timeout) {
                Ok(true) => Ok(Wake::Changed),
                Ok(false) => Ok(Wake::TimedOut),
                Err(e) => Err(StoreError::backend("waiting for writes to the database", e)),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = timeout;
            Ok(Wake::Unsupported)
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{BigInt, Text};
    use diesel::sqlite::Sqlite;
    use queuectl_store::{JobFilter, JobId};
    use queuectl_store_sql::sqlite::{list_query, ExpiredLeases};

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

    /// A worker idles in `wait_for_change` on one handle; an enqueue through another
    /// handle on the same file (as from another process) must wake it, long before the
    /// timeout, and a wait with nothing written must time out.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_enqueue_through_another_handle_wakes_a_waiting_worker() {
        use queuectl_store::prelude::*;
        let (dir, waiting) = temp_store(SqliteOptions::default());
        let other = SqliteStore::open(dir.path().join("t.db")).expect("second handle");
        // Set up the watch, and let the opening writes pass.
        while waiting
            .wait_for_change(Duration::from_millis(50))
            .expect("wait")
            == Wake::Changed
        {}
        assert_eq!(
            waiting
                .wait_for_change(Duration::from_millis(50))
                .expect("wait"),
            Wake::TimedOut
        );
        let waiter = std::thread::spawn(move || {
            waiting
                .wait_for_change(Duration::from_secs(30))
                .expect("wait")
        });
        std::thread::sleep(Duration::from_millis(100));
        let now = Timestamp::from_millis(1_764_000_000_000);
        other
            .enqueue(&NewJob::shell("true", now), now)
            .expect("enqueue");
        assert_eq!(waiter.join().expect("waiter"), Wake::Changed);
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
            output: JobOutput::default(),
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
            (count("jobs"), count("live_output"), count("job_attempts")),
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
        let expired = plan(&store, &ExpiredLeases::new(Timestamp::EPOCH, 10));
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
