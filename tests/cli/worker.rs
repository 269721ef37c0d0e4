//! Workers through the real binary: execution, retries and backoff, the DLQ, signals,
//! crash recovery, `worker stop`, timeouts, and persistence across restarts.
//!
//! Time-dependent rules are asserted from the timestamps the store recorded (with a
//! tolerance for polling), never from the test's own clock.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use super::enqueue::millis;
use super::inspect::assert_job_shape;
use super::{run, s, wait_until, Env, Proc};

/// Long enough for any single step on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(30);
const FAST_POLL: &[&str] = &["--poll-interval-ms", "20"];

impl Env {
    fn worker(&self, extra: &[&str]) -> Proc {
        let mut args = FAST_POLL.to_vec();
        args.extend_from_slice(extra);
        self.spawn_worker(&args)
    }

    /// Runs `worker start --drain` to completion and asserts it exited 0.
    fn drain(&self, extra: &[&str]) {
        let mut args = vec!["--drain"];
        args.extend_from_slice(extra);
        let run = self.worker(&args).wait(STEP);
        assert_eq!(run.code, 0, "drain worker failed: {run:#?}");
    }

    fn wait_state(&self, id: &str, state: &str) -> Value {
        let mut last = Value::Null;
        wait_until(STEP, &format!("job {id} to be {state}"), || {
            last = self.show(id);
            s(&last, "state") == state
        });
        last
    }

    fn path(&self, name: &str) -> String {
        self.dir().join(name).display().to_string()
    }
}

fn pid_gone(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => true,
        // Reparented to init and not reaped yet counts as gone.
        _ => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true),
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn history(job: &Value) -> &Vec<Value> {
    job["history"].as_array().expect("history array")
}

store_test! {
    fn a_job_runs_once_and_show_logs_and_status_report_it(env) {
        let id = env.enqueue(r#"{"command":"echo out; echo err >&2"}"#);
        env.drain(&[]);
        let job = env.show(&id);
        assert_job_shape(&job);
        assert_eq!(s(&job, "state"), "completed");
        assert_eq!(job["attempts"], 1);
        assert_eq!(job["exit_code"], 0);
        assert_eq!(job["last_error"], Value::Null);
        assert_eq!(job["next_run_at"], Value::Null);
        assert!(job["worker_id"].is_string(), "{job}");
        assert_eq!(s(&job, "stdout"), "out\n");
        assert_eq!(s(&job, "stderr"), "err\n");
        let h = history(&job);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0]["attempt"], 1);
        assert_eq!(h[0]["exit_code"], 0);
        assert_eq!(h[0]["error"], Value::Null);
        assert_eq!(h[0]["started_at"], job["started_at"]);
        assert_eq!(h[0]["finished_at"], job["finished_at"]);

        let logs = env.run(&["logs", &id]).ok();
        assert_eq!(logs, "==> stdout <==\nout\n==> stderr <==\nerr\n");
        assert_eq!(env.run(&["logs", &id, "--stdout"]).ok(), "out\n");
        assert_eq!(env.run(&["logs", &id, "--stderr"]).ok(), "err\n");
        assert_eq!(env.status()["completed"], 1);
        assert_eq!(env.status()["workers"], 0, "a drained worker deregisters");
    }
}

store_test! {
    fn claim_order_is_priority_then_run_at_then_insertion(env) {
        let log = env.path("order.log");
        let job = |id: &str, priority: i32, run_at: &str| {
            env.enqueue(&format!(
                r#"{{"id":"{id}","command":"echo {id} >> '{log}'","priority":{priority},"run_at":"{run_at}"}}"#
            ));
        };
        job("low", -1, "2001-01-01T00:00:00Z");
        job("fifo-1", 0, "2001-01-01T00:00:00Z");
        job("fifo-2", 0, "2001-01-01T00:00:00Z");
        job("early", 0, "2000-01-01T00:00:00Z");
        job("high", 5, "2001-01-01T00:00:00Z");
        env.drain(&["--count", "1"]);
        let order = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            order.lines().collect::<Vec<_>>(),
            ["high", "early", "fifo-1", "fifo-2", "low"]
        );
    }
}

store_test! {
    fn failures_back_off_two_then_four_seconds_then_go_dead(env) {
        let id = env.enqueue(r#"{"command":"echo failing >&2; exit 3","max_retries":3}"#);
        let mut worker = env.worker(&[]);
        let failed = env.wait_state(&id, "failed");
        assert_eq!(failed["attempts"], 1);
        assert_eq!(failed["exit_code"], 3);
        assert!(s(&failed, "last_error").contains('3'), "{failed}");
        // next_run_at = finish + base^1 seconds, exactly as stored.
        let planned = millis(s(&failed, "next_run_at")) - millis(s(&failed, "finished_at"));
        assert_eq!(planned, 2000, "{failed}");

        let dead = env.wait_state(&id, "dead");
        assert!(worker.is_running());
        assert_eq!(dead["attempts"], 3);
        assert_eq!(dead["next_run_at"], Value::Null);
        let h = history(&dead);
        assert_eq!(h.len(), 3, "{dead}");
        // The gaps between one attempt's end and the next one's start: never early, and late
        // by at most the runtime's forced claim period (1 s) plus scheduling noise.
        for (k, expected) in [(1usize, 2000i64), (2, 4000)] {
            let gap = millis(s(&h[k], "started_at")) - millis(s(&h[k - 1], "finished_at"));
            println!("backoff after attempt {k}: {gap} ms (expected {expected} ms)");
            assert!(
                (expected..expected + 2500).contains(&gap),
                "gap after attempt {k} was {gap} ms, expected {expected} ms: {dead}"
            );
        }
        for (i, entry) in h.iter().enumerate() {
            assert_eq!(entry["attempt"], i + 1);
            assert_eq!(entry["exit_code"], 3);
            assert!(entry["error"].is_string());
        }
    }
}

store_test! {
    fn max_retries_zero_behaves_as_one_and_the_dlq_retries_with_history_kept(env) {
        let id = env.enqueue(r#"{"id":"doomed","command":"exit 7","max_retries":0}"#);
        let other = env.enqueue(r#"{"id":"doomed-2","command":"exit 7","max_retries":1}"#);
        env.drain(&[]);
        let dead = env.show(&id);
        assert_eq!(s(&dead, "state"), "dead");
        assert_eq!(dead["attempts"], 1);
        assert_eq!(env.state(&other), "dead");

        let listed = env.run(&["dlq", "list", "--json"]).json();
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|j| s(j, "id"))
            .collect();
        assert_eq!(ids, ["doomed", "doomed-2"]);
        let table = env.run(&["dlq", "list"]).ok();
        assert!(
            table.contains("doomed") && table.contains("dead"),
            "{table}"
        );

        let cancel = env.run(&["cancel", &id]).code(1);
        assert!(cancel.stderr.contains("dead"), "{}", cancel.stderr);

        env.run(&["dlq", "retry", &id]).ok();
        let retried = env.show(&id);
        assert_eq!(s(&retried, "state"), "pending");
        assert_eq!(retried["attempts"], 0);
        assert_eq!(retried["last_error"], Value::Null);
        assert_eq!(s(&retried, "command"), "exit 7");
        assert_eq!(retried["max_retries"], 0);
        assert_eq!(history(&retried).len(), 1, "history is kept");
        let again = env.run(&["dlq", "retry", &id]).code(1);
        assert!(again.stderr.contains("pending"), "{}", again.stderr);

        let out = env.run(&["dlq", "retry", "--all"]).ok();
        assert!(out.contains('1'), "{out}");
        assert_eq!(env.state(&other), "pending");
        assert_eq!(
            env.run(&["dlq", "list", "--json"]).json(),
            Value::Array(vec![])
        );
    }
}

store_test! {
    fn success_after_a_failure_clears_last_error_but_history_keeps_it(env) {
        env.run(&["config", "set", "backoff-base", "1"]).ok();
        let flag = env.path("flag");
        let id = env.enqueue(&format!(
            r#"{{"command":"test -e '{flag}' || {{ touch '{flag}'; exit 1; }}"}}"#
        ));
        env.drain(&[]);
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "completed");
        assert_eq!(job["attempts"], 2);
        assert_eq!(job["last_error"], Value::Null);
        assert_eq!(job["exit_code"], 0);
        let h = history(&job);
        assert!(
            h[0]["error"].is_string() && h[1]["error"].is_null(),
            "{job}"
        );
        // backoff-base 1 means a constant 1 s.
        let gap = millis(s(&h[1], "started_at")) - millis(s(&h[0], "finished_at"));
        assert!((1000..2500).contains(&gap), "gap {gap} ms");
    }
}

store_test! {
    fn not_found_commands_and_signals_are_failures(env) {
        let missing = env.enqueue(r#"{"command":"no-such-command-queuectl","max_retries":1}"#);
        let killed = env.enqueue(r#"{"command":"kill -9 $$","max_retries":1}"#);
        env.drain(&[]);
        let m = env.show(&missing);
        assert_eq!(s(&m, "state"), "dead");
        assert_eq!(m["exit_code"], 127);
        let k = env.show(&killed);
        assert_eq!(s(&k, "state"), "dead");
        assert!(k["last_error"].is_string(), "{k}");
    }
}

store_test! {
    fn timeout_kills_the_whole_process_group_with_exit_124(env) {
        let grandchild = env.dir().join("grandchild.pid");
        let id = env.enqueue(&format!(
            r#"{{"command":"sh -c 'sleep 60' & echo $! > '{}'; sleep 60","timeout":1,"max_retries":1}}"#,
            grandchild.display()
        ));
        env.drain(&[]);
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "dead");
        assert_eq!(job["exit_code"], 124);
        assert!(s(&job, "last_error").contains("timeout after 1s"), "{job}");
        let pid = read_pid(&grandchild).expect("the job wrote its grandchild's pid");
        wait_until(
            Duration::from_secs(10),
            "the grandchild to be killed",
            || pid_gone(pid),
        );
        let ran = millis(s(&job, "finished_at")) - millis(s(&job, "started_at"));
        assert!(
            ran < 10_000,
            "the timeout did not cut the 60 s job short: {ran} ms"
        );
    }
}

store_test! {
    fn queue_filter_and_drain_leave_other_queues_alone(env) {
        let a = env.enqueue(r#"{"command":"true","queue":"a"}"#);
        let b = env.enqueue(r#"{"command":"true","queue":"b"}"#);
        env.drain(&["--queue", "a"]);
        assert_eq!(env.state(&a), "completed");
        assert_eq!(env.state(&b), "pending");
        env.drain(&["--queue", "a", "--queue", "b"]);
        assert_eq!(env.state(&b), "completed");
    }
}

store_test! {
    fn drain_waits_for_future_dated_jobs(env) {
        let id = env.enqueue(r#"{"command":"true"}"#);
        let later = env
            .run(&["enqueue", r#"{"command":"true"}"#, "--delay", "2s"])
            .ok()
            .trim()
            .to_owned();
        env.drain(&[]);
        assert_eq!(env.state(&id), "completed");
        let job = env.show(&later);
        assert_eq!(s(&job, "state"), "completed");
        assert!(
            millis(s(&job, "started_at")) >= millis(s(&job, "run_at")),
            "{job}"
        );
    }
}

store_test! {
    fn status_counts_live_worker_slots(env) {
        let _three = env.worker(&["--count", "3"]);
        env.wait_for_workers(3);
        let two = env.worker(&["--count", "2"]);
        env.wait_for_workers(5);
        two.kill();
        env.wait_for_workers(3);
        assert!(env.run(&["status"]).ok().ends_with("workers: 3\n"));
    }
}

store_test! {
    fn exactly_once_with_two_worker_processes_of_four_slots(env) {
        const JOBS: usize = 200;
        let marker = env.path("marker");
        let batch: String = (0..JOBS)
            .map(|i| {
                format!("{{\"id\":\"m{i}\",\"command\":\"sleep 0.02; echo m{i} >> '{marker}'\"}}\n")
            })
            .collect();
        env.run_stdin(&["enqueue", "-"], &batch).ok();
        let started = Instant::now();
        let w1 = env.worker(&["--count", "4", "--drain"]);
        let w2 = env.worker(&["--count", "4", "--drain"]);
        let r1 = w1.wait(Duration::from_secs(120));
        let r2 = w2.wait(Duration::from_secs(120));
        println!("{JOBS} jobs on 2×4 slots in {:?}", started.elapsed());
        assert_eq!((r1.code, r2.code), (0, 0), "{r1:#?}\n{r2:#?}");

        let text = std::fs::read_to_string(&marker).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), JOBS, "every job ran exactly once");
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), JOBS, "no job ran twice");
        let jobs = env.list(&[]);
        assert!(jobs
            .iter()
            .all(|j| s(j, "state") == "completed" && j["attempts"] == 1));
        let mut workers: Vec<&str> = jobs.iter().map(|j| s(j, "worker_id")).collect();
        workers.sort_unstable();
        workers.dedup();
        assert_eq!(workers.len(), 2, "both processes claimed jobs");
        assert_eq!(env.status()["processing"], 0);
    }
}

store_test! {
    fn sigterm_finishes_the_current_job_and_leaves_the_next_pending(env) {
        let started = env.path("started");
        let first = env.enqueue(&format!(
            r#"{{"command":"touch '{started}'; sleep 1; echo finished"}}"#
        ));
        let worker = env.worker(&["--count", "1"]);
        wait_until(STEP, "the first job to start", || {
            Path::new(&started).exists()
        });
        let second = env.enqueue(r#"{"command":"true"}"#);
        worker.signal(Signal::SIGTERM);
        let run = worker.wait(STEP);
        assert_eq!(run.code, 0, "{run:#?}");
        let job = env.show(&first);
        assert_eq!(s(&job, "state"), "completed", "{job}");
        assert_eq!(s(&job, "stdout"), "finished\n");
        let next = env.show(&second);
        assert_eq!(s(&next, "state"), "pending");
        assert_eq!(next["attempts"], 0);
        assert_eq!(env.status()["workers"], 0);
    }
}

store_test! {
    fn ctrl_c_to_the_terminal_process_group_does_not_reach_the_job(env) {
        let started = env.path("started");
        let id = env.enqueue(&format!(
            r#"{{"command":"touch '{started}'; sleep 1; echo survived"}}"#
        ));
        // The worker leads its own process group, as a shell job in a terminal would.
        let mut cmd = env.cmd(&["worker", "start", "--poll-interval-ms", "20"]);
        cmd.process_group(0);
        let worker = env.spawn(cmd);
        wait_until(STEP, "the job to start", || Path::new(&started).exists());
        let pgid = Pid::from_raw(i32::try_from(worker.pid()).unwrap());
        nix::sys::signal::killpg(pgid, Signal::SIGINT).unwrap();
        let run = worker.wait(STEP);
        assert_eq!(run.code, 0, "{run:#?}");
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "completed", "{job}");
        assert_eq!(s(&job, "stdout"), "survived\n");
    }
}

store_test! {
    fn a_second_signal_stops_at_once_and_releases_the_job_uncharged(env) {
        let started = env.path("started");
        let id = env.enqueue(&format!(r#"{{"command":"touch '{started}'; sleep 60"}}"#));
        let worker = env.worker(&[]);
        wait_until(STEP, "the job to start", || Path::new(&started).exists());
        worker.signal(Signal::SIGTERM);
        // Two signals sent back to back may merge into one; wait for the first to be seen.
        wait_until(STEP, "the worker to see the first signal", || {
            worker.stderr().contains("stop signal")
        });
        worker.signal(Signal::SIGTERM);
        let run = worker.wait(STEP);
        assert_eq!(run.code, 0, "{run:#?}");
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "pending", "{job}");
        assert_eq!(job["attempts"], 0);
        assert_eq!(history(&job).len(), 0);
    }
}

store_test! {
    fn worker_stop_from_another_cwd_stops_every_worker_after_its_current_job(env) {
        let none = env.run(&["worker", "stop"]).ok();
        assert!(none.contains("no workers running"), "{none}");

        let started = env.path("started");
        let id = env.enqueue(&format!(
            r#"{{"command":"touch '{started}'; sleep 1; echo done"}}"#
        ));
        let w1 = env.worker(&["--count", "2"]);
        let w2 = env.worker(&["--count", "1"]);
        env.wait_for_workers(3);
        wait_until(STEP, "the job to start", || Path::new(&started).exists());

        let elsewhere = tempfile::tempdir().unwrap();
        let mut stop = env.bare();
        stop.current_dir(elsewhere.path())
            .env("QUEUECTL_DB", env.target())
            .args(["worker", "stop", "--wait"]);
        let out = run(stop).ok();
        assert!(out.contains("stopped"), "{out}");
        let (r1, r2) = (w1.wait(STEP), w2.wait(STEP));
        assert_eq!((r1.code, r2.code), (0, 0), "{r1:#?}\n{r2:#?}");
        assert_eq!(env.state(&id), "completed");
        assert_eq!(env.status()["workers"], 0);
        assert!(!elsewhere.path().join("queuectl.db").exists());
    }
}

store_test! {
    /// Recovery after a SIGKILL, with the replacement worker started only after the kill: the
    /// job goes back to `pending` uncharged, the orphaned job process is killed, and the new
    /// worker completes it.
    fn sigkill_mid_job_is_recovered_uncharged_after_a_restart(env) {
        let (first, pidfile) = (env.path("first"), env.dir().join("orphan.pid"));
        let id = env.enqueue(&format!(
            r#"{{"command":"if [ -e '{first}' ]; then echo second run; else touch '{first}'; echo $$ > '{}'; sleep 60; fi"}}"#,
            pidfile.display()
        ));
        let victim = env.worker(&[]);
        wait_until(STEP, "the job to start", || read_pid(&pidfile).is_some());
        let victim_id = env.show(&id)["worker_id"].clone();
        victim.kill();
        let orphan = read_pid(&pidfile).unwrap();
        assert!(
            !pid_gone(orphan),
            "the orphan outlives its worker until recovery"
        );

        let restarted = Instant::now();
        let _replacement = env.worker(&[]);
        let mut recovered_after = None;
        wait_until(STEP, "the job to complete", || {
            let job = env.show(&id);
            if recovered_after.is_none() && job["worker_id"] != victim_id {
                recovered_after = Some(restarted.elapsed());
            }
            s(&job, "state") == "completed"
        });
        let recovered_after = recovered_after.unwrap_or_else(|| restarted.elapsed());
        println!(
            "recovery after restart: {recovered_after:?} (job completed after {:?})",
            restarted.elapsed()
        );
        assert!(
            recovered_after < Duration::from_secs(5),
            "{recovered_after:?}"
        );
        let job = env.show(&id);
        assert_eq!(
            job["attempts"], 1,
            "the interrupted execution is not charged: {job}"
        );
        assert_eq!(s(&job, "stdout"), "second run\n");
        assert_eq!(history(&job).len(), 1);
        assert_eq!(env.status()["processing"], 0);
        wait_until(
            Duration::from_secs(10),
            "the orphaned job process to be killed",
            || pid_gone(orphan),
        );
    }
}

store_test! {
    /// The same with a second worker already running on the host: its periodic recovery
    /// notices the dead pid without any restart.
    fn sigkill_mid_job_is_recovered_by_a_running_peer_within_five_seconds(env) {
        let (first, pidfile) = (env.path("first"), env.dir().join("orphan.pid"));
        let id = env.enqueue(&format!(
            r#"{{"command":"if [ -e '{first}' ]; then echo second run; else touch '{first}'; echo $$ > '{}'; sleep 60; fi"}}"#,
            pidfile.display()
        ));
        let victim = env.worker(&[]);
        wait_until(STEP, "the job to start", || read_pid(&pidfile).is_some());
        let _peer = env.worker(&[]);
        env.wait_for_workers(2);
        let victim_id = env.show(&id)["worker_id"].clone();
        victim.kill();
        let killed = Instant::now();
        let mut recovered_after = None;
        wait_until(STEP, "the job to complete", || {
            let job = env.show(&id);
            if recovered_after.is_none() && job["worker_id"] != victim_id {
                recovered_after = Some(killed.elapsed());
            }
            s(&job, "state") == "completed"
        });
        let recovered_after = recovered_after.unwrap_or_else(|| killed.elapsed());
        println!("recovery by a running peer: {recovered_after:?}");
        assert!(
            recovered_after < Duration::from_secs(5),
            "{recovered_after:?}"
        );
        assert_eq!(env.show(&id)["attempts"], 1);
        let orphan = read_pid(&pidfile).unwrap();
        wait_until(
            Duration::from_secs(10),
            "the orphaned job process to be killed",
            || pid_gone(orphan),
        );
    }
}

store_test! {
    fn jobs_settings_and_output_persist_across_a_full_restart(env) {
        env.run(&["config", "set", "backoff-max", "7"]).ok();
        let one = env.enqueue(r#"{"id":"one","command":"echo one"}"#);
        env.drain(&[]);
        let two = env.enqueue(r#"{"id":"two","command":"echo two","max_retries":2}"#);
        let dead = env.enqueue(r#"{"id":"dead","command":"exit 1","max_retries":1}"#);
        let cancelled = env.enqueue(r#"{"id":"cancelled","command":"true"}"#);
        env.run(&["cancel", &cancelled]).ok();
        // Every process is gone here; a fresh worker picks up where the last one stopped.
        assert_eq!(env.state(&two), "pending");
        env.drain(&[]);
        assert_eq!(env.run(&["config", "get", "backoff-max"]).ok(), "7\n");
        assert_eq!(env.run(&["logs", &one, "--stdout"]).ok(), "one\n");
        assert_eq!(env.run(&["logs", &two, "--stdout"]).ok(), "two\n");
        assert_eq!(env.state(&dead), "dead");
        assert_eq!(env.state(&cancelled), "cancelled");
        let status = env.status();
        assert_eq!(status["completed"], 2);
        assert_eq!(status["dead"], 1);
        assert_eq!(status["cancelled"], 1);
    }
}

store_test! {
    /// A worker registered under another host id is never signalled from here; the stop flag
    /// in the store reaches it at its next heartbeat.
    fn worker_stop_reaches_workers_of_other_hosts_through_the_store(env) {
        let mut cmd = env.cmd(&["worker", "start", "--poll-interval-ms", "20"]);
        cmd.env("QUEUECTL_HOST_ID", "some-other-host");
        let remote = env.spawn(cmd);
        env.wait_for_workers(1);
        let out = env.run(&["worker", "stop", "--wait"]).ok();
        assert!(out.contains("all workers stopped"), "{out}");
        let run = remote.wait(STEP);
        assert_eq!(run.code, 0, "{run:#?}");
        assert!(
            !run.stderr.contains("stop signal"),
            "a remote worker must not be signalled: {}",
            run.stderr
        );
        assert_eq!(env.status()["workers"], 0);
    }
}

store_test! {
    fn a_job_sees_its_queue_and_store_but_not_the_workers_store_variables(env) {
        let bin = crate::cli::BIN;
        env.run(&[
            "enqueue",
            "--id", "parent", "--queue", "q1", "--",
            "sh", "-c",
            &format!("env | grep ^QUEUECTL_ | sort; \"{bin}\" enqueue --id child -- true"),
        ])
        .ok();
        let mut cmd = env.cmd(&["worker", "start", "--drain"]);
        cmd.env("QUEUECTL_DB_PATH", "/elsewhere/leaked.db");
        crate::cli::run(cmd).ok();
        let out = env.run(&["logs", "parent", "--stdout"]).ok();
        let target = env.target().to_string_lossy().into_owned();
        assert!(out.contains(&format!("QUEUECTL_DB={target}\n")), "{out}");
        assert!(out.contains("QUEUECTL_QUEUE=q1\n"), "{out}");
        assert!(out.contains("QUEUECTL_JOB_ID=parent\n"), "{out}");
        assert!(out.contains("QUEUECTL_ATTEMPT=1\n"), "{out}");
        assert!(!out.contains("QUEUECTL_DB_PATH"), "{out}");
        // The job's own enqueue reached the same queue, and the drain ran it too.
        assert_eq!(env.state("child"), "completed");
    }
}

/// `worker stop` on a copy of the store (here made with SQLite's `VACUUM INTO` while the
/// worker runs, as any backup tool would: unlike `queuectl backup`, it keeps the original's
/// worker registry) must not stop the original's workers: the SIGTERM goes only to
/// processes that hold that very file open.
#[test]
fn worker_stop_on_a_backup_copy_leaves_the_originals_workers_running() {
    let env = Env::new();
    let mut worker = env.spawn_worker(&[]);
    env.wait_for_workers(1);
    let copy = env.dir().join("copy.db");
    rusqlite::Connection::open(env.db())
        .and_then(|c| c.execute("VACUUM INTO ?1", [copy.to_str().expect("utf-8")]))
        .expect("a copy of the live store");

    let mut stop = env.bare();
    stop.arg("--db").arg(&copy).args(["worker", "stop"]);
    run(stop).ok();
    // A SIGTERM would have the idle worker gone within milliseconds.
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        assert!(
            worker.is_running(),
            "stopping the copy stopped the original's worker: {}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = env.run(&["worker", "stop", "--wait"]).ok();
    assert!(out.contains("all workers stopped"), "{out}");
    assert_eq!(worker.wait(STEP).code, 0);
}

/// An idle SQLite worker whose poll interval (10 minutes) is far beyond the test's deadline
/// must still run a job that another process enqueues: the store's inotify watch wakes it.
/// Before the wake-up existed, the job waited for the next poll and this test timed out.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_sqlite_worker_is_woken_by_an_enqueue_from_another_process() {
    let env = Env::new();
    let _worker = env.spawn_worker(&["--poll-interval-ms", "600000"]);
    env.wait_for_workers(1);
    // A first job, so the worker has surely made its start-up claims; then a moment for
    // its slot to go idle, so the second job can only reach it through a wake-up.
    let first = env.enqueue(r#"{"command":"true"}"#);
    env.wait_state(&first, "completed");
    std::thread::sleep(Duration::from_millis(500));
    let second = env.enqueue(r#"{"command":"true"}"#);
    env.wait_state(&second, "completed");
}
