//! Queue controls (contract v2, "Operating jobs and queues"): `queue list`, `queue pause |
//! resume`, `queue concurrency`, the queues of `status`, and `worker start --drain` leaving
//! paused queues aside. Every test runs on SQLite and PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{s, wait_until};

/// `queue list --json`.
fn queues(env: &super::Env) -> Vec<Value> {
    match env.run(&["queue", "list", "--json"]).json() {
        Value::Array(items) => items,
        other => panic!("queue list --json is not an array: {other}"),
    }
}

store_test! {
    fn queue_list_shows_every_queue_with_jobs_or_settings_and_status_shows_the_same(env) {
        let run = env.run(&["queue", "list"]).code(0);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.contains("no queues"), "{}", run.stderr);
        assert_eq!(queues(&env), Vec::<Value>::new());
        assert_eq!(env.status()["queues"], json!([]));

        env.enqueue(r#"{"command":"true"}"#);
        env.enqueue(r#"{"command":"true","queue":"mail"}"#);
        let later = env.enqueue(r#"{"command":"true","queue":"mail","run_at":"2099-01-01T00:00:00Z"}"#);
        env.run(&["cancel", &later]).ok();
        env.run(&["queue", "pause", "mail"]).ok();
        // A queue with settings and no job is listed too.
        let out = env.run(&["queue", "concurrency", "reports", "2"]).ok();
        assert_eq!(out, "queue reports: not paused, concurrency 2\n");

        let expected = json!([
            {"queue": "default", "paused": false, "concurrency": null, "pending": 1,
             "processing": 0, "failed": 0, "dead": 0, "completed": 0, "cancelled": 0},
            {"queue": "mail", "paused": true, "concurrency": null, "pending": 1,
             "processing": 0, "failed": 0, "dead": 0, "completed": 0, "cancelled": 1},
            {"queue": "reports", "paused": false, "concurrency": 2, "pending": 0,
             "processing": 0, "failed": 0, "dead": 0, "completed": 0, "cancelled": 0},
        ]);
        assert_eq!(Value::Array(queues(&env)), expected);
        // Exactly these keys, in this order.
        let text = env.run(&["queue", "list", "--json"]).ok();
        let keys: Vec<usize> = ["\"queue\"", "\"paused\"", "\"concurrency\"", "\"pending\"",
            "\"processing\"", "\"failed\"", "\"dead\"", "\"completed\"", "\"cancelled\""]
            .iter()
            .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} missing:\n{text}")))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "key order:\n{text}");

        let status = env.status();
        assert_eq!(status["queues"], expected);
        assert_eq!(status["pending"], 2);

        let table = env.run(&["queue", "list"]).ok();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "QUEUE    PAUSED  CONCURRENCY  PENDING  PROCESSING  FAILED  DEAD  COMPLETED  CANCELLED"
        );
        assert_eq!(lines[2], "mail     yes     none         1        0           0       0     0          1");
        assert_eq!(lines[3], "reports  no      2            0        0           0       0     0          0");

        // status: the state lines, workers, then the same table.
        let text = env.run(&["status"]).ok();
        let (head, tail) = text.split_once("\n\n").expect("a blank line before the queues");
        assert!(head.starts_with("pending: 2\n"), "{text}");
        assert!(head.ends_with("workers: 0"), "{text}");
        assert_eq!(tail, table);

        // Back to the defaults: a queue without jobs leaves the list.
        env.run(&["queue", "concurrency", "reports", "none"]).ok();
        env.run(&["queue", "resume", "mail"]).ok();
        let names: Vec<String> = queues(&env).iter().map(|q| s(q, "queue").to_owned()).collect();
        assert_eq!(names, ["default", "mail"]);
    }
}

store_test! {
    fn queue_concurrency_takes_a_positive_integer_or_none_and_changes_nothing_otherwise(env) {
        env.run(&["queue", "concurrency", "q", "3"]).ok();
        for bad in ["0", "-2", "1.5", "lots", ""] {
            let run = env.run(&["queue", "concurrency", "q", bad]).code(2);
            assert_eq!(run.stdout, "", "{bad}");
            // clap reads "-2" as an unknown flag: still a usage error.
            if !bad.starts_with('-') {
                assert!(run.stderr.contains("at least 1, or none"), "{bad}: {}", run.stderr);
            }
        }
        env.run(&["queue", "pause", " "]).code(2);
        assert_eq!(queues(&env)[0]["concurrency"], 3);
        let out = env.run(&["queue", "concurrency", "q", "none"]).ok();
        assert_eq!(out, "queue q: not paused, no concurrency limit\n");
        assert_eq!(queues(&env), Vec::<Value>::new());
    }
}

store_test! {
    fn a_paused_queue_is_not_claimed_by_any_worker_while_other_queues_run(env) {
        // A job of the queue is running when it is paused: it finishes.
        let running = env.enqueue(r#"{"command":"sleep 1","queue":"mail"}"#);
        let worker = |host: &str| {
            env.spawn_worker(&["--count", "2", "--poll-interval-ms", "50", "--host-id", host])
        };
        let (_one, _two) = (worker("one"), worker("two"));
        env.wait_for_workers(4);
        wait_until(Duration::from_secs(20), "the mail job to start", || {
            env.state(&running) == "processing"
        });
        env.run(&["queue", "pause", "mail"]).ok();
        // Enqueueing into a paused queue still works.
        let held: Vec<String> = (0..3)
            .map(|i| env.enqueue(&format!(r#"{{"id":"held-{i}","command":"true","queue":"mail","priority":9}}"#)))
            .collect();
        let other = env.enqueue(r#"{"command":"true"}"#);
        wait_until(Duration::from_secs(20), "the other queue's job", || {
            env.state(&other) == "completed"
        });
        wait_until(Duration::from_secs(20), "the running job to finish", || {
            env.state(&running) == "completed"
        });
        // Several poll intervals later, on both workers, nothing of the paused queue ran.
        std::thread::sleep(Duration::from_millis(400));
        for id in &held {
            assert_eq!(env.state(id), "pending", "{id}");
        }

        env.run(&["queue", "resume", "mail"]).ok();
        let start = Instant::now();
        wait_until(Duration::from_secs(20), "the resumed queue's jobs", || {
            held.iter().all(|id| env.state(id) == "completed")
        });
        eprintln!("resumed jobs completed {:?} after resume", start.elapsed());
    }
}

/// The largest number of `[start, end]` intervals that overlap at any instant (an end at
/// the same instant as a start does not overlap it).
fn max_overlap(intervals: &[(u128, u128)]) -> usize {
    let mut events: Vec<(u128, i32)> = intervals
        .iter()
        .flat_map(|(start, end)| [(*start, 1), (*end, -1)])
        .collect();
    events.sort_unstable();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

/// A job's start and end marker times (nanoseconds), written by the job itself.
fn markers(dir: &Path, i: usize) -> (u128, u128) {
    let read = |what: &str| -> u128 {
        let path = dir.join(format!("{i}.{what}"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path:?}: {e}: {text:?}"))
    };
    (read("start"), read("end"))
}

store_test! {
    fn a_concurrency_limit_holds_across_worker_processes_and_is_reached(env) {
        const JOBS: usize = 20;
        const LIMIT: usize = 2;
        let marks = env.dir().join("marks");
        std::fs::create_dir(&marks).expect("marks dir");
        env.run(&["queue", "concurrency", "capped", &LIMIT.to_string()]).ok();
        let jobs: String = (0..JOBS)
            .map(|i| {
                let dir = marks.display();
                let command = format!(
                    "date +%s%N > {dir}/{i}.start; sleep 0.3; date +%s%N > {dir}/{i}.end"
                );
                format!("{}\n", json!({"id": format!("cap-{i:02}"), "command": command, "queue": "capped"}))
            })
            .collect();
        env.run_stdin(&["enqueue", "-"], &jobs).ok();

        let start = Instant::now();
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let host = format!("host-{w}");
                env.spawn_worker(&["--count", "4", "--poll-interval-ms", "50", "--host-id", &host])
            })
            .collect();
        // A full queue does not hold up others: this one runs while the capped queue is full.
        env.wait_for_workers(12);
        let other = env.enqueue(r#"{"command":"true","queue":"other"}"#);
        wait_until(Duration::from_secs(20), "the other queue's job", || {
            env.state(&other) == "completed"
        });
        let mut peak_processing = 0;
        wait_until(Duration::from_secs(60), "every capped job to complete", || {
            let q = queues(&env);
            let capped = q.iter().find(|q| q["queue"] == "capped").expect("capped row");
            let processing = capped["processing"].as_u64().unwrap_or(0);
            assert!(processing <= LIMIT as u64, "{processing} processing: {capped}");
            peak_processing = peak_processing.max(processing);
            capped["completed"] == JOBS
        });
        let took = start.elapsed();
        drop(workers);

        let intervals: Vec<(u128, u128)> = (0..JOBS).map(|i| markers(&marks, i)).collect();
        let overlap = max_overlap(&intervals);
        eprintln!(
            "limit {LIMIT}, {JOBS} jobs of 0.3 s, 3 worker processes x 4 slots: max overlap \
             {overlap} (from markers), max processing seen {peak_processing}, all done in {took:?}"
        );
        assert!(overlap <= LIMIT, "{overlap} jobs of a queue limited to {LIMIT} overlapped");
        assert_eq!(overlap, LIMIT, "the limit is reached with enough jobs due");
    }
}

store_test! {
    fn worker_drain_leaves_paused_queues_aside_and_waits_for_jobs_running_elsewhere(env) {
        env.run(&["queue", "pause", "held"]).ok();
        let held = env.enqueue(r#"{"command":"true","queue":"held"}"#);
        let slow = env.enqueue(r#"{"command":"sleep 3"}"#);
        let serving = env.spawn_worker(&["--host-id", "elsewhere", "--poll-interval-ms", "50"]);
        wait_until(Duration::from_secs(20), "the slow job to start elsewhere", || {
            env.state(&slow) == "processing"
        });
        let quick = env.enqueue(r#"{"command":"true","run_at":"2000-01-01T00:00:00Z"}"#);
        let mut drain = env.spawn_worker(&["--drain", "--poll-interval-ms", "50"]);
        wait_until(Duration::from_secs(20), "the quick job", || {
            env.state(&quick) == "completed"
        });
        // The slow job runs on the other worker and may come back: the drain waits.
        assert!(drain.is_running(), "drain exited while a job ran elsewhere: {}", drain.stderr());
        let run = drain.wait(Duration::from_secs(20)).code(0);
        assert_eq!(env.state(&slow), "completed", "{}", run.stderr);
        assert_eq!(env.state(&held), "pending");
        drop(serving);
    }
}

#[test]
fn max_overlap_counts_intervals_open_at_once() {
    assert_eq!(max_overlap(&[]), 0);
    assert_eq!(max_overlap(&[(0, 10), (10, 20), (20, 30)]), 1);
    assert_eq!(max_overlap(&[(0, 10), (5, 15), (6, 7), (14, 20)]), 3);
}
