//! The shared operations on [`diesel::PgConnection`]: `src/portable/` compiled for
//! PostgreSQL (see the crate docs). `queuectl-store-postgres` calls them.

/// The connection every operation of this module runs on.
type Conn = diesel::PgConnection;

/// How [`ExpiredLeases`] names the table: PostgreSQL's planner finds `jobs_lease_idx` by
/// itself.
const JOBS_BY_LEASE: &str = "jobs";

/// How [`prune_finished`] names the table: PostgreSQL's planner finds `jobs_prune_idx` by itself.
const JOBS_BY_FINISH: &str = "jobs";

/// How [`find_ids_by_prefix`] compares ids byte-wise: the column under the byte-order collation `"C"` (the database default may be a locale), read through the index `jobs_id_bytes_idx` on that expression.
const ID_BYTES: &str = "id COLLATE \"C\"";

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
    fn strpos(haystack: diesel::sql_types::Text, needle: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}
use self::strpos as position_of;

pub use self::check::*;
pub use self::coordination::*;
pub use self::deps::*;
pub use self::job::*;
pub use self::operate::*;
pub use self::overview::*;
pub use self::queue::*;
pub use self::schedule::*;

/// The states of the jobs `ids` (absent ones are missing), for a dependency check, each
/// row locked `FOR SHARE` until the commit: a concurrent finish, cancel or delete of a
/// parent (an `UPDATE` or `DELETE` of its row) waits for the new dependency to commit and
/// then sees it, or commits first and this read sees what it wrote. Without the lock a
/// parent could complete without seeing the child that was just linked to it.
fn parent_states(
    conn: &mut Conn,
    ids: &[impl AsRef<str>],
) -> diesel::QueryResult<Vec<(String, String)>> {
    use diesel::prelude::*;
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    crate::schema::jobs::table
        .filter(crate::schema::jobs::id.eq_any(ids))
        .select((crate::schema::jobs::id, crate::schema::jobs::state))
        // In id order, as finishes and lease renewals lock jobs: no cycle of waits.
        .order(crate::schema::jobs::id)
        .for_share()
        .load(conn)
}

/// Locks the jobs waiting on `parents` (in `seq` order, `FOR UPDATE`) before `settle`
/// changes them one parent at a time: two finishes whose parents share children then wait
/// for each other in one order instead of deadlocking.
fn lock_children(conn: &mut Conn, parents: &[String]) -> diesel::QueryResult<()> {
    use crate::schema::{job_deps, jobs};
    use diesel::prelude::*;
    jobs::table
        .filter(
            jobs::seq.eq_any(
                job_deps::table
                    .filter(job_deps::parent_id.eq_any(parents))
                    .select(job_deps::child_seq),
            ),
        )
        .select(jobs::seq)
        .order(jobs::seq)
        .for_update()
        .load::<i64>(conn)
        .map(drop)
}
