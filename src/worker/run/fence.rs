//! The self-fence: a worker that could not renew a job's lease kills the job (its process
//! group, SIGKILL, through the job's cancel token) a margin before the lease ends, as
//! measured on its own monotonic clock from when the claim or the last successful renewal
//! was sent. Another host's worker recovers a job only once its lease has ended (and it
//! watched it stand still for half a lease, see `liveness`), so the two runs cannot
//! overlap, whatever cut the worker off from the store (a partition, a store that blocks
//! its connection). The job is then released (uncharged) once the store answers, unless
//! someone took it meanwhile; one that had already succeeded is recorded instead (`Stale`
//! if the lease was lost).
//!
//! It fences only while it has seen a worker of another host registered in this run: on a
//! store only this host's workers use, nobody takes a job from a live worker (see
//! `liveness`), and killing it would only lose work (a SQLite store stalled by a long
//! write transaction, for one).
//!
//! What it cannot do: a process that is frozen (SIGSTOP, swapped out, a VM paused) runs
//! no thread, fences nothing, and its job's processes keep running if they were not
//! frozen with it; its next renewal comes back `Stale` and it kills the job then.

use std::time::{Duration, Instant};

use queuectl_store::{Job, JobStore, LeaseRef};

use super::{Run, WorkerPool};

/// The fence falls this share of a lease before the lease ends: time for the kill and
/// for a skew between the hosts' clocks.
const FENCE_MARGIN_DIVISOR: u32 = 6;

impl<S: JobStore + Clone> WorkerPool<S> {
    /// Checks the held leases' deadlines about twelve times a lease (every 5 ms to 500 ms).
    pub(super) fn fence_loop(&self, run: &Run<'_>) {
        let margin = run.lease / FENCE_MARGIN_DIVISOR;
        let period = (run.lease / 12).clamp(Duration::from_millis(5), Duration::from_millis(500));
        while !run.done.wait_timeout(period) {
            if !run.liveness.other_hosts_seen() {
                continue;
            }
            let now = Instant::now();
            let mut running = run.running.lock();
            for (id, entry) in running.iter_mut() {
                if !entry.lost && !entry.fenced && now + margin >= entry.lease_deadline {
                    entry.fenced = true;
                    entry.cancel.cancel();
                    tracing::error!(worker = %self.id, job = %id,
                        "its lease could not be renewed and ends soon: killing the job before \
                         another host's worker can take it (self-fence)");
                }
            }
        }
    }

    /// A successful renewal sent at `sent`: the lease now lasts until `until`.
    pub(super) fn renewed(&self, run: &Run<'_>, lease: &LeaseRef, until: Instant) {
        if let Some(entry) = run
            .running
            .lock()
            .get_mut(&lease.id)
            .filter(|r| r.token == lease.token)
        {
            entry.lease_deadline = entry.lease_deadline.max(until);
        }
    }

    /// Gives a fenced job back (uncharged), once the store answers; `Stale` if another
    /// worker took it meanwhile.
    pub(super) fn release_fenced(&self, run: &Run<'_>, job: &Job) {
        let Some(entry) = run.running.lock().remove(&job.id) else {
            return;
        };
        self.release(run, job, entry.token);
    }
}
