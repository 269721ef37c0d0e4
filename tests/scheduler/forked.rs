//! Exclusivity across OS processes: for generated job sets, worker counts (2–8 processes)
//! and batch sizes, real separate processes claim and finish from one SQLite file at
//! once. Every claim is logged by the process that got it; the test then asserts that
//! every job was claimed exactly once and finished exactly once, so no job was ever held
//! by two workers. A store whose claim is not atomic across connections (for example a
//! SELECT then an unguarded UPDATE outside `BEGIN IMMEDIATE`) fails this.
//!
//! The worker processes are this test binary re-executed on the ignored test
//! `forked_worker_entry` with `QUEUECTL_FORKED_WORKER` set.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use queuectl::prelude::*;
use queuectl::{EnqueueRequest, JobState, Outcome, Scheduler};
use queuectl_store_sqlite::SqliteStore;

const CHILD_ENV: &str = "QUEUECTL_FORKED_WORKER";
const DEADLINE: Duration = Duration::from_secs(60);

/// Kills and reaps every child still running when the test ends, pass or fail.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_worker(db: &Path, worker: &str, batch: u32, log: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "scheduler::forked::forked_worker_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}\n{worker}\n{batch}\n{}", db.display(), log.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker process")
}

/// One worker process: claim in batches until no job is left, logging every claim and
/// every finish to its own file.
#[test]
#[ignore = "entry point of the worker processes spawned by forked_workers_never_share_a_job"]
fn forked_worker_entry() {
    let spec = std::env::var(CHILD_ENV).expect("run only as a spawned worker");
    let parts: Vec<&str> = spec.split('\n').collect();
    let (db, worker, batch, log) = (parts[0], parts[1], parts[2].parse().unwrap(), parts[3]);
    let sched = Scheduler::new(SqliteStore::open(db).expect("open store"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(log).expect("log file"));
    let start = Instant::now();
    // Start together: the parent creates `go` once every process is up.
    let go = Path::new(db).with_file_name("go");
    while !go.exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "worker {worker} never got the go"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "worker {worker} ran out of time"
        );
        let jobs = sched
            .claim(worker, batch, &[], Duration::from_secs(120))
            .expect("claim");
        if jobs.is_empty() {
            let c = sched.store().counts().expect("counts");
            if c.pending + c.failed + c.processing == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for job in &jobs {
            writeln!(out, "claim {} {worker}", job.id).unwrap();
        }
        out.flush().unwrap();
        // A little "work" while holding the claims, so other processes claim meanwhile.
        std::thread::sleep(Duration::from_millis(jobs.len() as u64));
        let items = jobs.into_iter().map(|j| (j, Outcome::success())).collect();
        for (i, g) in sched.finish_many(items).expect("finish").iter().enumerate() {
            writeln!(out, "finish {i} {}", g.is_applied()).unwrap();
        }
        out.flush().unwrap();
    }
}

fn run_case(jobs: usize, workers: usize, batch: u32) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let store = SqliteStore::open(&db).unwrap();
    let sched = Scheduler::new(store);
    let reqs = (0..jobs)
        .map(|i| EnqueueRequest {
            id: Some(format!("job-{i}").into()),
            ..EnqueueRequest::shell("true")
        })
        .collect();
    sched.enqueue_many(reqs).unwrap();

    let logs: Vec<PathBuf> = (0..workers)
        .map(|w| dir.path().join(format!("w{w}.log")))
        .collect();
    let mut children = Children(
        logs.iter()
            .enumerate()
            .map(|(w, log)| spawn_worker(&db, &format!("w{w}"), batch, log))
            .collect(),
    );
    // Give every process time to open the store, then release them together.
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let start = Instant::now();
    for c in &mut children.0 {
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "a worker process failed: {status}");
                break;
            }
            assert!(start.elapsed() < DEADLINE, "workers did not finish in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    let mut claims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut applied = 0;
    for log in &logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "claim" => claims
                    .entry(f[1].to_owned())
                    .or_default()
                    .push(f[2].to_owned()),
                "finish" => {
                    assert_eq!(f[2], "true", "a guarded finish was stale: {line}");
                    applied += 1;
                }
                other => panic!("bad log line {other}"),
            }
        }
    }
    for (job, by) in &claims {
        assert_eq!(
            by.len(),
            1,
            "job {job} was claimed by several workers: {by:?}"
        );
    }
    assert_eq!(claims.len(), jobs, "not every job was claimed");
    // The test is only meaningful if the processes really raced for the same rows.
    let claimers: std::collections::BTreeSet<&String> = claims.values().flatten().collect();
    assert!(
        claimers.len() >= 2,
        "only {claimers:?} claimed: no contention happened"
    );
    assert_eq!(applied, jobs, "not every job was finished exactly once");
    let counts = sched.store().counts().unwrap();
    assert_eq!(counts.completed, jobs as u64);
    for job in sched.store().list(&Default::default()).unwrap() {
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Completed, 1),
            "{}",
            job.id
        );
    }
}

proptest! {
    // Each case starts up to 8 processes; a handful of cases keeps this well under a
    // minute while still varying contention and batch size.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn forked_workers_never_share_a_job(
        jobs in 50usize..300,
        workers in 2usize..=8,
        batch in prop_oneof![Just(1u32), 2u32..8, Just(16u32)],
    ) {
        run_case(jobs, workers, batch);
    }
}
