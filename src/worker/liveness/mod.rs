//! Liveness and recovery: deciding that a registered worker is dead, and cleaning up after
//! it. This is the one place that rule lives; the pool's recovery thread
//! ([`WorkerPool::run`](super::WorkerPool::run)), `queuectl status` and `queuectl list`
//! ([`recover_dead_workers`]) and `queuectl worker stop --wait` ([`live_workers`]) all ask it.
//!
//! **Who is dead.** Seen from a host, a registered worker is dead when
//! - it ran on the same host (same host id) and its process is gone (a zombie counts as
//!   gone), or its pid now belongs to a later process (the start time in its id, see
//!   [`WorkerPoolBuilder::build`], differs): noticed within one recovery pass, about a
//!   second; or
//! - its heartbeat has not changed for three leases, and at least 10 s, *as a running
//!   pool sees it on its own monotonic clock*: the only sign a worker on another host
//!   gives (power loss, network partition). Measured so, a step of either host's wall
//!   clock cannot make a live worker look dead. A one-shot reader ([`live_workers`], for
//!   `status`) cannot watch, and judges another host's worker by its heartbeat's age on
//!   the wall clock; it only displays.
//!
//! [`WorkerPoolBuilder::build`]: crate::WorkerPoolBuilder::build
//!
//! **What recovery does** for a dead worker: kills its orphaned job process groups when it
//! ran on this host (see [`orphan`]: only this host can), puts its `processing` jobs back to
//! `pending` uncharged (or `dead` once interrupted too often), and removes its registry
//! entry. A running pool's pass also recovers expired leases, except those of live workers
//! on its own host (a stalled worker is not a dead one; see [`Liveness::recover`]), and
//! only once it has seen the lease stand still, expired, for half a lease on its monotonic
//! clock: a forward step of this host's wall clock makes every lease look expired, but a
//! live owner renews (every third of a lease) before then.
//!
//! Dead entries are only ever removed by recovery, so a reader ([`live_workers`]) filters
//! them out by the same rule instead of trusting the registry.

pub(super) mod orphan;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use queuectl_store::{ClaimToken, Job, JobId, JobPageRequest, JobStore, Timestamp, WorkerInfo};

use self::orphan::{pid_alive, start_ticks, GroupRegistry};
use crate::error::Result;
use crate::scheduler::{Recovery, Scheduler};

/// A registered worker whose heartbeat is older than this many leases is dead, wherever it
/// runs.
const STALE_HEARTBEAT_LEASES: u32 = 3;

/// ... but never sooner than this, so a short test lease cannot make live workers look dead
/// between two of their heartbeats.
const STALE_HEARTBEAT_MIN: Duration = Duration::from_secs(10);

/// An expired lease is recovered only once it has stood still for this share of a lease
/// (on the recovering pool's monotonic clock): a live owner renews every third of one.
const EXPIRED_LEASE_WATCH_DIVISOR: u32 = 2;

/// The liveness rule as seen from one host, for one lease length.
#[derive(Debug)]
pub(super) struct Liveness {
    host: String,
    lease: Duration,
    /// What a running pool saw change, and when on its monotonic clock.
    watch: Mutex<Watch>,
    /// Whether a pass saw a worker of another host registered: only such a worker can
    /// take a job from a live worker of this host (by lease expiry).
    other_hosts: AtomicBool,
}

/// Values a pool watches stand still: other workers' heartbeats, expired leases.
#[derive(Debug, Default)]
struct Watch {
    heartbeats: HashMap<String, (Timestamp, Instant)>,
    leases: HashMap<JobId, (Option<ClaimToken>, Option<Timestamp>, Instant)>,
}

/// Why a worker of this host is dead, or `None` while its process runs.
fn local_death(worker: &WorkerInfo) -> Option<&'static str> {
    if !pid_alive(worker.pid) {
        return Some("its process is gone");
    }
    let recorded = worker
        .id
        .rsplit_once(":s")
        .and_then(|(_, start)| start.parse::<u64>().ok());
    match (recorded, start_ticks(worker.pid)) {
        (Some(recorded), Some(now)) if recorded != now => {
            Some("its pid belongs to a later process")
        }
        _ => None,
    }
}

impl Liveness {
    /// The rule as seen from `host` (a host id, see [`default_host_id`]) for leases of
    /// `lease`.
    pub(super) fn new(host: impl Into<String>, lease: Duration) -> Self {
        Liveness {
            host: host.into(),
            lease,
            watch: Mutex::new(Watch::default()),
            other_hosts: AtomicBool::new(false),
        }
    }

    /// Whether a recovery pass of this run saw a worker of another host registered.
    pub(super) fn other_hosts_seen(&self) -> bool {
        self.other_hosts.load(Ordering::Relaxed)
    }

    fn stale_after(&self) -> Duration {
        self.lease
            .saturating_mul(STALE_HEARTBEAT_LEASES)
            .max(STALE_HEARTBEAT_MIN)
    }

    /// Why `worker` counts as dead for a pool that has watched it (see the module docs),
    /// or `None` while it is alive. Records what it saw.
    fn watched_death_reason(&self, worker: &WorkerInfo) -> Option<&'static str> {
        if worker.host == self.host {
            if let Some(reason) = local_death(worker) {
                return Some(reason);
            }
        }
        let mut watch = self.watch.lock();
        let seen = watch
            .heartbeats
            .entry(worker.id.clone())
            .or_insert((worker.heartbeat_at, Instant::now()));
        if seen.0 != worker.heartbeat_at {
            *seen = (worker.heartbeat_at, Instant::now());
        }
        (seen.1.elapsed() > self.stale_after()).then_some("its heartbeat stopped")
    }

    /// Whether an expired lease has stood still long enough to be recovered: see the
    /// module docs. Records what it saw.
    fn expired_long_enough(&self, job: &Job) -> bool {
        let mut watch = self.watch.lock();
        let now = Instant::now();
        let key = (job.claim_token, job.lease_until);
        let seen = watch
            .leases
            .entry(job.id.clone())
            .or_insert((key.0, key.1, now));
        if (seen.0, seen.1) != key {
            *seen = (key.0, key.1, now);
        }
        seen.2.elapsed() >= self.lease / EXPIRED_LEASE_WATCH_DIVISOR
    }

    /// The rule as seen from `host` with the store's `lease-seconds`.
    fn from_settings<S: JobStore>(scheduler: &Scheduler<S>, host: &str) -> Result<Self> {
        Ok(Liveness::new(host, scheduler.settings()?.lease()))
    }

    /// Why `worker` counts as dead at `now` for a one-shot reader, or `None` while it is
    /// alive: on this host by its process alone, elsewhere by its heartbeat's age.
    fn death_reason(&self, worker: &WorkerInfo, now: Timestamp) -> Option<&'static str> {
        if worker.host == self.host {
            local_death(worker)
        } else if now.since(worker.heartbeat_at) > self.stale_after() {
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
    /// - *An expired lease of the recovering worker itself* on a job it does not hold
    ///   (`holds` says which it holds): a claim whose commit landed but whose answer was
    ///   lost, so nobody runs it. It is recovered like any other.
    ///
    /// Without `me` (a CLI command), only dead workers of this host are handled.
    /// Failures are logged and retried at the next pass.
    pub(super) fn recover<S: JobStore>(
        &self,
        scheduler: &Scheduler<S>,
        groups: &GroupRegistry,
        me: Option<&str>,
        holds: &dyn Fn(&JobId) -> bool,
    ) {
        let workers = match scheduler.store().list_workers() {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list workers");
                return;
            }
        };
        let mut live_here: Vec<&str> = Vec::new();
        if workers.iter().any(|w| w.host != self.host) {
            self.other_hosts.store(true, Ordering::Relaxed);
        }
        if me.is_some() {
            let listed: HashSet<&str> = workers.iter().map(|w| w.id.as_str()).collect();
            self.watch
                .lock()
                .heartbeats
                .retain(|id, _| listed.contains(id.as_str()));
        }
        for worker in &workers {
            if me == Some(worker.id.as_str()) {
                live_here.push(&worker.id);
                continue;
            }
            let reason = match me {
                Some(_) => self.watched_death_reason(worker),
                // A command only buries its own host's dead workers, by their pids.
                None if worker.host == self.host => local_death(worker),
                None => None,
            };
            let Some(reason) = reason else {
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
        let expired_seen: Mutex<HashSet<JobId>> = Mutex::default();
        let keep = |job: &Job| {
            expired_seen.lock().insert(job.id.clone());
            let owner = job.worker_id.as_deref();
            let held = if owner.is_some() && owner == me {
                holds(&job.id)
            } else {
                owner.is_some_and(|w| live_here.contains(&w))
            };
            held || !self.expired_long_enough(job)
        };
        match scheduler.recover_expired_except(&keep) {
            Ok(r) => log_recovery(&r, "lease expired"),
            Err(e) => tracing::warn!(error = %e, "recovering expired leases failed"),
        }
        let expired_seen = expired_seen.into_inner();
        self.watch
            .lock()
            .leases
            .retain(|id, _| expired_seen.contains(id));
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
    Liveness::from_settings(scheduler, host)?.recover(scheduler, &groups, None, &|_| true);
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

/// Moves the scheduler's clock up to the newest instant the store recorded (the newest
/// job's creation or update, the freshest heartbeat), for a worker started after a
/// backward step of the wall clock: without it, the jobs enqueued before the step would
/// be future-dated for as long as the step. A [`SteadyClock`](crate::SteadyClock) (the
/// [`SystemClock`](crate::SystemClock)) adopts it up to a day ahead; other clocks ignore
/// it. Failures only leave the clock as it is.
pub(super) fn catch_up_clock<S: JobStore>(scheduler: &Scheduler<S>) {
    let store = scheduler.store();
    let newest_job = store
        .page(&JobPageRequest {
            limit: 1,
            ..JobPageRequest::default()
        })
        .ok()
        .and_then(|page| page.jobs.into_iter().next())
        .map(|job| job.created_at.max(job.updated_at));
    let freshest_heartbeat = store
        .list_workers()
        .ok()
        .and_then(|workers| workers.iter().map(|w| w.heartbeat_at).max());
    if let Some(seen) = newest_job.into_iter().chain(freshest_heartbeat).max() {
        scheduler.clock().observe(seen);
    }
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
    fn death_follows_remote_heartbeat_age_and_local_pids() {
        let lease = Duration::from_secs(15);
        let now = Timestamp::from_millis(100_000);
        let me = std::process::id();
        let live =
            |w: &WorkerInfo, lease| Liveness::new("here", lease).death_reason(w, now).is_none();
        // 45 s = 3 leases: still live at the limit, dead past it.
        assert!(live(&worker("there", me, 55_000), lease));
        assert!(!live(&worker("there", me, 54_999), lease));
        // Short leases never make the window shorter than 10 s.
        let short = Duration::from_secs(2);
        assert!(live(&worker("there", me, 90_000), short));
        assert!(!live(&worker("there", me, 89_999), short));
        // A local worker is judged by its process alone: however old its heartbeat (the
        // wall clock may have stepped), live while its pid runs, dead once it is gone.
        assert!(live(&worker("here", me, 0), lease));
        let gone = u32::try_from(i32::MAX).unwrap_or(u32::MAX);
        assert!(!live(&worker("here", gone, 99_000), lease));
        assert!(live(&worker("there", gone, 99_000), lease));
    }

    #[test]
    fn a_reused_pid_does_not_keep_a_dead_local_worker_alive() {
        let me = std::process::id();
        let start = start_ticks(me).unwrap();
        let mut w = worker("here", me, 0);
        w.id = format!("here:{me}:abcdef12:s{start}");
        assert_eq!(local_death(&w), None);
        w.id = format!("here:{me}:abcdef12:s{}", start + 1);
        assert_eq!(local_death(&w), Some("its pid belongs to a later process"));
        // Ids of older versions carry no start time: the pid alone decides.
        w.id = format!("here:{me}:12345678");
        assert_eq!(local_death(&w), None);
    }

    #[test]
    fn a_pool_declares_a_worker_dead_only_after_watching_its_heartbeat_stand_still() {
        let liveness = Liveness::new("here", Duration::from_millis(10));
        // A heartbeat an hour old by the wall clock: not dead on first sight.
        let mut w = worker("there", 1, 0);
        assert_eq!(liveness.watched_death_reason(&w), None);
        // Moving heartbeats keep it alive, whatever their values.
        w.heartbeat_at = Timestamp::from_millis(5);
        assert_eq!(liveness.watched_death_reason(&w), None);
        liveness.watch.lock().heartbeats.insert(
            w.id.clone(),
            (
                w.heartbeat_at,
                Instant::now()
                    .checked_sub(STALE_HEARTBEAT_MIN + Duration::from_millis(1))
                    .unwrap(),
            ),
        );
        assert_eq!(
            liveness.watched_death_reason(&w),
            Some("its heartbeat stopped")
        );
    }
}
