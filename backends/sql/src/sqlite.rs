//! The shared operations on [`diesel::SqliteConnection`]: `src/portable/` compiled for
//! SQLite (see the crate docs). `queuectl-store-sqlite` calls them.

/// The connection every operation of this module runs on.
type Conn = diesel::SqliteConnection;

/// How [`ExpiredLeases`] names the table: without statistics SQLite's planner prefers the
/// `jobs_state` index and a sort; the hint makes it read the partial index `jobs_lease`,
/// already in order.
const JOBS_BY_LEASE: &str = "jobs INDEXED BY jobs_lease";

// Each file is compiled once per dialect on purpose (see the crate docs), hence the allows.
#[allow(clippy::duplicate_mod)]
#[path = "portable/check.rs"]
mod check;
#[allow(clippy::duplicate_mod)]
#[path = "portable/coordination.rs"]
mod coordination;
#[allow(clippy::duplicate_mod)]
#[path = "portable/job.rs"]
mod job;
#[allow(clippy::duplicate_mod)]
#[path = "portable/overview.rs"]
mod overview;
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
pub use self::job::*;
pub use self::overview::*;
pub use self::schedule::*;
