//! `--db` / `$QUEUECTL_DB` / `$QUEUECTL_DB_PATH` → an opened, migrated store.
//!
//! The store's generic parameter is stripped here, once: every command works on a
//! `Scheduler<Arc<dyn JobStore>>`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use queuectl::{open_store, JobStore, Scheduler, StoreTarget};

/// The env var accepted as an alias of `$QUEUECTL_DB` (clap's `env` takes one name).
const DB_ALIAS_ENV: &str = "QUEUECTL_DB_PATH";
/// Where the queue lives when nothing says otherwise: relative to the cwd.
const DEFAULT_DB: &str = "queuectl.db";

/// The scheduler every command works through.
pub(crate) type Sched = Scheduler<Arc<dyn JobStore>>;

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
    let store = open_store(target)
        .with_context(|| format!("opening the store at {}", target.describe()))?;
    if let StoreTarget::Sqlite(path) = target {
        warn_if_readable_by_others(path);
    }
    Ok((Scheduler::new(store), target.describe()))
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
