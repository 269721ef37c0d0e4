//! [`Failure`]: what a shared operation's closure returns when it stops.

use diesel::result::Error as DieselError;
use queuectl_store::StoreError;

/// A failure inside a store operation: a driver error, still to be classified by the
/// dialect (which may retry it: SQLite's busy file, PostgreSQL's serialization failure), or
/// an outcome already decided (e.g. `Conflict`, `WrongState`), which also rolls the
/// transaction back and is never retried.
#[derive(Debug)]
pub enum Failure {
    /// The driver failed.
    Db(DieselError),
    /// The operation decided the outcome.
    Store(StoreError),
}

impl From<DieselError> for Failure {
    fn from(e: DieselError) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}
