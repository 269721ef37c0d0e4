//! Worker pools in real separate processes on one SQLite file: stop signals aimed at the
//! worker's whole process group (as a terminal's Ctrl-C is), and a worker killed with
//! SIGKILL while its job runs.
//!
//! The worker processes are this test binary re-executed on the ignored test
//! `worker_process_entry` with `QUEUECTL_WORKER_PROCESS` set.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use queuectl::prelude::*;
use queuectl::{live_workers, Shutdown, WorkerPool};
use queuectl::{EnqueueRequest, JobId, JobState, Scheduler};
use queuectl_store_sqlite::SqliteStore;

use super::{pid_gone, read_pid, wait_until};

const CHILD_ENV: &str = "QUEUECTL_WORKER_PROCESS";
const HOST: &str = "process-test-host";

/// Kills and reaps the worker process when the test ends, pass or fail.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Worker {
    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.0.id()).unwrap())
    }

    /// Waits (bounded) for the worker to exit; returns whether it exited with status 0.
    fn wait_exit(&mut self) -> bool {
        let mut status = None;
        wait_until("the worker process exits", || {
            status = self.0.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap().success()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    scheduler: Scheduler<Arc<SqliteStore>>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("q.db")).unwrap();
        Fixture {
            scheduler: Scheduler::new(Arc::new(store)),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn enqueue(&self, command: String, priority: i32) -> JobId {
        self.scheduler
            .enqueue(EnqueueRequest {
                command,
                priority,
                ..EnqueueRequest::default()
            })
            .unwrap()
    }

    fn job(&self, id: &JobId) -> queuectl::Job {
        self.scheduler.store().get(id).unwrap()
    }

    /// Starts a worker process leading its own process group, as a shell starts a
    /// foreground job; its lease is long so only pid checks can recover its jobs in time.
    fn spawn_worker(&self) -> Worker {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "worker::process::worker_process_entry",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!(
                    "{}\n{}",
                    self.path("q.db").display(),
                    self.path("groups").display()
                ),
            )
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Worker(child)
    }

    /// A pool in this process, sharing the host id and group directory of the workers.
    fn pool(&self) -> WorkerPool<Arc<SqliteStore>> {
        WorkerPool::builder(self.scheduler.clone())
            .poll_interval(Duration::from_millis(20))
            .host_id(HOST)
            .group_dir(self.path("groups"))
            .build()
    }
}

/// One worker process: a pool with signal handlers, until stopped.
#[test]
#[ignore = "entry point of the worker processes spawned by the tests in this module"]
fn worker_process_entry() {
    let spec = std::env::var(CHILD_ENV).expect("run only as a spawned worker");
    let mut lines = spec.lines();
    let (db, groups) = (lines.next().unwrap(), lines.next().unwrap());
    let scheduler = Scheduler::new(Arc::new(SqliteStore::open(db).unwrap()));
    let shutdown = Shutdown::new();
    shutdown.install_signal_handlers().unwrap();
    WorkerPool::builder(scheduler)
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_secs(600))
        .host_id(HOST)
        .group_dir(groups)
        .build()
        .run(&shutdown)
        .unwrap();
}

fn wait_for_file(path: &Path) {
    wait_until("the job started", || path.exists());
}

#[test]
fn a_signal_to_the_workers_group_finishes_the_running_job_and_exits() {
    let f = Fixture::new();
    let (started, go) = (f.path("started"), f.path("go"));
    let first = f.enqueue(
        format!(
            "touch {}; while [ ! -f {} ]; do sleep 0.01; done; echo done",
            started.display(),
            go.display()
        ),
        10,
    );
    let second = f.enqueue("true".to_owned(), 0);
    let mut worker = f.spawn_worker();
    wait_for_file(&started);
    // Like Ctrl-C in a terminal: the whole foreground group gets it. The job, in its own
    // group, must not; if it did, its shell would die and the job would fail.
    killpg(worker.pid(), Signal::SIGINT).unwrap();
    std::fs::write(&go, "").unwrap();
    assert!(worker.wait_exit(), "the worker exits 0");
    let done = f.job(&first);
    assert_eq!((done.state, done.attempts), (JobState::Completed, 1));
    assert_eq!(f.job(&second).state, JobState::Pending);
    assert!(f.scheduler.store().list_workers().unwrap().is_empty());
}

#[test]
fn a_second_signal_stops_at_once_and_releases_the_job_uncharged() {
    let f = Fixture::new();
    let pidfile = f.path("pid");
    let id = f.enqueue(format!("echo $$ > {}; exec sleep 30", pidfile.display()), 0);
    let mut worker = f.spawn_worker();
    let job_pid = read_pid(&pidfile);
    // The first SIGTERM asks for a graceful stop, which waits for the 30 s job; keep
    // signalling until one arrives as a second signal (two sent at once may coalesce).
    let mut exited = None;
    wait_until("the worker stops at once", || {
        kill(worker.pid(), Signal::SIGTERM).unwrap();
        for _ in 0..20 {
            if let Some(status) = worker.0.try_wait().unwrap() {
                exited = Some(status);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    assert!(exited.unwrap().success());
    let job = f.job(&id);
    assert_eq!(
        (job.state, job.attempts, job.interrupts),
        (JobState::Pending, 0, 0)
    );
    wait_until("the job process is gone", || pid_gone(job_pid));
}

#[test]
fn a_killed_worker_is_recovered_by_a_peer_on_its_host_and_its_job_group_killed() {
    let f = Fixture::new();
    let pidfile = f.path("pid");
    // The first run parks in `sleep`; the rerun after recovery finishes at once.
    let id = f.enqueue(
        format!(
            "if [ -f {p} ]; then echo rerun; else echo $$ > {p}; exec sleep 30; fi",
            p = pidfile.display()
        ),
        0,
    );
    let mut worker = f.spawn_worker();
    let orphan = read_pid(&pidfile);
    let dead_id = f.job(&id).worker_id.unwrap();
    // The worker records the group right after the spawn, racing the job's first line.
    let record = f.path("groups").join(&dead_id).join(orphan.to_string());
    wait_until("the worker recorded the job's group", || record.exists());
    kill(worker.pid(), Signal::SIGKILL).unwrap();
    worker.0.wait().unwrap();
    assert!(
        !pid_gone(orphan),
        "the job outlives its worker until recovery"
    );

    let shutdown = Shutdown::new();
    let pool = f.pool();
    let handle = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || pool.run(&shutdown).unwrap())
    };
    wait_until("the orphaned job group is killed", || pid_gone(orphan));
    wait_until("the job ran again", || {
        f.job(&id).state == JobState::Completed
    });
    let job = f.job(&id);
    assert_eq!((job.attempts, job.interrupts), (1, 1));
    let record = f.scheduler.store().get_record(&id).unwrap();
    assert_eq!(record.output.unwrap().stdout, "rerun\n");
    let workers = f.scheduler.store().list_workers().unwrap();
    assert!(
        workers.iter().all(|w| w.id != dead_id),
        "the dead worker is deregistered"
    );
    shutdown.request_graceful();
    wait_until("the pool exits", || handle.is_finished());
    handle.join().unwrap();
}

#[test]
fn live_workers_skips_a_dead_entry_on_this_host() {
    let f = Fixture::new();
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let now = f.scheduler.now();
    let entry = |id: &str, pid: u32| queuectl::WorkerInfo {
        id: id.to_owned(),
        host: queuectl::default_host_id(),
        pid,
        slots: 3,
        queues: Vec::new(),
        started_at: now,
        heartbeat_at: now,
        stop_requested: false,
    };
    let store = f.scheduler.store();
    store.register_worker(&entry("dead", dead_pid)).unwrap();
    store
        .register_worker(&entry("alive", std::process::id()))
        .unwrap();
    let live = live_workers(&f.scheduler).unwrap();
    assert_eq!(
        live.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["alive"]
    );
}
