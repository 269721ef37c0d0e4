//! `queuectl backup FILE`: a consistent copy of a live SQLite queue, taken while workers
//! keep running.
//!
//! The copy is made with SQLite's online backup API (`sqlite3_backup_*`, through
//! rusqlite), page by page, inside **one read transaction** on the source:
//!
//! - **Consistent.** The read transaction pins one snapshot of the WAL-mode file, so every
//!   page copied belongs to the same committed state, however many commits workers make
//!   meanwhile. (Without it SQLite ends its read between two steps, and a commit by another
//!   process in that gap makes the next step start the whole copy again; under a steady
//!   stream of jobs such a copy would never finish.)
//! - **Workers are not held up.** In WAL mode a reader never blocks a writer: claims,
//!   finishes and enqueues carry on while the copy is made. Only checkpoints cannot go past
//!   the pinned snapshot, so the WAL grows by what is written during the copy and is
//!   checkpointed afterwards.
//! - **Gentle.** The copy moves [`PAGES_PER_STEP`] pages at a time with a [`PAUSE`] between
//!   steps, leaving the disk and a core to the workers, and shows progress on stderr for a
//!   large file when stderr is a terminal.
//! - **All or nothing.** It is written to a hidden temp file next to FILE (created readable
//!   by its owner only: it holds every job's command and output), checked, synced and only
//!   then renamed to FILE. A failed or interrupted (Ctrl-C, SIGTERM) backup removes the temp
//!   file and leaves FILE as it was. FILE is never replaced unless `--force` is given.
//!
//! The copy is a complete queuectl store at the source's schema version: every job with its
//! output and history, and the settings. Two things differ, on purpose:
//! - the **worker registry is emptied**: the source's workers run on the source, not on the
//!   copy, so `status` on the copy shows `workers: 0`. Jobs that were `processing` at the
//!   snapshot stay `processing`, and a worker started on a restored copy recovers them to
//!   `pending` (uncharged) once their lease expires, as it would for any worker it does not
//!   know;
//! - the copy is a **single self-contained file** (rollback-journal mode, no `-wal` or
//!   `-shm` beside it); queuectl switches it back to WAL when it opens it.
//!
//! PostgreSQL has its own tool for this (`pg_dump`), and a `memory:` store has nothing
//! outside the process to copy: both are refused with exit 1 and the reason.

use std::fs::{self, File};
use std::io::{self, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use queuectl::StoreTarget;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::cli::args::BackupArgs;
use crate::cli::open_store::{open, target_text, without_password};
use crate::cli::output::print_lines;
use crate::cli::UsageError;

/// Pages copied per step: 4 MiB at SQLite's default page size.
const PAGES_PER_STEP: i32 = 1024;
/// Rest between two steps (a 1 GB queue spends about half a second resting).
const PAUSE: Duration = Duration::from_millis(2);
/// How long a busy or locked step is retried before the backup gives up.
const MAX_BUSY_WAIT: Duration = Duration::from_secs(30);
/// Files smaller than this copy in well under a second: no progress bar.
const PROGRESS_FROM_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn run(db: Option<&str>, a: &BackupArgs) -> anyhow::Result<()> {
    let source = match StoreTarget::parse(&target_text(db))? {
        StoreTarget::Sqlite(path) => path,
        StoreTarget::Postgres(_) => bail!(
            "queuectl backup copies SQLite stores; for PostgreSQL use pg_dump, e.g.\n  \
             pg_dump --format=custom --file={} '{}'\n\
             (give the password through PGPASSWORD or ~/.pgpass; pg_restore reads the dump back)",
            shell_word(&a.file.with_extension("dump").display().to_string()),
            without_password(&target_text(db))
        ),
        StoreTarget::Memory => bail!(
            "memory: lives only inside one queuectl process and is gone when it exits: \
             there is nothing to back up"
        ),
    };
    check_source(&source)?;
    let file = &a.file;
    check_destination(&source, file, a.force)?;
    // Brings the schema up to date (every command does), so the copy is at this
    // queuectl's version, and turns a file that is not a queue into a clear error.
    drop(open(db)?);

    let interrupted = on_interrupt()?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;

    let jobs = copy(&source, temp.path(), &interrupted).with_context(|| {
        format!(
            "backing up {} ({} was not written)",
            source.display(),
            file.display()
        )
    })?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", temp.path().display()))?;
    if a.force {
        temp.persist(file)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the copy to {}", file.display()))?;
    } else {
        temp.persist_noclobber(file).map_err(|e| e.error).with_context(|| {
            format!(
                "{} appeared while the backup ran; it was left as it is (pass --force to replace it)",
                file.display()
            )
        })?;
    }
    // The rename is durable once the directory is synced; failing to sync it (some
    // filesystems refuse) leaves a good copy, which is worth a warning, not an error.
    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not sync the directory");
    }
    print_lines([format!(
        "backed up {jobs} job{} to {}",
        if jobs == 1 { "" } else { "s" },
        file.display()
    )])
}

/// The source must be an existing file: backing up a mistyped path must not create an
/// empty queue and copy it.
fn check_source(source: &Path) -> anyhow::Result<()> {
    match fs::metadata(source) {
        Ok(m) if m.is_dir() => bail!("{} is a directory, not a queue", source.display()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("no queue at {}: nothing to back up", source.display())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", source.display())),
    }
}

/// FILE may not be the source or one of its side files (even with `--force`), may not be
/// a directory, must be in an existing directory, and exists only with `--force`.
fn check_destination(source: &Path, file: &Path, force: bool) -> anyhow::Result<()> {
    if names_source(source, file) {
        return Err(UsageError(format!(
            "{} is the queue being backed up (or one of its files); name another file",
            file.display()
        ))
        .into());
    }
    if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("directory {} does not exist", dir.display());
        }
    }
    match fs::symlink_metadata(file) {
        Ok(m) if m.is_dir() => bail!("{} is a directory", file.display()),
        Ok(_) if !force => bail!(
            "{} already exists; pass --force to replace it",
            file.display()
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking {}", file.display())),
    }
}

/// Whether `file` is the database at `source` or its `-wal`, `-shm` or `-journal` file,
/// under any spelling of the path.
fn names_source(source: &Path, file: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> {
        // The file may not exist yet: canonicalise its directory and keep its name.
        let name = p.file_name()?;
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(fs::canonicalize(dir).ok()?.join(name))
    };
    let (Some(source), Some(file)) = (
        fs::canonicalize(source).ok().or_else(|| canonical(source)),
        canonical(file),
    ) else {
        return false;
    };
    let file = fs::canonicalize(&file).unwrap_or(file);
    ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
        let mut side = source.clone().into_os_string();
        side.push(suffix);
        Path::new(&side) == file
    })
}

/// SIGINT and SIGTERM set the returned flag, which the copy checks between steps; a second
/// signal exits at once (FILE is still untouched then; only the temp file may remain).
fn on_interrupt() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&flag))
            .context("installing the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("installing the signal handler")?;
    }
    Ok(flag)
}

/// Copies the database at `source` into the fresh file `dest` and prepares the copy;
/// returns the number of jobs it holds.
fn copy(source: &Path, dest: &Path, interrupted: &AtomicBool) -> anyhow::Result<u64> {
    let src = Connection::open_with_flags(
        sqlite_path(source),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("opening the queue")?;
    src.busy_timeout(Duration::from_secs(5))?;
    // Pin one snapshot for the whole copy; the job count is read from the same snapshot.
    src.execute_batch("BEGIN DEFERRED")?;
    let jobs: i64 = src
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .context("reading the queue")?;
    let page_size: i64 = src.query_row("PRAGMA page_size", [], |r| r.get(0))?;

    let mut dst = Connection::open_with_flags(
        sqlite_path(dest),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("opening the temp file")?;
    // The temp file is thrown away if anything fails, so it needs no journal while the
    // pages go in; it is synced as a whole before the rename.
    dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    let mut bar = ProgressBar::hidden();
    {
        let backup = Backup::new(&src, &mut dst)?;
        let mut busy_since: Option<Instant> = None;
        loop {
            if interrupted.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            match backup.step(PAGES_PER_STEP)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > MAX_BUSY_WAIT {
                        bail!(
                            "the queue stayed locked for over {} s",
                            MAX_BUSY_WAIT.as_secs()
                        );
                    }
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
                // StepResult::More, and whatever a later rusqlite may add.
                _ => busy_since = None,
            }
            let progress = backup.progress();
            let page = u64::try_from(page_size).unwrap_or(4096);
            let total = u64::try_from(progress.pagecount).unwrap_or(0) * page;
            let done = total.saturating_sub(u64::try_from(progress.remaining).unwrap_or(0) * page);
            if bar.is_hidden() && total >= PROGRESS_FROM_BYTES && io::stderr().is_terminal() {
                bar = progress_bar(total);
            }
            bar.set_position(done);
            thread::sleep(PAUSE);
        }
    }
    src.execute_batch("COMMIT")?;
    drop(src);

    // The copy's own registry starts empty (see the module docs), and the copy becomes one
    // self-contained file.
    dst.execute_batch(
        "PRAGMA synchronous = FULL;\n\
         PRAGMA journal_mode = DELETE;\n\
         DELETE FROM workers;",
    )
    .context("clearing the copy's worker registry")?;
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .context("checking the copy")?;
    if check != "ok" {
        bail!("the copy failed SQLite's integrity check: {check}");
    }
    dst.close()
        .map_err(|(_, e)| e)
        .context("closing the copy")?;
    bar.finish_and_clear();
    Ok(u64::try_from(jobs).unwrap_or(0))
}

/// SQLite may read a name starting with `file:` as a URI; `./` keeps it a plain file name
/// (as the SQLite store does).
fn sqlite_path(path: &Path) -> PathBuf {
    if path.as_os_str().to_string_lossy().starts_with("file:") {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    }
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("backing up {bar:40} {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_of_the_source_are_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        fs::write(&db, b"").unwrap();
        for name in ["q.db", "q.db-wal", "q.db-shm", "q.db-journal"] {
            assert!(names_source(&db, &dir.path().join(name)), "{name}");
        }
        let other = dir.path().join("sub/../q.db");
        fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(names_source(&db, &other));
        assert!(!names_source(&db, &dir.path().join("q.db.bak")));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("backup.dump"), "backup.dump");
        assert_eq!(shell_word("my backup.dump"), "'my backup.dump'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
