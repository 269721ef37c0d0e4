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
        &["worker", "start", "--count", "100000"],
        &["worker", "start", "--poll-interval-ms", "1"],
        &["worker"],
        &["show"],
        &["dlq"],
        &["config", "get"],
        &["queue"],
        &["queue", "pause"],
        &["queue", "pause", ""],
        &["queue", "concurrency", "q"],
        &["queue", "concurrency", "q", "0"],
        &["queue", "concurrency", "q", "-1"],
        &["queue", "concurrency", "q", "many"],
        &["queue", "list", "--bogus"],
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

#[test]
fn bare_queuectl_prints_help_on_stderr_and_exits_2() {
    let env = Env::new();
    let mut bare = env.bare();
    bare.env("QUEUECTL_DB", env.target());
    for cmd in [env.bare(), bare] {
        let run = super::run(cmd).code(2);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.contains("Usage: queuectl"), "{}", run.stderr);
        assert!(run.stderr.contains("Commands:"), "{}", run.stderr);
    }
}

/// Every command and subcommand, as `queuectl … --help` reaches it.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["init"],
    &["enqueue"],
    &["worker"],
    &["worker", "start"],
    &["worker", "stop"],
    &["status"],
    &["list"],
    &["show"],
    &["logs"],
    &["dlq"],
    &["dlq", "list"],
    &["dlq", "retry"],
    &["dlq", "purge"],
    &["cancel"],
    &["cron"],
    &["cron", "add"],
    &["cron", "list"],
    &["cron", "remove"],
    &["cron", "pause"],
    &["cron", "resume"],
    &["retry"],
    &["delete"],
    &["prune"],
    &["config"],
    &["config", "get"],
    &["config", "set"],
    &["config", "list"],
    &["queue"],
    &["queue", "list"],
    &["queue", "pause"],
    &["queue", "resume"],
    &["queue", "concurrency"],
    &["migrate"],
    &["backup"],
    &["bench"],
    &["wait"],
    &["completions"],
    &["man"],
    &["dashboard"],
    &["metrics"],
    &["top"],
];

#[test]
fn every_help_has_examples() {
    let env = Env::new();
    for command in COMMANDS {
        let mut args = command.to_vec();
        args.push("--help");
        let help = env.run(&args).ok();
        let examples = help
            .split_once("Examples:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{command:?} --help has no Examples: section\n{help}"));
        let first = examples.lines().next().unwrap_or_default();
        assert!(
            first.trim_start().starts_with("queuectl ") || first.contains("| queuectl"),
            "{command:?}: {first}"
        );
    }
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = env.run(&["completions", shell]).ok();
        assert!(script.contains("queuectl"), "{shell}");
        assert!(script.contains("enqueue"), "{shell}: lists the subcommands");
    }
    env.run(&["completions", "tcsh"]).code(2);
    let page = env.run(&["man"]).ok();
    assert!(page.contains(".TH queuectl 1"), "{page}");
    assert!(!env.db().exists(), "neither opens the store");
}

#[test]
fn color_always_colours_help_never_and_no_color_do_not() {
    let env = Env::new();
    let escapes = |text: &str| text.contains('\u{1b}');
    assert!(escapes(&env.run(&["--color", "always", "--help"]).ok()));
    assert!(escapes(
        &env.run(&["list", "--help", "--color=always"]).ok()
    ));
    assert!(!escapes(&env.run(&["--color", "never", "--help"]).ok()));
    // Not a terminal: auto means no colour.
    assert!(!escapes(&env.run(&["--help"]).ok()));
    let mut cmd = env.cmd(&["--help"]);
    cmd.env("NO_COLOR", "1");
    assert!(!escapes(&super::run(cmd).ok()));
    // An explicit flag wins over NO_COLOR.
    let mut cmd = env.cmd(&["--color", "always", "--help"]);
    cmd.env("NO_COLOR", "1");
    assert!(escapes(&super::run(cmd).ok()));
    env.run(&["--color", "purple", "status"]).code(2);
}

#[test]
fn worker_log_format_json_writes_one_object_a_line() {
    let env = Env::new();
    env.enqueue(r#"{"id":"j","command":"echo hi"}"#);
    let run = env
        .run(&["worker", "start", "--drain", "--log-format", "json"])
        .code(0);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.len() >= 3, "{}", run.stderr);
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
    }
    assert!(run.stderr.contains("\"job\":\"j\""), "{}", run.stderr);
    env.run(&["worker", "start", "--log-format", "xml"]).code(2);
}
