//! "Dependencies" (contract v2) through the real binary: `depends_on` and `--after`, a
//! dependant that runs only after its parents completed, the transitive cancel when a
//! parent cannot complete, what enqueue refuses, `retry` of a cancelled dependant, and
//! `--drain` leaving waiting jobs aside.

use std::time::Duration;

use serde_json::{json, Value};

use super::{s, Env};

/// Runs every due job with a draining worker of `count` slots; it must exit 0.
fn drain(env: &Env, count: &str) {
    env.spawn_worker(&["--count", count, "--drain"])
        .wait(Duration::from_secs(60))
        .code(0);
}

fn enqueue(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["enqueue"];
    all.extend_from_slice(args);
    env.run(&all).ok().trim().to_owned()
}

fn ids(jobs: &[Value]) -> Vec<&str> {
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap_or_default())
        .collect()
}

store_test! {
    fn a_dependant_runs_only_after_every_parent_completed(env) {
        // Each parent leaves a marker when it ends; the dependant fails (and with one
        // attempt, dies) unless both are there when it starts.
        let a = enqueue(&env, &["--", "sh", "-c", "sleep 0.4; touch a.done"]);
        let b = enqueue(&env, &["--", "sh", "-c", "sleep 0.2; touch b.done"]);
        let c = enqueue(
            &env,
            &["--after", &a, "--after", &b, "--max-retries", "1", "--", "sh", "-c",
              "test -f a.done && test -f b.done"],
        );
        let job = env.show(&c);
        assert_eq!(s(&job, "state"), "pending");
        assert_eq!(job["depends_on"], json!([a, b]));
        drain(&env, "3");
        for id in [&a, &b, &c] {
            assert_eq!(env.state(id), "completed", "{:#}", env.show(id));
        }
    }
}

store_test! {
    fn a_dead_parent_cancels_its_dependants_transitively(env) {
        let a = env.enqueue(r#"{"id":"a","command":"exit 3","max_retries":1}"#);
        let b = enqueue(&env, &["--after", &a, "--", "touch", "b.ran"]);
        let c = env.enqueue(&format!(r#"{{"id":"c","command":"touch c.ran","depends_on":["{b}"]}}"#));
        let other = env.enqueue(r#"{"command":"true"}"#);
        drain(&env, "2");
        assert_eq!(env.state(&a), "dead");
        let job = env.show(&b);
        assert_eq!(s(&job, "state"), "cancelled");
        assert_eq!(s(&job, "last_error"), "dependency a ended dead");
        let job = env.show(&c);
        assert_eq!(s(&job, "state"), "cancelled");
        assert_eq!(s(&job, "last_error"), format!("dependency {b} was cancelled"));
        assert_eq!(env.state(&other), "completed");
        assert!(!env.dir().join("b.ran").exists() && !env.dir().join("c.ran").exists());
    }
}

store_test! {
    fn cancelling_or_deleting_a_waiting_parent_cancels_its_dependants(env) {
        let p = env.enqueue(r#"{"id":"p","command":"true","run_at":"2099-01-01T00:00:00Z"}"#);
        let c = enqueue(&env, &["--after", &p, "--", "true"]);
        env.run(&["cancel", &p]).ok();
        let job = env.show(&c);
        assert_eq!(s(&job, "state"), "cancelled");
        assert_eq!(s(&job, "last_error"), "dependency p was cancelled");

        let q = env.enqueue(r#"{"id":"q","command":"true","run_at":"2099-01-01T00:00:00Z"}"#);
        let d = enqueue(&env, &["--after", &q, "--", "true"]);
        env.run(&["delete", &q]).ok();
        let job = env.show(&d);
        assert_eq!(s(&job, "state"), "cancelled");
        assert_eq!(s(&job, "last_error"), "dependency q was deleted before it completed");
    }
}

store_test! {
    fn enqueue_refuses_parents_it_cannot_wait_for_and_stores_nothing(env) {
        env.enqueue(r#"{"id":"dead","command":"exit 1","max_retries":1}"#);
        env.enqueue(r#"{"id":"gone","command":"true","run_at":"2099-01-01T00:00:00Z"}"#);
        env.run(&["cancel", "gone"]).ok();
        drain(&env, "1");
        assert_eq!(env.state("dead"), "dead");
        let before = env.list(&[]).len();
        for (json, parent) in [
            (r#"{"command":"true","depends_on":["nope"]}"#, "nope"),
            (r#"{"command":"true","depends_on":["dead"]}"#, "dead"),
            (r#"{"command":"true","depends_on":["gone"]}"#, "gone"),
            (r#"{"id":"self","command":"true","depends_on":["self"]}"#, "self"),
        ] {
            let run = env.run(&["enqueue", json]).code(1);
            assert!(run.stderr.contains(parent), "{run:#?}");
        }
        let run = env.run(&["enqueue", "--after", "nope", "--", "true"]).code(1);
        assert!(run.stderr.contains("nope"), "{run:#?}");
        // A cycle within a batch: the first names a job that comes after it.
        let cycle = "{\"id\":\"x\",\"command\":\"true\",\"depends_on\":[\"y\"]}\n\
                     {\"id\":\"y\",\"command\":\"true\",\"depends_on\":[\"x\"]}\n";
        std::fs::write(env.dir().join("cycle.jsonl"), cycle).expect("write");
        let run = env.run(&["enqueue", "--file", "cycle.jsonl"]).code(1);
        assert!(run.stderr.contains('y'), "{run:#?}");
        assert_eq!(env.list(&[]).len(), before, "something was stored");

        // Naming an earlier job of the same batch is fine.
        let chain = "{\"id\":\"one\",\"command\":\"true\"}\n\
                     {\"id\":\"two\",\"command\":\"true\",\"depends_on\":[\"one\"]}\n";
        std::fs::write(env.dir().join("chain.jsonl"), chain).expect("write");
        env.run(&["enqueue", "--file", "chain.jsonl"]).ok();
        drain(&env, "2");
        assert_eq!(env.state("two"), "completed");
    }
}

store_test! {
    fn a_cancelled_dependant_is_retried_only_once_its_parent_can_complete(env) {
        let p = env.enqueue(r#"{"id":"p","command":"test -f ok","max_retries":1}"#);
        let c = enqueue(&env, &["--after", &p, "--", "true"]);
        drain(&env, "1");
        assert_eq!(env.state(&c), "cancelled");
        let run = env.run(&["retry", &c]).code(1);
        assert!(run.stderr.contains("dependency p is dead"), "{run:#?}");
        assert_eq!(env.state(&c), "cancelled");

        std::fs::write(env.dir().join("ok"), "").expect("write");
        env.run(&["retry", &p]).ok();
        env.run(&["retry", &c]).ok();
        let job = env.show(&c);
        assert_eq!(s(&job, "state"), "pending");
        assert_eq!(job["last_error"], Value::Null);
        drain(&env, "2");
        assert_eq!(env.state(&p), "completed");
        assert_eq!(env.state(&c), "completed");
    }
}

store_test! {
    fn drain_leaves_jobs_waiting_on_dependencies_aside(env) {
        // The parent sits in a paused queue: its dependant can only wait, and a draining
        // worker does not wait for either.
        env.run(&["queue", "pause", "held"]).ok();
        let p = env.enqueue(r#"{"id":"p","command":"true","queue":"held"}"#);
        let c = enqueue(&env, &["--after", &p, "--", "true"]);
        let free = env.enqueue(r#"{"command":"true"}"#);
        drain(&env, "1");
        assert_eq!(env.state(&free), "completed");
        assert_eq!(env.state(&c), "pending");
        let pending = env.list(&["--state", "pending"]);
        assert_eq!(ids(&pending), [p.as_str(), c.as_str()]);
        env.run(&["queue", "resume", "held"]).ok();
        drain(&env, "1");
        assert_eq!(env.state(&c), "completed");
    }
}
