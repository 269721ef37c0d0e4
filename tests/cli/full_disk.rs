//! A full disk and a read-only file system under the real binary (issue #12, item 10), on
//! a small tmpfs. Mounting needs root: elsewhere each test says why it skipped and passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{run, wait_until, Env};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"256k"`) at `dir`, or says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("mounting a tmpfs needs root".to_owned());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Fills the file system to its last byte.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

macro_rules! tmpfs_or_skip {
    ($env:expr, $size:expr) => {
        match Tmpfs::mount(&$env.dir().join("mnt"), $size) {
            Ok(fs) => fs,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

#[test]
fn init_on_a_full_disk_says_so_and_leaves_no_file() {
    let env = Env::new();
    let fs = tmpfs_or_skip!(env, "256k");
    fs.fill();
    let db = fs.dir.join("q.db");
    let mut cmd = env.bare();
    cmd.arg("--db").arg(&db).arg("init");
    let out = run(cmd).code(1);
    assert!(out.stderr.contains("the disk is full"), "{}", out.stderr);
    let left: Vec<_> = std::fs::read_dir(&fs.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "filler")
        .collect();
    assert!(left.is_empty(), "half-made files left: {left:?}");
}

#[test]
fn a_read_only_file_system_is_named() {
    let env = Env::new();
    let fs = tmpfs_or_skip!(env, "4m");
    let db = fs.dir.join("q.db");
    let with_db = |args: &[&str]| {
        let mut cmd = env.bare();
        cmd.arg("--db").arg(&db).args(args);
        run(cmd)
    };
    with_db(&["init"]).ok();
    fs.remount_read_only();
    let out = with_db(&["enqueue", r#"{"command":"true"}"#]).code(1);
    assert!(out.stderr.contains("read-only"), "{}", out.stderr);
    // A read may work (SQLite reads a WAL database on a read-only file system only while
    // its -shm file is there) or not; when it fails, it says why.
    let out = with_db(&["list"]);
    assert!(out.code == 0 || out.stderr.contains("read-only"), "{out:?}");
    let mut cmd = env.bare();
    cmd.arg("--db").arg(fs.dir.join("new.db")).arg("init");
    let out = run(cmd).code(1);
    assert!(out.stderr.contains("read-only"), "{}", out.stderr);
}

/// Item 1, the audit's repro: a 3 MB file system fills while 40 jobs print 400 KB each
/// under a 2 s lease; once it has room again, every result the worker could not record is
/// recorded (nothing stays `processing`), without restarting the worker.
#[test]
fn a_worker_records_its_results_once_a_full_disk_has_room_again() {
    let env = Env::new();
    let fs = tmpfs_or_skip!(env, "3m");
    let db = fs.dir.join("q.db");
    let cmd = |args: &[&str]| {
        let mut cmd = env.bare();
        cmd.arg("--db").arg(&db).args(args);
        cmd
    };
    run(cmd(&["init"])).ok();
    run(cmd(&["config", "set", "lease-seconds", "2"])).ok();
    let file = env.dir().join("jobs.jsonl");
    let line = r#"{"command":"head -c 400000 /dev/zero | tr '\\000' x"}"#;
    std::fs::write(&file, format!("{line}\n").repeat(40)).unwrap();
    run(cmd(&["enqueue", "--file", file.to_str().unwrap()])).ok();
    let mut worker = env.spawn(cmd(&["worker", "start", "--count", "2"]));
    wait_until(
        Duration::from_secs(60),
        "the disk fills under the worker",
        || worker.stderr().contains("cannot record the job's result"),
    );
    let status = Command::new("mount")
        .args(["-o", "remount,size=200m"])
        .arg(&fs.dir)
        .status()
        .unwrap();
    assert!(status.success());
    let counts = || {
        let s = run(cmd(&["status", "--json"])).json();
        (s["processing"].as_u64(), s["completed"].as_u64())
    };
    wait_until(Duration::from_secs(60), "every job is completed", || {
        counts() == (Some(0), Some(40))
    });
    assert!(worker.is_running());
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    worker.wait(Duration::from_secs(30)).code(0);
}
