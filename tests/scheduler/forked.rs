//! Exclusivity across OS processes: for generated job sets, worker counts (2–8 processes)
//! and batch sizes, real separate processes claim and finish from one SQLite file at
//! once. Every claim is logged by the process that got it; the test then asserts that
//! every job was claimed exactly once and finished exactly once, so no job was ever held
//! by two workers. A store whose claim is not atomic across connections (for example a
//! SELECT then an unguarded UPDATE outside `BEGIN IMMEDIATE`) fails this.
//!
//! The workers go through what the pool uses: `finish_and_claim` (finish a batch and claim
//! the next in one call), and `recover_expired` when they find nothing to claim. One more
//! process, the "crasher", claims a batch under a short lease and exits without finishing
//! it, as a SIGKILLed worker would: its jobs must be recovered (uncharged) and run by the
//! others, each claimed once more and only once more.
//!
//! The processes start together through a real barrier: each announces itself with a
//! `ready-NAME` file once its store is open, and the parent releases them all (`go`) only
//! when every one is ready.
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

/// The crasher's lease: short, so the others recover its jobs quickly.
const CRASH_LEASE: Duration = Duration::from_millis(300);

/// One worker process: claim in batches until no job is left, logging every claim and
/// every finish to its own file. The worker named `crasher` claims one batch and exits.
#[test]
#[ignore = "entry point of the worker processes spawned by forked_workers_never_share_a_job"]
fn forked_worker_entry() {
    let spec = std::env::var(CHILD_ENV).expect("run only as a spawned worker");
    let parts: Vec<&str> = spec.split('\n').collect();
    let (db, worker, batch, log) = (
        parts[0],
        parts[1],
        parts[2].parse::<u32>().unwrap(),
        parts[3],
    );
    let sched = Scheduler::new(SqliteStore::open(db).expect("open store"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(log).expect("log file"));
    let start = Instant::now();
    // The barrier: say we are ready, then wait until the parent has seen every process
    // ready and created `go`.
    std::fs::write(Path::new(db).with_file_name(format!("ready-{worker}")), b"")
        .expect("ready file");
    // The crasher goes first, alone, so it surely gets jobs to abandon.
    let go = Path::new(db).with_file_name(if worker == "crasher" {
        "go-crasher"
    } else {
        "go"
    });
    while !go.exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "worker {worker} never got the go"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    if worker == "crasher" {
        let jobs = sched
            .claim(worker, batch.max(4), &[], CRASH_LEASE)
            .expect("claim");
        for job in &jobs {
            writeln!(out, "claim {} {worker}", job.id).unwrap();
        }
        out.flush().unwrap();
        // Gone without finishing, as if SIGKILLed.
        std::process::exit(0);
    }
    let lease = Duration::from_secs(120);
    let mut jobs = sched.claim(worker, batch, &[], lease).expect("claim");
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "worker {worker} ran out of time"
        );
        if jobs.is_empty() {
            let c = sched.store().counts().expect("counts");
            if c.pending + c.failed + c.processing == 0 {
                break;
            }
            // Whatever the crasher left: back to pending once its lease has expired.
            sched.recover_expired().expect("recover");
            std::thread::sleep(Duration::from_millis(1));
            jobs = sched.claim(worker, batch, &[], lease).expect("claim");
            continue;
        }
        for job in &jobs {
            writeln!(out, "claim {} {worker}", job.id).unwrap();
        }
        out.flush().unwrap();
        // A little "work" while holding the claims, so other processes claim meanwhile.
        std::thread::sleep(Duration::from_millis(jobs.len() as u64));
        let items: Vec<_> = jobs.into_iter().map(|j| (j, Outcome::success())).collect();
        let (finished, next) = sched
            .finish_and_claim(&items, worker, batch, &[], lease)
            .expect("finish and claim");
        for (i, g) in finished.iter().enumerate() {
            writeln!(out, "finish {i} {}", g.is_applied()).unwrap();
        }
        out.flush().unwrap();
        jobs = next;
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

    let names: Vec<String> = (0..workers)
        .map(|w| format!("w{w}"))
        .chain(std::iter::once("crasher".to_owned()))
        .collect();
    let logs: Vec<PathBuf> = names
        .iter()
        .map(|name| dir.path().join(format!("{name}.log")))
        .collect();
    let mut children = Children(
        names
            .iter()
            .zip(&logs)
            .map(|(name, log)| spawn_worker(&db, name, batch, log))
            .collect(),
    );
    // Release them together once every process has opened the store (the crasher first).
    let ready = Instant::now();
    while !names
        .iter()
        .all(|name| dir.path().join(format!("ready-{name}")).exists())
    {
        assert!(
            ready.elapsed() < DEADLINE,
            "the workers never all got ready"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::write(dir.path().join("go-crasher"), b"").unwrap();
    let crasher = children.0.last_mut().expect("the crasher");
    while crasher.try_wait().unwrap().is_none() {
        assert!(ready.elapsed() < DEADLINE, "the crasher did not exit");
        std::thread::sleep(Duration::from_millis(2));
    }
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
    let mut crashed = 0;
    for (job, by) in &claims {
        // The crasher's jobs are claimed once more after their recovery; every other claim
        // is the job's only one.
        let by_crasher = by.iter().filter(|w| *w == "crasher").count();
        assert!(by_crasher <= 1, "job {job}: {by:?}");
        let expected = if by_crasher == 1 {
            crashed += 1;
            2
        } else {
            1
        };
        assert_eq!(
            by.len(),
            expected,
            "job {job} was claimed by several workers: {by:?}"
        );
    }
    assert!(
        crashed > 0,
        "the crasher claimed nothing: recovery was not exercised"
    );
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
        let recovered = claims[job.id.as_str()].iter().any(|w| w == "crasher");
        assert_eq!(
            (job.state, job.attempts, job.interrupts),
            (JobState::Completed, 1, u32::from(recovered)),
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
