//! The chaos run (issue #12): 3 worker processes of 4 slots each work through a backlog of
//! marker jobs while one of them is SIGKILLed about every second and started again. At the
//! end no job is lost, stuck or dead, and no two runs of one job overlapped in time.
//!
//! Each run of a job appends `S <pid> <ns>` when it starts and `E <pid> <ns>` when it ends
//! to the job's own marker file (`$$` tells runs apart). A run whose worker was killed has no
//! `E` line; a complete run must not have another run's `S` inside its interval.
//!
//! `cargo test` runs 3,000 jobs per store (well under two minutes); the ignored variant runs
//! `QUEUECTL_CHAOS_JOBS` (default 20,000): `cargo test --test integration chaos -- --ignored`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Env, Proc};

const WORKERS: usize = 3;

/// One run of a job, from its marker lines.
#[derive(Debug)]
struct Run {
    pid: u64,
    start: u128,
    end: Option<u128>,
}

fn chaos(env: &Env, jobs: usize, deadline: Duration) {
    let marks = env.dir().join("marks");
    std::fs::create_dir(&marks).expect("marks dir");
    let batch: String = (0..jobs)
        .map(|i| {
            let file = marks.join(format!("j{i}"));
            let file = file.display();
            format!(
                "{{\"id\":\"j{i}\",\"max_retries\":1,\"command\":\"echo S $$ $(date +%s%N) >> '{file}'; \
                 sleep 0.02; echo E $$ $(date +%s%N) >> '{file}'\"}}\n"
            )
        })
        .collect();
    env.run_stdin(&["enqueue", "-"], &batch).ok();

    let start = || env.spawn_worker(&["--count", "4"]);
    let mut workers: Vec<Proc> = (0..WORKERS).map(|_| start()).collect();
    let began = Instant::now();
    let mut kills = 0_u32;
    let mut victim = 0;
    loop {
        let status = env.status();
        let done = status["completed"].as_u64().unwrap_or(0) + status["dead"].as_u64().unwrap_or(0);
        if done == jobs as u64 {
            break;
        }
        assert!(
            began.elapsed() < deadline,
            "{done} of {jobs} jobs finished after {deadline:?} and {kills} kills: {status}"
        );
        // About once a second: SIGKILL one worker mid-batch and start a new one.
        std::thread::sleep(Duration::from_millis(900 + u64::from(kills % 5) * 50));
        workers[victim].signal(Signal::SIGKILL);
        let killed = std::mem::replace(&mut workers[victim], start());
        killed.kill();
        kills += 1;
        victim = (victim + 1) % WORKERS;
    }
    drop(workers);

    let status = env.status();
    assert_eq!(status["completed"].as_u64(), Some(jobs as u64), "{status}");
    assert_eq!(status["dead"].as_u64(), Some(0), "{status}");
    assert!(
        kills >= 3,
        "the run ended after only {kills} kills: make it longer"
    );

    let mut reruns = 0;
    for i in 0..jobs {
        let text = std::fs::read_to_string(marks.join(format!("j{i}"))).unwrap_or_default();
        let runs = parse_runs(&text);
        assert!(
            runs.iter().any(|r| r.end.is_some()),
            "job j{i} completed without a complete run:\n{text}"
        );
        reruns += runs.len() - 1;
        for run in runs.iter().filter(|r| r.end.is_some()) {
            let (s, e) = (run.start, run.end.unwrap_or(u128::MAX));
            for other in runs.iter().filter(|o| o.pid != run.pid) {
                assert!(
                    !(other.start > s && other.start < e),
                    "job j{i}: run {} started while run {} was running:\n{text}",
                    other.pid,
                    run.pid
                );
            }
        }
    }
    eprintln!(
        "chaos: {jobs} jobs, {kills} SIGKILLs, {reruns} runs repeated after a kill, {:.1?}",
        began.elapsed()
    );
}

fn parse_runs(text: &str) -> Vec<Run> {
    let mut runs: BTreeMap<u64, Run> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(pid), Some(ns)) = (parts.next(), parts.next(), parts.next()) else {
            continue; // a line cut short by the kill
        };
        let (Ok(pid), Ok(ns)) = (pid.parse::<u64>(), ns.parse::<u128>()) else {
            continue;
        };
        match kind {
            "S" => {
                runs.insert(
                    pid,
                    Run {
                        pid,
                        start: ns,
                        end: None,
                    },
                );
            }
            "E" => {
                if let Some(run) = runs.get_mut(&pid) {
                    run.end = Some(ns);
                }
            }
            _ => {}
        }
    }
    runs.into_values().collect()
}

store_test! {
    fn sigkill_chaos_loses_no_job_and_never_overlaps_runs(env) {
        chaos(&env, 3_000, Duration::from_secs(240));
    }
}

/// The long run's job count: `QUEUECTL_CHAOS_JOBS`, default 20,000.
fn long_run_jobs() -> usize {
    std::env::var("QUEUECTL_CHAOS_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
#[ignore = "the long chaos run: QUEUECTL_CHAOS_JOBS jobs (default 20,000)"]
fn long_sigkill_chaos_sqlite() {
    chaos(&Env::new(), long_run_jobs(), Duration::from_secs(1_800));
}

#[test]
#[ignore = "the long chaos run: QUEUECTL_CHAOS_JOBS jobs (default 20,000)"]
fn long_sigkill_chaos_postgres() {
    if let Some(env) = Env::postgres() {
        chaos(&env, long_run_jobs(), Duration::from_secs(1_800));
    }
}
