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
    /// [`Error::InvalidTarget`] for an empty value, an empty `sqlite://` path, a URL
    /// scheme queuectl does not know, or a target that looks mistyped, with a hint:
    /// `memory` (without the colon), `sqlite:PATH`, leading or trailing spaces, a `file:`
    /// URI, a libpq `key=value` string. Nothing is created for a refused target.
    pub fn parse(s: &str) -> Result<StoreTarget> {
        // The message may quote the target back (a hint such as "did you mean …?"): it is
        // masked as the target is (found by fuzzing).
        let invalid = |message: &str| Error::InvalidTarget {
            target: mask_libpq_password(&redact_password(s)),
            message: mask_libpq_password(message),
        };
        if s.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if s == "memory:" || s == "memory://" {
            return Ok(StoreTarget::Memory);
        }
        if let Some(hint) = looks_mistyped(s) {
            return Err(invalid(&hint));
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

/// What is wrong with a target that looks like a mistake rather than a file name, with a
/// hint; `None` when it looks meant. Checked before anything is opened, so a refused target
/// creates no file.
fn looks_mistyped(s: &str) -> Option<String> {
    if s.trim() != s {
        return Some(format!(
            "it has leading or trailing spaces; did you mean '{}'?",
            s.trim()
        ));
    }
    if s.eq_ignore_ascii_case("memory") {
        return Some(
            "did you mean memory: (in-process)? Use ./memory for a file named memory".to_owned(),
        );
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("file:") {
        return Some(
            "SQLite file: URIs are not taken; give the file's path, or sqlite://PATH".to_owned(),
        );
    }
    for scheme in ["sqlite", "postgres", "postgresql", "memory"] {
        if let Some(rest) = lower.strip_prefix(scheme).and_then(|r| r.strip_prefix(':')) {
            if !rest.starts_with("//") {
                let example = if scheme == "sqlite" {
                    format!("sqlite://{}", &s[scheme.len() + 1..])
                } else if scheme == "memory" {
                    "memory:".to_owned()
                } else {
                    format!("{scheme}://user@host/database")
                };
                return Some(format!("'{scheme}:' needs '//': did you mean {example}?"));
            }
        }
    }
    // A libpq keyword/value string (`host=db user=app password=…`): would become a file
    // named after it, password included.
    const LIBPQ_KEYWORDS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "sslmode",
        "options",
        "service",
        "connect_timeout",
        "application_name",
        "passfile",
    ];
    let first = s.split_whitespace().next().unwrap_or_default();
    if let Some((key, _)) = first.split_once('=') {
        if LIBPQ_KEYWORDS.contains(&key.to_ascii_lowercase().as_str()) {
            return Some(
                "this looks like a libpq key=value string; give a URL instead: postgres://USER@HOST:PORT/DATABASE"
                    .to_owned(),
            );
        }
    }
    None
}

/// `host=db password=secret` → `host=db password=***`, for messages.
fn mask_libpq_password(s: &str) -> String {
    // Every `password=VALUE` (any case), wherever it stands, up to the next whitespace or
    // control character: a libpq string, or anything else carrying one (found by fuzzing:
    // `file:q.db<control bytes>password=…` was echoed whole).
    const KEY: &str = "password=";
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    while let Some(at) = lower.get(from..).and_then(|rest| rest.find(KEY)) {
        let value = from + at + KEY.len();
        out.push_str(s.get(from..value).unwrap_or_default());
        out.push_str("***");
        from = s
            .get(value..)
            .and_then(|rest| rest.find(|c: char| c.is_whitespace() || c.is_control()))
            .map_or(s.len(), |end| value + end);
    }
    out.push_str(s.get(from..).unwrap_or_default());
    // Shown, not obeyed: a control character in a target would reach the terminal raw.
    out.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The user-info ends at the last '@' before the path (a password may hold '@').
    let authority_end = base.find('/').unwrap_or(base.len());
    let base = match base[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}{}", &base[authority_end..]),
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{base}?{q}"),
        None => format!("{scheme}://{base}"),
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
    fn mistyped_targets_are_refused_with_a_hint_that_hides_nothing_needed() {
        for (bad, hint) in [
            ("memory", "memory:"),
            ("MEMORY", "memory:"),
            ("sqlite:relative.db", "sqlite://relative.db"),
            ("sqlite:/abs/q.db", "sqlite:///abs/q.db"),
            ("postgres:db", "postgres://"),
            (" q.db", "'q.db'"),
            ("q.db ", "'q.db'"),
            ("file:q.db?mode=ro", "path"),
            ("host=db.example user=app password=hunter2", "postgres://"),
            ("dbname=q", "postgres://"),
        ] {
            let err = StoreTarget::parse(bad).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert!(err.contains(hint), "{bad:?}: {err}");
            assert!(!err.contains("hunter2"), "{bad:?}: {err}");
        }
        for good in [
            "./memory",
            "memory.db",
            "a=b.db",
            "dir/file:name.db",
            "q.db",
            "memory:",
        ] {
            assert!(StoreTarget::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_password_anywhere_in_a_refused_target_is_masked_and_control_bytes_escaped() {
        for target in [
            "host=db PASSWORD=hunter2 user=me",
            "file:q.db\u{1d}\u{1f}\0password=hunter2\0",
            "$redidpassword=hunter2\n",
            "sqlite:q.db password=hunter2",
        ] {
            let err = StoreTarget::parse(target).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("=***"), "{err}");
            assert!(!err.chars().any(char::is_control), "{err:?}");
        }
    }

    #[test]
    fn passwords_are_masked_in_the_user_info_and_the_query() {
        for (url, masked) in [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:s@c@ret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            (
                "postgres://u@h/db?password=secret",
                "postgres://u@h/db?password=***",
            ),
            (
                "postgresql://h/db?sslmode=prefer&PASSWORD=secret&user=u",
                "postgresql://h/db?sslmode=prefer&PASSWORD=***&user=u",
            ),
            ("postgres://h/db", "postgres://h/db"),
        ] {
            assert_eq!(redact_password(url), masked);
            assert!(!StoreTarget::parse(url)
                .unwrap()
                .to_string()
                .contains("secret"));
        }
    }

    #[test]
    fn display_hides_passwords() {
        let t = StoreTarget::parse("postgres://bob:hunter2@db:5432/q").ok();
        assert_eq!(
            t.map(|t| t.to_string()).as_deref(),
            Some("postgres://bob:***@db:5432/q")
        );
    }
}
