//! `cancel ID` on a running job (CONTRACT v2, "Operating jobs and queues"): the request is
//! recorded, the job's worker (on this host or another) kills the command's whole process
//! group (TERM, grace, KILL) and the job ends `cancelled` through the guarded finish; a
//! cancel after the finish names the final state; a cancel racing an exit has one outcome.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{s, wait_until, Env, Proc};

/// Whether process `pid` exists and is not a zombie (an orphan waiting for init to reap it
/// has already died).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// The pids a job wrote, one per line, once it wrote `n` of them.
fn pids_in(path: &Path, n: usize) -> Vec<i32> {
    let mut pids = Vec::new();
    wait_until(Duration::from_secs(20), "the job to write its pids", || {
        pids = fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        pids.len() >= n
    });
    pids
}

/// A worker on this host, or on another one (a host id of its own: nothing it does can
/// rely on seeing the canceller's processes).
fn worker(env: &Env, host: Option<&str>) -> Proc {
    let mut args = vec!["--count", "2", "--poll-interval-ms", "20"];
    if let Some(host) = host {
        args.extend(["--host-id", host]);
    }
    let w = env.spawn_worker(&args);
    env.wait_for_workers(2);
    w
}

/// A job that runs a shell with a background child and a foreground child, all three
/// writing their pids first.
fn enqueue_family(env: &Env, name: &str) -> (String, std::path::PathBuf) {
    let pids = env.dir().join(format!("{name}.pids"));
    let p = pids.display();
    let command = format!(
        "echo $$ >> {p}; sh -c 'echo $$ >> {p}; exec sleep 30' & sleep 0.1; \
         sh -c 'echo $$ >> {p}; exec sleep 30'"
    );
    let json = serde_json::json!({ "command": command, "max_retries": 3 }).to_string();
    (env.enqueue(&json), pids)
}

/// Cancels `id` (running), then waits until it is `cancelled` and every pid is gone;
/// returns how long that took after `cancel` returned.
fn cancel_and_wait(env: &Env, id: &str, pids: &[i32]) -> Duration {
    let out = env.run(&["cancel", id]).ok();
    let returned = Instant::now();
    assert!(out.contains(&format!("cancelling {id}")), "{out}");
    let mut job = Value::Null;
    wait_until(Duration::from_secs(15), "the job to end cancelled", || {
        job = env.show(id);
        if s(&job, "state") == "processing" {
            assert_eq!(job["cancel_requested"], true, "{job}");
        }
        s(&job, "state") != "processing"
    });
    wait_until(
        Duration::from_secs(10),
        "the job's processes to die",
        || !pids.iter().any(|p| alive(*p)),
    );
    let took = returned.elapsed();
    assert_cancelled_while_running(&job);
    took
}

fn assert_cancelled_while_running(job: &Value) {
    assert_eq!(s(job, "state"), "cancelled", "{job}");
    assert_eq!(job["cancel_requested"], false, "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(job["last_error"], "cancelled while running", "{job}");
    assert!(job["next_run_at"].is_null(), "{job}");
    assert!(job["finished_at"].is_string(), "{job}");
    let history = job["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{job}");
    assert_eq!(history[0]["attempt"], 1, "{job}");
    assert_eq!(history[0]["error"], "cancelled while running", "{job}");
    assert_eq!(history[0]["exit_code"], job["exit_code"], "{job}");
    assert_eq!(history[0]["finished_at"], job["finished_at"], "{job}");
}

store_test! {
    fn cancel_stops_a_running_job_and_its_whole_process_group(env) {
        let _w = worker(&env, None);
        let (id, pid_file) = enqueue_family(&env, "family");
        let pids = pids_in(&pid_file, 3);
        assert_eq!(env.state(&id), "processing");
        assert_eq!(env.show(&id)["cancel_requested"], false);

        let took = cancel_and_wait(&env, &id, &pids);
        assert!(took < Duration::from_secs(3), "cancel took {took:?}");
        let job = env.show(&id);
        // Every process of the group died of SIGTERM: the shell has no exit code.
        assert!(job["exit_code"].is_null(), "{job}");
        assert!(!env.list(&[]).iter().any(|j| j["cancel_requested"] == true));

        // The finish has landed: cancelling again names the final state.
        let run = env.run(&["cancel", &id]).code(1);
        assert!(run.stderr.contains("it is cancelled"), "{}", run.stderr);
    }
}

store_test! {
    fn a_job_that_ignores_term_is_killed_after_the_grace_and_a_second_cancel_is_harmless(env) {
        let _w = worker(&env, None);
        let pid_file = env.dir().join("stubborn.pids");
        let command = format!(
            "trap '' TERM; echo $$ >> {p}; sh -c 'echo $$ >> {p}; exec sleep 30'",
            p = pid_file.display()
        );
        let id = env.enqueue(&serde_json::json!({ "command": command }).to_string());
        let pids = pids_in(&pid_file, 2);
        // A job in another state alongside it, never requested.
        env.enqueue(r#"{"command":"true","run_at":"2099-01-01T00:00:00Z"}"#);

        let first = env.run(&["cancel", &id]).ok();
        let sent = Instant::now();
        assert!(first.contains("cancelling"), "{first}");
        // Still processing: the TERM is ignored until the grace is over.
        let second = env.run(&["cancel", &id]).ok();
        assert!(second.contains("cancelling"), "{second}");
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "processing", "{job}");
        assert_eq!(job["cancel_requested"], true, "{job}");
        // Every job JSON says so, and only for this job.
        let listed = env.list(&[]);
        for j in &listed {
            assert_eq!(j["cancel_requested"], s(j, "id") == id, "{j}");
        }

        wait_until(Duration::from_secs(15), "the job to end cancelled", || {
            env.state(&id) != "processing"
        });
        let took = sent.elapsed();
        assert!(!pids.iter().any(|p| alive(*p)), "a process survived KILL");
        let job = env.show(&id);
        assert_cancelled_while_running(&job);
        assert!(job["exit_code"].is_null(), "{job}");
        // TERM was ignored, so only the KILL after the 2 s grace ended it.
        assert!(took >= Duration::from_secs(2), "ended after {took:?}, before the grace");
        assert!(took < Duration::from_secs(6), "ended after {took:?}");
    }
}

store_test! {
    fn cancel_after_the_finish_landed_names_the_final_state(env) {
        let done = env.enqueue(r#"{"command":"true"}"#);
        let dead = env.enqueue(r#"{"command":"exit 3","max_retries":1}"#);
        let w = worker(&env, None);
        wait_until(Duration::from_secs(20), "both jobs to finish", || {
            env.state(&done) == "completed" && env.state(&dead) == "dead"
        });
        w.kill();
        for (id, state) in [(&done, "completed"), (&dead, "dead")] {
            let before = env.show(id);
            let run = env.run(&["cancel", id]).code(1);
            assert!(run.stderr.contains(&format!("it is {state}")), "{}", run.stderr);
            assert_eq!(env.show(id), before, "a refused cancel changes nothing");
            assert_eq!(before["cancel_requested"], false);
        }
    }
}

store_test! {
    fn cancel_racing_a_job_that_exits_at_the_same_moment_has_one_outcome(env) {
        const JOBS: usize = 8;
        let _w = env.spawn_worker(&["--count", "8", "--poll-interval-ms", "20"]);
        env.wait_for_workers(8);
        let flags: Vec<_> = (0..JOBS).map(|i| env.dir().join(format!("race-{i}"))).collect();
        // Each job exits 0 the moment its flag file appears; the test creates the flag and
        // cancels at the same instant.
        let ids: Vec<String> = flags
            .iter()
            .map(|f| {
                let command = format!("while [ ! -e {} ]; do sleep 0.01; done", f.display());
                env.enqueue(&serde_json::json!({ "command": command }).to_string())
            })
            .collect();
        wait_until(Duration::from_secs(20), "every job to run", || {
            ids.iter().all(|id| env.state(id) == "processing")
        });
        // A `cancel` takes some tens of milliseconds to start and commit; staggering the
        // exits around that makes some cancels land first and some after the exit.
        let cancels: Vec<_> = ids
            .iter()
            .zip(&flags)
            .enumerate()
            .map(|(i, (id, flag))| {
                let cancel = env.spawn(env.cmd(&["cancel", id]));
                std::thread::sleep(Duration::from_millis(20 * i as u64));
                fs::write(flag, "").unwrap();
                cancel
            })
            .collect();
        let mut outcomes = Vec::new();
        for (id, cancel) in ids.iter().zip(cancels) {
            let run = cancel.wait(Duration::from_secs(20));
            wait_until(Duration::from_secs(15), "the job to finish", || {
                env.state(id) != "processing"
            });
            let job = env.show(id);
            assert_eq!(job["cancel_requested"], false, "{job}");
            assert_eq!(job["attempts"], 1, "{job}");
            assert_eq!(job["history"].as_array().map(Vec::len), Some(1), "{job}");
            match (run.code, s(&job, "state")) {
                (0, "cancelled") => {
                    assert_cancelled_while_running(&job);
                    // The exit may have landed first (0) or the TERM (no code).
                    assert!(job["exit_code"].is_null() || job["exit_code"] == 0, "{job}");
                }
                (1, "completed") => {
                    assert!(run.stderr.contains("it is completed"), "{}", run.stderr);
                    assert!(job["last_error"].is_null(), "{job}");
                    assert_eq!(job["exit_code"], 0, "{job}");
                }
                (code, state) => panic!("cancel exited {code} but the job is {state}: {job}"),
            }
            outcomes.push(s(&job, "state").to_owned());
        }
        eprintln!("race outcomes: {outcomes:?}");
    }
}

store_test! {
    /// The worker runs on "another host" (its own host id, as in multihost.rs): it learns
    /// of the cancel only through the store. Prints the latency of both paths, several
    /// samples each (`cargo test --test integration cli::cancel::cancel_latency -- --nocapture`).
    fn cancel_latency_on_the_same_host_and_from_another_host(env) {
        const SAMPLES: usize = 3;
        for host in [None, Some("other-host")] {
            let w = worker(&env, host);
            let mut took = Vec::new();
            for i in 0..SAMPLES {
                let (id, pid_file) = enqueue_family(&env, &format!("{}-{i}", host.unwrap_or("local")));
                let pids = pids_in(&pid_file, 3);
                let latency = cancel_and_wait(&env, &id, &pids);
                assert_eq!(
                    s(&env.show(&id), "worker_id").starts_with("other-host:"),
                    host.is_some()
                );
                took.push(latency);
            }
            w.kill();
            let where_ = host.map_or("same host", |_| "other host");
            let store = if env.target().to_string_lossy().starts_with("postgres") {
                "postgres"
            } else {
                "sqlite"
            };
            eprintln!("cancel latency ({store}, {where_}): {took:?}");
            for t in &took {
                assert!(*t < Duration::from_secs(3), "{where_}: {t:?}");
            }
        }
    }
}

store_test! {
    /// The dashboard's Cancel button is offered on a running job and stops it as `cancel`
    /// does.
    fn the_dashboard_cancels_a_running_job(env) {
        let _w = worker(&env, None);
        let (id, pid_file) = enqueue_family(&env, "dash");
        let pids = pids_in(&pid_file, 3);
        let dash = crate::cli::dashboard::start(&env, &[]);
        let page = dash.get(&format!("/job?id={id}"));
        assert!(page.body.contains(r#"action="/job/cancel""#), "{}", page.body);
        let csrf = dash.csrf();
        let ok = crate::support::http::Request::post_form(
            dash.addr,
            "/job/cancel",
            &[("id", &id), ("csrf", &csrf)],
        )
        .header("Origin", &dash.origin())
        .send();
        assert_eq!(ok.status, 303, "{ok:?}");
        wait_until(Duration::from_secs(15), "the job to end cancelled", || {
            env.state(&id) != "processing"
        });
        wait_until(Duration::from_secs(10), "the job's processes to die", || {
            !pids.iter().any(|p| alive(*p))
        });
        assert_cancelled_while_running(&env.show(&id));
    }
}
