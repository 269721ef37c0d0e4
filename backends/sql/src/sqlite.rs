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
#[path = "portable/queue.rs"]
mod queue;

pub use self::check::*;
pub use self::coordination::*;
pub use self::job::*;
pub use self::queue::*;
