//! Operating jobs (contract v2, "Operating jobs and queues"): `wait`, `retry`, `delete`,
//! `prune`, `dlq purge`, retention and id prefixes.

use std::time::{Duration, Instant};

use super::{wait_until, Env};

const FAST: &[&str] = &["--count", "2", "--poll-interval-ms", "20"];
const FUTURE: &str = "2099-01-01T00:00:00Z";

/// Jobs in every state a person meets: `done` completed (printing `hi`), `dead` dead, `later`
/// pending (due in 2099), `stopped` cancelled, `flaky` failed (retrying in 1000 s) and `busy`
/// processing under the returned worker, which the caller kills.
fn every_state(env: &Env) -> super::Proc {
    env.run(&["config", "set", "backoff-base", "1000"]).ok();
    env.enqueue(r#"{"id":"done","command":"echo hi"}"#);
    env.enqueue(r#"{"id":"dead","command":"echo oops >&2; exit 3","max_retries":1}"#);
    env.enqueue(r#"{"id":"flaky","command":"exit 1","max_retries":5}"#);
    env.enqueue(r#"{"id":"busy","command":"sleep 60"}"#);
    env.enqueue(&format!(
        r#"{{"id":"later","command":"true","run_at":"{FUTURE}"}}"#
    ));
    env.enqueue(&format!(
        r#"{{"id":"stopped","command":"true","run_at":"{FUTURE}"}}"#
    ));
    env.run(&["cancel", "stopped"]).ok();
    let worker = env.spawn_worker(FAST);
    wait_until(Duration::from_secs(30), "every state", || {
        let states: Vec<String> = ["done", "dead", "flaky", "busy"]
            .iter()
            .map(|id| env.state(id))
            .collect();
        states == ["completed", "dead", "failed", "processing"]
    });
    worker
}

/// Stops a worker at once (two SIGTERMs): its running jobs are killed and go back to
/// `pending`.
fn stop_now(worker: super::Proc) {
    use nix::sys::signal::Signal;
    worker.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    worker.signal(Signal::SIGTERM);
    worker.wait(Duration::from_secs(20));
}

store_test! {
    fn wait_returns_0_once_every_job_completed_and_1_when_one_did_not(env) {
        let ok = env.enqueue(r#"{"id":"ok","command":"sleep 0.3"}"#);
        let bad = env.enqueue(r#"{"id":"bad","command":"exit 3","max_retries":1}"#);
        let worker = env.spawn_worker(&["--count", "2"]);

        let run = env.run(&["wait", &ok, "--timeout", "30s"]).code(0);
        assert_eq!(run.stdout, "ok completed\n");
        let run = env.run(&["wait", &ok, &bad, "--timeout", "30"]).code(1);
        assert!(run.stdout.contains("ok completed\n"), "{}", run.stdout);
        assert!(run.stdout.contains("bad dead\n"), "{}", run.stdout);
        assert!(run.stderr.contains("bad (dead)"), "{}", run.stderr);
        worker.kill();

        let cancelled = env.enqueue(r#"{"command":"true","run_at":"2099-01-01T00:00:00Z"}"#);
        env.run(&["cancel", &cancelled]).ok();
        let run = env.run(&["wait", &cancelled]).code(1);
        assert!(run.stderr.contains("cancelled"), "{}", run.stderr);
    }
}

store_test! {
    fn wait_times_out_naming_the_jobs_still_running_and_refuses_unknown_ids(env) {
        let later = env.enqueue(r#"{"id":"later","command":"true","run_at":"2099-01-01T00:00:00Z"}"#);
        let start = Instant::now();
        let run = env.run(&["wait", &later, "--timeout", "1s"]).code(1);
        assert!(start.elapsed() >= Duration::from_secs(1));
        assert!(run.stderr.contains("timed out"), "{}", run.stderr);
        assert!(run.stderr.contains("later (pending)"), "{}", run.stderr);

        let run = env.run(&["wait", "nope", "--timeout", "30s"]).code(1);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);
        env.run(&["wait"]).code(2);
        env.run(&["wait", &later, "--timeout", "soon"]).code(2);
    }
}

store_test! {
    /// `retry ID…` requeues completed, failed, dead and cancelled jobs as `dlq retry` does,
    /// refuses pending and processing ones naming the state, handles each id on its own and
    /// exits 1 if any failed.
    fn retry_requeues_finished_jobs_and_refuses_waiting_or_running_ones(env) {
        let worker = every_state(&env);
        let run = env.run(&["retry", "busy"]).code(1);
        assert!(run.stderr.contains("it is processing"), "{}", run.stderr);
        let run = env.run(&["retry", "later"]).code(1);
        assert!(run.stderr.contains("it is pending"), "{}", run.stderr);
        assert_eq!(env.state("later"), "pending");
        let run = env.run(&["retry", "ghost"]).code(1);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);
        stop_now(worker);

        let dead_before = env.show("dead");
        let run = env.run(&["retry", "done", "dead", "later", "stopped", "ghost", "flaky"]).code(1);
        assert_eq!(
            run.stdout,
            "requeued done\nrequeued dead\nrequeued stopped\nrequeued flaky\n"
        );
        assert!(run.stderr.contains("later: it is pending"), "{}", run.stderr);
        assert!(run.stderr.contains("job ghost not found"), "{}", run.stderr);
        assert!(run.stderr.contains("2 of 6"), "{}", run.stderr);
        for id in ["done", "dead", "stopped", "flaky"] {
            let job = env.show(id);
            assert_eq!(job["state"], "pending", "{id}");
            assert_eq!(job["attempts"], 0, "{id}");
            assert_eq!(job["last_error"], serde_json::Value::Null, "{id}");
        }
        let dead_after = env.show("dead");
        assert_eq!(dead_after["history"], dead_before["history"], "history kept");
        assert_eq!(dead_after["command"], dead_before["command"]);
        assert_eq!(dead_after["max_retries"], 1);
        // Claimable at once, backoff or not.
        let flaky = env.show("flaky");
        assert!(flaky["next_run_at"].as_str() <= Some(flaky["updated_at"].as_str().unwrap_or("")));
        env.run(&["retry"]).code(2);
    }
}

store_test! {
    /// `delete ID…` removes jobs that are not processing with their output and history;
    /// a processing job or an unknown id fails (exit 1) without stopping the others.
    fn delete_removes_jobs_with_output_and_refuses_a_running_one(env) {
        let worker = every_state(&env);
        let run = env.run(&["delete", "busy"]).code(1);
        assert!(run.stderr.contains("it is processing"), "{}", run.stderr);
        assert_eq!(env.state("busy"), "processing");
        assert!(env.run(&["logs", "done"]).ok().contains("hi"));

        let run = env.run(&["delete", "done", "ghost", "dead", "busy", "later"]).code(1);
        assert_eq!(run.stdout, "deleted done\ndeleted dead\ndeleted later\n");
        assert!(run.stderr.contains("job ghost not found"), "{}", run.stderr);
        assert!(run.stderr.contains("busy: it is processing"), "{}", run.stderr);
        for gone in ["done", "dead", "later"] {
            let run = env.run(&["show", gone]).code(1);
            assert!(run.stderr.contains("not found"), "{}", run.stderr);
            env.run(&["logs", gone]).code(1);
        }
        // The id is free again, and a new job under it has none of the old output.
        env.enqueue(r#"{"id":"done","command":"true","run_at":"2099-01-01T00:00:00Z"}"#);
        let fresh = env.show("done");
        assert_eq!(fresh["history"], serde_json::json!([]));
        assert_eq!(fresh["attempts"], 0);
        let run = env.run(&["delete", "stopped", "flaky"]).code(0);
        assert_eq!(run.stdout, "deleted stopped\ndeleted flaky\n");
        stop_now(worker);
        assert_eq!(env.state("busy"), "pending");
        assert_eq!(env.run(&["delete", "busy"]).ok(), "deleted busy\n");
        env.run(&["delete"]).code(2);
    }
}

store_test! {
    /// `prune` deletes finished jobs older than `--older-than` (default: each state's
    /// retention), completed and cancelled unless `--state` says otherwise, and reports how
    /// many; `--dry-run` only counts.
    fn prune_deletes_only_the_chosen_finished_states_older_than_the_cutoff(env) {
        env.enqueue(r#"{"id":"done","command":"true"}"#);
        env.enqueue(r#"{"id":"done2","command":"true"}"#);
        env.enqueue(r#"{"id":"dead","command":"exit 1","max_retries":1}"#);
        env.enqueue(&format!(r#"{{"id":"stopped","command":"true","run_at":"{FUTURE}"}}"#));
        env.run(&["cancel", "stopped"]).ok();
        // Kept out of the drained queue: a drain waits for future jobs of its queues.
        env.enqueue(&format!(
            r#"{{"id":"later","command":"true","queue":"other","run_at":"{FUTURE}"}}"#
        ));
        env.run(&["worker", "start", "--drain", "--queue", "default"]).code(0);
        let count = |state: &str| env.list(&["--state", state]).len();
        assert_eq!((count("completed"), count("cancelled"), count("dead")), (2, 1, 1));

        assert_eq!(env.run(&["prune"]).ok(), "pruned 0 jobs\n", "7 days by default");
        assert_eq!(env.run(&["prune", "--older-than", "1h"]).ok(), "pruned 0 jobs\n");
        assert_eq!(
            env.run(&["prune", "--older-than", "0", "--dry-run"]).ok(),
            "would prune 3 jobs\n"
        );
        assert_eq!((count("completed"), count("cancelled")), (2, 1), "dry run");
        assert_eq!(
            env.run(&["prune", "--older-than", "0", "--state", "completed"]).ok(),
            "pruned 2 jobs\n"
        );
        assert_eq!((count("completed"), count("cancelled"), count("dead")), (0, 1, 1));
        let run = env.run(&["prune", "--state", "pending"]).code(2);
        assert!(run.stderr.contains("completed"), "{}", run.stderr);
        env.run(&["prune", "--state", "failed"]).code(2);
        env.run(&["prune", "--older-than", "soon"]).code(2);

        // Retention 0 keeps a state forever unless --older-than is given.
        env.run(&["config", "set", "retention-cancelled", "0"]).ok();
        let run = env.run(&["prune", "--state", "cancelled"]).code(0);
        assert_eq!(run.stdout, "pruned 0 jobs\n");
        assert!(run.stderr.contains("retention"), "{}", run.stderr);
        assert_eq!(
            env.run(&["prune", "--older-than", "0", "--state", "dead", "--state", "cancelled"]).ok(),
            "pruned 2 jobs\n"
        );
        assert_eq!(env.state("later"), "pending", "waiting jobs are never pruned");

        // The default age is the retention setting.
        env.run(&["config", "set", "retention-completed", "1h"]).ok();
        env.enqueue(r#"{"id":"done3","command":"true"}"#);
        env.run(&["worker", "start", "--drain", "--queue", "default"]).code(0);
        assert_eq!(env.run(&["prune"]).ok(), "pruned 0 jobs\n");
        env.run(&["config", "set", "retention-completed", "1s"]).ok();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(env.run(&["prune", "--dry-run"]).ok(), "would prune 1 jobs\n");
        assert_eq!(env.run(&["prune"]).ok(), "pruned 1 jobs\n");
        env.run(&["show", "done3"]).code(1);
    }
}

store_test! {
    /// `dlq purge` deletes every dead job (`--dry-run` counts them) and nothing else.
    fn dlq_purge_deletes_every_dead_job_and_nothing_else(env) {
        env.enqueue(r#"{"id":"d1","command":"exit 1","max_retries":1}"#);
        env.enqueue(r#"{"id":"d2","command":"exit 2","max_retries":1}"#);
        env.enqueue(r#"{"id":"ok","command":"true"}"#);
        env.run(&["worker", "start", "--drain"]).code(0);
        assert_eq!(env.run(&["dlq", "purge", "--dry-run"]).ok(), "would purge 2 jobs\n");
        assert_eq!(env.list(&["--state", "dead"]).len(), 2);
        assert_eq!(env.run(&["dlq", "purge"]).ok(), "purged 2 jobs\n");
        assert_eq!(env.list(&["--state", "dead"]).len(), 0);
        assert_eq!(env.state("ok"), "completed");
        assert_eq!(env.run(&["dlq", "purge"]).ok(), "purged 0 jobs\n");
    }
}

store_test! {
    /// A running worker deletes what the retention settings allow: completed jobs older
    /// than `retention-completed`, while `retention-dead` 0 keeps the dead ones.
    fn running_workers_prune_what_retention_allows(env) {
        env.run(&["config", "set", "retention-completed", "1s"]).ok();
        for i in 0..5 {
            env.enqueue(&format!(r#"{{"id":"ok-{i}","command":"true"}}"#));
        }
        env.enqueue(r#"{"id":"dead","command":"exit 1","max_retries":1}"#);
        env.run(&["worker", "start", "--drain"]).code(0);
        assert_eq!(env.list(&["--state", "completed"]).len(), 5);
        std::thread::sleep(Duration::from_millis(1100));
        // A worker's first retention pass runs as it starts.
        let _worker = env.spawn_worker(FAST);
        wait_until(Duration::from_secs(20), "retention to prune", || {
            env.list(&["--state", "completed"]).is_empty()
        });
        assert_eq!(env.state("dead"), "dead", "retention-dead 0 keeps the DLQ");
    }
}

store_test! {
    /// The retention keys take durations, print seconds, and refuse bad values (exit 2).
    fn retention_settings_take_durations_and_print_seconds(env) {
        assert_eq!(env.run(&["config", "get", "retention-completed"]).ok(), "604800\n");
        assert_eq!(env.run(&["config", "get", "retention_cancelled"]).ok(), "604800\n");
        assert_eq!(env.run(&["config", "get", "retention-dead"]).ok(), "0\n");
        env.run(&["config", "set", "retention-completed", "2d"]).ok();
        assert_eq!(env.run(&["config", "get", "retention-completed"]).ok(), "172800\n");
        env.run(&["config", "set", "retention-dead", "1h30m"]).ok();
        assert_eq!(env.run(&["config", "get", "retention-dead"]).ok(), "5400\n");
        env.run(&["config", "set", "retention-dead", "-1"]).code(2);
        env.run(&["config", "set", "retention-cancelled", "soon"]).code(2);
        assert_eq!(env.run(&["config", "get", "retention-dead"]).ok(), "5400\n");
        let list = env.run(&["config", "list"]).ok();
        assert!(list.contains("retention-cancelled = 604800"), "{list}");
    }
}

store_test! {
    /// `show`, `logs`, `cancel`, `retry`, `delete` and `wait` take a unique prefix of an id
    /// when no job has exactly that id, saying what it resolved to; an ambiguous prefix
    /// fails listing the matches; `%` and `_` are plain characters.
    fn id_arguments_take_a_unique_prefix(env) {
        for id in ["job-alpha-1", "job-alpha-2", "job-beta", "ab", "abc", "x%y", "x_y"] {
            env.enqueue(&format!(r#"{{"id":"{id}","command":"true","run_at":"{FUTURE}"}}"#));
        }
        let run = env.run(&["show", "job-b"]).code(0);
        assert_eq!(run.stderr, "resolved job-b to job-beta\n");
        assert_eq!(crate::cli::s(&serde_json::from_str(&run.stdout).expect("json"), "id"), "job-beta");

        let run = env.run(&["show", "job-alpha"]).code(1);
        assert!(run.stderr.contains("ambiguous"), "{}", run.stderr);
        assert!(run.stderr.contains("job-alpha-1, job-alpha-2"), "{}", run.stderr);
        assert_eq!(run.stdout, "");
        let run = env.run(&["show", "job-x"]).code(1);
        assert!(run.stderr.contains("job job-x not found"), "{}", run.stderr);

        // An exact id wins over being a prefix of another.
        let run = env.run(&["show", "ab"]).code(0);
        assert_eq!(run.stderr, "");
        assert_eq!(crate::cli::s(&serde_json::from_str(&run.stdout).expect("json"), "id"), "ab");
        let run = env.run(&["show", "x%"]).code(0);
        assert!(run.stderr.contains("to x%y"), "{}", run.stderr);
        let run = env.run(&["show", "x_"]).code(0);
        assert!(run.stderr.contains("to x_y"), "{}", run.stderr);
        env.run(&["show", "x"]).code(1);

        let run = env.run(&["logs", "job-b"]).code(0);
        assert!(run.stderr.contains("resolved job-b to job-beta"), "{}", run.stderr);
        let run = env.run(&["cancel", "job-b"]).code(0);
        assert_eq!(run.stdout, "cancelled job-beta\n");
        let run = env.run(&["wait", "job-b", "--timeout", "5s"]).code(1);
        assert!(run.stderr.contains("resolved job-b to job-beta"), "{}", run.stderr);
        assert!(run.stdout.contains("job-beta cancelled"), "{}", run.stdout);
        let run = env.run(&["retry", "job-b"]).code(0);
        assert_eq!(run.stdout, "requeued job-beta\n");
        let run = env.run(&["delete", "job-b", "job-alpha"]).code(1);
        assert_eq!(run.stdout, "deleted job-beta\n");
        assert!(run.stderr.contains("ambiguous"), "{}", run.stderr);
        env.run(&["show", "job-beta"]).code(1);
    }
}
