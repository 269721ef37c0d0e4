//! Which store a target string names (the `--db` value of the CLI, the argument of
//! [`Queue::open`](crate::Queue::open)), and opening it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use queuectl_store::JobStore;
use queuectl_store_memory::MemoryStore;
use queuectl_store_sqlite::SqliteStore;

use crate::{Error, Result};

/// Where a queue lives: the parsed form of a target string.
///
/// | target | store |
/// |---|---|
/// | `PATH` or `sqlite://PATH` | [`SqliteStore`] in that file, created on first use; relative to the current directory unless absolute |
/// | `postgres://…` or `postgresql://…` | `PostgresStore` (feature `postgres`) |
/// | `memory:` | [`MemoryStore`]: in this process only, gone when it exits |
///
/// [`Queue::open`](crate::Queue::open) parses and opens in one call; parse first to
/// validate a configuration value early, or to show it in logs: its [`Display`](fmt::Display)
/// form hides a URL's password.
///
/// ```
/// use queuectl::StoreTarget;
///
/// let target: StoreTarget = "postgres://app:secret@db.internal/jobs".parse()?;
/// assert_eq!(target.to_string(), "postgres://app:***@db.internal/jobs");
/// assert_eq!("jobs.db".parse::<StoreTarget>()?, StoreTarget::Sqlite("jobs.db".into()));
/// assert!("mysql://db/jobs".parse::<StoreTarget>().is_err());
/// # Ok::<(), queuectl::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreTarget {
    /// An embedded SQLite file (a path, or `sqlite://PATH`; relative to the cwd unless
    /// absolute).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://…` or `postgresql://…`).
    Postgres(String),
    /// In-process memory (`memory:`): gone when the process exits.
    Memory,
}

impl StoreTarget {
    /// Parses a target (also available as [`str::parse`]).
    ///
    /// # Errors
    /// [`Error::InvalidTarget`] for an empty value, an empty `sqlite://` path, or a URL
    /// scheme queuectl does not know.
    pub fn parse(s: &str) -> Result<StoreTarget> {
        let invalid = |message: &str| Error::InvalidTarget {
            target: s.to_owned(),
            message: message.to_owned(),
        };
        if s.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if s == "memory:" || s == "memory://" {
            return Ok(StoreTarget::Memory);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreTarget::Postgres(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid("sqlite:// needs a file path"));
            }
            return Ok(StoreTarget::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(invalid(&format!(
                    "unknown scheme '{scheme}://' (use a file path, sqlite://PATH, postgres://…, or memory:)"
                )));
            }
        }
        Ok(StoreTarget::Sqlite(PathBuf::from(s)))
    }

    /// Opens (creating and migrating on first use) the store this target names.
    ///
    /// # Errors
    /// The store's `Unavailable` or `Migration` errors; [`Error::InvalidTarget`] for a
    /// PostgreSQL target in a build without the `postgres` feature.
    pub fn open(&self) -> Result<Arc<dyn JobStore>> {
        open_store(self)
    }
}

impl FromStr for StoreTarget {
    type Err = Error;

    fn from_str(s: &str) -> Result<StoreTarget> {
        StoreTarget::parse(s)
    }
}

/// The target for messages: a SQLite path as given, a URL without its password, or
/// `memory:`.
impl fmt::Display for StoreTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreTarget::Sqlite(p) => write!(f, "{}", p.display()),
            StoreTarget::Postgres(url) => f.write_str(&redact_password(url)),
            StoreTarget::Memory => f.write_str("memory:"),
        }
    }
}

fn open_store(target: &StoreTarget) -> Result<Arc<dyn JobStore>> {
    Ok(match target {
        StoreTarget::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        StoreTarget::Memory => Arc::new(MemoryStore::new()),
        #[cfg(feature = "postgres")]
        StoreTarget::Postgres(url) => {
            Arc::new(queuectl_store_postgres::PostgresStore::connect(url)?)
        }
        #[cfg(not(feature = "postgres"))]
        StoreTarget::Postgres(url) => {
            return Err(Error::InvalidTarget {
                target: redact_password(url),
                message: "this build of queuectl has no PostgreSQL support (feature `postgres`)"
                    .to_owned(),
            })
        }
    })
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_by_scheme() {
        assert_eq!(
            StoreTarget::parse("memory:").ok(),
            Some(StoreTarget::Memory)
        );
        assert_eq!(
            StoreTarget::parse("jobs.db").ok(),
            Some(StoreTarget::Sqlite("jobs.db".into()))
        );
        assert_eq!(
            StoreTarget::parse("sqlite://rel/q.db").ok(),
            Some(StoreTarget::Sqlite("rel/q.db".into()))
        );
        assert_eq!(
            StoreTarget::parse("sqlite:///abs/q.db").ok(),
            Some(StoreTarget::Sqlite("/abs/q.db".into()))
        );
        for url in ["postgres://u@h/db", "postgresql://h/db"] {
            assert_eq!(
                StoreTarget::parse(url).ok(),
                Some(StoreTarget::Postgres(url.into()))
            );
        }
    }

    #[test]
    fn bad_targets_are_rejected_with_a_reason() {
        for bad in ["", "  ", "sqlite://", "mysql://h/db"] {
            assert!(StoreTarget::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn describe_hides_passwords() {
        let t = StoreTarget::parse("postgres://bob:hunter2@db:5432/q").ok();
        assert_eq!(
            t.map(|t| t.to_string()).as_deref(),
            Some("postgres://bob:***@db:5432/q")
        );
    }
}
