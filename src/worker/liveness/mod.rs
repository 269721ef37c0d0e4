//! Liveness and recovery: deciding that a registered worker is dead, and cleaning up after
//! it. This is the one place that rule lives; the pool's recovery thread
//! ([`WorkerPool::run`](super::WorkerPool::run)), `queuectl status` and `queuectl list`
//! ([`recover_dead_workers`]) and `queuectl worker stop --wait` ([`live_workers`]) all ask it.
//!
//! **Who is dead.** Seen from a host, a registered worker is dead when
//! - it ran on the same host (same host id) and its process is gone (a zombie counts as
//!   gone): noticed within one recovery pass, about a second; or
//! - its heartbeat is older than three leases, and at least 10 s: the only sign a worker on
//!   another host gives (power loss, network partition).
//!
//! **What recovery does** for a dead worker: kills its orphaned job process groups when it
//! ran on this host (see [`orphan`]: only this host can), puts its `processing` jobs back to
//! `pending` uncharged (or `dead` once interrupted too often), and removes its registry
//! entry. A running pool's pass also recovers expired leases, except those of live workers
//! on its own host (a stalled worker is not a dead one; see [`Liveness::recover`]).
//!
//! Dead entries are only ever removed by recovery, so a reader ([`live_workers`]) filters
//! them out by the same rule instead of trusting the registry.

pub(super) mod orphan;

use std::time::Duration;

use queuectl_store::{Job, JobStore, Timestamp, WorkerInfo};

use self::orphan::{pid_alive, GroupRegistry};
use crate::error::Result;
use crate::scheduler::{Recovery, Scheduler};

/// A registered worker whose heartbeat is older than this many leases is dead, wherever it
/// runs.
const STALE_HEARTBEAT_LEASES: u32 = 3;

/// ... but never sooner than this, so a short test lease cannot make live workers look dead
/// between two of their heartbeats.
const STALE_HEARTBEAT_MIN: Duration = Duration::from_secs(10);

/// The liveness rule as seen from one host, for one lease length.
#[derive(Clone, Debug)]
pub(super) struct Liveness {
    host: String,
    lease: Duration,
}

impl Liveness {
    /// The rule as seen from `host` (a host id, see [`default_host_id`]) for leases of
    /// `lease`.
    pub(super) fn new(host: impl Into<String>, lease: Duration) -> Self {
        Liveness {
            host: host.into(),
            lease,
        }
    }

    /// The rule as seen from `host` with the store's `lease-seconds`.
    fn from_settings<S: JobStore>(scheduler: &Scheduler<S>, host: &str) -> Result<Self> {
        Ok(Liveness::new(host, scheduler.settings()?.lease()))
    }

    /// Why `worker` counts as dead at `now`, or `None` while it is alive.
    fn death_reason(&self, worker: &WorkerInfo, now: Timestamp) -> Option<&'static str> {
        let stale_after = self
            .lease
            .saturating_mul(STALE_HEARTBEAT_LEASES)
            .max(STALE_HEARTBEAT_MIN);
        if worker.host == self.host && !pid_alive(worker.pid) {
            Some("its process is gone")
        } else if now.since(worker.heartbeat_at) > stale_after {
            Some("its heartbeat stopped")
        } else {
            None
        }
    }

    /// One recovery pass. With `me` (a running worker's id; every worker runs this about
    /// once a second):
    ///
    /// - Registered workers that are dead have their orphaned job process groups killed
    ///   when they ran on this host, their jobs recovered whatever their leases say, and
    ///   their entries removed.
    /// - Jobs whose lease expired are recovered, except those held by a worker *on this
    ///   host whose process is alive*: such a worker was only stalled (typically by a long
    ///   write transaction holding the store's lock, which also blocked its lease
    ///   renewals), and taking its job would run it twice at once. Its next renewal
    ///   succeeds, or it dies and the first rule applies. Across hosts only the lease can
    ///   tell.
    ///
    /// Without `me` (a CLI command), only dead workers of this host are handled.
    /// Failures are logged and retried at the next pass.
    pub(super) fn recover<S: JobStore>(
        &self,
        scheduler: &Scheduler<S>,
        groups: &GroupRegistry,
        me: Option<&str>,
    ) {
        let workers = match scheduler.store().list_workers() {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list workers");
                return;
            }
        };
        let now = scheduler.now();
        let mut live_here: Vec<&str> = Vec::new();
        for worker in &workers {
            if me == Some(worker.id.as_str()) {
                live_here.push(&worker.id);
                continue;
            }
            let Some(reason) = self.death_reason(worker, now) else {
                if worker.host == self.host {
                    live_here.push(&worker.id);
                }
                continue;
            };
            if me.is_none() && worker.host != self.host {
                continue;
            }
            tracing::warn!(dead_worker = %worker.id, reason, "found a dead worker");
            self.bury(scheduler, groups, worker);
        }
        if me.is_none() {
            return;
        }
        let held_by_live_local = |job: &Job| {
            job.worker_id
                .as_deref()
                .is_some_and(|w| live_here.contains(&w))
        };
        match scheduler.recover_expired_except(&held_by_live_local) {
            Ok(r) => log_recovery(&r, "lease expired"),
            Err(e) => tracing::warn!(error = %e, "recovering expired leases failed"),
        }
    }

    /// Cleans up after one dead worker: its job groups (on this host), its jobs, its entry.
    fn bury<S: JobStore>(
        &self,
        scheduler: &Scheduler<S>,
        groups: &GroupRegistry,
        worker: &WorkerInfo,
    ) {
        if worker.host == self.host {
            let killed = groups.kill_orphans(&worker.id);
            if !killed.is_empty() {
                tracing::warn!(dead_worker = %worker.id, groups = ?killed,
                    "killed orphaned job process groups");
            }
        }
        match scheduler.recover_worker(&worker.id) {
            Ok(r) => log_recovery(&r, "worker died"),
            Err(e) => {
                // Keep it registered so the next pass tries again.
                tracing::warn!(dead_worker = %worker.id, error = %e,
                    "recovering a dead worker's jobs failed");
                return;
            }
        }
        if let Err(e) = scheduler.store().deregister_worker(&worker.id) {
            tracing::warn!(dead_worker = %worker.id, error = %e,
                "cannot deregister a dead worker");
        }
    }
}

/// Recovers what dead workers *of this host* left behind: their orphaned job process
/// groups are killed, their jobs go back to `pending` (uncharged) and their registry
/// entries are removed. `status` and `list` run this, so a SIGKILLed worker's jobs come
/// back even while no worker runs. Lease expiry and other hosts' workers are left to the
/// workers' own recovery pass. The rule is in the [crate docs](crate#liveness).
///
/// # Errors
/// Unreadable settings; everything else is logged and retried at the next call.
pub fn recover_dead_workers<S: JobStore>(scheduler: &Scheduler<S>, host: &str) -> Result<()> {
    let groups = GroupRegistry::new(GroupRegistry::default_root());
    Liveness::from_settings(scheduler, host)?.recover(scheduler, &groups, None);
    Ok(())
}

/// The registered workers that are alive, by the rule recovery uses to declare one dead
/// (seen from this host, [`default_host_id`], with the store's `lease-seconds`): what
/// `status` counts and what `worker stop --wait` waits for. Dead entries stay in the
/// registry until a recovery pass removes them.
///
/// # Errors
/// Store failures, or unreadable settings.
pub fn live_workers<S: JobStore>(scheduler: &Scheduler<S>) -> Result<Vec<WorkerInfo>> {
    let liveness = Liveness::from_settings(scheduler, &default_host_id())?;
    let now = scheduler.now();
    let mut workers = scheduler.store().list_workers()?;
    workers.retain(|w| liveness.death_reason(w, now).is_none());
    Ok(workers)
}

/// The default host id of a worker: `QUEUECTL_HOST_ID` if set, else the hostname. Workers
/// with the same host id check each other's pids, so two machines must not share one.
#[must_use]
pub fn default_host_id() -> String {
    if let Some(id) = std::env::var("QUEUECTL_HOST_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return id;
    }
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn log_recovery(r: &Recovery, why: &str) {
    for id in &r.recovered {
        tracing::warn!(job = %id, why, "job recovered to pending");
    }
    for id in &r.abandoned {
        tracing::warn!(job = %id, why, "job interrupted too often: moved to the dead-letter queue");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    fn death_follows_heartbeat_age_and_local_pids() {
        let lease = Duration::from_secs(15);
        let now = Timestamp::from_millis(100_000);
        let me = std::process::id();
        let live =
            |w: &WorkerInfo, lease| Liveness::new("here", lease).death_reason(w, now).is_none();
        // 45 s = 3 leases: still live at the limit, dead past it.
        assert!(live(&worker("here", me, 55_000), lease));
        assert!(!live(&worker("here", me, 54_999), lease));
        // Short leases never make the window shorter than 10 s.
        let short = Duration::from_secs(2);
        assert!(live(&worker("here", me, 90_000), short));
        assert!(!live(&worker("here", me, 89_999), short));
        // A local worker whose pid is gone is dead however fresh; a remote pid is not checked.
        let gone = u32::try_from(i32::MAX).unwrap_or(u32::MAX);
        assert!(!live(&worker("here", gone, 99_000), lease));
        assert!(live(&worker("there", gone, 99_000), lease));
    }
}
