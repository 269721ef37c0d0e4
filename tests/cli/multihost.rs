//! Several hosts on one PostgreSQL queue, and the loss of a whole host.
//!
//! Two "hosts" (host ids `host-a` and `host-b`), each with two worker processes of four
//! slots, share 1,000 marker jobs. Mid-run every process of `host-b` dies at once, its job
//! processes included, as when a machine loses power. The workers of `host-a` cannot see
//! `host-b`'s processes (pid checks only mean something on the same host), so the jobs
//! `host-b` held come back only when their leases expire. Every run of a job appends its
//! start and end to the job's marker file; the test checks that each job finished at least
//! one run and that no two runs of one job overlapped in time.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::{s, wait_until, Env, Proc};

const JOBS: usize = 1000;
const LEASE_SECONDS: &str = "2";

/// One execution of a job, from its marker file: `s PID NANOS` then `e PID NANOS`.
#[derive(Debug)]
struct Run {
    pid: u32,
    start: u128,
    end: Option<u128>,
}

fn runs_of(path: &Path) -> Vec<Run> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut runs: Vec<Run> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            parts.len(),
            3,
            "bad marker line {line:?} in {}",
            path.display()
        );
        let pid: u32 = parts[1].parse().unwrap();
        let t: u128 = parts[2].parse().unwrap();
        match parts[0] {
            "s" => runs.push(Run {
                pid,
                start: t,
                end: None,
            }),
            "e" => {
                let run = runs
                    .iter_mut()
                    .rev()
                    .find(|r| r.pid == pid && r.end.is_none())
                    .unwrap_or_else(|| panic!("end without start in {}", path.display()));
                run.end = Some(t);
            }
            other => panic!("bad marker tag {other:?}"),
        }
    }
    runs
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The pids whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            kids.push(pid);
        }
    }
    kids
}

/// Kills a "host" as a power loss would: its workers die before their jobs do, so no worker
/// can record a job's death as a failed attempt. The workers are frozen first (they start
/// nothing new), their job processes listed, the workers SIGKILLed, and only then every
/// job's process group.
fn kill_host(workers: Vec<Proc>) {
    for w in &workers {
        w.signal(Signal::SIGSTOP);
    }
    // Listed while the workers still exist: once they die, their children are reparented.
    let jobs: Vec<i32> = workers.iter().flat_map(|w| children_of(w.pid())).collect();
    for w in workers {
        w.kill();
    }
    for child in jobs {
        // Each job leads its own process group; the group holds its `sleep` too.
        let _ = killpg(Pid::from_raw(child), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }
}

#[test]
fn killing_one_of_two_hosts_loses_no_job_and_runs_none_twice_at_once() {
    let Some(env) = Env::postgres() else {
        return;
    };
    env.run(&["config", "set", "lease-seconds", LEASE_SECONDS])
        .ok();
    let marks = env.dir().join("runs");
    fs::create_dir(&marks).unwrap();
    let batch: String = (0..JOBS)
        .map(|i| {
            let f = marks.join(format!("j{i}"));
            let f = f.display();
            format!(
                "{{\"id\":\"j{i}\",\"command\":\"echo \\\"s $$ $(date +%s%N)\\\" >> '{f}'; \
                 sleep 0.05; echo \\\"e $$ $(date +%s%N)\\\" >> '{f}'\"}}\n"
            )
        })
        .collect();
    env.run_stdin(&["enqueue", "-"], &batch).ok();

    let host = |id: &str| -> Proc {
        env.spawn_worker(&[
            "--count",
            "4",
            "--drain",
            "--host-id",
            id,
            "--poll-interval-ms",
            "50",
        ])
    };
    let started = Instant::now();
    let a = [host("host-a"), host("host-a")];
    let b = vec![host("host-b"), host("host-b")];
    env.wait_for_workers(16);

    // Kill host-b once the run is well under way and it holds jobs.
    let held_by_b = |env: &Env| -> HashSet<String> {
        env.list(&["--state", "processing"])
            .iter()
            .filter(|j| s(j, "worker_id").starts_with("host-b:"))
            .map(|j| s(j, "id").to_owned())
            .collect()
    };
    wait_until(
        Duration::from_secs(60),
        "a quarter of the jobs to finish",
        || env.status()["completed"].as_u64().unwrap_or(0) >= (JOBS / 4) as u64,
    );
    wait_until(Duration::from_secs(60), "host-b to hold jobs", || {
        !held_by_b(&env).is_empty()
    });
    kill_host(b);
    let killed_at = unix_nanos();
    let killed = Instant::now();
    let stranded = held_by_b(&env);
    assert!(!stranded.is_empty(), "host-b held no job when it died");

    // Recovery: the moment no job is still held by host-b's dead workers.
    let mut recovered_after = None;
    wait_until(
        Duration::from_secs(60),
        "host-b's jobs to be recovered",
        || {
            if held_by_b(&env).is_empty() {
                recovered_after = Some(killed.elapsed());
                true
            } else {
                false
            }
        },
    );
    let recovered_after = recovered_after.unwrap();
    let [a1, a2] = a;
    let (r1, r2) = (
        a1.wait(Duration::from_secs(180)),
        a2.wait(Duration::from_secs(180)),
    );
    let finished_after = killed.elapsed();
    println!(
        "{JOBS} jobs on 2 hosts × 2 processes × 4 slots in {:?}; host-b killed holding {} \
         jobs; recovered by lease expiry (lease {LEASE_SECONDS} s) after {recovered_after:?}; \
         all done {finished_after:?} after the kill",
        started.elapsed(),
        stranded.len()
    );
    assert_eq!((r1.code, r2.code), (0, 0), "{r1:#?}\n{r2:#?}");
    let logs = format!("{}{}", r1.stderr, r2.stderr);
    assert!(
        logs.contains("lease expired"),
        "host-a recovered by lease expiry: {logs}"
    );

    let jobs = env.list(&[]);
    assert_eq!(jobs.len(), JOBS);
    let by_id: HashMap<&str, &serde_json::Value> = jobs.iter().map(|j| (s(j, "id"), j)).collect();
    for (id, job) in &by_id {
        assert_eq!(s(job, "state"), "completed", "{job}");
        assert_eq!(
            job["attempts"], 1,
            "an interrupted run is not charged: {job}"
        );
        assert!(
            s(job, "worker_id").starts_with("host-a:") || !stranded.contains(*id),
            "a stranded job finished on host-a: {job}"
        );
    }

    let mut reran = 0;
    for i in 0..JOBS {
        let path = marks.join(format!("j{i}"));
        let mut runs = runs_of(&path);
        assert!(
            runs.iter().any(|r| r.end.is_some()),
            "j{i} never completed a run: {runs:?}"
        );
        for r in runs.iter().filter(|r| r.end.is_none()) {
            assert!(
                stranded.contains(&format!("j{i}")) && r.start < killed_at,
                "j{i} has an unfinished run that host-b's death does not explain: {runs:?}"
            );
        }
        if runs.len() > 1 {
            reran += 1;
        }
        runs.sort_by_key(|r| r.start);
        for w in runs.windows(2) {
            // A run cut short by the kill ended no later than the kill.
            let end = w[0].end.unwrap_or(killed_at);
            assert!(end <= w[1].start, "two runs of j{i} overlapped: {runs:?}");
        }
    }
    println!("{reran} jobs ran more than once (each after its earlier run had ended)");
    assert!(
        reran <= stranded.len(),
        "{reran} reruns, {} stranded",
        stranded.len()
    );
}
