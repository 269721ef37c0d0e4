//! The shared operations on [`diesel::PgConnection`]: `src/portable/` compiled for
//! PostgreSQL (see the crate docs). `queuectl-store-postgres` calls them.

/// The connection every operation of this module runs on.
type Conn = diesel::PgConnection;

/// How [`ExpiredLeases`] names the table: PostgreSQL's planner finds `jobs_lease_idx` by
/// itself.
const JOBS_BY_LEASE: &str = "jobs";

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
