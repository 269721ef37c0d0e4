//! Outcomes the store refused (a full disk, a store out of reach): the worker keeps the
//! jobs held (their leases renewed while the store takes renewals) and records the
//! outcomes as soon as the store accepts writes again, so a job that ran is recorded once
//! and not run again. Recovery never takes a job from a live worker of its own host, so
//! without this the job would stay `processing` for as long as the worker lives.
//!
//! At exit the outcomes still unrecorded get one more lease of tries, then the jobs are
//! released (back to `pending`, uncharged: they will run again). If even that fails, the
//! worker stays registered (see `Run::keep_registered`): once its process is gone, the
//! next `status`, `list` or worker on this host buries it as a crashed worker and puts
//! the jobs back.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Instant;

use queuectl_store::{JobStore, LeaseRef};

use super::slot::{error_backoff, with_retries};
use super::{Run, WorkerPool};

/// What one try at recording found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Try {
    /// Nothing was waiting.
    Idle,
    /// Everything waiting was recorded.
    Recorded,
    /// The store refused again; the outcomes wait for the next try.
    Refused,
}

impl<S: JobStore + Clone> WorkerPool<S> {
    /// Tries to record refused outcomes every poll interval, backing off (up to a few
    /// seconds) while the store keeps refusing.
    pub(super) fn record_loop(&self, run: &Run<'_>) {
        let mut failures: u32 = 0;
        loop {
            let pause = if failures == 0 {
                run.poll_interval
            } else {
                error_backoff(run.poll_interval, failures)
            };
            if run.done.wait_timeout(pause) {
                return;
            }
            match self.record_refused(run) {
                Try::Idle | Try::Recorded => failures = 0,
                Try::Refused => failures = failures.saturating_add(1),
            }
        }
    }

    /// At the end of a run: up to one more lease of tries (one only on an immediate stop),
    /// then release what is left; what cannot be released keeps the worker registered.
    pub(super) fn record_at_exit(&self, run: &Run<'_>) {
        let deadline = Instant::now() + run.lease;
        let mut failures: u32 = 0;
        loop {
            match self.record_refused(run) {
                Try::Idle | Try::Recorded => return,
                Try::Refused => failures = failures.saturating_add(1),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || run.shutdown.is_immediate() {
                break;
            }
            thread::sleep(error_backoff(run.poll_interval, failures).min(left));
        }
        let items = std::mem::take(&mut *run.unrecorded.lock());
        let leases: Vec<LeaseRef> = items
            .iter()
            .filter_map(|(job, _)| {
                job.claim_token.map(|token| LeaseRef {
                    id: job.id.clone(),
                    token,
                })
            })
            .collect();
        match self.scheduler.release(&leases) {
            Ok(results) => {
                let released = results.iter().filter(|g| g.is_applied()).count();
                run.released
                    .fetch_add(u64::try_from(released).unwrap_or(0), Ordering::Relaxed);
                for (job, _) in &items {
                    tracing::warn!(worker = %self.id, job = %job.id,
                        "its result could not be recorded before exit: released to pending; \
                         it will run again");
                }
            }
            Err(e) => {
                run.keep_registered.store(true, Ordering::Relaxed);
                for (job, _) in &items {
                    tracing::error!(worker = %self.id, job = %job.id, error = %e,
                        "its result could be neither recorded nor released before exit; \
                         it is recovered once this worker's process is gone");
                }
            }
        }
    }

    /// One try at recording every refused outcome, in one store call.
    fn record_refused(&self, run: &Run<'_>) -> Try {
        let items = std::mem::take(&mut *run.unrecorded.lock());
        if items.is_empty() {
            return Try::Idle;
        }
        match with_retries(|| self.scheduler.finish_slice(&items)) {
            Ok(results) => {
                tracing::info!(worker = %self.id, jobs = items.len(),
                    "recorded results the store had refused");
                self.account(run, &items, Ok(results));
                Try::Recorded
            }
            Err(e) => {
                tracing::warn!(worker = %self.id, jobs = items.len(), error = %e,
                    "the store still refuses the results; trying again");
                run.unrecorded.lock().extend(items);
                Try::Refused
            }
        }
    }
}
