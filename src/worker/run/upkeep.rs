//! The helper threads of a run, none of which runs job code: lease renewal, heartbeat,
//! wake-up on other processes' writes, cancel requests, the recovery pass, the firing of
//! due schedules (periodic jobs; not in drain mode) and the retention pass.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use queuectl_store::{Guarded, Heartbeat, JobStore, LeaseRef, Marker, StoreError, Wake};

use super::{Run, WorkerPool};

/// One wait of the wake-up thread for store notifications: also how long the end of a run
/// may wait for that thread.
const WAKE_WAIT: Duration = Duration::from_millis(100);

/// The jobs a worker holds are checked for a cancel request at least this often (one
/// read-only query for all of them), from any process or host: a cancel reaches the job
/// within about this long plus the kill (TERM, and KILL after the grace).
const CANCEL_CHECK: Duration = Duration::from_secs(1);

/// How often the cancel thread wakes, while jobs run, to see whether a check is due: one
/// is when the store's change marker or the scheduler's work generation moved (a `cancel`
/// is a write; on PostgreSQL it also sends a notification), so a cancel usually arrives
/// within about this long.
const CANCEL_TICK: Duration = Duration::from_millis(100);

/// How often a running worker checks that no newer queuectl migrated its store (one read
/// of a table of a few rows).
const SCHEMA_CHECK_EVERY: Duration = Duration::from_secs(3);

impl<S: JobStore + Clone> WorkerPool<S> {
    /// Renews the leases of every job this worker holds, every third of a lease.
    pub(super) fn renew_loop(&self, run: &Run<'_>) {
        let period = (run.lease / 3).max(Duration::from_millis(10));
        while !run.done.wait_timeout(period) {
            let leases: Vec<LeaseRef> = run
                .running
                .lock()
                .iter()
                .map(|(id, r)| LeaseRef {
                    id: id.clone(),
                    token: r.token,
                })
                .collect();
            if leases.is_empty() {
                continue;
            }
            // The renewed leases end a lease after the renewal was sent, at the latest.
            let sent = Instant::now();
            match self.scheduler.renew_leases(&leases, run.lease) {
                Ok(results) => {
                    for (lease, guarded) in leases.iter().zip(results) {
                        if guarded == Guarded::Stale {
                            self.lose(run, lease);
                        } else {
                            self.renewed(run, lease, sent + run.lease);
                        }
                    }
                }
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "lease renewal failed"),
            }
        }
    }

    /// A renewal came back `Stale`: someone recovered the job. Kill our execution of it.
    fn lose(&self, run: &Run<'_>, lease: &LeaseRef) {
        let mut running = run.running.lock();
        // Only if it is still the same claim and still running: the slot may have finished
        // it meanwhile (its finish, committed before this renewal, made it `Stale`).
        if let Some(entry) = running
            .get_mut(&lease.id)
            .filter(|r| r.token == lease.token && !r.ended)
        {
            if !entry.lost {
                entry.lost = true;
                entry.cancel.cancel();
                tracing::warn!(worker = %self.id, job = %lease.id,
                    "lease lost: the job was recovered by another worker; stopping it");
            }
        }
    }

    /// Asks the store which held jobs an operator cancelled, and passes each request to
    /// its job (whose handler stops it: the shell handler sends TERM, then KILL after the
    /// grace). It asks about every [`CANCEL_CHECK`] while it holds jobs, and sooner (within
    /// a [`CANCEL_TICK`]) when the store's change marker or the scheduler's work generation
    /// moved: any write, from any process (SQLite's data version, PostgreSQL's
    /// notifications), may be a cancel.
    pub(super) fn cancel_loop(&self, run: &Run<'_>) {
        let store = self.scheduler.store();
        let mut last_check = Instant::now();
        let mut seen = (self.scheduler.work_generation(), Marker::Unsupported);
        while !run.done.wait_timeout(CANCEL_TICK) {
            let held: HashMap<_, _> = run
                .running
                .lock()
                .iter()
                .filter(|(_, r)| !r.lost && !r.request.is_cancelled())
                .map(|(id, r)| (id.clone(), r.token))
                .collect();
            if held.is_empty() {
                continue;
            }
            let now_seen = (
                self.scheduler.work_generation(),
                store.change_marker().unwrap_or(Marker::Unsupported),
            );
            // A store without a marker says `Unsupported` every time: the generation alone.
            if now_seen == seen && last_check.elapsed() < CANCEL_CHECK {
                continue;
            }
            seen = now_seen;
            last_check = Instant::now();
            let leases: Vec<LeaseRef> = held
                .iter()
                .map(|(id, token)| LeaseRef {
                    id: id.clone(),
                    token: *token,
                })
                .collect();
            match store.cancel_requests(&leases) {
                Ok(requested) => {
                    let running = run.running.lock();
                    for id in requested {
                        let Some(entry) =
                            running.get(&id).filter(|r| held.get(&id) == Some(&r.token))
                        else {
                            continue;
                        };
                        if !entry.request.is_cancelled() {
                            tracing::info!(worker = %self.id, job = %id,
                                "cancel requested: stopping the job");
                            entry.request.cancel();
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = %self.id, error = %e,
                        "checking for cancel requests failed");
                }
            }
        }
    }

    /// Keeps the registry entry fresh; notices `worker stop` and a wrongful deregistration,
    /// and (every [`SCHEMA_CHECK_EVERY`]) a store migrated past this build.
    pub(super) fn heartbeat_loop(&self, run: &Run<'_>) {
        let mut last_schema_check = Instant::now();
        while !run.done.wait_timeout(self.heartbeat_interval) {
            if last_schema_check.elapsed() >= SCHEMA_CHECK_EVERY {
                last_schema_check = Instant::now();
                self.check_schema(run);
            }
            let store = self.scheduler.store();
            match store.heartbeat_worker(&self.id, self.scheduler.now()) {
                Ok(Heartbeat::StopRequested) => {
                    if !run.stop.is_cancelled() {
                        tracing::info!(worker = %self.id,
                            "stop requested (worker stop): finishing running jobs");
                        run.stop.cancel();
                    }
                }
                Ok(Heartbeat::Recorded) => {}
                Ok(Heartbeat::Unregistered) => {
                    tracing::warn!(worker = %self.id,
                        "this worker was deregistered as dead; registering again");
                    let mut info = run.info.clone();
                    info.heartbeat_at = self.scheduler.now();
                    if let Err(e) = store.register_worker(&info) {
                        tracing::warn!(worker = %self.id, error = %e, "cannot re-register");
                    }
                }
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "heartbeat failed"),
            }
        }
    }

    /// A newer queuectl migrated the store while this worker ran: this build can no longer
    /// be trusted to claim or write jobs in it. Stop claiming, let the running jobs finish
    /// (as `worker stop` does), and end the run with the error (exit 1 in the CLI).
    /// Other failures of the check are only logged: the next one may pass.
    fn check_schema(&self, run: &Run<'_>) {
        match self.scheduler.store().check_schema_version() {
            Ok(()) => {}
            Err(e @ StoreError::NewerSchema { .. }) => {
                let mut error = run.error.lock();
                if error.is_none() {
                    tracing::error!(worker = %self.id, error = %e,
                        "the store was migrated past this worker: claiming nothing more, \
                         finishing running jobs, then exiting");
                    *error = Some(e.into());
                    drop(error);
                    run.stop.cancel();
                }
            }
            Err(e) => tracing::warn!(worker = %self.id, error = %e, "schema check failed"),
        }
    }

    /// Wakes idle slots as soon as another process makes work available, on a store that
    /// can wait for that (PostgreSQL's LISTEN/NOTIFY, SQLite's inotify watch on Linux); on
    /// others it returns at once and the slots keep polling the change marker every poll
    /// interval.
    pub(super) fn wake_loop(&self, run: &Run<'_>) {
        while !run.done.is_cancelled() {
            // Short waits, so the thread notices the end of the run promptly.
            match self.scheduler.store().wait_for_change(WAKE_WAIT) {
                Ok(Wake::Changed) => self.scheduler.notify_work(),
                Ok(Wake::TimedOut) => {}
                Ok(Wake::Unsupported) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "waiting for store notifications failed");
                    run.done.wait_timeout(run.poll_interval);
                }
            }
        }
    }

    /// The recovery pass, about every [`WorkerPoolBuilder::recovery_interval`]; the rule
    /// is `liveness`'s.
    ///
    /// [`WorkerPoolBuilder::recovery_interval`]: crate::worker::WorkerPoolBuilder::recovery_interval
    pub(super) fn recovery_loop(&self, run: &Run<'_>) {
        while !run.done.wait_timeout(self.recovery_interval) {
            self.recover_once(run);
        }
    }

    /// Fires due schedules every poll interval (at least every 100 ms, at most every
    /// second), when the pool was given a job template.
    pub(super) fn cron_loop(&self, run: &Run<'_>) {
        if self.schedules.is_none() {
            return;
        }
        let period = run
            .poll_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            // Not once stopping: a stopping worker claims nothing new either.
            if run.stop.is_cancelled() {
                return;
            }
            self.fire_schedules_once();
            if run.done.wait_timeout(period) {
                return;
            }
        }
    }

    /// One pass of [`Scheduler::fire_due_schedules`], failures logged.
    ///
    /// [`Scheduler::fire_due_schedules`]: crate::Scheduler::fire_due_schedules
    pub(super) fn fire_schedules_once(&self) {
        let Some(template) = &self.schedules else {
            return;
        };
        if let Err(e) = self.scheduler.fire_due_schedules(template.as_ref()) {
            tracing::warn!(worker = %self.id, error = %e, "firing schedules failed");
        }
    }

    /// The retention pass: at the start of the run, then every
    /// [`WorkerPoolBuilder::retention_interval`], delete the finished jobs the `retention-*`
    /// settings no longer keep, in batches of [`crate::PRUNE_BATCH`] (each its own short
    /// transaction). A run of [`WorkerPool::run_due`] (tests) makes none.
    ///
    /// [`WorkerPoolBuilder::retention_interval`]: crate::worker::WorkerPoolBuilder::retention_interval
    /// [`WorkerPool::run_due`]: crate::WorkerPool::run_due
    pub(super) fn retention_loop(&self, run: &Run<'_>) {
        let Some(interval) = self.retention_interval else {
            return;
        };
        if run.mode == super::Mode::Due {
            return;
        }
        loop {
            match self.scheduler.apply_retention() {
                Ok(pruned) if pruned.total() > 0 => tracing::info!(worker = %self.id,
                    completed = pruned.completed, cancelled = pruned.cancelled,
                    dead = pruned.dead, "retention: pruned finished jobs"),
                Ok(_) => {}
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "retention pass failed"),
            }
            if run.done.wait_timeout(interval) {
                return;
            }
        }
    }

    pub(super) fn recover_once(&self, run: &Run<'_>) {
        run.liveness
            .recover(&self.scheduler, &self.groups, Some(&self.id), &|id| {
                run.running.lock().contains_key(id)
            });
    }
}
