//! `enqueue`: the "Job JSON (input)" table, batches, flags and output shapes.

use serde_json::Value;

use super::{s, Env};

fn assert_nothing_stored(env: &Env) {
    assert_eq!(env.list(&[]), Vec::<Value>::new(), "something was stored");
}

store_test! {
    fn enqueue_prints_a_uuid_v4_and_stores_a_pending_job_with_defaults(env) {
        let id = env.enqueue(r#"{"command":"echo hi"}"#);
        let u: Vec<&str> = id.split('-').collect();
        assert_eq!(
            u.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id}"
        );
        assert!(u[2].starts_with('4'), "not a v4 UUID: {id}");
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "pending");
        assert_eq!(job["attempts"], 0);
        assert_eq!(job["max_retries"], 3);
        assert_eq!(s(&job, "queue"), "default");
        assert_eq!(job["priority"], 0);
        assert_eq!(job["timeout"], Value::Null);
        assert_eq!(s(&job, "command"), "echo hi");
    }
}

store_test! {
    fn every_input_field_is_stored(env) {
        let id = env.enqueue(
            r#"{"id":"my job/1","command":"true","max_retries":5,"timeout":7,"priority":-2,
                "run_at":"2031-02-03T04:05:06.789+02:00","queue":"mail"}"#,
        );
        assert_eq!(id, "my job/1");
        let job = env.show(&id);
        assert_eq!(job["max_retries"], 5);
        assert_eq!(job["timeout"], 7);
        assert_eq!(job["priority"], -2);
        assert_eq!(s(&job, "run_at"), "2031-02-03T02:05:06.789Z");
        assert_eq!(s(&job, "next_run_at"), "2031-02-03T02:05:06.789Z");
        assert_eq!(s(&job, "queue"), "mail");

        let alias = env.enqueue(r#"{"command":"true","timeout_seconds":9,"run_at":1900000000}"#);
        let job = env.show(&alias);
        assert_eq!(job["timeout"], 9);
        assert_eq!(s(&job, "run_at"), "2030-03-17T17:46:40.000Z");
    }
}

store_test! {
    fn max_retries_zero_is_accepted(env) {
        let id = env.enqueue(r#"{"command":"true","max_retries":0}"#);
        assert_eq!(env.show(&id)["max_retries"], 0);
    }
}

store_test! {
    fn wrong_types_or_values_exit_1_naming_the_field_and_store_nothing(env) {
        let cases = [
            (r#"{}"#, "command"),
            (r#"{"command":""}"#, "command"),
            (r#"{"command":"   "}"#, "command"),
            (r#"{"command":42}"#, "command"),
            (r#"{"command":"x","id":""}"#, "id"),
            (r#"{"command":"x","id":" "}"#, "id"),
            (r#"{"command":"x","id":12}"#, "id"),
            (r#"{"command":"x","max_retries":-1}"#, "max_retries"),
            (r#"{"command":"x","max_retries":1.5}"#, "max_retries"),
            (r#"{"command":"x","max_retries":"3"}"#, "max_retries"),
            (r#"{"command":"x","timeout":0}"#, "timeout"),
            (r#"{"command":"x","timeout":-3}"#, "timeout"),
            (r#"{"command":"x","timeout":"5"}"#, "timeout"),
            (r#"{"command":"x","timeout_seconds":0}"#, "timeout_seconds"),
            (r#"{"command":"x","priority":"high"}"#, "priority"),
            (r#"{"command":"x","priority":0.5}"#, "priority"),
            (r#"{"command":"x","priority":99999999999}"#, "priority"),
            (r#"{"command":"x","run_at":"tomorrow"}"#, "run_at"),
            (r#"{"command":"x","run_at":true}"#, "run_at"),
            (r#"{"command":"x","queue":""}"#, "queue"),
            (r#"{"command":"x","queue":7}"#, "queue"),
        ];
        for (json, field) in cases {
            let run = env.run(&["enqueue", json]).code(1);
            assert!(
                run.stderr.contains(&format!("`{field}`")),
                "{json}: stderr does not name {field}: {}",
                run.stderr
            );
            assert!(
                run.stderr.starts_with("queuectl: error: "),
                "{}",
                run.stderr
            );
            assert_eq!(run.stdout, "", "{json}");
        }
        for not_a_job in [
            "not json",
            "[1]",
            r#"{"command":"a"} {"command":"b"}"#,
            "\"x\"",
        ] {
            env.run(&["enqueue", not_a_job]).code(1);
        }
        assert_nothing_stored(&env);
    }
}

store_test! {
    fn duplicate_id_exits_1_and_leaves_the_stored_job_untouched(env) {
        env.enqueue(r#"{"id":"dup","command":"echo first","priority":1}"#);
        let before = env.show("dup");
        let run = env
            .run(&[
                "enqueue",
                r#"{"id":"dup","command":"echo second","priority":9}"#,
            ])
            .code(1);
        assert!(run.stderr.contains("dup"), "{}", run.stderr);
        assert!(run.stderr.contains("already exists"), "{}", run.stderr);
        assert_eq!(env.show("dup"), before);
        assert_eq!(env.list(&[]).len(), 1);
    }
}

store_test! {
    fn batch_from_stdin_prints_one_id_per_line_in_order(env) {
        let out = env
            .run_stdin(
                &["enqueue", "-"],
                "{\"id\":\"a\",\"command\":\"true\"}\n{\"command\":\"true\"}\n\n{\"id\":\"c\",\"command\":\"true\"}\n",
            )
            .ok();
        let ids: Vec<&str> = out.lines().collect();
        assert_eq!(ids.len(), 3, "{out}");
        assert_eq!(ids[0], "a");
        assert_eq!(ids[2], "c");
        let listed: Vec<String> = env
            .list(&[])
            .iter()
            .map(|j| s(j, "id").to_owned())
            .collect();
        assert_eq!(listed, ids);
    }
}

store_test! {
    fn batch_from_file_reads_json_lines(env) {
        let file = env.dir().join("jobs.jsonl");
        std::fs::write(
            &file,
            "{\"command\":\"echo 1\"}\n{\"command\":\"echo 2\"}\n",
        )
        .unwrap();
        let out = env.run(&["enqueue", "--file", file.to_str().unwrap()]).ok();
        assert_eq!(out.lines().count(), 2);
        let commands: Vec<String> = env
            .list(&[])
            .iter()
            .map(|j| s(j, "command").to_owned())
            .collect();
        assert_eq!(commands, ["echo 1", "echo 2"]);
        env.run(&["enqueue", "--file", "missing.jsonl"]).code(1);
    }
}

store_test! {
    fn a_batch_is_all_or_nothing(env) {
        // A bad third job: nothing of the batch is stored.
        let run = env
            .run_stdin(
                &["enqueue", "-"],
                "{\"command\":\"true\"}\n{\"command\":\"true\"}\n{\"command\":\"true\",\"max_retries\":-1}\n",
            )
            .code(1);
        assert!(run.stderr.contains("job 3"), "{}", run.stderr);
        assert!(run.stderr.contains("`max_retries`"), "{}", run.stderr);
        assert_nothing_stored(&env);
        // A repeated id within the batch.
        env.run_stdin(
            &["enqueue", "-"],
            "{\"id\":\"x\",\"command\":\"true\"}\n{\"id\":\"x\",\"command\":\"true\"}\n",
        )
        .code(1);
        assert_nothing_stored(&env);
        // An id that already exists.
        env.enqueue(r#"{"id":"old","command":"true"}"#);
        env.run_stdin(
            &["enqueue", "-"],
            "{\"id\":\"new\",\"command\":\"true\"}\n{\"id\":\"old\",\"command\":\"false\"}\n",
        )
        .code(1);
        let ids: Vec<String> = env
            .list(&[])
            .iter()
            .map(|j| s(j, "id").to_owned())
            .collect();
        assert_eq!(ids, ["old"]);
        // Invalid JSON in the middle, and empty input.
        env.run_stdin(&["enqueue", "-"], "{\"command\":\"true\"}\n{oops\n")
            .code(1);
        env.run_stdin(&["enqueue", "-"], "  \n").code(1);
        assert_eq!(env.list(&[]).len(), 1);
    }
}

store_test! {
    fn unknown_fields_are_named_in_a_warning_and_ignored(env) {
        let run = env.run(&[
            "enqueue",
            r#"{"command":"true","colour":"red","retries":4}"#,
        ]);
        let stderr = run.stderr.clone();
        let id = run.ok().trim().to_owned();
        assert!(stderr.contains("warning"), "{stderr}");
        assert!(
            stderr.contains("colour") && stderr.contains("retries"),
            "{stderr}"
        );
        assert_eq!(env.show(&id)["max_retries"], 3);
    }
}

store_test! {
    fn client_sent_state_attempts_and_timestamps_are_ignored_silently(env) {
        let run = env.run(&[
            "enqueue",
            r#"{"command":"true","state":"completed","attempts":7,"created_at":"2000-01-01T00:00:00Z",
                "updated_at":"2000-01-01T00:00:00Z","started_at":null,"finished_at":null,"next_run_at":0}"#,
        ]);
        assert_eq!(run.stderr, "", "no warning expected");
        let id = run.ok().trim().to_owned();
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "pending");
        assert_eq!(job["attempts"], 0);
        assert!(!s(&job, "created_at").starts_with("2000"), "{job}");
    }
}

store_test! {
    fn flags_override_the_json(env) {
        let id = env.enqueue_with_flags(
            r#"{"id":"json-id","command":"true","priority":1,"queue":"a","max_retries":1,"timeout":1,
                "run_at":"2030-01-01T00:00:00Z"}"#,
            &[
                "--id",
                "flag-id",
                "--priority",
                "-5",
                "--queue",
                "b",
                "--max-retries",
                "6",
                "--timeout",
                "40",
                "--run-at",
                "2032-05-06T07:08:09Z",
            ],
        );
        assert_eq!(id, "flag-id");
        let job = env.show(&id);
        assert_eq!(job["priority"], -5);
        assert_eq!(s(&job, "queue"), "b");
        assert_eq!(job["max_retries"], 6);
        assert_eq!(job["timeout"], 40);
        assert_eq!(s(&job, "run_at"), "2032-05-06T07:08:09.000Z");

        let epoch = env.enqueue_with_flags(r#"{"command":"true"}"#, &["--run-at", "1900000000"]);
        assert_eq!(s(&env.show(&epoch), "run_at"), "2030-03-17T17:46:40.000Z");
    }
}

store_test! {
    fn delay_accepts_seconds_minutes_combined_and_days(env) {
        for (delay, secs) in [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172_800)] {
            let id = env.enqueue_with_flags(
                r#"{"command":"true","run_at":"2000-01-01T00:00:00Z"}"#,
                &["--delay", delay],
            );
            let job = env.show(&id);
            let gap = millis(s(&job, "run_at")) - millis(s(&job, "created_at"));
            // run_at = the CLI's now + delay; created_at is stamped a moment later.
            let expected = secs * 1000;
            assert!(
                (expected - 5000..=expected).contains(&gap),
                "--delay {delay}: run_at - created_at = {gap} ms"
            );
        }
        env.run(&["enqueue", r#"{"command":"true"}"#, "--delay", "soon"])
            .code(2);
    }
}

store_test! {
    fn id_flag_with_a_batch_of_two_is_a_usage_error(env) {
        env.run_stdin(
            &["enqueue", "-", "--id", "x"],
            "{\"command\":\"true\"}\n{\"command\":\"true\"}\n",
        )
        .code(2);
        assert_nothing_stored(&env);
        // One job in a batch may take --id.
        let out = env
            .run_stdin(&["enqueue", "-", "--id", "x"], "{\"command\":\"true\"}\n")
            .ok();
        assert_eq!(out.trim(), "x");
    }
}

store_test! {
    fn json_flag_prints_the_job_object_or_an_array_for_a_batch(env) {
        let one = env
            .run(&["enqueue", "--json", r#"{"id":"j1","command":"true"}"#])
            .json();
        assert_eq!(s(&one, "id"), "j1");
        assert_eq!(s(&one, "state"), "pending");
        let mut shown = env.show("j1");
        for k in ["stdout", "stderr", "history"] {
            shown.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(one, shown);

        let batch = env
            .run_stdin(
                &["enqueue", "--json", "-"],
                "{\"id\":\"j2\",\"command\":\"true\"}\n{\"id\":\"j3\",\"command\":\"true\"}\n",
            )
            .json();
        let ids: Vec<&str> = batch
            .as_array()
            .unwrap()
            .iter()
            .map(|j| s(j, "id"))
            .collect();
        assert_eq!(ids, ["j2", "j3"]);
        let single_batch = env
            .run_stdin(
                &["enqueue", "--json", "-"],
                "{\"id\":\"j4\",\"command\":\"true\"}",
            )
            .json();
        assert!(
            single_batch.is_array(),
            "a batch prints an array: {single_batch}"
        );
    }
}

/// Milliseconds since the epoch of a `YYYY-MM-DDTHH:MM:SS.mmmZ` timestamp.
pub(crate) fn millis(ts: &str) -> i64 {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{ts}: {e}"));
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

impl Env {
    pub(crate) fn enqueue_with_flags(&self, json: &str, flags: &[&str]) -> String {
        let mut args = vec!["enqueue", json];
        args.extend_from_slice(flags);
        self.run(&args).ok().trim().to_owned()
    }
}

store_test! {
    fn words_after_double_dash_run_exactly_as_given(env) {
        let words = ["printf", "%s\\n", "a b", "it's", "$HOME", "`id`", "--", "-x", "", "ü;|&>"];
        let mut args = vec!["enqueue", "--id", "words", "--queue", "w", "--"];
        args.extend(words);
        assert_eq!(env.run(&args).ok(), "words\n");
        let job = env.show("words");
        assert_eq!(s(&job, "queue"), "w");
        env.run(&["worker", "start", "--drain"]).ok();
        assert_eq!(env.state("words"), "completed");
        let out = env.run(&["logs", "words", "--stdout"]).ok();
        assert_eq!(out, "a b\nit's\n$HOME\n`id`\n--\n-x\n\nü;|&>\n");

        env.run(&["enqueue", r#"{"command":"true"}"#, "--", "echo"]).code(2);
        env.run(&["enqueue", "--file", "x", "--", "echo"]).code(2);
        env.run(&["enqueue", "--"]).code(2);
    }
}
