//! Versions of the store (docs/CLI.md): a store migrated by a newer queuectl (one whose
//! migration table records a version this build does not know) is refused by every
//! command, naming both versions, and a running worker that finds its store migrated past
//! it stops claiming, lets its running job finish, and exits 1.

use std::time::Duration;

use super::{wait_until, Env};

/// A version no build of queuectl has (Diesel's digits of a migration directory's date).
const FUTURE: &str = "99991231000000";

/// This build's newest migration version for the env's store, from the migration
/// directories the binary embeds (`2026-11-28-000000_name` → `20261128000000`).
fn ours(env: &Env) -> String {
    let dialect = if env.pg.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    std::fs::read_dir(&dir)
        .expect("migrations dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .map(|name| {
            let stamp = name.split('_').next().unwrap_or_default();
            stamp
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .max()
        .expect("at least one migration")
}

fn migrate_past(env: &Env) {
    env.execute_sql(&format!(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('{FUTURE}')"
    ));
}

fn undo_migrate_past(env: &Env) {
    env.execute_sql(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{FUTURE}'"
    ));
}

#[track_caller]
fn assert_names_both_versions(stderr: &str, ours: &str) {
    assert!(
        stderr.contains("newer queuectl") && stderr.contains(FUTURE) && stderr.contains(ours),
        "stderr does not name both versions ({FUTURE}, ours {ours}):\n{stderr}"
    );
}

store_test!(
    fn every_command_refuses_a_store_migrated_by_a_newer_queuectl(env) {
        let id = env.enqueue(r#"{"command":"true"}"#);
        migrate_past(&env);
        let ours = ours(&env);
        let enqueue = r#"{"command":"echo new"}"#;
        for args in [
            vec!["init"],
            vec!["status"],
            vec!["status", "--json"],
            vec!["list"],
            vec!["show", &id],
            vec!["logs", &id],
            vec!["enqueue", enqueue],
            vec!["cancel", &id],
            vec!["dlq", "list"],
            vec!["config", "list"],
            vec!["config", "set", "max-retries", "5"],
            vec!["worker", "start", "--drain"],
            vec!["worker", "stop"],
        ] {
            let run = env.run(&args);
            assert_eq!(run.code, 1, "{args:?}: {run:#?}");
            assert!(run.stdout.is_empty(), "{args:?} printed {:?}", run.stdout);
            assert_names_both_versions(&run.stderr, &ours);
            assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        }
        // Nothing was written: without the foreign version the store is as it was.
        undo_migrate_past(&env);
        let jobs = env.list(&[]);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(env.state(&id), "pending");
        assert_eq!(env.run(&["config", "get", "max-retries"]).ok().trim(), "3");
    }
);

store_test!(
    fn a_running_worker_stops_claiming_finishes_its_job_and_exits_1_once_migrated_past(env) {
        let worker = env.spawn_worker(&["--poll-interval-ms", "50"]);
        env.wait_for_workers(1);
        // The first job runs until the test lets it go; the second waits behind it.
        let running = env.enqueue(
            r#"{"command":"while [ ! -e go ]; do sleep 0.05; done", "priority": 1}"#,
        );
        wait_until(Duration::from_secs(20), "the first job to run", || {
            env.state(&running) == "processing"
        });
        let waiting = env.enqueue(r#"{"command":"true"}"#);

        migrate_past(&env);
        wait_until(Duration::from_secs(20), "the worker to notice", || {
            worker.stderr().contains("migrated past this worker")
        });
        std::fs::write(env.dir().join("go"), "").expect("let the job finish");
        let run = worker.wait(Duration::from_secs(20));
        assert_eq!(run.code, 1, "{run:#?}");
        assert_names_both_versions(&run.stderr, &ours(&env));

        undo_migrate_past(&env);
        assert_eq!(env.state(&running), "completed", "the running job finished");
        assert_eq!(env.state(&waiting), "pending", "nothing more was claimed");
        assert_eq!(env.status()["workers"], 0, "the worker deregistered");
    }
);
