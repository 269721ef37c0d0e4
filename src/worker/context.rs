//! [`JobContext`]: what a [`Handler`](super::Handler) knows about the execution it runs
//! (attempt, timeout, cancellation, an operator's cancel request), the application state it was given, and where it
//! records the process groups it starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use queuectl_store::{Job, JobStore, LeaseRef, LiveOutput};

use super::liveness::orphan::GroupRegistry;
use super::state::{MissingState, StateMap};
use super::CancelToken;

/// What a [`Handler`](super::Handler) knows about the execution it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    attempt: u32,
    timeout: Option<Duration>,
    started: Instant,
    cancel: CancelToken,
    cancel_request: CancelToken,
    groups: Option<GroupTracker>,
    state: Arc<StateMap>,
    output: Option<Arc<dyn OutputSink>>,
}

impl JobContext {
    /// A context for running a handler outside a pool (tests, one-off runs): attempt
    /// `attempt` (1-based), the given timeout, cancelled through `cancel`, no state (add
    /// some with [`JobContext::with_state`]). The timeout clock starts now.
    #[must_use]
    pub fn new(attempt: u32, timeout: Option<Duration>, cancel: CancelToken) -> Self {
        JobContext {
            attempt,
            timeout,
            started: Instant::now(),
            cancel,
            cancel_request: CancelToken::new(),
            groups: None,
            state: Arc::default(),
            output: None,
        }
    }

    /// This context with `value` registered as the `T` that [`JobContext::state`] returns,
    /// as [`WorkerPoolBuilder::state`](super::WorkerPoolBuilder::state) does for a pool:
    /// for running a handler by hand in a test.
    #[must_use]
    pub fn with_state<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        Arc::make_mut(&mut self.state).insert(value);
        self
    }

    /// This context with `token` as its cancel request: the pool cancels it when an
    /// operator cancels the job (`queuectl cancel ID`) while it runs.
    #[must_use]
    pub fn with_cancel_request(mut self, token: CancelToken) -> Self {
        self.cancel_request = token;
        self
    }

    pub(crate) fn with_shared_state(mut self, state: Arc<StateMap>) -> Self {
        self.state = state;
        self
    }

    pub(crate) fn with_output_sink(mut self, sink: Arc<dyn OutputSink>) -> Self {
        self.output = Some(sink);
        self
    }

    /// Whether [`JobContext::publish_output`] reaches a store (inside a pool it does).
    #[must_use]
    pub(crate) fn publishes_output(&self) -> bool {
        self.output.is_some()
    }

    /// Publishes what the running attempt of `job` (a claimed job) has written so far, so
    /// that `logs` shows it while it runs; a no-op outside a pool. The store keeps the
    /// latest publication (capped) until the attempt ends. Failures are logged, never
    /// returned: live output is a courtesy, the finished attempt's output is the record.
    pub(crate) fn publish_output(&self, job: &Job, output: &LiveOutput) {
        if let Some(sink) = &self.output {
            sink.publish(job, output);
        }
    }

    pub(crate) fn with_group_tracker(mut self, tracker: GroupTracker) -> Self {
        self.groups = Some(tracker);
        self
    }

    /// The application state of type `T` given to the pool with
    /// [`WorkerPoolBuilder::state`](super::WorkerPoolBuilder::state) (a database pool, an
    /// SMTP client, a configuration). `T` is the type it was registered as, which may be a
    /// trait object:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use queuectl::{CancelToken, JobContext};
    /// trait Mailer: Send + Sync {
    ///     fn send(&self, to: &str) -> std::io::Result<()>;
    /// }
    /// struct Smtp;
    /// impl Mailer for Smtp {
    ///     fn send(&self, _to: &str) -> std::io::Result<()> { Ok(()) }
    /// }
    ///
    /// let mailer: Arc<dyn Mailer> = Arc::new(Smtp);
    /// let ctx = JobContext::new(1, None, CancelToken::new()).with_state(mailer);
    /// ctx.state::<dyn Mailer>()?.send("a@example.com")?;
    /// assert!(ctx.state::<String>().is_err());
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    ///
    /// # Errors
    /// [`MissingState`] when no `T` was registered; its message names the type, and `?`
    /// turns it into the attempt's error.
    pub fn state<T: ?Sized + 'static>(&self) -> Result<&T, MissingState> {
        self.state.get::<T>()
    }

    /// This execution's number, 1-based: the job's finished attempts plus one.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The job's timeout, if it has one.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// When the timeout expires, if there is one.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.and_then(|t| self.started.checked_add(t))
    }

    /// Whether the timeout has passed.
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// The token cancelled when the job must stop at once: an immediate worker stop, or
    /// its lease was lost to another worker.
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Whether the job was cancelled (see [`JobContext::cancel_token`]).
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether an operator cancelled this job while it runs (`queuectl cancel ID`, the
    /// dashboard, or [`Jobs::cancel`](queuectl_store::Jobs::cancel)): the handler should
    /// stop soon. Whatever it then returns, the job ends `cancelled` (`last_error`
    /// "cancelled while running"). The pool notices a request within about a second, from
    /// any process or host.
    #[must_use]
    pub fn is_cancel_requested(&self) -> bool {
        self.cancel_request.is_cancelled()
    }

    /// The token cancelled when an operator cancels this job (see
    /// [`JobContext::is_cancel_requested`]); wait on it, or register a callback with
    /// [`CancelToken::on_cancel`].
    #[must_use]
    pub fn cancel_request_token(&self) -> &CancelToken {
        &self.cancel_request
    }

    /// Whether the handler should give up now: cancelled, cancel requested or timed out.
    #[must_use]
    pub fn should_stop(&self) -> bool {
        self.is_cancelled() || self.is_cancel_requested() || self.timed_out()
    }

    /// Sleeps up to `d`, waking early on cancellation, on a cancel request or at the
    /// deadline; returns [`JobContext::should_stop`]. For handlers that wait for something.
    pub fn sleep(&self, d: Duration) -> bool {
        /// How often a sleep looks at the cancel request (it waits on the other token).
        const SLICE: Duration = Duration::from_millis(50);
        let start = Instant::now();
        // `None`: further away than an Instant can say; effectively forever.
        let end = match (start.checked_add(d), self.deadline()) {
            (Some(end), Some(deadline)) => Some(end.min(deadline)),
            (None, Some(deadline)) => Some(deadline),
            (end, None) => end,
        };
        loop {
            let left = end.map_or(Duration::MAX, |e| {
                e.saturating_duration_since(Instant::now())
            });
            if left.is_zero() || self.is_cancel_requested() {
                break;
            }
            if self.cancel.wait_timeout(left.min(SLICE)) {
                break;
            }
        }
        self.should_stop()
    }

    /// Records process group `pgid` as belonging to this job until the guard drops, so a
    /// worker on this host can kill it if this worker dies. A no-op outside a pool.
    pub fn track_process_group(&self, pgid: i32) -> ProcessGroupGuard {
        let file = self.groups.as_ref().and_then(|g| g.record(pgid));
        ProcessGroupGuard { file }
    }
}

/// Where a pool's handlers publish live output: its store, through the scheduler's clock.
pub(crate) trait OutputSink: std::fmt::Debug + Send + Sync {
    fn publish(&self, job: &Job, output: &LiveOutput);
}

impl<S: JobStore> OutputSink for crate::Scheduler<S> {
    fn publish(&self, job: &Job, output: &LiveOutput) {
        let Some(token) = job.claim_token else {
            return;
        };
        let lease = LeaseRef {
            id: job.id.clone(),
            token,
        };
        match self.store().put_live_output(&lease, output, self.now()) {
            Ok(g) if g.is_applied() => {}
            Ok(_) => {
                tracing::debug!(job = %job.id, "live output not stored: the job is no longer ours")
            }
            Err(e) => tracing::debug!(job = %job.id, error = %e, "live output not stored"),
        }
    }
}

/// Keeps a job's process group recorded; see [`JobContext::track_process_group`].
#[derive(Debug)]
#[must_use = "the record is removed when the guard drops"]
pub struct ProcessGroupGuard {
    file: Option<PathBuf>,
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            if let Err(e) = std::fs::remove_file(&file) {
                tracing::debug!(file = %file.display(), error = %e, "cannot remove group record");
            }
        }
    }
}

/// Where one worker records its jobs' process groups.
#[derive(Debug, Clone)]
pub(crate) struct GroupTracker {
    registry: Arc<GroupRegistry>,
    worker_id: Arc<str>,
}

impl GroupTracker {
    pub(crate) fn new(registry: GroupRegistry, worker_id: &str) -> Self {
        GroupTracker {
            registry: Arc::new(registry),
            worker_id: Arc::from(worker_id),
        }
    }

    fn record(&self, pgid: i32) -> Option<PathBuf> {
        match self.registry.record(&self.worker_id, pgid) {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(pgid, error = %e, "cannot record the job's process group");
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn context_sleep_stops_at_the_deadline_and_on_cancel() {
        let ctx = JobContext::new(1, Some(Duration::from_millis(20)), CancelToken::new());
        assert!(!ctx.is_cancelled());
        // Sleeps at most until the deadline, however long it was asked to.
        assert!(ctx.sleep(Duration::from_secs(3600)));
        assert!(ctx.timed_out() && !ctx.is_cancelled());

        let token = CancelToken::new();
        let ctx = JobContext::new(2, None, token.clone());
        token.cancel();
        assert!(ctx.sleep(Duration::from_secs(3600)));
        assert_eq!(ctx.attempt(), 2);
        assert_eq!(ctx.deadline(), None);
    }

    #[test]
    fn state_added_to_a_clone_does_not_reach_the_original() {
        let base = JobContext::new(1, None, CancelToken::new()).with_state(Arc::new(1_u32));
        let more = base.clone().with_state(Arc::new("x"));
        assert_eq!(*base.state::<u32>().unwrap(), 1);
        assert!(base.state::<&str>().is_err());
        assert_eq!(*more.state::<&str>().unwrap(), "x");
        assert_eq!(*more.state::<u32>().unwrap(), 1);
    }
}
