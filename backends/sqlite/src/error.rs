//! Diesel and r2d2 errors → [`StoreError`], in one place.
//!
//! SQLite reports a held lock as `SQLITE_BUSY` ("database is locked"); the store waits
//! that out (busy handler, then a retry loop around the whole transaction, see
//! `SqliteStore::run`) and only then reports [`StoreError::Busy`] in its own words. No raw
//! SQLite message becomes a `StoreError`'s text; the driver error stays the `source`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use queuectl_store::StoreError;
use queuectl_store_sql::Failure;

/// Whether waiting and running the transaction again may succeed: only a busy database,
/// never an outcome the operation decided.
pub(crate) fn is_busy_failure(f: &Failure) -> bool {
    match f {
        Failure::Db(e) => is_busy(e),
        Failure::Store(_) => false,
    }
}

/// The error the caller sees for a failure.
pub(crate) fn failure_to_store_error(f: Failure) -> StoreError {
    match f {
        Failure::Db(e) => to_store_error(e),
        Failure::Store(e) => e,
    }
}

/// Whether `e` is SQLite's "the database (or a table, or the schema) is locked".
///
/// Diesel keeps only the message of an unclassified SQLite error, so the extended codes
/// `SQLITE_BUSY*` and `SQLITE_LOCKED*` are recognised by their fixed `sqlite3_errstr`
/// texts, which every extended code of a class shares.
pub(crate) fn is_busy(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message();
            m.starts_with("database is locked")
                || m.starts_with("database table is locked")
                || m.starts_with("database schema is locked")
        }
        _ => false,
    }
}

/// What the caller of a store method sees for a driver error.
///
/// Busy errors reaching this point were already retried for the store's whole bounded
/// wait.
pub(crate) fn to_store_error(e: DieselError) -> StoreError {
    if is_busy(&e) {
        return StoreError::Busy(
            "the database file stayed locked by other connections for too long".to_owned(),
        );
    }
    let message = match &e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation => "a write broke a schema constraint",
            _ => match info.message() {
                m if m.starts_with("database disk image is malformed")
                    || m.starts_with("file is not a database") =>
                {
                    return StoreError::Corrupt {
                        what: "the SQLite file is damaged or is not a queuectl database".to_owned(),
                    }
                }
                m if m.starts_with("attempt to write a readonly database") => {
                    "the database file is read-only"
                }
                m if m.starts_with("database or disk is full") => "the disk is full",
                m if m.starts_with("disk I/O error") => {
                    "the disk failed a read or write (full, or failing?)"
                }
                m if m.starts_with("unable to open database file") => {
                    "SQLite could not open a file next to the database (a read-only \
                     directory?)"
                }
                m if m.starts_with("no such table") || m.starts_with("no such column") => {
                    "the database schema is not the one this version expects"
                }
                _ => "the SQLite database reported an error",
            },
        },
        DieselError::DeserializationError(_) => {
            return StoreError::Corrupt {
                what: format!("a stored value could not be decoded ({e})"),
            }
        }
        DieselError::NotFound => "a row the store expected is missing",
        DieselError::SerializationError(_) => "a value could not be encoded for SQLite",
        DieselError::RollbackErrorOnCommit { .. } | DieselError::RollbackTransaction => {
            "a transaction could not be committed"
        }
        _ => "the SQLite driver failed",
    };
    StoreError::backend(message, e)
}

/// A pool checkout that failed after the pool's wait: either every connection stayed in
/// use (busy), or a new connection could not be opened (the error then carries why).
pub(crate) fn pool_error(e: diesel::r2d2::PoolError) -> StoreError {
    // r2d2's error has no accessor: it prints its fixed description, plus the last
    // connection error when opening one failed.
    if e.to_string() == "timed out waiting for connection" {
        StoreError::Busy("no database connection became free in time".to_owned())
    } else {
        StoreError::Unavailable {
            message: "cannot open another connection to the database".to_owned(),
            source: Some(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn locked_database_maps_to_busy_without_the_raw_message() {
        for m in [
            "database is locked",
            "database table is locked",
            "database schema is locked: main",
        ] {
            let e = db_error(DatabaseErrorKind::Unknown, m);
            assert!(is_busy(&e), "{m}");
            let mapped = to_store_error(e);
            assert!(mapped.is_transient(), "{m}: {mapped:?}");
            assert!(!mapped.to_string().contains(m), "{mapped}");
        }
    }

    #[test]
    fn constraint_violations_are_backend_errors_with_the_driver_source() {
        let e = to_store_error(db_error(
            DatabaseErrorKind::UniqueViolation,
            "UNIQUE constraint failed: jobs.id",
        ));
        match e {
            StoreError::Backend { message, source } => {
                assert_eq!(message, "a write broke a schema constraint");
                let source = source.expect("source kept");
                assert!(source.to_string().contains("UNIQUE"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn damaged_files_and_bad_values_are_corrupt() {
        for m in ["file is not a database", "database disk image is malformed"] {
            let e = to_store_error(db_error(DatabaseErrorKind::Unknown, m));
            assert!(matches!(e, StoreError::Corrupt { .. }), "{m}: {e:?}");
        }
        let e = to_store_error(DieselError::DeserializationError("bad int".into()));
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    }

    #[test]
    fn other_errors_are_backend_errors_and_not_transient() {
        for e in [
            DieselError::NotFound,
            db_error(DatabaseErrorKind::Unknown, "disk I/O error"),
            db_error(DatabaseErrorKind::Unknown, "no such table: jobs"),
        ] {
            let mapped = to_store_error(e);
            assert!(matches!(mapped, StoreError::Backend { .. }), "{mapped:?}");
            assert!(!mapped.is_transient());
        }
    }

    #[test]
    fn full_read_only_and_unopenable_files_are_named() {
        for (m, says) in [
            ("database or disk is full", "the disk is full"),
            ("attempt to write a readonly database", "read-only"),
            ("disk I/O error", "full, or failing"),
            ("unable to open database file", "read-only directory"),
        ] {
            let mapped = to_store_error(db_error(DatabaseErrorKind::Unknown, m));
            assert!(mapped.to_string().contains(says), "{m}: {mapped}");
            assert!(!mapped.to_string().contains(m), "{mapped}");
        }
    }

    #[test]
    fn decided_store_errors_pass_through_and_are_not_retried() {
        let f = Failure::from(StoreError::Busy("x".into()));
        assert!(!is_busy_failure(&f));
        assert!(matches!(failure_to_store_error(f), StoreError::Busy(_)));
        let f = Failure::from(db_error(DatabaseErrorKind::Unknown, "database is locked"));
        assert!(is_busy_failure(&f));
    }
}
