//! "Live output" (contract v2): `logs` of a running job, `logs -f`, `logs --attempt N`, the
//! per-attempt caps, and no store write for an attempt that prints nothing.

use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::{wait_until, Env};

/// A job printing `line 1` … `line N` to stdout, one every 200 ms.
fn ticker(lines: u32) -> String {
    format!(
        r#"{{"command": "i=1; while [ $i -le {lines} ]; do echo line $i; i=$((i+1)); sleep 0.2; done"}}"#
    )
}

fn lines(n: u32) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// `SELECT count(*) FROM table WHERE cond` in the env's store, read directly.
fn count(env: &Env, table: &str, cond: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = |prefix: &str| format!("SELECT count(*) AS n FROM {prefix}{table} WHERE {cond}");
    #[cfg(feature = "postgres")]
    if let Some(pg) = env.pg() {
        let mut conn = diesel::PgConnection::establish(&pg.url).expect("connect");
        return diesel::sql_query(sql(&format!("{}.", pg.name)))
            .get_result::<Count>(&mut conn)
            .expect("count")
            .n;
    }
    let path = env.db().to_str().expect("utf-8 path");
    let mut conn = diesel::SqliteConnection::establish(path).expect("open");
    diesel::sql_query(sql(""))
        .get_result::<Count>(&mut conn)
        .expect("count")
        .n
}

store_test! {
    /// While the job runs, `logs` shows the lines that arrived so far; `logs -f`, started
    /// meanwhile, prints every line once and exits 0 when the attempt ends.
    fn logs_shows_partial_output_while_running_and_follow_prints_all_of_it(env) {
        let id = env.enqueue(&ticker(15));
        let _worker = env.spawn_worker(&["--drain"]);
        let mut partial = String::new();
        wait_until(Duration::from_secs(20), "partial output in logs", || {
            partial = env.run(&["logs", &id, "--stdout"]).ok();
            partial.starts_with("line 1\n")
        });
        assert_eq!(env.state(&id), "processing", "output arrived before the end");
        assert!(!partial.contains("line 15"), "{partial}");
        assert!(lines(15).starts_with(&partial), "{partial}");
        let both = env.run(&["logs", &id]).ok();
        assert!(both.starts_with("==> stdout <==\nline 1\n"), "{both}");

        let started = Instant::now();
        let follower = env.spawn(env.cmd(&["logs", &id, "-f"]));
        let stdout_only = env.spawn(env.cmd(&["logs", &id, "--follow", "--stdout"]));
        let run = follower.wait(Duration::from_secs(30)).code(0);
        assert_eq!(run.stdout, format!("==> stdout <==\n{}", lines(15)));
        assert_eq!(env.state(&id), "completed");
        let run = stdout_only.wait(Duration::from_secs(10)).code(0);
        assert_eq!(run.stdout, lines(15));
        assert!(started.elapsed() < Duration::from_secs(25));

        // On a job that is not running, -f prints the last attempt's output and exits 0.
        let after = env.run(&["logs", &id, "-f", "--stdout"]).ok();
        assert_eq!(after, lines(15));
    }
}

store_test! {
    /// A job that fails once then passes: `--attempt 1` and `--attempt 2` show each
    /// attempt's own output, plain `logs` the last one; no such entry → exit 1.
    fn logs_attempt_n_shows_that_attempt_of_the_history(env) {
        env.run(&["config", "set", "backoff-base", "1"]).ok();
        let marker = env.dir().join("ran-once");
        let command = format!(
            "if [ -e '{m}' ]; then echo second; echo fine >&2; else touch '{m}'; echo first; echo broken >&2; exit 3; fi",
            m = marker.display()
        );
        let job = serde_json::json!({"id": "flaky", "command": command, "max_retries": 3});
        env.enqueue(&job.to_string());
        env.spawn_worker(&["--drain"]).wait(Duration::from_secs(30)).code(0);
        assert_eq!(env.state("flaky"), "completed");

        assert_eq!(env.run(&["logs", "flaky", "--attempt", "1"]).ok(),
            "==> stdout <==\nfirst\n==> stderr <==\nbroken\n");
        assert_eq!(env.run(&["logs", "flaky", "--attempt", "2"]).ok(),
            "==> stdout <==\nsecond\n==> stderr <==\nfine\n");
        assert_eq!(env.run(&["logs", "flaky", "--attempt", "1", "--stderr"]).ok(), "broken\n");
        assert_eq!(env.run(&["logs", "flaky", "--stdout"]).ok(), "second\n");

        let run = env.run(&["logs", "flaky", "--attempt", "9"]).code(1);
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(run.stderr.contains("no attempt 9") && run.stderr.contains("2 finished"),
            "{run:?}");
        env.run(&["logs", "flaky", "--attempt", "0"]).code(1);
        env.run(&["logs", "nope", "--attempt", "1"]).code(1);
        env.run(&["logs", "flaky", "--attempt", "1", "--follow"]).code(2);

        // The history in `show` keeps the attempts apart too.
        let history = env.show("flaky")["history"].clone();
        assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
    }
}

store_test! {
    /// An attempt that prints nothing writes no live output while it runs and no output text
    /// when it ends; `logs` says that nothing has arrived.
    fn an_attempt_that_prints_nothing_writes_no_output(env) {
        let id = env.enqueue(r#"{"command": "sleep 5"}"#);
        let worker = env.spawn_worker(&["--drain"]);
        wait_until(Duration::from_secs(20), "the job to start", || {
            env.state(&id) == "processing"
        });
        let running_since = Instant::now();
        // Past the first moment a worker would publish (a second after the start).
        while running_since.elapsed() < Duration::from_millis(1500) {
            assert_eq!(count(&env, "live_output", "1 = 1"), 0);
            std::thread::sleep(Duration::from_millis(100));
        }
        let run = env.run(&["logs", &id]).code(0);
        assert_eq!(env.state(&id), "processing", "logs ran while the job ran");
        assert_eq!(run.stdout, "");
        assert!(run.stderr.contains("no output has arrived yet"), "{run:?}");
        worker.wait(Duration::from_secs(30)).code(0);
        assert_eq!(env.state(&id), "completed");
        assert_eq!(count(&env, "live_output", "1 = 1"), 0);
        assert_eq!(count(&env, "job_attempts", "1 = 1"), 1);
        assert_eq!(
            count(&env, "job_attempts", "stdout IS NOT NULL OR stderr IS NOT NULL"),
            0
        );
        assert_eq!(env.run(&["logs", &id]).ok(), "==> stdout <==\n==> stderr <==\n");
    }
}

store_test! {
    /// More than 64 KiB of stdout: the last 64 KiB are kept after a marker line saying how
    /// much was cut; the live output, and the row the finish deletes, respect the cap too.
    fn output_over_64_kib_keeps_the_tail_after_a_marker(env) {
        // 100,000 x's and a newline, END, then a pause so the live output gets published.
        let id = env.enqueue(
            r#"{"command": "head -c 100000 /dev/zero | tr '\\0' x; echo; echo END; sleep 1.5; echo done >&2"}"#,
        );
        let _worker = env.spawn_worker(&["--drain"]);
        let mut live = String::new();
        wait_until(Duration::from_secs(20), "live output", || {
            live = env.run(&["logs", &id, "--stdout"]).ok();
            live.ends_with("END\n")
        });
        let marker = "[queuectl: output truncated: 34469 bytes cut, kept the last 65536]\n";
        assert!(live.starts_with(marker), "{}", &live[..live.len().min(120)]);
        assert_eq!(live.len(), marker.len() + 65536);
        wait_until(Duration::from_secs(20), "the job to finish", || {
            env.state(&id) == "completed"
        });
        let done = env.run(&["logs", &id, "--stdout"]).ok();
        assert_eq!(done, live);
        assert_eq!(env.run(&["logs", &id, "--stderr"]).ok(), "done\n");
        assert_eq!(count(&env, "live_output", "1 = 1"), 0);
    }
}

store_test! {
    /// The dashboard's job page shows the running attempt's output as it grows (its part,
    /// which the page's script refreshes every second while the job runs).
    fn the_dashboard_job_page_shows_live_output_while_it_runs(env) {
        let dash = crate::cli::dashboard::start(&env, &[]);
        let job = serde_json::json!({"id": "tick", "command": "i=1; while [ $i -le 15 ]; do echo tick-$i; i=$((i+1)); sleep 0.2; done"});
        env.enqueue(&job.to_string());
        let _worker = env.spawn_worker(&[]);
        let stdout_of = |html: &str| -> String {
            html.split(r#"<pre class="output" data-stream="stdout">"#)
                .nth(1)
                .and_then(|rest| rest.split("</pre>").next())
                .unwrap_or_default()
                .to_owned()
        };
        let mut first = String::new();
        wait_until(Duration::from_secs(20), "live output on the job's page", || {
            let page = dash.get("/job?id=tick");
            assert_eq!(page.status, 200, "{page:?}");
            first = stdout_of(&page.body);
            first.starts_with("tick-1\n")
        });
        assert_eq!(env.state("tick"), "processing", "shown before the end");
        assert!(!first.contains("tick-15"), "{first}");
        wait_until(Duration::from_secs(20), "the output to grow", || {
            let part = dash.get("/part/job?id=tick");
            let now = stdout_of(&part.body);
            now.len() > first.len() && now.starts_with(&first)
        });
        wait_until(Duration::from_secs(20), "the job to end", || {
            env.state("tick") == "completed"
        });
        let done = stdout_of(&dash.get("/part/job?id=tick").body);
        let all: String = (1..=15).map(|i| format!("tick-{i}\n")).collect();
        assert_eq!(done, all);
    }
}
