//! One slot: claim, run a batch, record its outcomes (with the next claim while there is
//! work), sleep while there is none.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use queuectl_store::{
    ClaimToken, Execution, Job, JobStore, LeaseRef, Marker, CANCELLED_WHILE_RUNNING,
};

use super::claim::ClaimSizer;
use super::{Mode, Run, Running, WorkerPool};
use crate::error::{Error, Result};
use crate::scheduler::{Outcome, Recorded};
use crate::worker::{CancelToken, JobContext};

/// A claim query runs at least this often even while the store's change marker stands
/// still, because a delayed or backed-off job becomes due without any write.
const FULL_CLAIM_EVERY: Duration = Duration::from_secs(1);

/// Attempts at reporting an outcome while the store says it is busy.
const FINISH_ATTEMPTS: u32 = 5;

/// When grouped, a finished job's outcome is committed before the next job of its batch
/// starts once it is this old: outcomes of short jobs share one transaction (one commit).
/// Grouping is only for jobs known to be short (see `claim.rs`): a long job that starts
/// within the window would hold the outcomes before it back until it ends. The job stays
/// held under its lease (and renewed) until its outcome is committed.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(5);

/// Longest pause between claim attempts while the store keeps failing.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// What a slot saw at its last claim that found nothing: while both stand still (and the
/// claim is recent), looking again would find nothing either.
#[derive(Clone, Copy, PartialEq, Eq)]
struct IdleMark {
    /// The store's change marker.
    marker: Marker,
    /// The scheduler's work generation: bumped by this process's enqueues, by the wake-up
    /// thread, and by a jump of the clock (a due time may have been passed).
    generation: u64,
}

impl<S: JobStore + Clone> WorkerPool<S> {
    pub(super) fn slot_loop(&self, run: &Run<'_>) {
        // What was seen just before the last claim that found nothing.
        let mut idle: Option<IdleMark> = None;
        let mut last_claim: Option<Instant> = None;
        let mut failures: u32 = 0;
        let mut sizer = ClaimSizer::new(self.claim);
        while !run.stop.is_cancelled() {
            let seen = self.scheduler.work_generation();
            let marker = match self.scheduler.store().change_marker() {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "change marker unavailable; claiming");
                    Marker::Unsupported
                }
            };
            let now_seen = IdleMark {
                marker,
                generation: seen,
            };
            let unchanged = marker != Marker::Unsupported && idle == Some(now_seen);
            let recent = last_claim.is_some_and(|t| t.elapsed() < FULL_CLAIM_EVERY);
            if !(unchanged && recent) {
                last_claim = Some(Instant::now());
                let asked = sizer.limit();
                let claimed = self
                    .scheduler
                    .claim(&self.id, asked, &self.queues, run.lease);
                if let Ok(jobs) = &claimed {
                    sizer.claimed(asked, jobs.len());
                }
                match claimed {
                    Ok(jobs) if !jobs.is_empty() => {
                        failures = 0;
                        idle = None;
                        self.work_through(run, jobs, &mut sizer);
                        continue;
                    }
                    Ok(_) => {
                        failures = 0;
                        idle = Some(now_seen);
                        if run.mode == Mode::Due {
                            tracing::info!(worker = %self.id, "nothing left that is due now");
                            run.stop.cancel();
                            break;
                        }
                    }
                    Err(e) if run.mode == Mode::Due => {
                        tracing::warn!(worker = %self.id, error = %e, "claim failed");
                        run.error.lock().get_or_insert(e);
                        run.stop.cancel();
                        break;
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        idle = None;
                        let pause = error_backoff(run.poll_interval, failures);
                        tracing::warn!(worker = %self.id, error = %e, retry_in_ms =
                            pause.as_millis(), "claim failed");
                        run.stop.wait_timeout(pause);
                        continue;
                    }
                }
            }
            if run.mode == Mode::Drain && self.drained() {
                tracing::info!(worker = %self.id, "drained: no job left in its queues");
                run.stop.cancel();
                break;
            }
            self.scheduler.wait_for_work(seen, run.poll_interval);
        }
    }

    /// Runs claimed jobs, and while there is work, records the outcomes of one batch and
    /// claims the next in one store call (one transaction).
    fn work_through(&self, run: &Run<'_>, mut jobs: Vec<Job>, sizer: &mut ClaimSizer) {
        loop {
            let started = Instant::now();
            let count = jobs.len();
            let done = self.run_batch(run, jobs, sizer.groups_outcomes());
            sizer.ran(count, started.elapsed());
            if run.stop.is_cancelled() || done.is_empty() {
                self.report(run, done);
                return;
            }
            let asked = sizer.limit();
            jobs = self.report_and_claim(run, done, asked);
            sizer.claimed(asked, jobs.len());
            if jobs.is_empty() {
                return;
            }
        }
    }

    /// Whether nothing is left for a draining worker: see [`crate::Scheduler::queues_drained`].
    fn drained(&self) -> bool {
        self.scheduler
            .queues_drained(&self.queues)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot check whether the queues are drained");
                false
            })
    }

    /// Runs a claimed batch; returns the last outcomes, not yet recorded, for the caller to
    /// record (with the next claim, when it goes on).
    #[must_use]
    ///
    /// With `group` false (jobs of a millisecond or more, or not yet timed, under adaptive
    /// claims), the outcomes before a job are recorded before it starts: the next job may
    /// run long, and a finished job must not look `processing` meanwhile.
    fn run_batch(&self, run: &Run<'_>, jobs: Vec<Job>, group: bool) -> Vec<(Job, Outcome)> {
        {
            let now = self.scheduler.now();
            let claimed_at = Instant::now();
            let mut running = run.running.lock();
            for job in &jobs {
                if let Some(token) = job.claim_token {
                    // What is left of the lease the claim wrote (it may have waited on the
                    // store), on the monotonic clock from here on.
                    let left = job.lease_until.map_or(run.lease, |until| until.since(now));
                    running.insert(
                        job.id.clone(),
                        Running {
                            token,
                            cancel: run.shutdown.immediate_token().child(),
                            request: CancelToken::new(),
                            lost: false,
                            lease_deadline: claimed_at + left.min(run.lease),
                            fenced: false,
                            ended: false,
                        },
                    );
                }
            }
        }
        // Group commit: outcomes of one claimed batch are recorded together, in one store
        // call (one transaction), unless the batch runs long; see `GROUP_COMMIT_WINDOW`.
        let mut done: Vec<(Job, Outcome)> = Vec::new();
        let mut oldest: Option<Instant> = None;
        for job in jobs {
            if run.stop.is_cancelled() {
                // Claimed but never started: hand it back as it was.
                if let Some(entry) = run.running.lock().remove(&job.id) {
                    self.release(run, &job, entry.token);
                }
                continue;
            }
            if !group && !done.is_empty() {
                self.report(run, std::mem::take(&mut done));
                oldest = None;
            }
            if let Some(finished) = self.execute(run, job) {
                done.push(finished);
                oldest.get_or_insert_with(Instant::now);
            }
            if oldest.is_some_and(|t| t.elapsed() >= GROUP_COMMIT_WINDOW) {
                self.report(run, std::mem::take(&mut done));
                oldest = None;
            }
        }
        done
    }

    /// Runs one job; returns its outcome to record, or `None` if there is nothing to record
    /// (its lease was lost, or it was released by an immediate stop). The job stays in
    /// `running`, its lease renewed, until its outcome is committed.
    fn execute(&self, run: &Run<'_>, job: Job) -> Option<(Job, Outcome)> {
        let Some((cancel, request, fenced)) = run
            .running
            .lock()
            .get(&job.id)
            .map(|r| (r.cancel.clone(), r.request.clone(), r.fenced))
        else {
            tracing::error!(job = %job.id, "claimed job without a claim token; not running it");
            return None;
        };
        if fenced {
            // Its lease lapsed while it waited in the batch: not ours to start.
            self.release_fenced(run, &job);
            return None;
        }
        if request.is_cancelled() {
            // Cancelled while it waited in a claimed batch: never started. The store
            // records it `cancelled` whatever it is told.
            let outcome = Outcome::Failed {
                execution: Execution::default(),
                error: CANCELLED_WHILE_RUNNING.to_owned(),
            };
            return Some((job, outcome));
        }
        let timeout = job.timeout_secs.filter(|t| *t > 0).map(Duration::from_secs);
        let mut ctx = JobContext::new(job.attempts.saturating_add(1), timeout, cancel)
            .with_cancel_request(request)
            .with_shared_state(self.state.clone())
            .with_output_sink(run.output.clone());
        if let Some(tracker) = &run.tracker {
            ctx = ctx.with_group_tracker(tracker.clone());
        }
        tracing::info!(worker = %self.id, job = %job.id, kind = %job.kind,
            attempt = ctx.attempt(), queue = %job.queue, "job claimed");
        let outcome = match self.handlers.get(&job.kind) {
            Some(handler) => catch_unwind(AssertUnwindSafe(|| handler.run(&job, &ctx)))
                .unwrap_or_else(|panic| Outcome::Failed {
                    execution: Execution::default(),
                    error: format!(
                        "the {} handler panicked: {}",
                        job.kind,
                        panic_message(&*panic)
                    ),
                }),
            None => Outcome::Failed {
                execution: Execution::default(),
                error: format!("no handler for kind {}", job.kind),
            },
        };
        let mut running = run.running.lock();
        let (lost, fenced) = running.get(&job.id).map(|r| (r.lost, r.fenced))?;
        // A fenced job that finished cleanly before the kill keeps its success (recorded
        // if the lease is still ours); anything else may be our own kill: give it back.
        if fenced && !lost && !matches!(outcome, Outcome::Succeeded { .. }) {
            drop(running);
            self.release_fenced(run, &job);
            return None;
        }
        if lost {
            running.remove(&job.id);
            drop(running);
            run.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(worker = %self.id, job = %job.id,
                "job was taken from this worker while it ran; its result is discarded");
            return None;
        }
        // A job that finished cleanly keeps its success; anything else may be our own kill.
        if run.shutdown.is_immediate() && !matches!(outcome, Outcome::Succeeded { .. }) {
            let entry = running.remove(&job.id)?;
            drop(running);
            self.release(run, &job, entry.token);
            return None;
        }
        // Its execution is over; only its recording is left (see `Running::ended`).
        if let Some(entry) = running.get_mut(&job.id) {
            entry.ended = true;
        }
        Some((job, outcome))
    }

    /// Records finished executions in one store call, then lets go of their entries in
    /// `running`.
    fn report(&self, run: &Run<'_>, done: Vec<(Job, Outcome)>) {
        if done.is_empty() {
            return;
        }
        let result = with_retries(|| self.scheduler.finish_slice(&done));
        self.account(run, &done, result);
    }

    /// Records `done` and claims the next batch in one store call (one transaction where
    /// the store can); returns the claimed jobs.
    fn report_and_claim(&self, run: &Run<'_>, done: Vec<(Job, Outcome)>, limit: u32) -> Vec<Job> {
        // A failed call applied nothing (see `Jobs::finish_and_claim`): retrying is safe.
        let result = with_retries(|| {
            self.scheduler
                .finish_and_claim(&done, &self.id, limit, &self.queues, run.lease)
        });
        match result {
            Ok((finished, claimed)) => {
                self.account(run, &done, Ok(finished));
                claimed
            }
            Err(e) => {
                self.account(run, &done, Err(e));
                Vec::new()
            }
        }
    }

    /// Lets go of recorded jobs and counts and logs how their recording went.
    ///
    /// Outcomes the store refused (a full disk, a store out of reach) stay held, their
    /// leases renewed, and go to [`Run::unrecorded`], which the recorder thread
    /// (`record.rs`) keeps trying to record until the store accepts them.
    pub(super) fn account(
        &self,
        run: &Run<'_>,
        done: &[(Job, Outcome)],
        result: Result<Vec<Recorded>>,
    ) {
        let results = match result {
            Ok(results) => results,
            Err(e) => {
                for (job, _) in done {
                    tracing::error!(worker = %self.id, job = %job.id, error = %e,
                        "cannot record the job's result; it stays held and recording is \
                         retried until the store accepts it");
                }
                run.unrecorded.lock().extend(done.iter().cloned());
                return;
            }
        };
        let mut requested = Vec::new();
        {
            let mut running = run.running.lock();
            for (job, _) in done {
                if running
                    .remove(&job.id)
                    .is_some_and(|r| r.request.is_cancelled())
                {
                    requested.push(&job.id);
                }
            }
        }
        for ((job, outcome), recorded) in done.iter().zip(results) {
            let error = match outcome {
                Outcome::Failed { error, .. } => error.as_str(),
                Outcome::Succeeded { .. } => "",
            };
            let attempt = job.attempts.saturating_add(1);
            if recorded != Recorded::Stale && requested.contains(&&job.id) {
                // The store ended it cancelled, whatever the command reported.
                run.failed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(worker = %self.id, job = %job.id, "job cancelled while running");
                continue;
            }
            match recorded {
                Recorded::Completed => {
                    run.succeeded.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(worker = %self.id, job = %job.id, "job succeeded");
                }
                Recorded::Retry(retry_at) => {
                    run.failed.fetch_add(1, Ordering::Relaxed);
                    let retry_in = retry_at.since(self.scheduler.now());
                    tracing::info!(worker = %self.id, job = %job.id, error, attempt,
                        retry_at = %retry_at.to_rfc3339(), retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                        "job failed; its retry is due at {}", retry_at.to_rfc3339());
                }
                Recorded::Dead => {
                    run.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = %self.id, job = %job.id, error, attempt,
                        "job failed with its attempts spent; moved to the dead-letter queue");
                }
                Recorded::Stale => {
                    run.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = %self.id, job = %job.id,
                        "job was taken from this worker while it ran; its result is discarded");
                }
            }
        }
    }

    pub(super) fn release(&self, run: &Run<'_>, job: &Job, token: ClaimToken) {
        let lease = LeaseRef {
            id: job.id.clone(),
            token,
        };
        match self.scheduler.release(std::slice::from_ref(&lease)) {
            Ok(results) if results.iter().all(|g| g.is_applied()) => {
                run.released.fetch_add(1, Ordering::Relaxed);
                tracing::info!(worker = %self.id, job = %job.id, "job released to pending");
            }
            Ok(_) => tracing::warn!(worker = %self.id, job = %job.id,
                "job was no longer ours to release"),
            Err(e) => {
                // Left registered at exit, so that recovery puts it back once this process
                // is gone (a live local worker's jobs are never taken from it).
                run.keep_registered.store(true, Ordering::Relaxed);
                tracing::error!(worker = %self.id, job = %job.id, error = %e,
                    "cannot release the job; it is recovered once this worker has exited");
            }
        }
    }
}

/// Runs a store call that records outcomes, again while the store says it is busy (up to
/// [`FINISH_ATTEMPTS`] tries, backing off).
pub(super) fn with_retries<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op() {
            Err(Error::Store(e)) if e.is_transient() && attempt < FINISH_ATTEMPTS => {
                tracing::debug!(error = %e, "store busy; reporting again");
                thread::sleep(Duration::from_millis(50) * 2u32.pow(attempt));
            }
            other => return other,
        }
    }
}

pub(super) fn error_backoff(poll: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(16));
    poll.saturating_mul(factor).min(MAX_ERROR_BACKOFF).max(poll)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn error_backoff_grows_from_the_poll_interval_to_a_cap() {
        let poll = Duration::from_millis(200);
        assert_eq!(error_backoff(poll, 1), Duration::from_millis(400));
        assert_eq!(error_backoff(poll, 40), MAX_ERROR_BACKOFF);
        assert_eq!(
            error_backoff(Duration::from_secs(9), 1),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn panic_messages_are_extracted() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
    }
}
