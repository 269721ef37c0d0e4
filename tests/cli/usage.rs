//! Usage errors exit 2 with clap's message on stderr and nothing on stdout.

use super::Env;

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["list", "--bogus"],
        &["list", "--state", "done"],
        &["list", "--limit", "many"],
        &["enqueue"],
        &["enqueue", "{}", "--file", "x"],
        &["enqueue", r#"{"command":"true"}"#, "--priority", "high"],
        &["enqueue", r#"{"command":"true"}"#, "--timeout", "0"],
        &["enqueue", r#"{"command":"true"}"#, "--max-retries", "-1"],
        &["enqueue", r#"{"command":"true"}"#, "--run-at", "later"],
        &[
            "enqueue",
            r#"{"command":"true"}"#,
            "--run-at",
            "0",
            "--delay",
            "1s",
        ],
        &["enqueue", r#"{"command":"true"}"#, "--queue", ""],
        &["worker", "start", "--count", "0"],
        &["worker", "start", "--count", "-1"],
        &["worker", "start", "--poll-interval-ms", "1"],
        &["worker"],
        &["show"],
        &["dlq"],
        &["config", "get"],
    ];
    for args in cases {
        let run = env.run(args).code(2);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(!run.stderr.is_empty(), "{args:?}");
    }
    assert!(!env.db().exists(), "usage errors touch no store");
}

#[test]
fn an_unknown_state_lists_the_valid_ones() {
    let env = Env::new();
    let run = env.run(&["list", "--state", "done"]).code(2);
    for state in [
        "pending",
        "processing",
        "completed",
        "failed",
        "dead",
        "cancelled",
    ] {
        assert!(run.stderr.contains(state), "{}", run.stderr);
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let env = Env::new();
    let help = env.run(&["--help"]).ok();
    assert!(help.contains("Exit codes"), "{help}");
    assert!(env.run(&["--version"]).ok().starts_with("queuectl "));
    env.run(&["worker", "start", "--help"]).ok();
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let env = Env::new();
    let jobs: String = (0..2000)
        .map(|i| format!("{{\"command\":\"echo {i}\"}}\n"))
        .collect();
    env.run_stdin(&["enqueue", "-"], &jobs).ok();
    let mut child = env
        .cmd(&["list", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end at once, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
