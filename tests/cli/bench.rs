//! `queuectl bench`: it runs every job, on each kind of store, and prints the JSON fields
//! the docs promise. No figure is asserted beyond being positive: these are not timing tests.

use serde_json::Value;

use super::{run, Env};

const FIELDS: [&str; 9] = [
    "store",
    "jobs",
    "workers",
    "batch",
    "enqueue_per_sec",
    "jobs_per_sec",
    "pickup_p50_ms",
    "pickup_p99_ms",
    "peak_rss_bytes",
];

fn positive(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"));
    assert!(x > 0.0, "{key} = {x}: {v}");
    x
}

#[test]
fn bench_on_a_temp_file_prints_every_field_and_runs_every_job() {
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.args(["bench", "--jobs", "500", "--pickup-samples", "5", "--json"]);
    let v = run(cmd).json();
    for key in FIELDS {
        assert!(!v[key].is_null(), "{key} missing: {v}");
    }
    assert_eq!(v["jobs"], 500);
    positive(&v, "jobs_per_sec");
    positive(&v, "enqueue_per_sec");
    assert!(v["pickup_cross_p50_ms"].is_number(), "{v}");
    assert!(v["raw_spawn_per_sec"].is_null(), "{v}");
    // The default store is a temp file, never the cwd's database.
    assert!(!env.dir().join("queuectl.db").exists());
}

#[test]
fn bench_uses_an_explicit_db_and_shell_jobs_with_raw_spawn() {
    let env = Env::new();
    let v = env
        .run(&[
            "bench",
            "--jobs",
            "20",
            "--job",
            "true",
            "--workers",
            "2",
            "--raw-spawn",
            "--pickup-samples",
            "2",
            "--json",
        ])
        .json();
    assert_eq!(v["job"], "true");
    assert_eq!(v["workers"], 2);
    positive(&v, "raw_spawn_per_sec");
    positive(&v, "spawn_ratio");
    let status = env.status();
    assert_eq!(
        status["completed"], 24,
        "20 jobs + 2×2 pickup samples: {status}"
    );
}

#[test]
fn bench_on_memory_prints_lines_and_refuses_a_store_with_unfinished_jobs() {
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.args([
        "--db",
        "memory:",
        "bench",
        "--jobs",
        "300",
        "--backlog",
        "100",
    ]);
    let out = run(cmd).ok();
    assert!(out.contains("jobs/s end to end"), "{out}");
    assert!(!out.contains("pickup (other)"), "{out}");

    env.enqueue(r#"{"command":"true"}"#);
    let r = env.run(&["bench", "--jobs", "10"]).code(1);
    assert!(r.stderr.contains("unfinished jobs"), "{}", r.stderr);
}

#[test]
fn bench_runs_twice_on_the_same_file() {
    let env = Env::new();
    for _ in 0..2 {
        let v = env
            .run(&["bench", "--jobs", "50", "--pickup-samples", "1", "--json"])
            .json();
        assert_eq!(v["jobs"], 50);
    }
    assert_eq!(env.status()["completed"], 2 * (50 + 2));
}
