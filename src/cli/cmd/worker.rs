//! `queuectl worker start | stop`. Which workers are alive is the runtime's rule
//! ([`queuectl::live_workers`]), shared with `status`.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use queuectl::{live_workers, Scheduler, ShellHandler, Shutdown, WorkerInfo, WorkerPool};

use crate::cli::args::{WorkerCommand, WorkerStartArgs, WorkerStopArgs};
use crate::cli::metrics::serve_in_background;
use crate::cli::open_store::{open, sqlite_path, target_text, without_password};
use crate::cli::output::print_lines;

/// How often `worker stop --wait` looks at the registry.
const WAIT_POLL: Duration = Duration::from_millis(100);

pub(crate) fn run(db: Option<&str>, command: WorkerCommand) -> anyhow::Result<()> {
    match command {
        WorkerCommand::Start(a) => start(db, a),
        WorkerCommand::Stop(a) => stop(db, &a),
    }
}

fn start(db: Option<&str>, a: WorkerStartArgs) -> anyhow::Result<()> {
    if let Some(path) = sqlite_path(db)? {
        refuse_foreign_store(&path, a.trust_store_owner)?;
    }
    let (sched, target) = open(db)?;
    if let Some(addr) = a.metrics {
        // Bound before the pool starts, so a taken port is an error at once (exit 1).
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        let bound = listener
            .local_addr()
            .context("reading the metrics address")?;
        let scrapes = Scheduler::new(Arc::clone(sched.store()));
        serve_in_background(listener, scrapes).context("starting the metrics server")?;
        tracing::info!(url = %format!("http://{bound}/metrics"), "serving metrics");
    }
    let job_target = without_password(&target_text(db));
    let mut shell = ShellHandler::new().store_target(job_target);
    // Jobs with resource limits start through this very binary (`exec-limited`).
    match std::env::current_exe() {
        Ok(me) => shell = shell.limit_helper(me),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find this program: jobs with limits will fail")
        }
    }
    let mut builder = WorkerPool::builder(sched)
        .handler("shell", shell)
        .slots(a.count)
        .queues(a.queues.clone())
        .drain(a.drain)
        .prefetch(a.prefetch)
        .schedules(crate::cli::cmd::cron::template())
        .host_id(host_id(a.host_id.as_deref()));
    if let Some(ms) = a.poll_interval_ms {
        builder = builder.poll_interval(Duration::from_millis(ms));
    }
    let pool = builder.build();
    let shutdown = Shutdown::new();
    shutdown
        .install_signal_handlers()
        .context("installing the SIGTERM/SIGINT handlers")?;
    // The pool logs its start (id, slots, queues) and its totals at exit.
    tracing::debug!(store = %target, "opened the store");
    pool.run(&shutdown)?;
    Ok(())
}

/// A worker runs every job in its store as the user running the worker, so a store file
/// another user owns (in a shared or world-writable directory, say) could make us run their
/// commands. Refuse, as git refuses a repository owned by someone else, unless told to
/// trust it. A file that does not exist yet will be ours.
fn refuse_foreign_store(path: &std::path::Path, trusted: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    if trusted || meta.uid() == me {
        return Ok(());
    }
    bail!(
        "refusing to run jobs from {}: the file is owned by another user (uid {}), and its \
         jobs would run as you (uid {me}); if you trust its owner, pass --trust-store-owner \
         (or set QUEUECTL_TRUST_STORE_OWNER=1)",
        path.display(),
        meta.uid()
    )
}

fn stop(db: Option<&str>, a: &WorkerStopArgs) -> anyhow::Result<()> {
    let store_file = sqlite_path(db)?;
    let (sched, _) = open(db)?;
    let live = live_workers(&sched)?;
    if live.is_empty() {
        return print_lines(["no workers running"]);
    }
    sched.store().request_stop()?;
    // The registry flag reaches every worker at its next heartbeat, on any host; SIGTERM
    // makes local ones react now. Workers already asked are not signalled again: a second
    // signal means "stop at once" to a worker. A signal goes only to a process that holds
    // this very file open: a copy of the store (a backup, `cp`) carries the original's
    // registry, and stopping the copy must not stop the original's workers. Where that
    // cannot be checked (PostgreSQL, no /proc), the flag alone does it.
    let here = host_id(None);
    if let Some(file) = store_file.as_deref() {
        for w in live.iter().filter(|w| w.host == here && !w.stop_requested) {
            if holds_open(w.pid, file) {
                signal_worker(w);
            }
        }
    }
    let slots: u32 = live.iter().map(|w| w.slots).sum();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    print_lines([format!(
        "asked {} ({}) to stop",
        plural(live.len(), "worker"),
        plural(usize::try_from(slots).unwrap_or(usize::MAX), "slot")
    )])?;
    if !a.wait {
        return Ok(());
    }
    let deadline = a.timeout.map(|t| Instant::now() + t);
    // Hidden unless stderr is a terminal.
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let ids: Vec<&str> = live.iter().map(|w| w.id.as_str()).collect();
    loop {
        let remaining = live_workers(&sched)?
            .iter()
            .filter(|w| ids.contains(&w.id.as_str()))
            .count();
        if remaining == 0 {
            spinner.finish_and_clear();
            return print_lines(["all workers stopped"]);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            spinner.finish_and_clear();
            bail!("{remaining} of {} workers still running", live.len());
        }
        spinner.set_message(format!(
            "waiting for {remaining} workers to finish their jobs"
        ));
        thread::sleep(WAIT_POLL);
    }
}

/// `--host-id`, else the runtime's default (`QUEUECTL_HOST_ID`, else the hostname).
fn host_id(flag: Option<&str>) -> String {
    flag.map_or_else(queuectl::default_host_id, str::to_owned)
}

/// SIGTERM to a local worker, unless its pid now belongs to some other program.
fn signal_worker(w: &WorkerInfo) {
    let Some(pid) = to_pid(w.pid) else { return };
    if !is_queuectl_process(w.pid) {
        tracing::warn!(worker = %w.id, pid = w.pid, "pid is not a queuectl process; not signalled");
        return;
    }
    if let Err(e) = kill(pid, Signal::SIGTERM) {
        tracing::debug!(worker = %w.id, pid = w.pid, error = %e, "SIGTERM failed");
    }
}

/// Whether process `pid` has `file` open (the same inode, whatever path it used), read from
/// `/proc/PID/fd`. False when that cannot be read.
fn holds_open(pid: u32, file: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(target) = std::fs::metadata(file) else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::metadata(fd.path())
            .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
    })
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// Guards against pid reuse where `/proc` can tell; elsewhere trusts the registry.
fn is_queuectl_process(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(argv0).contains("queuectl")
        }
        Err(_) => !std::path::Path::new("/proc/self").exists(),
    }
}
