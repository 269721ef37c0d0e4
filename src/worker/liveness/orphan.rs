//! Finding and killing the job processes a dead worker left behind.
//!
//! The store's worker registry knows a worker's host and pid but not its jobs' process
//! groups, and its API is fixed. Only a worker on the *same host* can kill those groups
//! anyway, so the groups are recorded on the host itself: one directory per worker under
//! a per-user runtime directory, one empty file per running job named by its process group
//! id (the pid of the job's `sh`, which leads its own group). A file is created right after
//! the spawn and removed when the job's shell has exited.
//!
//! ```text
//! $TMPDIR/queuectl-<uid>/groups/<worker id>/<pgid>
//! ```
//!
//! When recovery finds a dead worker on its host, it sends SIGKILL to every group listed for
//! it, then removes the directory. Limits, all deliberate:
//! - a worker killed between spawning a job and writing its file leaves that one group
//!   behind (a window of one `open` call);
//! - processes a job moved out of its group (`setsid`, a daemonising tool) are not found;
//! - the directory is trusted only if it belongs to the current user and others cannot
//!   write to it; otherwise tracking is disabled with a warning, so another user cannot make
//!   us signal their choice of process groups.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// The per-host record of running jobs' process groups, keyed by worker id.
#[derive(Debug, Clone)]
pub(crate) struct GroupRegistry {
    root: PathBuf,
}

impl GroupRegistry {
    /// The registry every worker of this user on this host shares by default.
    pub(crate) fn default_root() -> PathBuf {
        std::env::temp_dir()
            .join(format!("queuectl-{}", nix::unistd::getuid()))
            .join("groups")
    }

    pub(crate) fn new(root: PathBuf) -> Self {
        GroupRegistry { root }
    }

    fn worker_dir(&self, worker_id: &str) -> PathBuf {
        let name: String = worker_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join(name)
    }

    /// Creates the root (and its parent) private to this user, and checks an existing one.
    pub(crate) fn prepare(&self) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&self.root)?;
        for dir in [Some(self.root.as_path()), self.root.parent()]
            .into_iter()
            .flatten()
        {
            check_private(dir)?;
        }
        Ok(())
    }

    /// Records that `worker_id` runs a job in process group `pgid`.
    pub(crate) fn record(&self, worker_id: &str, pgid: i32) -> io::Result<PathBuf> {
        let dir = self.worker_dir(worker_id);
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)?;
        let file = dir.join(pgid.to_string());
        fs::File::create(&file)?;
        Ok(file)
    }

    /// The process groups recorded for `worker_id`.
    pub(crate) fn groups_of(&self, worker_id: &str) -> Vec<i32> {
        let Ok(entries) = fs::read_dir(self.worker_dir(worker_id)) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            // 0 and 1 would mean "our own group" and "every process" to killpg.
            .filter(|pgid| *pgid > 1)
            .collect()
    }

    /// Sends SIGKILL to every group recorded for `worker_id` that still exists; returns
    /// the groups signalled. Forgets the worker afterwards.
    pub(crate) fn kill_orphans(&self, worker_id: &str) -> Vec<i32> {
        let mut killed = Vec::new();
        for pgid in self.groups_of(worker_id) {
            match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
                Ok(()) => killed.push(pgid),
                Err(Errno::ESRCH) => {}
                Err(e) => tracing::warn!(pgid, error = %e, "cannot kill orphaned job group"),
            }
        }
        self.forget(worker_id);
        killed
    }

    /// Removes everything recorded for `worker_id`.
    pub(crate) fn forget(&self, worker_id: &str) {
        let dir = self.worker_dir(worker_id);
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot remove group records");
            }
        }
    }
}

fn check_private(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    let uid = nix::unistd::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory private to uid {uid}; not recording job process groups",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Whether process `pid` on this host is still running (a zombie counts as gone).
///
/// Errs towards "alive": a worker wrongly thought dead would have its jobs taken away.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    if raw <= 0 {
        return true;
    }
    match kill(Pid::from_raw(raw), None) {
        Err(Errno::ESRCH) => false,
        Ok(()) => !is_zombie(raw),
        // EPERM: it exists but belongs to someone else.
        Err(_) => true,
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat`, field 22):
/// immune to wall-clock steps, and different for a later process that reuses the pid.
/// `None` where it cannot be read (no /proc, a process that is gone).
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may contain ") "): the state is
    // field 3, so the start time (field 22) is the 20th of the rest.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A killed process stays a zombie until its parent reaps it; `kill(pid, 0)` still succeeds
/// on it. Linux tells us through /proc; elsewhere we wait for the reap (or the heartbeat
/// timeout).
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain ") ".
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_some_and(|state| matches!(state, 'Z' | 'X'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_and_kills_a_group_then_forgets_the_worker() {
        let dir = tempfile::tempdir().unwrap();
        let reg = GroupRegistry::new(dir.path().join("groups"));
        reg.prepare().unwrap();
        let mut child = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child.arg("30").spawn().unwrap();
        let pgid = i32::try_from(child.id()).unwrap();
        reg.record("host:1:abc", pgid).unwrap();
        assert_eq!(reg.groups_of("host:1:abc"), vec![pgid]);
        assert_eq!(reg.kill_orphans("host:1:abc"), vec![pgid]);
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert!(reg.groups_of("host:1:abc").is_empty());
    }

    #[test]
    fn own_pid_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn start_ticks_tell_a_process_from_a_later_one() {
        let me = start_ticks(std::process::id()).unwrap();
        assert_eq!(start_ticks(std::process::id()), Some(me));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let theirs = start_ticks(child.id()).unwrap();
        assert!(theirs >= me);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(start_ticks(child.id()), None);
    }

    #[test]
    fn an_unreaped_dead_child_counts_as_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid_alive(pid) {
            assert!(std::time::Instant::now() < deadline, "zombie not detected");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.wait().unwrap();
    }

    #[test]
    fn a_shared_writable_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("groups");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(GroupRegistry::new(root).prepare().is_err());
    }
}
