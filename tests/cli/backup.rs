//! `backup FILE`: a copy taken while a 4-slot worker drains a queue and a producer keeps
//! enqueuing is a complete, consistent queuectl store, attempt totals of deleted jobs
//! included; FILE is never overwritten without `--force` and never left half-written;
//! PostgreSQL and `memory:` are refused with the reason.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::dashboard::attempt_counters;
use super::{run, s, wait_until, Env};

/// Runs `queuectl --db DB ARGS` in the env's dir.
fn at(env: &Env, db: &Path, args: &[&str]) -> super::Run {
    let mut cmd = env.bare();
    cmd.arg("--db").arg(db).args(args);
    run(cmd)
}

/// `list --json` of the store at `db`, by id.
fn jobs_at(env: &Env, db: &Path) -> HashMap<String, Value> {
    match at(env, db, &["list", "--json"]).json() {
        Value::Array(jobs) => jobs
            .into_iter()
            .map(|j| (s(&j, "id").to_owned(), j))
            .collect(),
        other => panic!("list --json is not an array: {other}"),
    }
}

fn count(status: &Value, key: &str) -> u64 {
    status[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {status}"))
}

/// Files in the env's dir whose name starts with a dot (a leftover temp file would).
fn hidden_files(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// The schema version recorded in a SQLite store (Diesel's migration table).
fn schema_versions(db: &Path) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
        .load::<Version>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect()
}

/// The database's size in bytes (pages × page size), wherever its pages are (file or WAL).
fn db_bytes(db: &Path) -> u64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bytes: i64,
    }
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let b: Bytes = diesel::sql_query(
        "SELECT page_count * page_size AS bytes FROM pragma_page_count, pragma_page_size",
    )
    .get_result(&mut conn)
    .unwrap();
    u64::try_from(b.bytes).unwrap()
}

#[test]
fn a_backup_under_load_is_a_complete_consistent_store() {
    let env = Env::new();
    env.run(&["config", "set", "max-retries", "2"]).ok();
    // Enough rows (and a padded command) for a file of several backup steps (4 MiB each).
    let pad = "x".repeat(600);
    let mut batch = String::new();
    for i in 0..8_000 {
        let command = if i % 10 == 0 {
            format!("echo failing {i} >&2; exit 3 # {pad}")
        } else {
            format!("echo job {i} # {pad}")
        };
        let job = serde_json::json!({"id": format!("j{i}"), "command": command});
        writeln!(batch, "{job}").unwrap();
    }
    env.run_stdin(&["enqueue", "-"], &batch).ok();
    let size = db_bytes(env.db());
    assert!(size > 4 << 20, "the queue is only {size} bytes");

    let worker = env.spawn_worker(&["--count", "4", "--poll-interval-ms", "20"]);
    env.wait_for_workers(4);
    wait_until(Duration::from_secs(60), "jobs to complete", || {
        count(&env.status(), "completed") >= 50
    });

    let stop = AtomicBool::new(false);
    let copies: Vec<_> = (0..3)
        .map(|i| env.dir().join(format!("copy-{i}.db")))
        .collect();
    let mut windows = Vec::new();
    std::thread::scope(|scope| {
        // A producer enqueues one job at a time for as long as the backups run.
        let producer = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                env.run(&[
                    "enqueue",
                    &format!(r#"{{"id":"p{n}","command":"echo p{n}"}}"#),
                ])
                .ok();
                n += 1;
            }
            n
        });
        for copy in &copies {
            let before = env.status();
            let out = env.run(&["backup", copy.to_str().unwrap()]).ok();
            let after = env.status();
            windows.push((out, before, after));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(
            producer.join().unwrap() > 0,
            "the producer enqueued nothing"
        );
    });
    // The backups ran while the queue was busy: jobs left to run, and the workers finished
    // some while each copy was being made.
    assert!(
        windows
            .iter()
            .all(|(_, _, after)| count(after, "pending") > 0),
        "the queue ran dry during the backups: {windows:?}"
    );
    assert!(
        windows
            .iter()
            .any(|(_, before, after)| count(after, "completed") > count(before, "completed")),
        "no job finished while a backup ran: {windows:?}"
    );
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(60)).code, 0);
    assert!(hidden_files(&env).is_empty(), "{:?}", hidden_files(&env));

    let original = jobs_at(&env, env.db());
    for (copy, (out, before, after)) in copies.iter().zip(&windows) {
        // A single self-contained file, owner-only, at the original's schema version.
        for side in ["-wal", "-shm", "-journal"] {
            let mut name = copy.clone().into_os_string();
            name.push(side);
            assert!(!Path::new(&name).exists(), "{name:?} left beside the copy");
        }
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(copy).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the copy is readable by others: {mode:o}");
        }
        assert_eq!(schema_versions(copy), schema_versions(env.db()));

        let status = at(&env, copy, &["status", "--json"]).json();
        assert_eq!(count(&status, "workers"), 0, "the copy has live workers");
        let jobs = jobs_at(&env, copy);
        let total = |status: &Value| -> u64 {
            [
                "pending",
                "processing",
                "completed",
                "failed",
                "dead",
                "cancelled",
            ]
            .iter()
            .map(|k| count(status, k))
            .sum()
        };
        assert_eq!(
            total(&status),
            jobs.len() as u64,
            "status and list disagree: {status}"
        );
        assert!(
            (total(before)..=total(after)).contains(&total(&status)),
            "the copy has {} jobs; the original had {} before and {} after",
            total(&status),
            total(before),
            total(after)
        );
        assert_eq!(
            out.trim(),
            format!("backed up {} jobs to {}", jobs.len(), copy.display())
        );
        // One moment of the original: between its counts before and after the backup.
        let done = count(&status, "completed") + count(&status, "dead");
        let done_before = count(before, "completed") + count(before, "dead");
        let done_after = count(after, "completed") + count(after, "dead");
        assert!(
            (done_before..=done_after).contains(&done),
            "the copy has {done} finished jobs; the original had {done_before} before and {done_after} after"
        );
        for (id, job) in &jobs {
            let now = original
                .get(id)
                .unwrap_or_else(|| panic!("{id} is in the copy, not in the original"));
            // A final state in the copy is final in the original, with the same attempts.
            if matches!(s(job, "state"), "completed" | "dead") {
                assert_eq!(s(job, "state"), s(now, "state"), "{id}");
                assert_eq!(job["attempts"], now["attempts"], "{id}");
                assert_eq!(job["finished_at"], now["finished_at"], "{id}");
            }
        }
        assert_eq!(
            at(&env, copy, &["config", "get", "max-retries"]).ok(),
            "2\n"
        );
        // Output and history came along.
        let (done_id, _) = jobs
            .iter()
            .find(|(id, j)| id.starts_with('j') && s(j, "state") == "completed")
            .expect("a completed job in the copy");
        let shown = at(&env, copy, &["show", done_id]).json();
        assert_eq!(s(&shown, "stdout"), format!("job {}\n", &done_id[1..]));
        assert_eq!(shown["history"].as_array().map(Vec::len), Some(1));
    }
}

#[test]
fn an_existing_file_is_replaced_only_with_force() {
    let env = Env::new();
    env.enqueue(r#"{"id":"a","command":"true"}"#);
    let file = env.dir().join("out.db");
    std::fs::write(&file, "precious").unwrap();

    let refused = env.run(&["backup", "out.db"]).code(1);
    assert!(
        refused
            .stderr
            .contains("out.db already exists; pass --force to replace it"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");

    let out = env.run(&["backup", "out.db", "--force"]).ok();
    assert_eq!(out, "backed up 1 job to out.db\n");
    assert_eq!(jobs_at(&env, &file).keys().collect::<Vec<_>>(), ["a"]);
    assert!(hidden_files(&env).is_empty(), "{:?}", hidden_files(&env));
}

/// The copy keeps the attempt totals of deleted jobs: its metrics' counters are the
/// source's, not the smaller ones its remaining history alone would give.
#[test]
fn a_backup_keeps_the_attempt_counters_of_pruned_jobs() {
    let env = Env::new();
    env.enqueue(r#"{"id":"kept","command":"true"}"#);
    env.enqueue(r#"{"id":"pruned","command":"true"}"#);
    env.run(&["worker", "start", "--drain"]).ok();
    env.run(&["delete", "pruned"]).ok();
    let counters = attempt_counters(&env.run(&["metrics"]).ok());
    assert!(
        counters.contains(&("default".to_owned(), "completed".to_owned(), 2.0)),
        "{counters:?}"
    );
    env.run(&["backup", "copy.db"]).ok();
    let copy = env.dir().join("copy.db");
    assert_eq!(
        attempt_counters(&at(&env, &copy, &["metrics"]).ok()),
        counters
    );
}

#[test]
fn the_queue_itself_and_impossible_files_are_refused_leaving_nothing() {
    let env = Env::new();
    env.enqueue(r#"{"id":"a","command":"true"}"#);
    let db = env.db().to_str().unwrap().to_owned();
    // The queue or one of its files, under any spelling, even with --force: a usage error.
    for name in [db.clone(), "queue.db".into(), "./queue.db-wal".into()] {
        let r = env.run(&["backup", &name, "--force"]).code(2);
        assert!(r.stderr.contains("is the queue being backed up"), "{r:?}");
    }
    assert_eq!(env.list(&[]).len(), 1, "the queue was damaged");

    let r = env.run(&["backup", "no/such/dir/out.db"]).code(1);
    assert!(
        r.stderr.contains("directory no/such/dir does not exist"),
        "{r:?}"
    );
    std::fs::create_dir(env.dir().join("sub")).unwrap();
    let r = env.run(&["backup", "sub", "--force"]).code(1);
    assert!(r.stderr.contains("sub is a directory"), "{r:?}");
    assert!(hidden_files(&env).is_empty(), "{:?}", hidden_files(&env));

    // A missing queue is not created just to be copied.
    let missing = env.dir().join("missing.db");
    let r = at(&env, &missing, &["backup", "out.db"]).code(1);
    assert!(r.stderr.contains("no queue at"), "{r:?}");
    assert!(!missing.exists());
    assert!(!env.dir().join("out.db").exists());
}

#[test]
fn postgres_points_to_pg_dump_and_memory_is_refused() {
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.args([
        "--db",
        "postgres://bob:hunter2@127.0.0.1:9/queue",
        "backup",
        "nightly.db",
    ]);
    let r = run(cmd).code(1);
    assert!(
        r.stderr.contains(
            "pg_dump --format=custom --file=nightly.dump 'postgres://bob@127.0.0.1:9/queue'"
        ),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert!(r.stdout.is_empty());

    let mut cmd = env.bare();
    cmd.args(["--db", "memory:", "backup", "nightly.db"]);
    let r = run(cmd).code(1);
    assert!(r.stderr.contains("nothing to back up"), "{}", r.stderr);
    assert!(!env.dir().join("nightly.db").exists());
}
