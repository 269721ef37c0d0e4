//! Operating jobs (contract v2, "Operating jobs and queues"): `wait` so far.

use std::time::{Duration, Instant};

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
