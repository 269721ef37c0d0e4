//! `cancel`, `dlq retry` rules that need no worker, and `config`.

use super::{s, Env};

store_test! {
    fn cancel_moves_pending_to_cancelled_and_refuses_other_states_naming_them(env) {
        let id = env.enqueue(r#"{"command":"true"}"#);
        let out = env.run(&["cancel", &id]).ok();
        assert!(out.contains(&id), "{out}");
        let job = env.show(&id);
        assert_eq!(s(&job, "state"), "cancelled");
        assert!(job["next_run_at"].is_null());

        let before = env.show(&id);
        let run = env.run(&["cancel", &id]).code(1);
        assert!(run.stderr.contains("cancelled"), "{}", run.stderr);
        assert_eq!(env.show(&id), before, "nothing changes");

        let run = env.run(&["cancel", "nope"]).code(1);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);
    }
}

store_test! {
    fn dlq_retry_refuses_unknown_ids_and_jobs_that_are_not_dead(env) {
        let run = env.run(&["dlq", "retry", "nope"]).code(1);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);

        let id = env.enqueue(r#"{"command":"true"}"#);
        let before = env.show(&id);
        let run = env.run(&["dlq", "retry", &id]).code(1);
        assert!(
            run.stderr.contains("pending"),
            "names the state: {}",
            run.stderr
        );
        assert_eq!(env.show(&id), before, "nothing changes");

        let out = env.run(&["dlq", "retry", "--all"]).ok();
        assert!(out.contains('0'), "{out}");
        assert_eq!(env.state(&id), "pending");
        env.run(&["dlq", "retry"]).code(2);
        env.run(&["dlq", "retry", &id, "--all"]).code(2);
    }
}

store_test! {
    fn config_has_the_contract_keys_and_defaults(env) {
        let defaults = [
            ("max-retries", "3"),
            ("backoff-base", "2"),
            ("backoff-max", "3600"),
            ("job-timeout", "0"),
            ("lease-seconds", "15"),
            ("poll-interval-ms", "200"),
            ("retention-completed", "604800"),
            ("retention-cancelled", "604800"),
            ("retention-dead", "0"),
        ];
        for (key, value) in defaults {
            assert_eq!(
                env.run(&["config", "get", key]).ok(),
                format!("{value}\n"),
                "{key}"
            );
            let underscored = key.replace('-', "_");
            assert_eq!(
                env.run(&["config", "get", &underscored]).ok(),
                format!("{value}\n")
            );
        }
        let list = env.run(&["config", "list"]).ok();
        for (key, value) in defaults {
            assert!(list.contains(&format!("{key} = {value}")), "{list}");
        }
    }
}

store_test! {
    fn config_set_persists_a_valid_value_and_new_jobs_snapshot_it(env) {
        env.run(&["config", "set", "max_retries", "5"]).ok();
        assert_eq!(env.run(&["config", "get", "max-retries"]).ok(), "5\n");
        env.run(&["config", "set", "backoff-base", "1.5"]).ok();
        assert_eq!(env.run(&["config", "get", "backoff-base"]).ok(), "1.5\n");
        env.run(&["config", "set", "job-timeout", "30"]).ok();
        let id = env.enqueue(r#"{"command":"true"}"#);
        let job = env.show(&id);
        assert_eq!(job["max_retries"], 5);
        assert_eq!(job["timeout"], 30);
        // Snapshotted: a later change does not touch the stored job.
        env.run(&["config", "set", "max-retries", "1"]).ok();
        assert_eq!(env.show(&id)["max_retries"], 5);
    }
}

store_test! {
    fn config_unknown_keys_and_bad_values_exit_2_and_leave_the_value_unchanged(env) {
        env.run(&["config", "set", "max-retries", "4"]).ok();
        let bad = [
            ("max-retries", "-1"),
            ("max-retries", "two"),
            ("max-retries", "1.5"),
            ("backoff-base", "0.5"),
            ("backoff-base", "nan"),
            ("backoff-max", "0"),
            ("job-timeout", "-1"),
            ("lease-seconds", "1"),
            ("poll-interval-ms", "9"),
            ("poll-interval-ms", ""),
        ];
        for (key, value) in bad {
            let before = env.run(&["config", "get", key]).ok();
            let run = env.run(&["config", "set", key, value]).code(2);
            assert!(run.stderr.contains(key), "{key}={value}: {}", run.stderr);
            assert_eq!(
                env.run(&["config", "get", key]).ok(),
                before,
                "{key}={value}"
            );
        }
        for args in [
            &["config", "get", "retries"][..],
            &["config", "set", "retries", "3"],
            &["config", "set", "max-retries"],
        ] {
            let run = env.run(args).code(2);
            assert!(!run.stderr.is_empty());
        }
        assert_eq!(env.run(&["config", "get", "max-retries"]).ok(), "4\n");

        let fresh = Env::new();
        fresh.run(&["config", "set", "lease-seconds", "1"]).code(2);
        fresh.run(&["config", "get", "nope"]).code(2);
        assert!(!fresh.db().exists(), "a usage error creates no store");
    }
}

store_test! {
    fn duration_keys_and_flags_take_human_durations_and_print_seconds(env) {
        for (key, human, secs) in [
            ("job-timeout", "5m", "300"),
            ("backoff-max", "1h30m", "5400"),
            ("lease-seconds", "90s", "90"),
            ("lease_seconds", "2d", "172800"),
            ("job-timeout", "1w", "604800"),
        ] {
            env.run(&["config", "set", key, human]).ok();
            assert_eq!(env.run(&["config", "get", key]).ok(), format!("{secs}\n"), "{key} {human}");
        }
        let list = env.run(&["config", "list"]).ok();
        assert!(list.contains("lease-seconds = 172800"), "{list}");
        for bad in ["1500ms", "soon", "-5m", "1s"] {
            let run = env.run(&["config", "set", "lease-seconds", bad]).code(2);
            assert!(run.stderr.contains("lease-seconds"), "{bad}: {}", run.stderr);
        }
        assert_eq!(env.run(&["config", "get", "lease-seconds"]).ok(), "172800\n");
        env.run(&["config", "set", "max-retries", "5m"]).code(2);
        env.run(&["config", "set", "poll-interval-ms", "1s"]).code(2);

        let id = env.enqueue_with_flags(r#"{"command":"true"}"#, &["--timeout", "1m30s"]);
        assert_eq!(env.show(&id)["timeout"], 90);
        let id = env.enqueue_with_flags(r#"{"command":"true"}"#, &["--timeout", "45"]);
        assert_eq!(env.show(&id)["timeout"], 45);
        env.run(&["enqueue", r#"{"command":"true"}"#, "--timeout", "0s"]).code(2);
        env.run(&["enqueue", r#"{"command":"true"}"#, "--timeout", "1500ms"]).code(2);
    }
}
