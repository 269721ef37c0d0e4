//! "Job JSON v2": `cwd`, `env`, `unique_key` and `limits`, their flags (`-w`, `-e`,
//! `--unique-key`), how every output shows them, and what the worker does with them.

use std::process::Stdio;

use serde_json::{json, Value};

use super::{s, Env};

fn assert_nothing_stored(env: &Env) {
    assert_eq!(env.list(&[]), Vec::<Value>::new(), "something was stored");
}

/// Runs every due job with a draining worker.
fn drain(env: &Env) {
    env.run(&["worker", "start", "--drain"]).ok();
}

store_test! {
    fn a_version_1_job_shows_every_v2_field_with_its_default(env) {
        let id = env.enqueue(r#"{"command":"true"}"#);
        for job in [env.show(&id), env.list(&[]).remove(0)] {
            assert_eq!(job["cwd"], Value::Null);
            assert_eq!(job["unique_key"], Value::Null);
            assert_eq!(job["limits"], Value::Null);
            assert_eq!(job["env"], json!({}));
            assert_eq!(job["depends_on"], json!([]));
        }
    }
}

store_test! {
    fn the_command_runs_in_cwd_with_env_added_over_the_workers(env) {
        std::fs::create_dir(env.dir().join("work")).expect("mkdir");
        // A relative cwd is made absolute against the enqueuer's cwd (the temp dir).
        let id = env
            .run(&[
                "enqueue",
                "-w",
                "work",
                "-e",
                "GREETING=a=b c",
                "--env",
                "HOME=/nowhere",
                r#"{"command":"pwd; printf '%s|%s|%s\n' \"$GREETING\" \"$HOME\" \"$FROM_JSON\"",
                    "env":{"FROM_JSON":"j","GREETING":"overridden"}}"#,
            ])
            .ok()
            .trim()
            .to_owned();
        let job = env.show(&id);
        let dir = env.dir().join("work");
        assert_eq!(s(&job, "cwd"), dir.to_str().expect("utf-8"));
        assert_eq!(
            job["env"],
            json!({"FROM_JSON": "j", "GREETING": "a=b c", "HOME": "/nowhere"})
        );
        drain(&env);
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "completed", "{job:#}");
        let real = std::fs::canonicalize(&dir).expect("canonical");
        let out = s(&job, "stdout");
        let mut lines = out.lines();
        let pwd = lines.next().unwrap_or_default();
        assert!(
            pwd == dir.to_str().unwrap_or_default() || pwd == real.to_str().unwrap_or_default(),
            "{out}"
        );
        assert_eq!(lines.next(), Some("a=b c|/nowhere|j"), "{out}");
    }
}

store_test! {
    fn a_missing_cwd_fails_the_attempt_saying_so(env) {
        let id = env
            .run(&["enqueue", "--max-retries", "1", "-w", "gone", "--", "true"])
            .ok()
            .trim()
            .to_owned();
        drain(&env);
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "dead");
        let error = s(&job, "last_error");
        assert!(
            error.starts_with("working directory ") && error.contains("gone"),
            "{error}"
        );
    }
}

store_test! {
    fn secret_looking_env_values_are_masked_in_every_output_but_reach_the_job(env) {
        let id = env
            .run(&[
                "enqueue",
                "--max-retries",
                "1",
                "-e",
                "db_password=pw1",
                "-e",
                "MySecretThing=pw2",
                "-e",
                "GITHUB_TOKEN=pw3",
                "-e",
                "api_key=pw4",
                "-e",
                "PLAIN=visible",
                "--json",
                "--",
                "sh",
                "-c",
                "echo $db_password $MySecretThing $GITHUB_TOKEN $api_key $PLAIN; exit 3",
            ])
            .json();
        let masked = json!({
            "GITHUB_TOKEN": "***",
            "MySecretThing": "***",
            "PLAIN": "visible",
            "api_key": "***",
            "db_password": "***",
        });
        assert_eq!(id["env"], masked);
        let id = s(&id, "id").to_owned();
        drain(&env);
        let show = env.show(&id);
        assert_eq!(show["env"], masked);
        assert_eq!(s(&show, "stdout"), "pw1 pw2 pw3 pw4 visible\n");
        assert_eq!(env.list(&[])[0]["env"], masked);
        let dead = env.run(&["dlq", "list", "--json"]).json();
        assert_eq!(dead[0]["env"], masked);
        for args in [&["list"][..], &["dlq", "list"]] {
            let out = env.run(args).ok();
            assert!(!out.contains("pw1") && !out.contains("pw4"), "{args:?}: {out}");
        }
    }
}

store_test! {
    fn bad_cwd_env_and_limits_exit_1_naming_the_field_and_store_nothing(env) {
        let cases = [
            (r#"{"command":"x","cwd":"a\u0000b"}"#, "cwd"),
            (r#"{"command":"x","cwd":""}"#, "cwd"),
            (r#"{"command":"x","cwd":7}"#, "cwd"),
            (r#"{"command":"x","env":{"A=B":"v"}}"#, "env"),
            (r#"{"command":"x","env":{"":"v"}}"#, "env"),
            (r#"{"command":"x","env":{"A\u0000":"v"}}"#, "env"),
            (r#"{"command":"x","env":{"A":1}}"#, "env"),
            (r#"{"command":"x","env":["A=1"]}"#, "env"),
            (r#"{"command":"x","unique_key":" "}"#, "unique_key"),
            (r#"{"command":"x","unique_key":3}"#, "unique_key"),
            (r#"{"command":"x","limits":{"cpu_seconds":0}}"#, "limits"),
            (r#"{"command":"x","limits":{"memory_mb":-1}}"#, "limits"),
            (r#"{"command":"x","limits":{"cpu":5}}"#, "limits"),
            (r#"{"command":"x","limits":5}"#, "limits"),
        ];
        for (json, field) in cases {
            let r = env.run(&["enqueue", json]).code(1);
            assert!(r.stderr.contains(field), "{json}: {}", r.stderr);
        }
        // A flag without `=` or with an empty name is a usage error.
        env.run(&["enqueue", "-e", "NOEQUALS", "--", "true"]).code(2);
        env.run(&["enqueue", "-e", "=v", "--", "true"]).code(2);
        assert_nothing_stored(&env);
    }
}

store_test! {
    fn a_held_unique_key_returns_the_existing_job_and_stores_nothing(env) {
        let first = env
            .run(&["enqueue", "--unique-key", "sync", "--", "true"])
            .ok()
            .trim()
            .to_owned();
        let again = env.run(&["enqueue", r#"{"command":"other","unique_key":"sync"}"#]).code(0);
        assert_eq!(again.stdout.trim(), first);
        assert!(again.stderr.contains(&first), "{}", again.stderr);
        let json = env
            .run(&["enqueue", "--json", "--unique-key", "sync", "--", "other"])
            .json();
        assert_eq!(s(&json, "id"), first);
        assert_eq!(s(&json, "command"), "true");
        assert_eq!(env.list(&[]).len(), 1);

        // A batch job skipped by its key stands for the holder; the others are stored.
        let out = env
            .run_stdin(
                &["enqueue", "-"],
                "{\"command\":\"a\",\"unique_key\":\"other\"}\n{\"command\":\"b\",\"unique_key\":\"sync\"}\n",
            )
            .ok();
        let ids: Vec<&str> = out.lines().collect();
        assert_eq!(ids.len(), 2, "{out}");
        assert_eq!(ids[1], first);
        assert_eq!(env.list(&[]).len(), 2);

        // Once the holder completed, the key is free again.
        drain(&env);
        let next = env
            .run(&["enqueue", "--unique-key", "sync", "--", "true"])
            .ok()
            .trim()
            .to_owned();
        assert_ne!(next, first);
        assert_eq!(s(&env.show(&next), "unique_key"), "sync");
    }
}

store_test! {
    fn a_unique_key_repeated_within_a_batch_exits_1_and_stores_nothing(env) {
        let r = env
            .run_stdin(
                &["enqueue", "-"],
                "{\"command\":\"a\",\"unique_key\":\"k\"}\n{\"command\":\"b\"}\n{\"command\":\"c\",\"unique_key\":\"k\"}\n",
            )
            .code(1);
        assert!(r.stderr.contains("unique_key"), "{}", r.stderr);
        assert_nothing_stored(&env);
    }
}

store_test! {
    fn sixteen_concurrent_enqueuers_of_one_key_make_exactly_one_job(env) {
        // Every process starts first, then all are released at once by closing their stdin
        // (each reads its job from it), so the inserts race.
        let mut children: Vec<_> = (0..16)
            .map(|i| {
                let mut cmd = env.cmd(&["enqueue", "-"]);
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut child = cmd.spawn().expect("spawn enqueue");
                let stdin = child.stdin.take().expect("stdin");
                (i, child, Some(stdin))
            })
            .collect();
        for (i, _, stdin) in &mut children {
            use std::io::Write as _;
            let mut pipe = stdin.take().expect("stdin");
            writeln!(pipe, r#"{{"id":"racer-{i}","command":"true","unique_key":"race"}}"#)
                .expect("write");
        }
        let mut printed = Vec::new();
        for (_, child, _) in children {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            printed.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        }
        let jobs = env.list(&[]);
        assert_eq!(jobs.len(), 1, "{jobs:#?}");
        let winner = s(&jobs[0], "id");
        assert!(printed.iter().all(|p| p == winner), "{printed:?}");
    }
}

store_test! {
    fn a_job_over_its_cpu_limit_fails_naming_the_limit(env) {
        let id = env.enqueue(
            r#"{"command":"while :; do :; done","max_retries":1,"timeout":60,
                "limits":{"cpu_seconds":1}}"#,
        );
        assert_eq!(env.show(&id)["limits"], json!({"cpu_seconds": 1}));
        drain(&env);
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "dead", "{job:#}");
        assert_eq!(s(&job, "last_error"), "cpu time limit 1s exceeded");
    }
}

store_test! {
    fn a_small_open_files_limit_makes_a_job_fail_and_limits_reach_the_command(env) {
        let tight = env.enqueue(
            r#"{"command":"exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null; echo opened",
                "max_retries":1,"limits":{"open_files":4}}"#,
        );
        let roomy = env.enqueue(
            r#"{"command":"ulimit -n; ulimit -t","limits":{"open_files":64,"cpu_seconds":30}}"#,
        );
        drain(&env);
        let job = env.show(&tight);
        assert_eq!(s(&job, "state"), "dead", "{job:#}");
        assert!(s(&job, "stderr").contains("open files"), "{job:#}");
        let job = env.show(&roomy);
        assert_eq!(s(&job, "state"), "completed", "{job:#}");
        assert_eq!(s(&job, "stdout"), "64\n30\n");
    }
}
