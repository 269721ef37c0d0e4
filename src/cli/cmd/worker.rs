//! `queuectl worker start | stop`, and the liveness rule `status` shares.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use queuectl::worker::{Shutdown, WorkerPool};
use queuectl::{JobStore as _, Timestamp, WorkerInfo};

use crate::cli::args::{WorkerCommand, WorkerStartArgs, WorkerStopArgs};
use crate::cli::open_store::{open, Sched};
use crate::cli::output::print_lines;

/// A heartbeat older than this many leases means a dead worker (as in the runtime).
const STALE_HEARTBEAT_LEASES: u32 = 3;
/// ... but never sooner than this.
const STALE_HEARTBEAT_MIN: Duration = Duration::from_secs(10);

/// How often `worker stop --wait` looks at the registry.
const WAIT_POLL: Duration = Duration::from_millis(100);

pub(crate) fn run(db: Option<&str>, command: WorkerCommand) -> anyhow::Result<()> {
    match command {
        WorkerCommand::Start(a) => start(db, a),
        WorkerCommand::Stop(a) => stop(db, &a),
    }
}

fn start(db: Option<&str>, a: WorkerStartArgs) -> anyhow::Result<()> {
    let (sched, target) = open(db)?;
    let mut builder = WorkerPool::builder(sched)
        .slots(a.count)
        .queues(a.queues.clone())
        .drain(a.drain)
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

fn stop(db: Option<&str>, a: &WorkerStopArgs) -> anyhow::Result<()> {
    let (sched, _) = open(db)?;
    let live = live_workers(&sched)?;
    if live.is_empty() {
        return print_lines(["no workers running"]);
    }
    sched.store().request_stop()?;
    // The registry flag reaches every worker at its next heartbeat, on any host; SIGTERM
    // makes local ones react now. Workers already asked are not signalled again: a second
    // signal means "stop at once" to a worker.
    let here = host_id(None);
    for w in live.iter().filter(|w| w.host == here && !w.stop_requested) {
        signal_worker(w);
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

/// Registered workers that are alive: a recent heartbeat and, on this host, a running
/// process.
pub(crate) fn live_workers(sched: &Sched) -> anyhow::Result<Vec<WorkerInfo>> {
    let lease = Duration::from_secs(sched.settings()?.lease_secs);
    let now = sched.now();
    let here = host_id(None);
    Ok(sched
        .store()
        .list_workers()?
        .into_iter()
        .filter(|w| is_live(w, now, lease, &here))
        .collect())
}

/// The runtime's rule for a dead worker, seen from the other side: a worker is live while
/// its heartbeat is younger than three leases (and never less than 10 s), and, on this
/// host, while its process runs.
fn is_live(w: &WorkerInfo, now: Timestamp, lease: Duration, here: &str) -> bool {
    let stale_after = (lease * STALE_HEARTBEAT_LEASES).max(STALE_HEARTBEAT_MIN);
    now.since(w.heartbeat_at) <= stale_after && (w.host != here || pid_alive(w.pid))
}

fn host_id(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| {
            std::env::var("QUEUECTL_HOST_ID")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| {
            hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".to_owned())
        })
}

/// Whether `pid` runs on this host; a zombie (killed, not yet reaped) counts as gone.
/// Errs towards "alive", as the runtime does.
fn pid_alive(pid: u32) -> bool {
    let Some(p) = to_pid(pid) else { return true };
    match kill(p, None) {
        Err(Errno::ESRCH) => false,
        Ok(()) => !is_zombie(pid),
        Err(_) => true,
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name, which may hold spaces.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(host: &str, pid: u32, heartbeat_ms: i64) -> WorkerInfo {
        WorkerInfo {
            id: format!("{host}:{pid}:x"),
            host: host.to_owned(),
            pid,
            slots: 1,
            queues: Vec::new(),
            started_at: Timestamp::from_millis(0),
            heartbeat_at: Timestamp::from_millis(heartbeat_ms),
            stop_requested: false,
        }
    }

    #[test]
    fn liveness_follows_heartbeat_age_and_local_pids() {
        let lease = Duration::from_secs(15);
        let now = Timestamp::from_millis(100_000);
        let me = std::process::id();
        // 45 s = 3 leases: still live at the limit, dead past it.
        assert!(is_live(&worker("here", me, 55_000), now, lease, "here"));
        assert!(!is_live(&worker("here", me, 54_999), now, lease, "here"));
        // Short leases never make the window shorter than 10 s.
        let short = Duration::from_secs(2);
        assert!(is_live(&worker("here", me, 90_000), now, short, "here"));
        assert!(!is_live(&worker("here", me, 89_999), now, short, "here"));
        // A local worker whose pid is gone is dead however fresh; a remote pid is not checked.
        let gone = u32::try_from(i32::MAX).unwrap_or(u32::MAX);
        assert!(!is_live(&worker("here", gone, 99_000), now, lease, "here"));
        assert!(is_live(&worker("there", gone, 99_000), now, lease, "here"));
    }
}
