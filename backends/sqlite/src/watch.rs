//! Waking idle workers on other processes' commits without polling: inotify on the store's
//! directory, for writes to the database file and its write-ahead log.
//!
//! In WAL mode every commit appends frames to `<db>-wal` with `write(2)` (a checkpoint
//! writes `<db>` itself); readers only touch the memory-mapped `-shm`, which raises no
//! event. So a write to either file, from any process on this host, is the signal that a
//! commit may have made a job claimable, and an idle pool's wait costs no query and no
//! CPU. The directory is watched, not the files: the WAL is created by the first writer
//! and deleted by the last connection to close, so its inode comes and goes.
//!
//! Events can arrive a moment before the commit's index update is visible; the worker's
//! answer to a wake-up is a claim, which takes the write lock and so waits for that commit
//! to finish. Extra events (this process's own commits, checkpoints, a heartbeat) cost at
//! most one empty claim each on an idle pool. Where inotify is unavailable (another OS, the
//! per-user watch limit reached) the store reports [`queuectl_store::Wake::Unsupported`]
//! and workers poll as before; a network filesystem, which SQLite does not support anyway,
//! would raise no events for other hosts' writes, which the poll still catches.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use parking_lot::Mutex;

/// The inotify watch of one store's directory and the count of relevant events read.
pub(crate) struct Watch {
    /// Read by one waiting thread at a time; others wait for the lock or the counter.
    inotify: Mutex<Inotify>,
    /// The file names that matter: the database and its WAL.
    names: [OsString; 2],
    /// Bumped for every batch of relevant events read, by whichever thread read them.
    seen: AtomicU64,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("names", &self.names)
            .field("seen", &self.seen.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Watches the directory of the database at `path`; `None` if inotify cannot (the
    /// caller then falls back to polling).
    pub(crate) fn new(path: &Path) -> Option<Watch> {
        let name = path.file_name()?.to_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        inotify
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
            )
            .ok()?;
        let mut wal = name.clone();
        wal.push("-wal");
        Some(Watch {
            inotify: Mutex::new(inotify),
            names: [name, wal],
            seen: AtomicU64::new(0),
        })
    }

    /// Blocks until a write to the database or its WAL is seen (`true`) or `timeout`
    /// passes (`false`). Any number of threads may wait at once: one reads the events,
    /// and the others see the counter it bumps.
    pub(crate) fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        let start = self.seen.load(Ordering::Acquire);
        let deadline = Instant::now() + timeout;
        loop {
            if self.seen.load(Ordering::Acquire) != start {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let Some(inotify) = self.inotify.try_lock_for(left) else {
                continue;
            };
            if self.seen.load(Ordering::Acquire) != start {
                return Ok(true);
            }
            if self.read_until(&inotify, deadline)? {
                self.seen.fetch_add(1, Ordering::AcqRel);
                return Ok(true);
            }
        }
    }

    /// Polls the inotify descriptor until a relevant event or `deadline`; reads every
    /// queued event before returning, so one burst of writes is one wake-up.
    fn read_until(&self, inotify: &Inotify, deadline: Instant) -> std::io::Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Round up: a zero timeout would spin through the last millisecond.
            let ms = u16::try_from(left.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let mut relevant = false;
            loop {
                match inotify.read_events() {
                    Ok(events) => {
                        relevant |= events
                            .iter()
                            .any(|e| e.name.as_ref().is_some_and(|n| self.names.contains(n)));
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if relevant {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_write_to_the_wal_wakes_and_other_files_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("q.db");
        let watch = Watch::new(&db).expect("inotify");
        assert!(!watch.wait(Duration::from_millis(20)).expect("wait"));

        std::fs::write(dir.path().join("other.txt"), b"x").expect("write");
        assert!(!watch.wait(Duration::from_millis(20)).expect("wait"));

        let mut wal = std::fs::File::create(dir.path().join("q.db-wal")).expect("create");
        wal.write_all(b"frame").expect("write");
        assert!(watch.wait(Duration::from_secs(5)).expect("wait"));
        // The burst was read whole: nothing left to wake on.
        assert!(!watch.wait(Duration::from_millis(20)).expect("wait"));
    }
}
