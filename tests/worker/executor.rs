//! `ShellHandler` against real processes.

use std::sync::mpsc;
use std::time::Duration;

use queuectl::{CancelToken, Handler, JobContext, ShellHandler};
use queuectl::{Job, JobState, Outcome};

use super::{pid_gone, wait_until, HANG};

fn job(command: &str) -> Job {
    let mut job = queuectl_store_conformance::fixture::job_in_state("job-x", JobState::Processing);
    command.clone_into(&mut job.command);
    job
}

/// Runs `command` on another thread, failing the test if it does not return within
/// [`HANG`].
fn run_bounded(handler: ShellHandler, command: &str, ctx: JobContext) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let job = job(command);
    std::thread::spawn(move || {
        let _ = tx.send(handler.run(&job, &ctx));
    });
    rx.recv_timeout(HANG).expect("the handler hung")
}

fn run(command: &str) -> Outcome {
    run_bounded(
        ShellHandler::new(),
        command,
        JobContext::new(1, None, CancelToken::new()),
    )
}

fn failed(outcome: Outcome) -> (Option<i32>, String, String, String) {
    match outcome {
        Outcome::Failed { execution, error } => (
            execution.exit_code,
            error,
            execution.output.stdout,
            execution.output.stderr,
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn succeeded(outcome: Outcome) -> (String, String) {
    match outcome {
        Outcome::Succeeded { execution } => {
            assert_eq!(execution.exit_code, Some(0));
            (execution.output.stdout, execution.output.stderr)
        }
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn non_zero_exit_is_a_failure_with_its_code() {
    let (code, error, stdout, _) = failed(run("echo partial; exit 3"));
    assert_eq!(code, Some(3));
    assert_eq!(error, "exit code 3");
    assert_eq!(stdout, "partial\n");
}

#[test]
fn unknown_command_is_127_with_the_shell_message() {
    let (code, error, _, stderr) = failed(run("queuectl-no-such-command-xyz"));
    assert_eq!(code, Some(127));
    assert_eq!(error, "exit code 127 (command not found)");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn env_tells_the_job_its_id_and_attempt() {
    let ctx = JobContext::new(3, None, CancelToken::new());
    let out = run_bounded(
        ShellHandler::new(),
        r#"echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT""#,
        ctx,
    );
    assert_eq!(succeeded(out).0, "job-x 3\n");
}

#[test]
fn stdin_is_empty() {
    assert_eq!(succeeded(run("cat; echo done")).0, "done\n");
}

#[test]
fn job_runs_in_its_own_process_group() {
    // Field 5 of /proc/PID/stat is the process group.
    let (stdout, _) = succeeded(run(r#"echo $$; cut -d' ' -f5 /proc/$$/stat"#));
    let mut lines = stdout.lines();
    let pid: i32 = lines.next().unwrap().parse().unwrap();
    let pgid: i32 = lines.next().unwrap().parse().unwrap();
    assert_eq!(pid, pgid, "the shell leads its own group");
    assert_ne!(pgid, nix::unistd::getpgrp().as_raw());
}

#[test]
fn timeout_kills_the_whole_group_including_a_grandchild() {
    let ctx = JobContext::new(1, Some(Duration::from_millis(300)), CancelToken::new());
    let handler = ShellHandler::new().kill_grace(Duration::from_millis(200));
    let out = run_bounded(handler, "sleep 30 & echo $!; wait", ctx);
    let (code, error, stdout, _) = failed(out);
    assert_eq!(code, Some(124));
    assert_eq!(error, "timeout after 300ms");
    let grandchild: i32 = stdout.trim().parse().unwrap();
    wait_until("the grandchild is gone", || pid_gone(grandchild));
}

#[test]
fn timeout_escalates_to_sigkill_for_a_child_ignoring_sigterm() {
    let ctx = JobContext::new(1, Some(Duration::from_millis(200)), CancelToken::new());
    let handler = ShellHandler::new().kill_grace(Duration::from_millis(200));
    // The subshell ignores TERM, and so does the sleep it starts.
    let out = run_bounded(handler, "(trap '' TERM; sleep 30) & echo $!; wait", ctx);
    let (code, _, stdout, _) = failed(out);
    assert_eq!(code, Some(124));
    let stubborn: i32 = stdout.trim().parse().unwrap();
    wait_until("the TERM-ignoring child is gone", || pid_gone(stubborn));
}

#[test]
fn output_is_capped_keeping_the_tail_of_each_stream() {
    let handler = ShellHandler::new().output_limit(1000);
    let ctx = JobContext::new(1, None, CancelToken::new());
    let out = run_bounded(handler, "seq 1 100000; seq 1 50000 >&2", ctx);
    let (stdout, stderr) = succeeded(out);
    // `seq 1 100000` writes 588,895 bytes, `seq 1 50000` 288,894.
    let marker = "[queuectl: output truncated: 587895 bytes cut, kept the last 1000]\n";
    assert!(stdout.starts_with(marker), "{}", &stdout[..80]);
    assert!(stdout.ends_with("\n99999\n100000\n"));
    assert_eq!(stdout.len(), marker.len() + 1000);
    let marker = "[queuectl: output truncated: 287894 bytes cut, kept the last 1000]\n";
    assert!(stderr.starts_with(marker), "{}", &stderr[..80]);
    assert!(stderr.ends_with("\n50000\n"));
}

#[test]
fn small_output_is_not_marked() {
    let (stdout, stderr) = succeeded(run("printf 'a\\377b'"));
    assert_eq!(stdout, "a\u{fffd}b", "invalid UTF-8 is replaced");
    assert_eq!(stderr, "");
}

#[test]
fn a_background_child_holding_the_pipes_does_not_hang_the_job() {
    let handler = ShellHandler::new().output_grace(Duration::from_millis(50));
    let ctx = JobContext::new(1, None, CancelToken::new());
    let out = run_bounded(handler, "sleep 30 & echo $!", ctx);
    let (stdout, _) = succeeded(out);
    let background: i32 = stdout.trim().parse().unwrap();
    // Not killed by design (the job ended when its shell did); clean up after ourselves.
    assert!(!pid_gone(background));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(background),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn cancellation_kills_the_group_at_once() {
    let token = CancelToken::new();
    let ctx = JobContext::new(1, None, token.clone());
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let command = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(ShellHandler::new().run(&job(&command), &ctx));
    });
    let grandchild = super::read_pid(&pidfile);
    token.cancel();
    let (code, error, _, _) = failed(rx.recv_timeout(HANG).expect("the handler hung"));
    assert_eq!(code, None);
    assert!(error.contains("cancelled"), "{error}");
    wait_until("the grandchild is gone", || pid_gone(grandchild));
}

#[test]
fn a_missing_shell_is_a_failed_outcome_not_a_panic() {
    let handler = ShellHandler::new().shell("/nonexistent/sh");
    let ctx = JobContext::new(1, None, CancelToken::new());
    let (code, error, _, _) = failed(run_bounded(handler, "true", ctx));
    assert_eq!(code, None);
    assert!(
        error.starts_with("could not start `/nonexistent/sh -c`"),
        "{error}"
    );
}

#[test]
fn cancellation_cuts_a_timeouts_term_grace_short() {
    let token = CancelToken::new();
    let ctx = JobContext::new(1, Some(Duration::from_millis(100)), token.clone());
    let watch = ctx.clone();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // Ignores TERM, so only the SIGKILL ends it; the grace alone would outlast HANG.
    let command = format!(
        "trap '' TERM; echo $$ > {}; while :; do sleep 0.05; done",
        pidfile.display()
    );
    let handler = ShellHandler::new().kill_grace(HANG * 10);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handler.run(&job(&command), &ctx));
    });
    let shell = super::read_pid(&pidfile);
    wait_until("the timeout passed", || watch.timed_out());
    token.cancel();
    let (code, error, _, _) = failed(rx.recv_timeout(HANG).expect("the handler hung"));
    // Under load the handler may see the cancellation before it has acted on the timeout;
    // either way it must return now (not after the grace) with the group killed.
    assert!(
        (code, error.as_str()) == (Some(124), "timeout after 100ms")
            || (code.is_none() && error.starts_with("cancelled")),
        "{code:?} {error}"
    );
    wait_until("the shell is gone", || pid_gone(shell));
}

/// Runs `command` and cancels its request token after `after`; returns the outcome and
/// how long after the request it came back.
fn cancel_after(handler: ShellHandler, command: &str, after: Duration) -> (Outcome, Duration) {
    let request = CancelToken::new();
    let ctx = JobContext::new(1, None, CancelToken::new()).with_cancel_request(request.clone());
    let (tx, rx) = mpsc::channel();
    let job = job(command);
    std::thread::spawn(move || {
        let _ = tx.send(handler.run(&job, &ctx));
    });
    std::thread::sleep(after);
    request.cancel();
    let asked = std::time::Instant::now();
    let outcome = rx.recv_timeout(HANG).expect("the handler hung");
    (outcome, asked.elapsed())
}

#[test]
fn a_cancel_request_terms_the_whole_group_without_waiting_out_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // A background child and a foreground one; both die of the TERM at once, and the
    // group then counts as gone although the shell is still an unreaped zombie.
    let command = format!(
        "sh -c 'echo $$ >> {p}; exec sleep 30' & echo $$ >> {p}; sleep 30",
        p = pids.display()
    );
    let handler = ShellHandler::new().kill_grace(Duration::from_secs(5));
    let (outcome, took) = cancel_after(handler, &command, Duration::from_millis(300));
    let (code, error, _, _) = failed(outcome);
    assert_eq!(error, "cancelled while running");
    assert_eq!(code, None, "the shell died of SIGTERM");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}: waited for the grace"
    );
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let pid: i32 = pid.trim().parse().unwrap();
        wait_until("the job's processes to die", || pid_gone(pid));
    }
}

#[test]
fn a_cancel_request_kills_a_group_that_ignores_term_after_the_grace() {
    let handler = ShellHandler::new().kill_grace(Duration::from_millis(400));
    let (outcome, took) = cancel_after(
        handler,
        "trap '' TERM; sleep 30; exit 0",
        Duration::from_millis(200),
    );
    let (code, error, _, _) = failed(outcome);
    assert_eq!(error, "cancelled while running");
    assert_eq!(code, None, "killed by SIGKILL");
    assert!(
        took >= Duration::from_millis(400),
        "took {took:?}: before the grace"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
