//! Mapping driver errors to [`StoreError`], in one place.
//!
//! Connection failures become [`StoreError::Unavailable`] with one human sentence built from
//! the first line of libpq's message (libpq's multi-line text and the password in the URL
//! never reach the user). Transient failures (serialization failure, deadlock, lock
//! timeout) become [`StoreError::Busy`]; the store retries those a bounded number of times
//! before returning them.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use queuectl_store::{JobId, StoreError};

/// Maps a query error. Callers that can name the job (duplicate id, missing row) handle
/// those cases themselves before falling back to this.
pub(crate) fn to_store_error(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::SerializationFailure => {
                StoreError::Busy("serialization failure, retries exhausted".to_owned())
            }
            DatabaseErrorKind::UniqueViolation => match duplicate_key(info.details()) {
                Some(id) => StoreError::Conflict(JobId::new(id)),
                None => StoreError::backend("unique constraint violated", e),
            },
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                StoreError::Unavailable {
                    message: format!(
                        "lost the connection to PostgreSQL: {}",
                        first_line(info.message())
                    ),
                    source: None,
                }
            }
            _ if is_transient_message(info.message()) => {
                StoreError::Busy(format!("{}, retries exhausted", first_line(info.message())))
            }
            _ => StoreError::backend("PostgreSQL query failed", e),
        },
        DieselError::DeserializationError(_) => StoreError::Corrupt {
            what: e.to_string(),
        },
        _ => StoreError::backend("PostgreSQL query failed", e),
    }
}

/// Deadlocks (40P01) and lock timeouts (55P03) have no `DatabaseErrorKind` of their own.
fn is_transient_message(message: &str) -> bool {
    message.starts_with("deadlock detected")
        || message.contains("lock timeout")
        || message.starts_with("could not obtain lock")
}

/// The key value out of PostgreSQL's `Key (id)=(x) already exists.` detail.
fn duplicate_key(details: Option<&str>) -> Option<&str> {
    let rest = details?.strip_prefix("Key (id)=(")?;
    rest.strip_suffix(") already exists.")
}

/// Maps a failure to open a connection to `target` (see [`describe_target`]).
pub(crate) fn connect_error(e: &ConnectionError, target: &str) -> StoreError {
    let reason = match e {
        ConnectionError::BadConnection(msg) => humanize_libpq(msg),
        ConnectionError::InvalidConnectionUrl(msg) => format!("invalid URL ({})", first_line(msg)),
        ConnectionError::InvalidCString(_) => "the URL contains a NUL byte".to_owned(),
        ConnectionError::CouldntSetupConfiguration(inner) => {
            format!("could not configure the session ({inner})")
        }
        _ => first_line(&e.to_string()).to_owned(),
    };
    StoreError::Unavailable {
        message: format!("cannot connect to PostgreSQL at {target}: {reason}"),
        source: None,
    }
}

/// One readable clause from libpq's connection error text.
pub(crate) fn humanize_libpq(msg: &str) -> String {
    let line = first_line(msg);
    // `connection to server at "127.0.0.1", port 5432 failed: <reason>`
    let reason = match line.find(" failed: ") {
        Some(at) if line.starts_with("connection to server") => &line[at + " failed: ".len()..],
        _ => line,
    };
    let reason = reason
        .trim_start_matches("FATAL:")
        .trim_start_matches("ERROR:")
        .trim();
    if reason.eq_ignore_ascii_case("connection refused") {
        "connection refused (is the server running and accepting TCP connections?)".to_owned()
    } else if reason.eq_ignore_ascii_case("timeout expired") {
        "no answer before the connect timeout".to_owned()
    } else if reason.is_empty() {
        "the server could not be reached".to_owned()
    } else {
        reason.to_owned()
    }
}

fn first_line(msg: &str) -> &str {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// `user@host:port/db` out of a `postgres://` URL or a `key=value` connection string,
/// without the password or query parameters, for messages.
pub(crate) fn describe_target(url: &str) -> String {
    let url = url.trim();
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let user = userinfo.map(|u| u.split(':').next().unwrap_or(""));
        let hostpart = if hostpart.is_empty() || hostpart.starts_with('/') {
            format!("localhost{hostpart}")
        } else {
            hostpart.to_owned()
        };
        return match user {
            Some(u) if !u.is_empty() => format!("{u}@{hostpart}"),
            _ => hostpart,
        };
    }
    // key=value form: keep only the keys that say where.
    let mut host = "localhost";
    let mut port = None;
    let mut db = None;
    let mut user = None;
    for pair in url.split_whitespace() {
        match pair.split_once('=') {
            Some(("host" | "hostaddr", v)) => host = v,
            Some(("port", v)) => port = Some(v),
            Some(("dbname", v)) => db = Some(v),
            Some(("user", v)) => user = Some(v),
            _ => {}
        }
    }
    let mut out = String::new();
    if let Some(u) = user {
        out.push_str(u);
        out.push('@');
    }
    out.push_str(host);
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    if let Some(d) = db {
        out.push('/');
        out.push_str(d);
    }
    out
}

/// Maps a pool checkout failure: a connection error inside means the server is
/// unreachable; a bare timeout means every connection stayed busy.
pub(crate) fn pool_error(e: &diesel::r2d2::PoolError, target: &str) -> StoreError {
    let text = e.to_string();
    match text.split_once(": ") {
        Some((_, inner)) if !inner.trim().is_empty() => StoreError::Unavailable {
            message: format!(
                "cannot connect to PostgreSQL at {target}: {}",
                humanize_libpq(inner)
            ),
            source: None,
        },
        _ => StoreError::Busy("every pooled PostgreSQL connection stayed in use".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Info {
        message: &'static str,
        details: Option<&'static str>,
    }

    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            self.details
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(
        kind: DatabaseErrorKind,
        message: &'static str,
        details: Option<&'static str>,
    ) -> StoreError {
        to_store_error(DieselError::DatabaseError(
            kind,
            Box::new(Info { message, details }),
        ))
    }

    #[test]
    fn serialization_failure_and_deadlock_are_busy() {
        let e = db(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access due to concurrent update",
            None,
        );
        assert!(e.is_transient(), "{e}");
        let e = db(DatabaseErrorKind::Unknown, "deadlock detected", None);
        assert!(e.is_transient(), "{e}");
        let e = db(
            DatabaseErrorKind::Unknown,
            "canceling statement due to lock timeout",
            None,
        );
        assert!(e.is_transient(), "{e}");
    }

    #[test]
    fn duplicate_id_is_a_conflict_naming_the_id() {
        let e = db(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint \"jobs_id_key\"",
            Some("Key (id)=(job-1) already exists."),
        );
        assert!(
            matches!(e, StoreError::Conflict(ref id) if id.as_str() == "job-1"),
            "{e}"
        );
        // Another unique violation is not misreported as a job conflict.
        let e = db(DatabaseErrorKind::UniqueViolation, "duplicate key", None);
        assert!(matches!(e, StoreError::Backend { .. }), "{e}");
    }

    #[test]
    fn lost_connection_is_unavailable_and_other_errors_are_backend() {
        let e = db(
            DatabaseErrorKind::ClosedConnection,
            "server closed the connection unexpectedly\n\tThis probably means",
            None,
        );
        match e {
            StoreError::Unavailable { message, .. } => {
                assert_eq!(
                    message,
                    "lost the connection to PostgreSQL: server closed the connection unexpectedly"
                );
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let e = db(
            DatabaseErrorKind::Unknown,
            "syntax error at or near \"x\"",
            None,
        );
        assert!(matches!(e, StoreError::Backend { .. }), "{e}");
        assert!(!e.is_transient());
        let e = to_store_error(DieselError::DeserializationError("bad".into()));
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    }

    #[test]
    fn connection_errors_read_as_one_sentence_without_secrets() {
        let raw = "connection to server at \"127.0.0.1\", port 5499 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n";
        let target = describe_target("postgres://bob:s3cret@127.0.0.1:5499/jobs?sslmode=prefer");
        assert_eq!(target, "bob@127.0.0.1:5499/jobs");
        let e = connect_error(&ConnectionError::BadConnection(raw.to_owned()), &target);
        let text = e.to_string();
        assert_eq!(
            text,
            "cannot open the store: cannot connect to PostgreSQL at bob@127.0.0.1:5499/jobs: \
             connection refused (is the server running and accepting TCP connections?)"
        );
        assert!(!text.contains('\n') && !text.contains("s3cret"));
        let e = connect_error(
            &ConnectionError::BadConnection(
                "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does not exist\n".to_owned(),
            ),
            "h",
        );
        assert!(
            e.to_string()
                .ends_with("at h: database \"nope\" does not exist"),
            "{e}"
        );
    }

    #[test]
    fn describe_target_handles_key_value_strings_and_bare_urls() {
        assert_eq!(
            describe_target("host=db port=6432 dbname=q user=u password=p"),
            "u@db:6432/q"
        );
        assert_eq!(describe_target("postgres:///test"), "localhost/test");
        assert_eq!(describe_target("postgresql://h/d"), "h/d");
    }
}
