//! [`WorkerPoolBuilder`]: everything a pool is configured with (slots, queues, handlers,
//! application state, timings), gathered before anything runs. [`WorkerPoolBuilder::build`]
//! only names the worker; registration, threads and store calls start with
//! [`WorkerPool::run`](super::WorkerPool::run).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use queuectl_store::JobStore;

use super::liveness::default_host_id;
use super::liveness::orphan::{start_ticks, GroupRegistry};
use super::run::ClaimPolicy;
use super::state::StateMap;
use super::{Handler, ShellHandler, WorkerPool};
use crate::scheduler::{JobTemplate, Scheduler};

/// Default period of the heartbeat.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Default period of the recovery pass.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// Default of [`WorkerPoolBuilder::prefetch`]: jobs a slot may claim beyond the one it
/// starts next, when there is a backlog and the jobs are short.
pub const DEFAULT_PREFETCH: u32 = 32;

/// Builds a [`WorkerPool`]; start with [`WorkerPool::builder`].
pub struct WorkerPoolBuilder<S: JobStore + Clone> {
    scheduler: Scheduler<S>,
    slots: u32,
    queues: Vec<String>,
    poll_interval: Option<Duration>,
    lease: Option<Duration>,
    drain: bool,
    host_id: Option<String>,
    claim_batch: Option<u32>,
    prefetch: u32,
    handlers: HashMap<String, Arc<dyn Handler>>,
    state: StateMap,
    heartbeat_interval: Duration,
    recovery_interval: Duration,
    retention_interval: Option<Duration>,
    group_dir: Option<PathBuf>,
    schedules: Option<Arc<JobTemplate>>,
}

impl<S: JobStore + Clone> std::fmt::Debug for WorkerPoolBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPoolBuilder")
            .field("slots", &self.slots)
            .field("queues", &self.queues)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<S: JobStore + Clone> WorkerPool<S> {
    /// A builder with the defaults: 1 slot, every queue, settings from the store,
    /// `shell` jobs run by [`ShellHandler`], no application state.
    pub fn builder(scheduler: Scheduler<S>) -> WorkerPoolBuilder<S> {
        let mut handlers: HashMap<String, Arc<dyn Handler>> = HashMap::new();
        handlers.insert("shell".to_owned(), Arc::new(ShellHandler::new()));
        WorkerPoolBuilder {
            scheduler,
            slots: 1,
            queues: Vec::new(),
            poll_interval: None,
            lease: None,
            drain: false,
            host_id: None,
            claim_batch: None,
            prefetch: DEFAULT_PREFETCH,
            handlers,
            state: StateMap::default(),
            heartbeat_interval: HEARTBEAT_INTERVAL,
            recovery_interval: RECOVERY_INTERVAL,
            retention_interval: Some(crate::scheduler::RETENTION_INTERVAL),
            group_dir: None,
            schedules: None,
        }
    }
}

impl<S: JobStore + Clone> WorkerPoolBuilder<S> {
    /// Concurrent jobs (threads); at least 1. Default 1.
    #[must_use]
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// Queues to serve; empty (the default) serves every queue.
    #[must_use]
    pub fn queues(mut self, queues: Vec<String>) -> Self {
        self.queues = queues;
        self
    }

    /// How long an idle slot waits between looks for work. Default: the store's
    /// `poll-interval-ms` setting, read when [`WorkerPool::run`] starts.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Lease length of claimed jobs, renewed every third of it. Default: the store's
    /// `lease-seconds` setting, read when [`WorkerPool::run`] starts.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Exit once no job of the served queues is claimable now or later: none pending or
    /// failed (future-dated ones included) and none processing on any worker (it may come
    /// back), leaving aside jobs of paused queues (see [`Scheduler::queues_drained`]).
    /// Default off: run until stopped. (To run only what is due now, use
    /// [`WorkerPool::run_due`].)
    #[must_use]
    pub fn drain(mut self, drain: bool) -> Self {
        self.drain = drain;
        self
    }

    /// The host id recorded in the registry; workers with the same host id check each
    /// other's pids. Default: [`default_host_id`].
    #[must_use]
    pub fn host_id(mut self, host: impl Into<String>) -> Self {
        self.host_id = Some(host.into());
        self
    }

    /// A fixed number of jobs one slot claims per query (run one after the other),
    /// instead of the adaptive claim (see [`WorkerPoolBuilder::prefetch`]): a tuning for
    /// queues of many short jobs, where every claim can take a full batch.
    #[must_use]
    pub fn claim_batch(mut self, batch: u32) -> Self {
        self.claim_batch = Some(batch.max(1));
        self
    }

    /// How many jobs a slot may claim beyond the one it starts next; default
    /// [`DEFAULT_PREFETCH`], 0 claims one job at a time. Within this bound a slot claims
    /// one job, doubles its claim after each full one and drops back to one after a short
    /// one.
    #[must_use]
    pub fn prefetch(mut self, jobs: u32) -> Self {
        self.prefetch = jobs;
        self
    }

    /// Runs jobs of `kind` with `handler`, replacing any earlier one (`"shell"` is
    /// [`ShellHandler`] unless replaced).
    #[must_use]
    pub fn handler(mut self, kind: impl Into<String>, handler: impl Handler + 'static) -> Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    /// Gives every handler `value` as its application state of type `T`, read with
    /// [`JobContext::state::<T>()`](super::JobContext::state); a later value of the same
    /// type replaces it. `T` may be a trait object, so a test can hand the pool a fake:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use queuectl::WorkerPool;
    /// # use queuectl::Scheduler;
    /// # use queuectl_store_memory::MemoryStore;
    /// trait Mailer: Send + Sync {
    ///     fn send(&self, to: &str) -> std::io::Result<()>;
    /// }
    /// struct Smtp;
    /// impl Mailer for Smtp {
    ///     fn send(&self, _to: &str) -> std::io::Result<()> { Ok(()) }
    /// }
    ///
    /// let mailer: Arc<dyn Mailer> = Arc::new(Smtp);
    /// let pool = WorkerPool::builder(Scheduler::new(Arc::new(MemoryStore::new())))
    ///     .state(mailer)                       // read as ctx.state::<dyn Mailer>()
    ///     .state(Arc::new(String::from("v2"))) // read as ctx.state::<String>()
    ///     .build();
    /// ```
    #[must_use]
    pub fn state<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.state.insert(value);
        self
    }

    /// Heartbeat period. Default 1 s.
    #[must_use]
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Period of the recovery pass (expired leases, dead workers). Default 1 s.
    #[must_use]
    pub fn recovery_interval(mut self, interval: Duration) -> Self {
        self.recovery_interval = interval;
        self
    }

    /// Period of the retention pass, which deletes finished jobs as the `retention-*`
    /// settings allow (see [`Scheduler::apply_retention`]); the first pass runs when the
    /// pool starts. Default once a minute; `None` turns retention off for this pool.
    #[must_use]
    pub fn retention_interval(mut self, interval: Option<Duration>) -> Self {
        self.retention_interval = interval;
        self
    }

    /// Directory where workers on this host record their jobs' process groups (see the
    /// [liveness](crate#liveness)). Default `$TMPDIR/queuectl-<uid>/groups`; every
    /// worker on the host must use the same one to clean up after each other.
    #[must_use]
    pub fn group_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.group_dir = Some(dir.into());
        self
    }

    /// Fire due periodic jobs while running (not in drain mode), reading each schedule's
    /// job JSON with `template` (see [`Scheduler::fire_due_schedules`]); every worker so
    /// configured fires, with no leader, and each scheduled time still yields one job.
    /// Default off: a pool without a template fires no schedules.
    #[must_use]
    pub fn schedules(mut self, template: Arc<JobTemplate>) -> Self {
        self.schedules = Some(template);
        self
    }

    /// The pool, with a fresh worker id (`host:pid:random:sSTART`, where START is when the
    /// process started, in clock ticks since boot: workers of the same host tell a live
    /// worker from a later process that reuses its pid by it; left out where unknown).
    #[must_use]
    pub fn build(self) -> WorkerPool<S> {
        let host = self.host_id.unwrap_or_else(default_host_id);
        let pid = std::process::id();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = match start_ticks(pid) {
            Some(start) => format!("{host}:{pid}:{}:s{start}", &suffix[..8]),
            None => format!("{host}:{pid}:{}", &suffix[..8]),
        };
        WorkerPool {
            scheduler: self.scheduler,
            id,
            host,
            pid,
            slots: self.slots,
            queues: self.queues,
            poll_interval: self.poll_interval,
            lease: self.lease,
            drain: self.drain,
            claim: ClaimPolicy {
                fixed: self.claim_batch,
                prefetch: self.prefetch,
            },
            handlers: self.handlers,
            state: Arc::new(self.state),
            heartbeat_interval: self.heartbeat_interval,
            recovery_interval: self.recovery_interval,
            retention_interval: self.retention_interval,
            groups: GroupRegistry::new(self.group_dir.unwrap_or_else(GroupRegistry::default_root)),
            schedules: self.schedules,
        }
    }
}
