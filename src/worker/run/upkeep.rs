//! The helper threads of a run, none of which runs job code: lease renewal, heartbeat,
//! wake-up on other processes' writes, and the recovery pass.

use std::time::{Duration, Instant};

use queuectl_store::{Guarded, Heartbeat, JobStore, LeaseRef, StoreError, Wake};

use super::{Run, WorkerPool};

/// One wait of the wake-up thread for store notifications: also how long the end of a run
/// may wait for that thread.
const WAKE_WAIT: Duration = Duration::from_millis(100);

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
            match self.scheduler.renew_leases(&leases, run.lease) {
                Ok(results) => {
                    for (lease, guarded) in leases.iter().zip(results) {
                        if guarded == Guarded::Stale {
                            self.lose(run, lease);
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
        // Only if it is still the same claim: the slot may have finished it meanwhile.
        if let Some(entry) = running
            .get_mut(&lease.id)
            .filter(|r| r.token == lease.token)
        {
            if !entry.lost {
                entry.lost = true;
                entry.cancel.cancel();
                tracing::warn!(worker = %self.id, job = %lease.id,
                    "lease lost: the job was recovered by another worker; stopping it");
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
    /// can wait for that (PostgreSQL's LISTEN/NOTIFY); on others it returns at once and the
    /// slots keep polling the change marker every poll interval.
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

    pub(super) fn recover_once(&self, run: &Run<'_>) {
        run.liveness
            .recover(&self.scheduler, &self.groups, Some(&self.id));
    }
}
