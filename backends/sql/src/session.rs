//! [`Session`]: how a store runs the shared operations on its connections.

use queuectl_store::StoreResult;

use crate::Failure;

/// What a store provides so the shared operations (see [`crate::sqlite`] and [`crate::pg`])
/// can run on it: its dialect's way of running a read, a consistent read of several
/// statements and a write transaction, and of announcing a job that became claimable.
///
/// Each method takes a closure that the store may run more than once (a busy SQLite file
/// or a PostgreSQL serialization failure is retried), so it must not have effects outside
/// the connection. A [`Failure::Store`] from the closure is returned as it is, a
/// [`Failure::Db`] is mapped to the store's errors by the dialect.
pub trait Session {
    /// The connection the operations run on.
    type Conn;

    /// Runs `op` on a connection: for a single statement (a read, or a write that needs no
    /// transaction of its own).
    ///
    /// # Errors
    /// What `op` fails with, mapped.
    fn read<T>(&self, op: impl FnMut(&mut Self::Conn) -> Result<T, Failure>) -> StoreResult<T>;

    /// Runs `op` in a read transaction: every statement sees the same snapshot.
    ///
    /// # Errors
    /// What `op` fails with, mapped.
    fn snapshot<T>(&self, op: impl FnMut(&mut Self::Conn) -> Result<T, Failure>) -> StoreResult<T>;

    /// Runs `op` in a write transaction; any error rolls it back.
    ///
    /// # Errors
    /// What `op` fails with, mapped.
    fn write<T>(&self, op: impl FnMut(&mut Self::Conn) -> Result<T, Failure>) -> StoreResult<T>;

    /// Inside a [`Session::write`] that made a job claimable: tells idle workers of every
    /// process. The default does nothing, for a store whose change marker sees every commit
    /// anyway (SQLite's `data_version`).
    ///
    /// # Errors
    /// Only driver failures.
    fn wake(conn: &mut Self::Conn) -> Result<(), Failure> {
        let _ = conn;
        Ok(())
    }

    /// After a committed write that changed jobs: lets this handle's change marker move
    /// at once. The default does nothing.
    fn jobs_changed(&self) {}
}
