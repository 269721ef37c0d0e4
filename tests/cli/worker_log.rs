//! What `worker start` logs about a failed job (docs/CLI.md, "worker start"): a line saying
//! when its retry is due (`retry_at`, the job's `next_run_at`), and a warning when its
//! attempts are spent and it moves to the dead-letter queue.

use queuectl::Timestamp;
use serde_json::Value;

use super::s;

/// The JSON log lines about `job`.
fn lines_about(stderr: &str, job: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["fields"]["job"] == job)
        .collect()
}

store_test!(
    fn a_failed_job_logs_when_its_retry_is_due_and_when_it_goes_to_the_dlq(env) {
        // A constant 1 s backoff: attempt 1 fails, the retry is due 1 s later, attempt 2
        // fails with the budget (2) spent.
        env.run(&["config", "set", "backoff-base", "1"]).ok();
        env.enqueue(r#"{"id":"flaky","command":"echo oops >&2; exit 3","max_retries":2}"#);
        let run = env.run(&["worker", "start", "--drain", "--log-format", "json"]);
        assert_eq!(run.code, 0, "{run:#?}");
        let lines = lines_about(&run.stderr, "flaky");

        let retry = lines
            .iter()
            .find(|v| s(&v["fields"], "message").contains("retry is due"))
            .unwrap_or_else(|| panic!("no retry line in\n{}", run.stderr));
        assert_eq!(retry["level"], "INFO", "{retry}");
        assert_eq!(retry["fields"]["attempt"], 1, "{retry}");
        assert!(s(&retry["fields"], "error").contains("exit code 3"), "{retry}");
        let retry_at = Timestamp::parse_rfc3339(s(&retry["fields"], "retry_at"))
            .unwrap_or_else(|e| panic!("{e}: {retry}"));
        let logged_at = Timestamp::parse_rfc3339(s(retry, "timestamp")).expect("timestamp");
        let ahead = retry_at.as_millis() - logged_at.as_millis();
        assert!((500..=1_500).contains(&ahead), "retry due {ahead} ms after the line: {retry}");
        assert!(
            s(&retry["fields"], "message").contains(s(&retry["fields"], "retry_at")),
            "the message names the time: {retry}"
        );

        let dead = lines
            .iter()
            .find(|v| s(&v["fields"], "message").contains("dead-letter queue"))
            .unwrap_or_else(|| panic!("no dead-letter line in\n{}", run.stderr));
        assert_eq!(dead["level"], "WARN", "{dead}");
        assert_eq!(dead["fields"]["attempt"], 2, "{dead}");
        // The second attempt started once the retry was due.
        let dead_at = Timestamp::parse_rfc3339(s(dead, "timestamp")).expect("timestamp");
        assert!(dead_at >= retry_at, "{dead} before {retry_at:?}");
        assert_eq!(env.state("flaky"), "dead");
        // Only the first failure had a retry.
        let retries = lines
            .iter()
            .filter(|v| s(&v["fields"], "message").contains("retry is due"))
            .count();
        assert_eq!(retries, 1, "{}", run.stderr);
    }
);

store_test!(
    fn text_logs_say_when_the_retry_is_due(env) {
        env.run(&["config", "set", "backoff-base", "1"]).ok();
        env.enqueue(r#"{"id":"flaky","command":"exit 3","max_retries":2}"#);
        let run = env.run(&["worker", "start", "--drain"]);
        assert_eq!(run.code, 0, "{run:#?}");
        let retry = run
            .stderr
            .lines()
            .find(|l| l.contains("job failed; its retry is due at 20"))
            .unwrap_or_else(|| panic!("{}", run.stderr));
        assert!(retry.contains("job=flaky") && retry.contains("retry_at="), "{retry}");
        assert!(
            run.stderr.contains("moved to the dead-letter queue"),
            "{}",
            run.stderr
        );
    }
);
