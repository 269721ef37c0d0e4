//! Runs one shell job: `sh -c COMMAND` in its own process group, with a timeout, captured
//! output and cancellation, turned into an [`Outcome`].
//!
//! duct builds and spawns the command (its `before_spawn` hook sets the process group); the
//! output is not captured with duct's `stdout_capture`, whose reader threads keep everything
//! in memory and are joined until EOF (which a background child can postpone forever).
//! Instead the job writes into pipes that this thread polls, which also lets one loop watch
//! the exit, the timeout and the cancellation token.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use queuectl_store::{
    truncation_marker, Execution, Job, JobOutput, Limits, LiveOutput, CANCELLED_WHILE_RUNNING,
};

use super::{Handler, JobContext};
use crate::scheduler::Outcome;

/// Exit code recorded for a timed-out job (as coreutils `timeout` uses).
pub const TIMEOUT_EXIT_CODE: i32 = 124;

/// Runs `shell` jobs as `sh -c COMMAND`.
///
/// What a user can observe:
/// - The job gets its own process group (`setpgid(0, 0)` before exec), so a Ctrl-C or a
///   SIGTERM aimed at the worker's terminal never reaches it; the worker decides.
/// - stdin is `/dev/null`; the working directory is the job's `cwd` (the worker's when it
///   has none; a missing one fails the attempt unstarted, saying so) and the environment
///   is the worker's, plus `QUEUECTL_JOB_ID`, `QUEUECTL_ATTEMPT` (1-based) and
///   `QUEUECTL_QUEUE`, without the worker's `QUEUECTL_DB`/`QUEUECTL_DB_PATH`; `QUEUECTL_DB`
///   is the [`ShellHandler::store_target`] when one is set; the job's own `env` wins over
///   all of them.
/// - A job with `limits` starts through the [`ShellHandler::limit_helper`], which sets them
///   and execs the shell in the same process (see `worker/limits.rs`); a CPU limit that
///   killed it is named in the error (`cpu time limit Ns exceeded`).
/// - Timeout: SIGTERM to the whole group, then SIGKILL to the group after a grace (2 s by
///   default) if anything in it is still alive. `exit_code = 124`, error "timeout after Ns".
/// - Cancelled through [`JobContext::cancel_token`] (an immediate worker stop, a lost
///   lease): SIGKILL to the group at once; `exit_code = null`, error "cancelled: …".
/// - Cancelled by an operator ([`JobContext::is_cancel_requested`], `queuectl cancel ID`):
///   as a timeout, SIGTERM to the whole group, then SIGKILL to the group after the grace
///   if anything in it is still alive; `exit_code` as observed (`null` when the shell died
///   of the signal), error "cancelled while running" (the store records the job
///   `cancelled`).
/// - Killed by a signal: `exit_code = null` (the process did not exit, and the shells'
///   128+n convention would be indistinguishable from a real `exit 137`); the error names the
///   signal, e.g. "killed by signal 9 (SIGKILL)".
/// - The job ends when its shell exits. Processes it left running in the background are
///   *not* killed (as with cron); once the shell has exited, their output is read for a short
///   grace (200 ms by default) and then the pipes are closed, so a background child holding
///   stdout cannot hold the worker.
/// - stdout and stderr are captured separately, each capped (64 KiB by default) keeping the
///   *tail*, where the error usually is; a capped stream starts with a line
///   `[queuectl: output truncated: N bytes cut, kept the last M]`. Invalid UTF-8 is replaced.
/// - Live output: inside a pool, while the job writes, what it has written so far is
///   published to the store at most once a second (the first time a second after the
///   start), so `logs` shows it while it runs. A job that writes nothing, or finishes
///   within that second, causes no such write.
/// - A spawn failure (no `sh`, fork failure, out of pipes) is a failed outcome with the reason;
///   it never panics or stops the worker.
#[derive(Debug, Clone)]
pub struct ShellHandler {
    /// An `OsString`, not a `PathBuf`: duct treats a `Path` program as relative to the cwd
    /// (`./sh`), a string as a name to look up in `PATH`.
    shell: OsString,
    kill_grace: Duration,
    output_grace: Duration,
    output_limit: usize,
    /// `QUEUECTL_DB` for the job, so its own `queuectl` calls reach this queue.
    store_target: Option<OsString>,
    /// The program that applies a job's resource limits and execs its shell
    /// (`PROGRAM exec-limited FLAGS -- sh -c COMMAND`); see `worker/limits.rs`.
    limit_helper: Option<OsString>,
}

impl Default for ShellHandler {
    fn default() -> Self {
        ShellHandler {
            shell: OsString::from("sh"),
            kill_grace: Duration::from_secs(2),
            output_grace: Duration::from_millis(200),
            output_limit: 64 * 1024,
            store_target: None,
            limit_helper: None,
        }
    }
}

/// How often a running job's new output is published to the store (see
/// [`JobContext::publish_output`]), at most.
pub(crate) const LIVE_EVERY: Duration = Duration::from_secs(1);

/// How often the wait loop looks at the exit status and the clock while the job's pipes are
/// quiet. Output and EOF wake it at once.
const TICK: Duration = Duration::from_millis(50);

/// The first look at the exit status after both pipes closed; each further look waits twice
/// as long, up to [`TICK`]. A shell that closed its output is usually exiting within a few
/// hundred microseconds, and a millisecond here would cost a short job more than its run.
const QUIET_FIRST: Duration = Duration::from_micros(50);

/// How long to keep waiting for the shell to be reaped after SIGKILL before giving up on it
/// (a process stuck in uninterruptible sleep); duct reaps it later.
const REAP_LIMIT: Duration = Duration::from_secs(5);

impl ShellHandler {
    /// The default handler: `sh` from `PATH`, 2 s kill grace, 200 ms output grace, 64 KiB
    /// per stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The shell to run `-c COMMAND` with (default `sh`). A name without a `/` is looked up
    /// in `PATH`.
    #[must_use]
    pub fn shell(mut self, shell: impl Into<OsString>) -> Self {
        self.shell = shell.into();
        self
    }

    /// How long a timed-out job's group has between SIGTERM and SIGKILL.
    #[must_use]
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// How long to keep reading output after the shell exited while something still holds
    /// its pipes.
    #[must_use]
    pub fn output_grace(mut self, grace: Duration) -> Self {
        self.output_grace = grace;
        self
    }

    /// Bytes kept of each of stdout and stderr (the tail).
    #[must_use]
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    /// The value jobs get as `QUEUECTL_DB`, so a `queuectl enqueue` inside a job reaches the
    /// queue it came from. Give it without any password (the CLI passes the worker's
    /// `--db` with the password removed; libpq's usual sources supply credentials). Without
    /// it, jobs get no `QUEUECTL_DB`: the worker's own is never passed on.
    #[must_use]
    pub fn store_target(mut self, target: impl Into<OsString>) -> Self {
        self.store_target = Some(target.into());
        self
    }

    /// The program that starts jobs with resource limits: it is run as `PROGRAM exec-limited
    /// [--memory-mb N] [--cpu-seconds N] [--open-files N] [--processes N] -- SHELL -c
    /// COMMAND` and must call [`crate::exec_with_limits`] (the `queuectl` binary does). Without
    /// one, a job with `limits` fails its attempt unstarted, saying so.
    #[must_use]
    pub fn limit_helper(mut self, program: impl Into<OsString>) -> Self {
        self.limit_helper = Some(program.into());
        self
    }

    /// The shell as a path: a name without a `/` is looked up in `PATH` here, as `execvp`
    /// would. duct sets the child's whole environment, and std then spawns with
    /// `posix_spawn` (a vfork: cheap whatever the worker's size) only for a program given
    /// as a path; for a bare name it forks, copying the worker's page tables for every job.
    fn program(&self) -> OsString {
        use std::os::unix::ffi::OsStrExt as _;
        use std::os::unix::fs::PermissionsExt as _;
        if self.shell.is_empty() || self.shell.as_bytes().contains(&b'/') {
            return self.shell.clone();
        }
        let Some(paths) = std::env::var_os("PATH") else {
            return self.shell.clone();
        };
        std::env::split_paths(&paths)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(&self.shell))
            .find(|candidate| {
                std::fs::metadata(candidate)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .map_or_else(|| self.shell.clone(), std::path::PathBuf::into_os_string)
    }

    fn spawn_failed(&self, what: &str, err: &io::Error) -> Outcome {
        let error = format!(
            "could not start `{} -c`: {what}: {err}",
            self.shell.to_string_lossy()
        );
        tracing::warn!(%error, "job not started");
        Outcome::Failed {
            execution: Execution::default(),
            error,
        }
    }
}

impl Handler for ShellHandler {
    fn run(&self, job: &Job, ctx: &JobContext) -> Outcome {
        let (out_r, out_w) = match os_pipe::pipe() {
            Ok(p) => p,
            Err(e) => return self.spawn_failed("creating the stdout pipe", &e),
        };
        let (err_r, err_w) = match os_pipe::pipe() {
            Ok(p) => p,
            Err(e) => return self.spawn_failed("creating the stderr pipe", &e),
        };
        // The worker's environment, minus its store settings (a PostgreSQL URL may carry a
        // password), plus where the job came from. duct applies an expression's outer
        // (later) settings first and its inner (earlier) ones last, so the job's
        // `QUEUECTL_DB`, set first in this chain, wins over the removal after it.
        if let Some(dir) = &job.options.cwd {
            // Checked here for a clear error: a failed chdir in the spawn says only "No
            // such file or directory", which reads as if the shell were missing.
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return cwd_failed(dir, "is not a directory"),
                Err(e) => return cwd_failed(dir, &e.to_string()),
            }
        }
        let limits = job.options.limits.filter(|l| !l.is_empty());
        let mut expression = match (&limits, &self.limit_helper) {
            (None, _) => duct::cmd(self.program(), ["-c", job.command.as_str()]),
            (Some(l), Some(helper)) => {
                let mut args: Vec<OsString> = vec!["exec-limited".into()];
                args.extend(super::limits::limit_args(l));
                args.extend([
                    "--".into(),
                    self.program(),
                    "-c".into(),
                    job.command.as_str().into(),
                ]);
                duct::cmd(helper, args)
            }
            (Some(_), None) => {
                return Outcome::Failed {
                    execution: Execution::default(),
                    error: "not started: the job has resource limits and this worker has no \
                            limit helper (ShellHandler::limit_helper)"
                        .to_owned(),
                };
            }
        };
        // The job's own variables first: duct applies the earliest setting last, so they
        // win over everything below (the contract adds the job's env last).
        for (name, value) in &job.options.env {
            expression = expression.env(name, value);
        }
        if let Some(dir) = &job.options.cwd {
            expression = expression.dir(dir);
        }
        if let Some(target) = &self.store_target {
            expression = expression.env("QUEUECTL_DB", target);
        }
        let expression = expression
            .env_remove("QUEUECTL_DB")
            .env_remove("QUEUECTL_DB_PATH")
            .env("QUEUECTL_JOB_ID", job.id.as_str())
            .env("QUEUECTL_ATTEMPT", ctx.attempt().to_string())
            .env("QUEUECTL_QUEUE", job.queue.as_str())
            .stdin_null()
            .stdout_file(out_w)
            .stderr_file(err_w)
            .unchecked()
            .before_spawn(|cmd| {
                cmd.process_group(0);
                Ok(())
            });
        let started = expression.start();
        // The expression owns our copies of the pipes' write ends; until it is dropped the
        // readers would never see EOF.
        drop(expression);
        let handle = match started {
            Ok(h) => h,
            Err(e) => return self.spawn_failed("spawn", &e),
        };
        let Some(pgid) = handle
            .pids()
            .first()
            .and_then(|p| i32::try_from(*p).ok())
            .map(Pid::from_raw)
        else {
            // duct always reports the pid of the process it started.
            let _ = handle.kill();
            return self.spawn_failed("spawn", &io::Error::other("no pid for the shell"));
        };
        let _record = ctx.track_process_group(pgid.as_raw());
        tracing::debug!(job = %job.id, pgid = pgid.as_raw(), "job started");

        let mut run = Run {
            handler: self,
            ctx,
            limits,
            pgid,
            stdout: Stream::new(out_r, self.output_limit),
            stderr: Stream::new(err_r, self.output_limit),
            status: None,
            exited_at: None,
            ended: None,
            term_sent_at: None,
            kill_sent_at: None,
            quiet_tick: Duration::ZERO,
            job,
            live: ctx.publishes_output().then(|| Live {
                last: Instant::now(),
                unpublished: false,
            }),
        };
        run.wait(|| handle.try_wait().map(|o| o.map(|o| o.status)));
        run.outcome()
    }
}

/// Why the handler ended the job early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    TimedOut,
    Cancelled,
    /// An operator cancelled the job: TERM, the kill grace, then KILL, as for a timeout.
    CancelRequested,
}

/// When the running job's output was last published, and whether it wrote since.
struct Live {
    last: Instant,
    unpublished: bool,
}

struct Run<'a> {
    handler: &'a ShellHandler,
    job: &'a Job,
    live: Option<Live>,
    ctx: &'a JobContext,
    limits: Option<Limits>,
    pgid: Pid,
    stdout: Stream,
    stderr: Stream,
    status: Option<io::Result<ExitStatus>>,
    exited_at: Option<Instant>,
    ended: Option<Ended>,
    term_sent_at: Option<Instant>,
    kill_sent_at: Option<Instant>,
    quiet_tick: Duration,
}

impl Run<'_> {
    fn signal_group(&self, signal: Signal) {
        match killpg(self.pgid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pgid = self.pgid.as_raw(), %signal, error = %e,
                "cannot signal the job's process group"),
        }
    }

    /// Whether any process of the group is still running. `kill(2)` also counts zombies:
    /// our own shell stays one until its handle is dropped, and an orphaned background
    /// child until init reaps it (some container inits take their time), so on Linux the
    /// group's members are looked up in `/proc` and the dead ones ignored. Without that,
    /// a group that died of its TERM would still wait out the whole grace.
    fn group_alive(&self) -> bool {
        if matches!(killpg(self.pgid, None), Err(Errno::ESRCH)) {
            return false;
        }
        live_member_of(self.pgid).unwrap_or(true)
    }

    /// Loops until the shell has exited (or was given up on) and the output is collected.
    fn wait(&mut self, mut try_wait: impl FnMut() -> io::Result<Option<ExitStatus>>) {
        loop {
            let now = Instant::now();
            if self.status.is_none() {
                match try_wait() {
                    Ok(Some(status)) => {
                        self.status = Some(Ok(status));
                        self.exited_at = Some(now);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.status = Some(Err(e));
                        self.exited_at = Some(now);
                    }
                }
            }

            // New stop decisions only while the shell runs: once it has exited its status
            // stands. A cancellation also cuts a timeout's TERM grace short. The group's
            // SIGKILL after TERM is due even after the shell exited, for grandchildren.
            if self.status.is_none() && self.kill_sent_at.is_none() && self.ctx.is_cancelled() {
                self.ended.get_or_insert(Ended::Cancelled);
                self.signal_group(Signal::SIGKILL);
                self.kill_sent_at = Some(now);
            } else if self.ended.is_none() && self.status.is_none() && self.ctx.timed_out() {
                self.ended = Some(Ended::TimedOut);
                self.signal_group(Signal::SIGTERM);
                self.term_sent_at = Some(now);
            } else if self.ended.is_none()
                && self.status.is_none()
                && self.ctx.is_cancel_requested()
            {
                self.ended = Some(Ended::CancelRequested);
                self.signal_group(Signal::SIGTERM);
                self.term_sent_at = Some(now);
            }
            let kill_pending = match (self.term_sent_at, self.kill_sent_at) {
                (Some(term), None) => {
                    if self.status.is_some() && !self.group_alive() {
                        false
                    } else if now.duration_since(term) >= self.handler.kill_grace {
                        self.signal_group(Signal::SIGKILL);
                        self.kill_sent_at = Some(now);
                        false
                    } else {
                        true
                    }
                }
                _ => false,
            };

            let pipes_open = self.stdout.open || self.stderr.open;
            match self.exited_at {
                Some(exited) => {
                    let grace_over = now.duration_since(exited) >= self.handler.output_grace;
                    if !kill_pending && (!pipes_open || grace_over) {
                        return;
                    }
                }
                None => {
                    if let Some(killed) = self.kill_sent_at {
                        if now.duration_since(killed) >= REAP_LIMIT {
                            tracing::error!(
                                pgid = self.pgid.as_raw(),
                                "the job's shell survived SIGKILL; giving up on it"
                            );
                            self.status = Some(Err(io::Error::other(
                                "the shell did not exit after SIGKILL",
                            )));
                            return;
                        }
                    }
                }
            }

            // Sleep until output arrives or the next check is due. When both pipes close the
            // shell is usually exiting right now: look again soon, then back off.
            let tick = if pipes_open {
                TICK
            } else {
                self.quiet_tick = (self.quiet_tick * 2).clamp(QUIET_FIRST, TICK);
                self.quiet_tick
            };
            let tick = match (self.status.is_none(), self.ctx.deadline(), self.ended) {
                (true, Some(deadline), None) => {
                    tick.min(deadline.saturating_duration_since(now) + Duration::from_millis(1))
                }
                _ => tick,
            };
            self.pump(tick);
            self.publish_if_due();
        }
    }

    /// Publishes the output so far if the job wrote since the last publication and that
    /// was at least [`LIVE_EVERY`] ago.
    fn publish_if_due(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        if self.stdout.fresh || self.stderr.fresh {
            live.unpublished = true;
            self.stdout.fresh = false;
            self.stderr.fresh = false;
        }
        if !live.unpublished || live.last.elapsed() < LIVE_EVERY {
            return;
        }
        live.unpublished = false;
        live.last = Instant::now();
        let (stdout, stdout_cut) = self.stdout.buf.snapshot();
        let (stderr, stderr_cut) = self.stderr.buf.snapshot();
        let output = LiveOutput {
            stdout,
            stderr,
            stdout_cut,
            stderr_cut,
        };
        self.ctx.publish_output(self.job, &output);
    }

    /// Waits up to `timeout` for output and reads whatever is ready.
    fn pump(&mut self, timeout: Duration) {
        if !self.stdout.open && !self.stderr.open {
            // Nothing to poll, and poll(2) counts in whole milliseconds.
            std::thread::sleep(timeout);
            return;
        }
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let (out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(2);
            if self.stdout.open {
                fds.push(PollFd::new(self.stdout.pipe.as_fd(), PollFlags::POLLIN));
            }
            if self.stderr.open {
                fds.push(PollFd::new(self.stderr.pipe.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(_) => {}
                Err(Errno::EINTR) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "poll on the job's output failed");
                    std::thread::sleep(timeout);
                    return;
                }
            }
            let ready = |fd: Option<&PollFd<'_>>| {
                fd.and_then(PollFd::revents).is_some_and(|r| !r.is_empty())
            };
            let mut it = fds.iter();
            let out = if self.stdout.open {
                ready(it.next())
            } else {
                false
            };
            let err = if self.stderr.open {
                ready(it.next())
            } else {
                false
            };
            (out, err)
        };
        if out_ready {
            self.stdout.read_some();
        }
        if err_ready {
            self.stderr.read_some();
        }
    }

    fn outcome(self) -> Outcome {
        let output = JobOutput {
            stdout: self.stdout.buf.into_string(),
            stderr: self.stderr.buf.into_string(),
        };
        let failed = |exit_code: Option<i32>, error: String| Outcome::Failed {
            execution: Execution {
                exit_code,
                output: output.clone(),
            },
            error,
        };
        match self.ended {
            Some(Ended::TimedOut) => {
                let t = self.ctx.timeout().unwrap_or_default();
                return failed(Some(TIMEOUT_EXIT_CODE), timeout_error(t));
            }
            Some(Ended::Cancelled) => {
                return failed(None, "cancelled: the worker stopped the job".to_owned());
            }
            Some(Ended::CancelRequested) => {
                // The store records it as cancelled whatever it is told; the exit code is
                // the one observed (a shell that exits on TERM has none).
                let code = match &self.status {
                    Some(Ok(status)) => status.code(),
                    _ => None,
                };
                return failed(code, CANCELLED_WHILE_RUNNING.to_owned());
            }
            None => {}
        }
        if let Some(Ok(status)) = &self.status {
            let named = self
                .limits
                .and_then(|l| super::limits::limit_error(&l, status.code(), status.signal()));
            if let Some(error) = named {
                return failed(status.code(), error);
            }
        }
        match self.status {
            Some(Ok(status)) => match (status.code(), status.signal()) {
                (Some(0), _) => Outcome::Succeeded {
                    execution: Execution {
                        exit_code: Some(0),
                        output,
                    },
                },
                (Some(code), _) => failed(Some(code), exit_code_error(code)),
                (None, Some(signal)) => failed(None, signal_error(signal)),
                (None, None) => failed(None, format!("ended with status {status}")),
            },
            Some(Err(e)) => failed(None, format!("waiting for the job failed: {e}")),
            None => failed(None, "the job's exit status is unknown".to_owned()),
        }
    }
}

/// Whether `/proc` lists a process of group `pgid` that is neither a zombie nor dead;
/// `None` where `/proc` cannot be read (not Linux).
fn live_member_of(pgid: Pid) -> Option<bool> {
    let dir = std::fs::read_dir("/proc").ok()?;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Gone meanwhile, or not ours to read: either way not a member we can wait for.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid.as_raw()) && !matches!(state, Some("Z" | "X" | "x")) {
            return Some(true);
        }
    }
    Some(false)
}

/// The attempt's outcome when the job's working directory is unusable.
fn cwd_failed(dir: &str, why: &str) -> Outcome {
    Outcome::Failed {
        execution: Execution::default(),
        error: format!("working directory {dir}: {why}"),
    }
}

/// "timeout after 5s" (or "after 1500ms" for a timeout that is not whole seconds).
pub(crate) fn timeout_error(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("timeout after {}s", d.as_secs())
    } else {
        format!("timeout after {}ms", d.as_millis())
    }
}

fn exit_code_error(code: i32) -> String {
    match code {
        126 => "exit code 126 (command not executable)".to_owned(),
        127 => "exit code 127 (command not found)".to_owned(),
        _ => format!("exit code {code}"),
    }
}

fn signal_error(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(s) => format!("killed by signal {signal} ({})", s.as_str()),
        Err(_) => format!("killed by signal {signal}"),
    }
}

/// One of the job's output pipes and what was read from it.
struct Stream {
    pipe: os_pipe::PipeReader,
    open: bool,
    buf: TailBuffer,
    /// Bytes arrived since the live output last looked.
    fresh: bool,
}

impl Stream {
    fn new(pipe: os_pipe::PipeReader, limit: usize) -> Self {
        Stream {
            pipe,
            open: true,
            buf: TailBuffer::new(limit),
            fresh: false,
        }
    }

    /// One read: poll said it will not block.
    fn read_some(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        match self.pipe.read(&mut chunk) {
            Ok(0) => self.open = false,
            Ok(n) => {
                self.buf.push(&chunk[..n]);
                self.fresh = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the job's output failed");
                self.open = false;
            }
        }
    }
}

/// Keeps the last `limit` bytes written to it and counts the rest.
#[derive(Debug)]
struct TailBuffer {
    limit: usize,
    buf: Vec<u8>,
    /// Bytes dropped from the front of `buf`.
    cut: u64,
}

impl TailBuffer {
    fn new(limit: usize) -> Self {
        TailBuffer {
            limit,
            buf: Vec::new(),
            cut: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // Trim only when twice over the limit, so trimming is amortised O(1) per byte.
        if self.buf.len() > self.limit.saturating_mul(2).max(4096) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.buf.len() > self.limit {
            let cut = self.buf.len() - self.limit;
            self.buf.drain(..cut);
            self.cut = self.cut.saturating_add(cut as u64);
        }
    }

    /// The kept tail as text and the number of bytes before it, without consuming. A cut
    /// may have split a UTF-8 sequence: its continuation bytes are dropped (and counted)
    /// rather than shown as a replacement character; so is a sequence still incomplete at
    /// the end, which the next snapshot completes.
    fn snapshot(&self) -> (String, u64) {
        let start = self.buf.len().saturating_sub(self.limit);
        let mut cut = self.cut.saturating_add(start as u64);
        let mut tail = self.buf.get(start..).unwrap_or_default();
        if cut > 0 {
            let skip = tail
                .iter()
                .take(3)
                .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
                .count();
            tail = tail.get(skip..).unwrap_or_default();
            cut = cut.saturating_add(skip as u64);
        }
        if let Err(e) = std::str::from_utf8(tail) {
            if e.error_len().is_none() {
                tail = tail.get(..e.valid_up_to()).unwrap_or_default();
            }
        }
        (String::from_utf8_lossy(tail).into_owned(), cut)
    }

    fn into_string(mut self) -> String {
        self.trim();
        if self.cut == 0 {
            return String::from_utf8_lossy(&self.buf).into_owned();
        }
        let skip = self
            .buf
            .iter()
            .take(3)
            .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
            .count();
        let text = String::from_utf8_lossy(self.buf.get(skip..).unwrap_or_default());
        truncation_marker(self.cut.saturating_add(skip as u64), text.len()) + &text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::worker::CancelToken;

    fn job(command: &str) -> Job {
        crate::worker::test_job(command)
    }

    fn run(command: &str) -> Outcome {
        ShellHandler::new().run(&job(command), &JobContext::new(1, None, CancelToken::new()))
    }

    #[test]
    fn tail_buffer_keeps_the_tail_and_marks_truncation() {
        let mut b = TailBuffer::new(4);
        b.push(b"abc");
        assert_eq!(TailBuffer::into_string(b), "abc");
        let mut b = TailBuffer::new(4);
        for chunk in [&b"0123"[..], b"4567", b"89"] {
            b.push(chunk);
        }
        assert_eq!(
            b.into_string(),
            "[queuectl: output truncated: 6 bytes cut, kept the last 4]\n6789"
        );
    }

    #[test]
    fn snapshots_hold_the_tail_without_half_characters() {
        let mut b = TailBuffer::new(4);
        b.push("ab".as_bytes());
        assert_eq!(b.snapshot(), ("ab".to_owned(), 0));
        b.push(&"€".as_bytes()[..2]); // incomplete: held back until it is whole
        assert_eq!(b.snapshot(), ("ab".to_owned(), 0));
        b.push(&"€".as_bytes()[2..]);
        b.push(b"z");
        // "ab€z" is 6 bytes; the last 4 are "€z".
        assert_eq!(b.snapshot(), ("€z".to_owned(), 2));
        let mut b = TailBuffer::new(4);
        b.push("a€€".as_bytes()); // the tail starts inside the first "€": 4 bytes cut
        assert_eq!(b.snapshot(), ("€".to_owned(), 4));
    }

    #[test]
    fn tail_buffer_does_not_start_with_half_a_character() {
        let mut b = TailBuffer::new(3);
        b.push("aé€".as_bytes()); // 1 + 2 + 3 bytes: the tail is exactly "€"
        assert!(b.into_string().ends_with("\n€"));
        let mut b = TailBuffer::new(4);
        b.push("a€€".as_bytes()); // the tail starts inside the first "€"
        assert!(b.into_string().ends_with("\n€"));
    }

    #[test]
    fn success_captures_both_streams_separately() {
        let Outcome::Succeeded { execution } = run("echo out; echo err >&2") else {
            panic!("expected success");
        };
        assert_eq!(execution.exit_code, Some(0));
        assert_eq!(execution.output.stdout, "out\n");
        assert_eq!(execution.output.stderr, "err\n");
    }

    #[test]
    fn signal_death_has_no_exit_code_and_names_the_signal() {
        let Outcome::Failed { execution, error } = run("kill -9 $$") else {
            panic!("expected failure");
        };
        assert_eq!(execution.exit_code, None);
        assert_eq!(error, "killed by signal 9 (SIGKILL)");
    }

    #[test]
    fn missing_shell_is_a_failed_outcome() {
        let out = ShellHandler::new()
            .shell("/nonexistent/queuectl-test-sh")
            .run(&job("true"), &JobContext::new(1, None, CancelToken::new()));
        let Outcome::Failed { execution, error } = out else {
            panic!("expected failure");
        };
        assert_eq!(execution.exit_code, None);
        assert!(error.contains("could not start"), "{error}");
    }

    #[test]
    fn error_texts() {
        assert_eq!(exit_code_error(3), "exit code 3");
        assert_eq!(signal_error(15), "killed by signal 15 (SIGTERM)");
        assert_eq!(timeout_error(Duration::from_secs(5)), "timeout after 5s");
        assert_eq!(
            timeout_error(Duration::from_millis(1500)),
            "timeout after 1500ms"
        );
    }
}
