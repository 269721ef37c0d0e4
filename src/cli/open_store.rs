//! `--db` / `$QUEUECTL_DB` / `$QUEUECTL_DB_PATH` → an opened, migrated store.
//!
//! The store's generic parameter is stripped here, once: every command works on a
//! [`Queue`], the library's `Scheduler<Arc<dyn JobStore>>`.

use std::path::PathBuf;

use anyhow::Context as _;
use queuectl::{Queue, Scheduler, StoreTarget};

/// The env var accepted as an alias of `$QUEUECTL_DB` (clap's `env` takes one name).
const DB_ALIAS_ENV: &str = "QUEUECTL_DB_PATH";
/// Where the queue lives when nothing says otherwise: relative to the cwd.
const DEFAULT_DB: &str = "queuectl.db";

/// The scheduler every command works through.
pub(crate) type Sched = Queue;

/// The target text: `--db` (or `$QUEUECTL_DB`, which clap folds into it), else
/// `$QUEUECTL_DB_PATH`, else `./queuectl.db`. Empty values count as unset.
pub(crate) fn target_text(db_flag: Option<&str>) -> String {
    db_flag
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| std::env::var(DB_ALIAS_ENV).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_DB.to_owned())
}

/// Parses the target and opens (creating and migrating) the store behind it.
pub(crate) fn open(db_flag: Option<&str>) -> anyhow::Result<(Sched, String)> {
    let target = StoreTarget::parse(&target_text(db_flag))?;
    open_target(&target)
}

/// [`open`] for a command that only reads (`status`, `list`, `show`, `logs`, `dlq list`,
/// `config get|list`): one that finds no SQLite file at its path still creates it, but says
/// so on stderr, so a mistyped `--db` is noticed rather than answered with an empty queue.
pub(crate) fn open_to_read(db_flag: Option<&str>) -> anyhow::Result<(Sched, String)> {
    let target = StoreTarget::parse(&target_text(db_flag))?;
    let created = match &target {
        StoreTarget::Sqlite(path) => (!path.exists()).then(|| path.clone()),
        StoreTarget::Postgres(_) | StoreTarget::Memory => None,
    };
    let opened = open_target(&target)?;
    if let Some(path) = created {
        eprintln!("created a new empty queue at {}", path.display());
    }
    Ok(opened)
}

/// The SQLite file the target names, if it names one.
pub(crate) fn sqlite_path(db_flag: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
    Ok(match StoreTarget::parse(&target_text(db_flag))? {
        StoreTarget::Sqlite(path) => Some(path),
        StoreTarget::Postgres(_) | StoreTarget::Memory => None,
    })
}

fn open_target(target: &StoreTarget) -> anyhow::Result<(Sched, String)> {
    let store = target
        .open()
        .with_context(|| format!("opening the store at {target}"))?;
    if let StoreTarget::Sqlite(path) = target {
        warn_if_readable_by_others(path);
    }
    Ok((Scheduler::new(store), target.to_string()))
}

/// Jobs' commands and output may hold secrets: say so when other users can read the file
/// (stores created by queuectl are 0600; older ones, or ones copied around, may not be).
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            tracing::warn!(
                "{} is readable by other users (mode {mode:o}); jobs' commands and output may \
                 hold secrets: chmod 600 {} (and its -wal and -shm files)",
                path.display(),
                path.display()
            );
        }
    }
}

/// The target text with any password removed (not masked): what a job gets as
/// `QUEUECTL_DB`, so its own `queuectl` calls reach the same queue while credentials come
/// from libpq's usual sources (`PGPASSWORD`, `~/.pgpass`). Anything else is kept as given.
#[must_use]
pub(crate) fn without_password(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority_end = base.find('/').unwrap_or(base.len());
    let base = match base[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}@{host}{}", &base[authority_end..])
        }
        None => base.to_owned(),
    };
    let query: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| {
            !p.split_once('=')
                .is_some_and(|(k, _)| k.eq_ignore_ascii_case("password"))
        })
        .collect();
    if query.is_empty() {
        format!("{scheme}://{base}")
    } else {
        format!("{scheme}://{base}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_get_the_target_without_its_password() {
        for (given, for_jobs) in [
            ("q.db", "q.db"),
            ("sqlite://sub/q.db", "sqlite://sub/q.db"),
            ("memory:", "memory:"),
            ("postgres://u:secret@h:5432/db", "postgres://u@h:5432/db"),
            (
                "postgres://u@h/db?password=secret&sslmode=prefer",
                "postgres://u@h/db?sslmode=prefer",
            ),
            ("postgresql://h/db?password=secret", "postgresql://h/db"),
            (
                "postgres://u@h/db?options=-csearch_path%3Dx",
                "postgres://u@h/db?options=-csearch_path%3Dx",
            ),
        ] {
            assert_eq!(without_password(given), for_jobs, "{given}");
        }
    }
}
