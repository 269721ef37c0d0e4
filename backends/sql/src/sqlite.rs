//! The shared operations on [`diesel::SqliteConnection`]: `src/portable/` compiled for
//! SQLite (see the crate docs). `queuectl-store-sqlite` calls them.

/// The connection every operation of this module runs on.
type Conn = diesel::SqliteConnection;

/// How [`ExpiredLeases`] names the table: without statistics SQLite's planner prefers the
/// `jobs_state` index and a sort; the hint makes it read the partial index `jobs_lease`,
/// already in order.
const JOBS_BY_LEASE: &str = "jobs INDEXED BY jobs_lease";

/// How [`prune_finished`] names the table: without statistics SQLite's planner reads `jobs_state` and sorts every finished row of the state; the hint makes it read the partial index `jobs_finished`, in finish order.
const JOBS_BY_FINISH: &str = "jobs INDEXED BY jobs_finished";

/// How [`find_ids_by_prefix`] compares ids byte-wise: SQLite compares `TEXT` with `BINARY` (byte order) by default, so the plain column, read through its `UNIQUE` index.
const ID_BYTES: &str = "id";

// Each file is compiled once per dialect on purpose (see the crate docs), hence the allows.
#[allow(clippy::duplicate_mod)]
#[path = "portable/check.rs"]
mod check;
#[allow(clippy::duplicate_mod)]
#[path = "portable/coordination.rs"]
mod coordination;
#[allow(clippy::duplicate_mod)]
#[path = "portable/deps.rs"]
mod deps;
#[allow(clippy::duplicate_mod)]
#[path = "portable/job.rs"]
mod job;
#[allow(clippy::duplicate_mod)]
#[path = "portable/operate.rs"]
mod operate;
#[allow(clippy::duplicate_mod)]
#[path = "portable/overview.rs"]
mod overview;
#[allow(clippy::duplicate_mod)]
#[path = "portable/queue.rs"]
mod queue;
#[allow(clippy::duplicate_mod)]
#[path = "portable/schedule.rs"]
mod schedule;

diesel::define_sql_function! {
    /// The 1-based byte position of `needle` in `haystack`, 0 when absent: a substring
    /// test without wildcards.
    fn instr(haystack: diesel::sql_types::Text, needle: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}
use self::instr as position_of;

pub use self::check::*;
pub use self::coordination::*;
pub use self::deps::*;
pub use self::job::*;
pub use self::operate::*;
pub use self::overview::*;
pub use self::queue::*;
pub use self::schedule::*;

/// The states of the jobs `ids` (absent ones are missing), for a dependency check. SQLite
/// writers are serialised by the write lock, so a plain read is stable until the commit.
fn parent_states(
    conn: &mut Conn,
    ids: &[impl AsRef<str>],
) -> diesel::QueryResult<Vec<(String, String)>> {
    use diesel::prelude::*;
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    crate::schema::jobs::table
        .filter(crate::schema::jobs::id.eq_any(ids))
        .select((crate::schema::jobs::id, crate::schema::jobs::state))
        .load(conn)
}

/// Nothing to lock: SQLite writers are serialised (see the PostgreSQL version).
#[allow(clippy::unnecessary_wraps)]
fn lock_children(_conn: &mut Conn, _parents: &[String]) -> diesel::QueryResult<()> {
    Ok(())
}
