//! `show`, `list`, `status`, `logs`: the "Job JSON (output)" shape and the read commands.

use serde_json::Value;

use super::s;

/// The fields docs/CLI.md promises on every job object, in order.
pub(crate) const JOB_FIELDS: [&str; 23] = [
    "id",
    "command",
    "state",
    "attempts",
    "max_retries",
    "created_at",
    "updated_at",
    "queue",
    "priority",
    "run_at",
    "next_run_at",
    "timeout",
    "exit_code",
    "last_error",
    "worker_id",
    "started_at",
    "finished_at",
    "cancel_requested",
    // Job JSON v2.
    "cwd",
    "unique_key",
    "limits",
    "env",
    "depends_on",
];

/// RFC 3339, UTC, millisecond precision, `Z`.
pub(crate) fn assert_timestamp(v: &Value, field: &str) {
    let t = s(v, field);
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    assert!(
        b.len() == 24
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
            && b[19] == b'.'
            && digits(20..23)
            && b[23] == b'Z',
        "{field} = {t} is not RFC 3339 UTC with milliseconds"
    );
}

/// Every promised field present, timestamps well formed.
pub(crate) fn assert_job_shape(job: &Value) {
    let obj = job
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {job}"));
    for f in JOB_FIELDS {
        assert!(obj.contains_key(f), "missing {f} in {job}");
    }
    for f in ["created_at", "updated_at", "run_at"] {
        assert_timestamp(job, f);
    }
    for f in ["next_run_at", "started_at", "finished_at"] {
        if !job[f].is_null() {
            assert_timestamp(job, f);
        }
    }
}

store_test! {
    fn show_prints_every_contract_field_in_order_with_nulls_when_unknown(env) {
        let id = env.enqueue(r#"{"command":"echo hi"}"#);
        let run = env.run(&["show", &id]);
        let text = run.stdout.clone();
        let job = run.json();
        assert_job_shape(&job);
        let keys: Vec<&str> = job
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected: Vec<&str> = JOB_FIELDS.to_vec();
        expected.extend(["stdout", "stderr", "history"]);
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        let mut sorted_expected = expected.clone();
        sorted_expected.sort_unstable();
        assert_eq!(
            sorted_keys, sorted_expected,
            "exactly the contract's fields"
        );
        // The printed order is the contract's (serde_json's map sorts, so check the text).
        let positions: Vec<usize> = expected
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        for null in [
            "timeout",
            "exit_code",
            "last_error",
            "worker_id",
            "started_at",
            "finished_at",
            "stdout",
            "stderr",
        ] {
            assert_eq!(job[null], Value::Null, "{null}");
        }
        assert_eq!(job["history"], Value::Array(vec![]));
        assert_eq!(job["next_run_at"], job["run_at"]);
    }
}

store_test! {
    fn show_of_an_unknown_id_exits_1_with_not_found_on_stderr(env) {
        let run = env.run(&["show", "nope"]).code(1);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);
        assert_eq!(run.stdout, "");
    }
}

store_test! {
    fn list_returns_matching_jobs_in_insertion_order(env) {
        env.enqueue(r#"{"id":"a","command":"true","queue":"q1","priority":1}"#);
        env.enqueue(r#"{"id":"b","command":"true","queue":"q2","priority":9}"#);
        env.enqueue(r#"{"id":"c","command":"true","queue":"q1"}"#);
        env.enqueue(r#"{"id":"d","command":"true","queue":"q1"}"#);
        env.run(&["cancel", "c"]).ok();
        let ids = |extra: &[&str]| -> Vec<String> {
            env.list(extra)
                .iter()
                .map(|j| s(j, "id").to_owned())
                .collect()
        };
        assert_eq!(ids(&[]), ["a", "b", "c", "d"]);
        assert_eq!(ids(&["--queue", "q1"]), ["a", "c", "d"]);
        assert_eq!(ids(&["--state", "cancelled"]), ["c"]);
        assert_eq!(ids(&["--state", "pending", "--queue", "q1"]), ["a", "d"]);
        assert_eq!(ids(&["--limit", "2"]), ["a", "b"]);
        assert_eq!(ids(&["--state", "dead"]), Vec::<String>::new());
        for job in env.list(&[]) {
            assert_job_shape(&job);
            assert!(job.get("history").is_none(), "list has no history: {job}");
        }
    }
}

store_test! {
    fn list_without_json_is_an_aligned_table(env) {
        env.enqueue(r#"{"id":"short","command":"echo one"}"#);
        let long_command = format!("echo {}", "x".repeat(200));
        env.enqueue(&format!(
            r#"{{"id":"a-much-longer-id","command":"{long_command}","queue":"mail","priority":-3}}"#
        ));
        let out = env.run(&["list"]).ok();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        for col in [
            "ID", "STATE", "ATTEMPTS", "QUEUE", "PRIORITY", "COMMAND", "UPDATED",
        ] {
            assert!(lines[0].contains(col), "{out}");
        }
        let state_col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("pending"), Some(state_col), "{out}");
        assert_eq!(lines[2].find("pending"), Some(state_col), "{out}");
        assert!(
            lines[2].contains("mail") && lines[2].contains("-3"),
            "{out}"
        );
        assert!(!out.contains(&long_command), "long commands are cut: {out}");
        assert!(lines[2].contains('…'), "{out}");
    }
}

store_test! {
    fn list_json_of_nothing_is_an_empty_array(env) {
        assert_eq!(env.run(&["list", "--json"]).json(), Value::Array(vec![]));
        assert_eq!(
            env.run(&["dlq", "list", "--json"]).json(),
            Value::Array(vec![])
        );
    }
}

store_test! {
    fn status_prints_one_line_per_state_then_workers_then_the_queues(env) {
        env.enqueue(r#"{"command":"true"}"#);
        env.enqueue(r#"{"command":"true"}"#);
        let c = env.enqueue(r#"{"command":"true"}"#);
        env.run(&["cancel", &c]).ok();
        let out = env.run(&["status"]).ok();
        assert_eq!(
            out,
            "pending: 2\nprocessing: 0\ncompleted: 0\nfailed: 0\ndead: 0\ncancelled: 1\nworkers: 0\n\n\
             QUEUE    PAUSED  CONCURRENCY  PENDING  PROCESSING  FAILED  DEAD  COMPLETED  CANCELLED\n\
             default  no      none         2        0           0       0     0          1\n"
        );
        let json = env.status();
        assert_eq!(
            json,
            serde_json::json!({"pending":2,"processing":0,"completed":0,"failed":0,"dead":0,
                               "cancelled":1,"workers":0,
                               "queues":[{"queue":"default","paused":false,"concurrency":null,
                                          "pending":2,"processing":0,"failed":0,"dead":0,
                                          "completed":0,"cancelled":1}]})
        );
    }
}

store_test! {
    fn logs_of_a_job_that_never_ran_prints_nothing_and_unknown_ids_exit_1(env) {
        let id = env.enqueue(r#"{"command":"echo hi"}"#);
        let run = env.run(&["logs", &id]).code(0);
        assert_eq!(run.stdout, "");
        let run = env.run(&["logs", "nope"]).code(1);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);
    }
}

store_test! {
    /// `list --json` streams page by page (1,000 jobs a page): across page boundaries it
    /// still prints every job once, in insertion order, honouring `--limit` and filters,
    /// and an empty result is `[]`.
    fn list_json_streams_every_job_in_order_across_pages(env) {
        let batch: String = (0..2_500)
            .map(|i| {
                let queue = if i % 2 == 0 { "even" } else { "odd" };
                format!("{{\"id\":\"s{i:05}\",\"command\":\"true\",\"queue\":\"{queue}\"}}\n")
            })
            .collect();
        env.run_stdin(&["enqueue", "-"], &batch).ok();
        let ids = |args: &[&str]| -> Vec<String> {
            let mut all = vec!["list", "--json"];
            all.extend_from_slice(args);
            env.run(&all)
                .json()
                .as_array()
                .expect("an array")
                .iter()
                .map(|j| s(j, "id").to_owned())
                .collect()
        };
        let expected: Vec<String> = (0..2_500).map(|i| format!("s{i:05}")).collect();
        assert_eq!(ids(&[]), expected);
        assert_eq!(ids(&["--limit", "1500"]), expected[..1500].to_vec());
        let odd: Vec<String> = expected.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(ids(&["--queue", "odd"]), odd);
        assert_eq!(env.run(&["list", "--json", "--queue", "none"]).ok(), "[]\n");
    }
}
