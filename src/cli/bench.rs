//! The measuring engine behind `queuectl bench` (private to the binary): throughput, pickup latency and memory of
//! the real [`WorkerPool`] over any store.
//!
//! One [`run`] goes through these phases, each timed on its own:
//!
//! 1. **backlog** (optional): `backlog` completed jobs with one history entry each are
//!    imported first, so the claim runs over a store with history.
//! 2. **enqueue**: a sample of jobs is enqueued one call (one commit) each, then the rest in
//!    batches of [`ENQUEUE_BATCH`]; both rates are reported.
//! 3. **burn-down**: a pool of `workers` slots, claiming as `worker start` does (adaptive
//!    claims with `prefetch`) or, tuned, a fixed `batch` of jobs at a time, runs every
//!    job to completion in drain mode; jobs/s is the job count over that wall time. Every
//!    job must be reported as succeeded exactly once, or the run fails.
//! 4. **pickup**: with the pool idle, jobs are enqueued one at a time and the time from the
//!    enqueue call to the handler starting is recorded; first through the pool's own
//!    scheduler (in-process wake-up), then, for stores shared between processes, through a
//!    second store handle whose scheduler shares nothing with the pool, so the pool learns
//!    of the job exactly as it would from another process (change marker and polling).
//! 5. **idle** (optional): the pool sits idle for `idle` and the process's CPU time over
//!    that span is reported.
//! 6. **raw spawn** (optional, shell jobs): `sh -c true` run from `workers` threads, the
//!    reference rate for shell jobs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use queuectl::{
    AttemptRecord, CancelToken, Error, Handler, Job, JobContext, JobId, JobOutput, JobRecord,
    JobState, JobStore, NewJob, Outcome, Result, Scheduler, ShellHandler, Shutdown, StoreError,
    Timestamp, WorkerPool,
};
use serde::Serialize;

/// The job kind of no-op benchmark jobs, run by an in-process handler.
pub(crate) const NOOP_KIND: &str = "bench-noop";

/// Jobs per `enqueue_many` call in the batched enqueue phase.
pub(crate) const ENQUEUE_BATCH: usize = 10_000;

/// Records per `import` call while pre-filling the backlog.
const BACKLOG_CHUNK: usize = 10_000;

/// At most this many jobs are enqueued one call each (the rest go in batches).
const SINGLE_ENQUEUE_SAMPLE: u64 = 5_000;

/// At most this many raw spawns measure the reference rate.
const RAW_SPAWN_SAMPLE: u64 = 5_000;

/// Longest wait for one pickup sample before the run fails.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What each benchmark job does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BenchJob {
    /// Nothing, in-process: measures the engine (store, scheduler, pool).
    Noop,
    /// A shell command run by the worker's [`ShellHandler`]: measures the runtime.
    Shell(String),
}

/// How to run a benchmark; see the [module docs](self).
#[derive(Clone, Debug)]
pub(crate) struct BenchConfig {
    /// Jobs to enqueue and run.
    pub(crate) jobs: u64,
    /// Worker slots.
    pub(crate) workers: u32,
    /// Jobs one slot claims per claim query.
    /// A fixed claim batch (a tuning); `None` claims as `worker start` does.
    pub(crate) batch: Option<u32>,
    /// Prefetch of the adaptive claim (when `batch` is `None`).
    pub(crate) prefetch: u32,
    /// What each job does.
    pub(crate) job: BenchJob,
    /// Completed jobs of history imported before anything is measured.
    pub(crate) backlog: u64,
    /// Pickup samples per pickup phase (0 skips the pickup phases).
    pub(crate) pickup_samples: u32,
    /// How long to measure an idle pool's CPU use (zero skips it).
    pub(crate) idle: Duration,
    /// Also measure raw `sh -c true` spawns at the same concurrency.
    pub(crate) raw_spawn: bool,
    /// Idle workers' poll interval; `None` takes the store's `poll-interval-ms` setting.
    pub(crate) poll_interval: Option<Duration>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            jobs: 100_000,
            workers: 2,
            batch: None,
            prefetch: queuectl::DEFAULT_PREFETCH,
            job: BenchJob::Noop,
            backlog: 0,
            pickup_samples: 200,
            idle: Duration::ZERO,
            raw_spawn: false,
            poll_interval: None,
        }
    }
}

/// The phase a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Importing the history.
    Backlog,
    /// Enqueueing the jobs.
    Enqueue,
    /// Running the jobs.
    Run,
    /// Measuring pickup latency.
    Pickup,
    /// Measuring an idle pool.
    Idle,
    /// Measuring raw process spawns.
    RawSpawn,
}

impl Phase {
    /// A short name for people.
    #[must_use]
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Phase::Backlog => "backlog",
            Phase::Enqueue => "enqueue",
            Phase::Run => "run",
            Phase::Pickup => "pickup",
            Phase::Idle => "idle",
            Phase::RawSpawn => "raw spawn",
        }
    }
}

/// Told how far a phase has come: `(phase, done, total)`. Called often; keep it cheap.
pub(crate) type Progress<'a> = &'a (dyn Fn(Phase, u64, u64) + Sync);

/// What one benchmark run measured. Rates are per second of wall time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct BenchReport {
    /// The store, as the target describes it.
    pub(crate) store: String,
    /// Jobs run.
    pub(crate) jobs: u64,
    /// Worker slots.
    pub(crate) workers: u32,
    /// The most jobs one claim takes: the fixed batch, or 1 + prefetch.
    pub(crate) batch: u32,
    /// How the pool claims: `adaptive, prefetch N` (the `worker start` default) or
    /// `fixed batch N (tuned)`.
    pub(crate) claim: String,
    /// `noop` or the shell command.
    pub(crate) job: String,
    /// Completed jobs of history present before the run.
    pub(crate) backlog: u64,
    /// Jobs enqueued per second in batches of [`ENQUEUE_BATCH`].
    pub(crate) enqueue_per_sec: f64,
    /// Jobs enqueued per second one call (one commit) each.
    pub(crate) enqueue_single_per_sec: f64,
    /// Jobs claimed, run and recorded per second, end to end through the pool.
    pub(crate) jobs_per_sec: f64,
    /// Seconds the burn-down took.
    pub(crate) run_secs: f64,
    /// Idle workers' poll interval in milliseconds.
    pub(crate) poll_interval_ms: u64,
    /// Median enqueue-to-start time, in-process enqueue.
    pub(crate) pickup_p50_ms: Option<f64>,
    /// 99th percentile enqueue-to-start time, in-process enqueue.
    pub(crate) pickup_p99_ms: Option<f64>,
    /// Median enqueue-to-start time, enqueued through another store handle (as from
    /// another process); `None` for stores that live in one process.
    pub(crate) pickup_cross_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub(crate) pickup_cross_p99_ms: Option<f64>,
    /// CPU time of this process while the pool sat idle, in percent of one core.
    pub(crate) idle_cpu_percent: Option<f64>,
    /// Peak resident set size of this process, in bytes (`None` where unknown).
    pub(crate) peak_rss_bytes: Option<u64>,
    /// Raw `sh -c true` spawns per second at the same concurrency.
    pub(crate) raw_spawn_per_sec: Option<f64>,
    /// `jobs_per_sec / raw_spawn_per_sec`.
    pub(crate) spawn_ratio: Option<f64>,
}

/// Counts executions and, while armed, reports when each one starts.
#[derive(Default)]
struct Probe {
    ran: AtomicU64,
    /// Whether `started` is set: read on every job, so the burn-down never takes the lock.
    armed: AtomicBool,
    started: Mutex<Option<mpsc::Sender<Instant>>>,
}

impl Probe {
    fn arm(&self, tx: Option<mpsc::Sender<Instant>>) {
        let armed = tx.is_some();
        *self.started.lock() = tx;
        self.armed.store(armed, Ordering::SeqCst);
    }

    fn record(&self) {
        self.ran.fetch_add(1, Ordering::Relaxed);
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        if let Some(tx) = &*self.started.lock() {
            // The receiver outlives every armed phase; a send error means it gave up.
            let _ = tx.send(Instant::now());
        }
    }
}

/// Runs the benchmark job of the config, counting through the probe.
struct BenchHandler {
    probe: Arc<Probe>,
    shell: Option<ShellHandler>,
}

impl Handler for BenchHandler {
    fn run(&self, job: &Job, ctx: &JobContext) -> Outcome {
        self.probe.record();
        match &self.shell {
            Some(shell) => shell.run(job, ctx),
            None => Outcome::success(),
        }
    }
}

/// Runs the benchmark on `scheduler`'s store; `other` is a second, independent handle on
/// the same store (for cross-process pickup), if the store can be shared between processes.
///
/// The store should be empty: the burn-down waits for every job in it.
///
/// # Errors
/// Store failures, a worker pool that cannot start, or a run that did not succeed every
/// job exactly once.
pub(crate) fn run<S: JobStore + Clone>(
    scheduler: &Scheduler<S>,
    other: Option<Scheduler<S>>,
    store_name: &str,
    cfg: &BenchConfig,
    progress: Progress<'_>,
) -> Result<BenchReport> {
    let poll = match cfg.poll_interval {
        Some(p) => p,
        None => scheduler.settings()?.poll_interval(),
    };
    let mut report = BenchReport {
        store: store_name.to_owned(),
        jobs: cfg.jobs,
        workers: cfg.workers.max(1),
        batch: cfg
            .batch
            .unwrap_or_else(|| cfg.prefetch.saturating_add(1))
            .max(1),
        claim: match cfg.batch {
            Some(b) => format!("fixed batch {} (tuned)", b.max(1)),
            None => format!("adaptive, prefetch {}", cfg.prefetch),
        },
        job: match &cfg.job {
            BenchJob::Noop => "noop".to_owned(),
            BenchJob::Shell(c) => c.clone(),
        },
        backlog: cfg.backlog,
        poll_interval_ms: u64::try_from(poll.as_millis()).unwrap_or(u64::MAX),
        ..BenchReport::default()
    };

    // Ids carry a tag of this run, so a store that kept an earlier run's jobs takes another.
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    fill_backlog(scheduler.store(), cfg.backlog, &run, progress)?;

    let (single, batched) = enqueue_all(scheduler.store(), cfg, &run, progress)?;
    report.enqueue_single_per_sec = single;
    report.enqueue_per_sec = batched;

    let probe = Arc::new(Probe::default());
    let pool = |drain: bool| {
        let (kind, shell) = match &cfg.job {
            BenchJob::Noop => (NOOP_KIND, None),
            BenchJob::Shell(_) => ("shell", Some(ShellHandler::new())),
        };
        let builder = WorkerPool::builder(scheduler.clone()).prefetch(cfg.prefetch);
        let builder = match cfg.batch {
            Some(b) => builder.claim_batch(b),
            None => builder,
        };
        builder
            .slots(report.workers)
            .poll_interval(poll)
            .drain(drain)
            .handler(
                kind,
                BenchHandler {
                    probe: Arc::clone(&probe),
                    shell,
                },
            )
            .build()
    };

    // Burn-down.
    let run_secs = {
        let pool = pool(true);
        let shutdown = Shutdown::new();
        let done = CancelToken::new();
        let started = Instant::now();
        let pool_report = thread::scope(|s| {
            let watcher = s.spawn(|| {
                while !done.wait_timeout(Duration::from_millis(100)) {
                    progress(Phase::Run, probe.ran.load(Ordering::Relaxed), cfg.jobs);
                }
            });
            let r = pool.run(&shutdown);
            done.cancel();
            let _ = watcher.join();
            r
        })?;
        let secs = started.elapsed().as_secs_f64();
        progress(Phase::Run, probe.ran.load(Ordering::Relaxed), cfg.jobs);
        if pool_report.succeeded != cfg.jobs || pool_report.failed + pool_report.lost > 0 {
            return Err(bench_error(format!(
                "the run did not succeed every job exactly once: {} succeeded, {} failed, \
                 {} lost, {} released of {} jobs",
                pool_report.succeeded,
                pool_report.failed,
                pool_report.lost,
                pool_report.released,
                cfg.jobs
            )));
        }
        secs
    };
    report.run_secs = run_secs;
    report.jobs_per_sec = rate(cfg.jobs, run_secs);

    if cfg.pickup_samples > 0 || !cfg.idle.is_zero() {
        let pool = pool(false);
        let shutdown = Shutdown::new();
        let outcome = thread::scope(|s| -> Result<()> {
            let worker = s.spawn(|| pool.run(&shutdown));
            let measured = (|| -> Result<()> {
                if cfg.pickup_samples > 0 {
                    let (p50, p99) = pickup(
                        scheduler,
                        &run,
                        "local",
                        Duration::ZERO,
                        &probe,
                        cfg,
                        progress,
                    )?;
                    report.pickup_p50_ms = Some(p50);
                    report.pickup_p99_ms = Some(p99);
                    if let Some(other) = &other {
                        let (p50, p99) =
                            pickup(other, &run, "remote", poll, &probe, cfg, progress)?;
                        report.pickup_cross_p50_ms = Some(p50);
                        report.pickup_cross_p99_ms = Some(p99);
                    }
                }
                if !cfg.idle.is_zero() {
                    report.idle_cpu_percent = idle_cpu(cfg.idle, progress);
                }
                Ok(())
            })();
            shutdown.request_graceful();
            let pooled = worker
                .join()
                .map_err(|_| bench_error("the pickup worker pool panicked".to_owned()))?;
            measured?;
            pooled.map(drop)
        });
        outcome?;
    }

    if cfg.raw_spawn {
        let n = cfg.jobs.min(RAW_SPAWN_SAMPLE);
        let raw = raw_spawn_rate(n, report.workers, progress)?;
        report.raw_spawn_per_sec = Some(raw);
        report.spawn_ratio = Some(if raw > 0.0 {
            report.jobs_per_sec / raw
        } else {
            0.0
        });
    }

    report.peak_rss_bytes = peak_rss_bytes();
    Ok(report)
}

/// A benchmark job: `noop` jobs carry their number as the command, for the logs.
fn new_job(cfg: &BenchConfig, run: &str, n: u64, now: Timestamp) -> NewJob {
    let mut job = match &cfg.job {
        BenchJob::Noop => {
            let mut j = NewJob::shell(format!("noop {n}"), now);
            NOOP_KIND.clone_into(&mut j.kind);
            j
        }
        BenchJob::Shell(cmd) => NewJob::shell(cmd.clone(), now),
    };
    job.id = JobId::new(format!("bench-{run}-{n}"));
    job.max_retries = 1;
    job
}

fn enqueue_all<S: JobStore>(
    store: &S,
    cfg: &BenchConfig,
    run: &str,
    progress: Progress<'_>,
) -> Result<(f64, f64)> {
    let single_n = (cfg.jobs / 10).min(SINGLE_ENQUEUE_SAMPLE);
    let now = Timestamp::now();
    let singles: Vec<NewJob> = (0..single_n).map(|n| new_job(cfg, run, n, now)).collect();
    let started = Instant::now();
    for (i, job) in singles.iter().enumerate() {
        store.enqueue(job, now)?;
        if i % 1000 == 0 {
            progress(Phase::Enqueue, i as u64, cfg.jobs);
        }
    }
    let single = rate(single_n, started.elapsed().as_secs_f64());
    drop(singles);

    let rest: Vec<NewJob> = (single_n..cfg.jobs)
        .map(|n| new_job(cfg, run, n, now))
        .collect();
    let started = Instant::now();
    let mut done = single_n;
    for chunk in rest.chunks(ENQUEUE_BATCH) {
        store.enqueue_many(chunk, now)?;
        done += chunk.len() as u64;
        progress(Phase::Enqueue, done, cfg.jobs);
    }
    let batched = rate(cfg.jobs - single_n, started.elapsed().as_secs_f64());
    Ok((single, batched))
}

fn fill_backlog<S: JobStore>(
    store: &S,
    backlog: u64,
    run: &str,
    progress: Progress<'_>,
) -> Result<()> {
    let now = Timestamp::now();
    let mut next = 0u64;
    while next < backlog {
        let end = backlog.min(next + BACKLOG_CHUNK as u64);
        let records: Vec<JobRecord> = (next..end).map(|n| history_record(run, n, now)).collect();
        store.import(&records)?;
        next = end;
        progress(Phase::Backlog, next, backlog);
    }
    Ok(())
}

/// A job that ran once and completed.
fn history_record(run: &str, n: u64, now: Timestamp) -> JobRecord {
    let mut new = NewJob::shell("true", now);
    new.id = JobId::new(format!("history-{run}-{n}"));
    JobRecord {
        job: Job {
            options: Default::default(),
            id: new.id,
            command: new.command,
            kind: new.kind,
            state: JobState::Completed,
            attempts: 1,
            max_retries: new.max_retries,
            priority: 0,
            queue: new.queue,
            interrupts: 0,
            created_at: now,
            updated_at: now,
            run_at: now,
            next_run_at: None,
            timeout_secs: None,
            exit_code: Some(0),
            last_error: None,
            worker_id: Some("bench-history".to_owned()),
            started_at: Some(now),
            finished_at: Some(now),
            lease_until: None,
            claim_token: None,
            cancel_requested: false,
        },
        output: None,
        history: vec![AttemptRecord {
            attempt: 1,
            started_at: now,
            finished_at: now,
            exit_code: Some(0),
            error: None,
            output: JobOutput::default(),
        }],
    }
}

/// Enqueues `cfg.pickup_samples` jobs (ids `pickup-<run>-<tag>-<n>`) one at a time, each after a
/// random part of `poll` (zero for in-process samples), through `via`
/// into the idle pool; returns (p50, p99) of enqueue-to-start in milliseconds.
fn pickup<S: JobStore + Clone>(
    via: &Scheduler<S>,
    run: &str,
    tag: &str,
    poll: Duration,
    probe: &Probe,
    cfg: &BenchConfig,
    progress: Progress<'_>,
) -> Result<(f64, f64)> {
    let (tx, rx) = mpsc::channel();
    probe.arm(Some(tx));
    let result = (|| {
        let mut samples = Vec::with_capacity(cfg.pickup_samples as usize);
        for i in 0..u64::from(cfg.pickup_samples) {
            // Let the slots go back to sleep, so each sample starts from idle, then wait a
            // random part of a poll interval: a producer in another process does not know
            // when the workers last looked, and neither should the samples.
            thread::sleep(Duration::from_millis(2) + poll.mul_f64(unit_random()));
            let mut job = new_job(cfg, run, i, Timestamp::now());
            job.id = JobId::new(format!("pickup-{run}-{tag}-{i}"));
            let t0 = Instant::now();
            via.store().enqueue(&job, via.now())?;
            via.notify_work();
            let started = rx
                .recv_timeout(PICKUP_TIMEOUT)
                .map_err(|_| bench_error("a pickup sample was not picked up".to_owned()))?;
            samples.push(started.saturating_duration_since(t0).as_secs_f64() * 1000.0);
            progress(Phase::Pickup, i + 1, u64::from(cfg.pickup_samples));
        }
        Ok((
            percentile(&mut samples, 50.0),
            percentile(&mut samples, 99.0),
        ))
    })();
    probe.arm(None);
    result
}

/// The `p`th percentile (0–100) of `samples` by the nearest-rank method; 0 when empty.
/// Sorts `samples` in place.
#[must_use]
pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
    samples[rank.clamp(1, n) - 1]
}

fn idle_cpu(span: Duration, progress: Progress<'_>) -> Option<f64> {
    let before = cpu_time()?;
    let started = Instant::now();
    let total = span.as_millis() as u64;
    while started.elapsed() < span {
        thread::sleep(Duration::from_millis(100).min(span));
        progress(Phase::Idle, started.elapsed().as_millis() as u64, total);
    }
    let used = cpu_time()?.saturating_sub(before);
    Some(used.as_secs_f64() / started.elapsed().as_secs_f64() * 100.0)
}

/// This process's user + system CPU time, from `/proc/self/stat` (Linux only).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture queuectl builds for.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Peak resident set size (`VmHWM`), from `/proc/self/status` (Linux only).
#[must_use]
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `sh -c true` `n` times from `workers` threads; returns spawns per second.
fn raw_spawn_rate(n: u64, workers: u32, progress: Progress<'_>) -> Result<f64> {
    let next = AtomicU64::new(0);
    let failures: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let status = std::process::Command::new("sh")
                    .args(["-c", "true"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
                if let Err(e) = status {
                    *failures.lock().entry(e.to_string()).or_default() += 1;
                }
                if i % 100 == 0 {
                    progress(Phase::RawSpawn, i, n);
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    if let Some((why, _)) = failures.into_inner().into_iter().next() {
        return Err(bench_error(format!("cannot spawn sh -c true: {why}")));
    }
    Ok(rate(n, secs))
}

/// A uniformly distributed value in `[0, 1)`, from the randomly keyed std hasher.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        >> 11;
    bits as f64 / (1u64 << 53) as f64
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn bench_error(message: String) -> Error {
    Error::Store(StoreError::Backend {
        message,
        source: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use queuectl_store::prelude::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        let mut one = vec![7.5];
        assert_eq!(percentile(&mut one, 50.0), 7.5);
        assert_eq!(percentile(&mut one, 99.0), 7.5);
        let mut three = vec![3.0, 1.0, 2.0];
        assert_eq!(percentile(&mut three, 50.0), 2.0);
        assert_eq!(percentile(&mut three, 99.0), 3.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }

    #[test]
    fn memory_store_bench_runs_every_job_once() {
        let sched = Scheduler::new(Arc::new(queuectl::MemoryStore::new()));
        let cfg = BenchConfig {
            jobs: 300,
            workers: 2,
            batch: Some(8),
            pickup_samples: 3,
            poll_interval: Some(Duration::from_millis(20)),
            ..BenchConfig::default()
        };
        let r = run(&sched, None, "memory:", &cfg, &|_, _, _| {}).unwrap();
        assert_eq!(r.jobs, 300);
        assert!(r.jobs_per_sec > 0.0);
        assert!(r.pickup_p50_ms.is_some());
        assert!(r.pickup_cross_p50_ms.is_none());
        assert_eq!(sched.store().counts().unwrap().completed, 303);
    }
}
