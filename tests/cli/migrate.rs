//! `migrate --to`: a queue copied SQLite → PostgreSQL → SQLite comes back identical (its
//! metrics' attempt counters too, deleted jobs' attempts included), the source is left
//! untouched, and the copy is refused while workers run on the source or
//! when the target already holds jobs.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::dashboard::attempt_counters;
use super::{s, wait_until, Env};

/// What an operator sees of a queue: every job with its output and history, the settings
/// and the counts.
fn snapshot(env: &Env) -> (Vec<Value>, Vec<Value>, String, Value) {
    let jobs = env.list(&[]);
    let shown = jobs.iter().map(|j| env.show(s(j, "id"))).collect();
    let config = env.run(&["config", "list"]).ok();
    let mut status = env.status();
    status.as_object_mut().unwrap().remove("workers");
    (jobs, shown, config, status)
}

fn target(env: &Env) -> &str {
    env.target().to_str().unwrap()
}

/// A queue with a job in every state but processing, with output and history.
fn populated() -> Env {
    let env = Env::new();
    env.run(&["config", "set", "backoff-base", "100"]).ok();
    env.run(&["config", "set", "max-retries", "4"]).ok();
    env.enqueue(r#"{"id":"done","command":"echo out; echo err >&2","priority":3}"#);
    env.enqueue(r#"{"id":"dead","command":"echo boom >&2; exit 7","max_retries":1}"#);
    env.enqueue(r#"{"id":"failing","command":"exit 1","queue":"mail"}"#);
    env.enqueue(r#"{"id":"cancelled","command":"true"}"#);
    // Runs, then is deleted: its attempt lives on only in the store's attempt totals.
    env.enqueue(r#"{"id":"gone","command":"true","queue":"mail"}"#);
    env.run(&["cancel", "cancelled"]).ok();
    let later = env
        .run(&[
            "enqueue",
            r#"{"id":"later","command":"true"}"#,
            "--delay",
            "1h",
        ])
        .ok();
    assert_eq!(later.trim(), "later");
    let worker = env.spawn_worker(&["--poll-interval-ms", "20"]);
    wait_until(Duration::from_secs(30), "the jobs to run", || {
        env.state("done") == "completed"
            && env.state("dead") == "dead"
            && env.state("failing") == "failed"
            && env.state("gone") == "completed"
    });
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).code, 0);
    env.run(&["delete", "gone"]).ok();
    env
}

#[test]
fn a_round_trip_sqlite_postgres_sqlite_keeps_every_job_and_setting() {
    let src = populated();
    // Without a server the middle store is another SQLite file: the copy is still tested.
    let mid = Env::postgres().unwrap_or_else(Env::new);
    let dst = Env::new();
    let job = r#"{"command":"./backup.sh"}"#;
    src.run(&[
        "cron",
        "add",
        "nightly",
        "0 2 * * *",
        job,
        "--tz",
        "Europe/Berlin",
    ])
    .ok();
    let before = snapshot(&src);
    let dead = &before.1[1];
    assert_eq!(s(dead, "id"), "dead");
    assert_eq!(dead["history"].as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(s(dead, "stderr"), "boom\n");

    let counters = attempt_counters(&src.run(&["metrics"]).ok());
    let mail = |counters: &[(String, String, f64)]| {
        counters
            .iter()
            .find(|(q, o, _)| q == "mail" && o == "completed")
            .map(|(_, _, v)| *v)
    };
    assert_eq!(
        mail(&counters),
        Some(1.0),
        "the deleted job's attempt counts"
    );

    let out = src.run(&["migrate", "--to", target(&mid)]).ok();
    assert!(out.contains("copied 5 job(s)"), "{out}");
    assert_eq!(snapshot(&mid), before, "the first copy differs");
    assert_eq!(snapshot(&src), before, "the source changed");

    assert_eq!(
        attempt_counters(&mid.run(&["metrics"]).ok()),
        counters,
        "the attempt totals came along"
    );

    mid.run(&["migrate", "--to", target(&dst)]).ok();
    assert_eq!(snapshot(&dst), before, "the round trip changed the queue");
    assert_eq!(attempt_counters(&dst.run(&["metrics"]).ok()), counters);
    assert_eq!(
        src.run(&["list", "--json"]).ok(),
        dst.run(&["list", "--json"]).ok(),
        "list --json is byte for byte the same"
    );
    assert_eq!(
        src.run(&["cron", "list", "--json"]).ok(),
        dst.run(&["cron", "list", "--json"]).ok(),
        "the schedules came along"
    );

    // The copy is a working queue: its jobs run where they landed.
    dst.run(&["dlq", "retry", "dead"]).ok();
    assert_eq!(dst.state("dead"), "pending");
    assert_eq!(src.state("dead"), "dead");
}

#[test]
fn a_target_with_jobs_is_refused_and_left_alone() {
    let src = Env::new();
    src.enqueue(r#"{"id":"a","command":"true"}"#);
    let dst = Env::postgres().unwrap_or_else(Env::new);
    dst.enqueue(r#"{"id":"b","command":"true"}"#);
    let run = src.run(&["migrate", "--to", target(&dst)]).code(1);
    assert!(run.stderr.contains("already holds 1 job"), "{}", run.stderr);
    let ids: Vec<String> = dst
        .list(&[])
        .iter()
        .map(|j| s(j, "id").to_owned())
        .collect();
    assert_eq!(ids, ["b"]);
    // Into itself, under any spelling: a usage error.
    src.run(&["migrate", "--to", target(&src)]).code(2);
    src.run(&["migrate", "--to", "memory:"]).code(2);
    src.run(&["migrate"]).code(2);
}

#[test]
fn a_source_with_running_workers_is_refused() {
    let src = Env::postgres().unwrap_or_else(Env::new);
    src.enqueue(r#"{"id":"a","command":"true","run_at":"2100-01-01T00:00:00Z"}"#);
    let worker = src.spawn_worker(&["--poll-interval-ms", "20"]);
    src.wait_for_workers(1);
    let dst = Env::new();
    let run = src.run(&["migrate", "--to", target(&dst)]).code(1);
    assert!(run.stderr.contains("running"), "{}", run.stderr);
    assert!(run.stderr.contains("worker stop"), "{}", run.stderr);
    assert!(dst.list(&[]).is_empty(), "nothing was copied");
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).code, 0);
    src.run(&["migrate", "--to", target(&dst)]).ok();
    assert_eq!(dst.list(&[]).len(), 1);
}
