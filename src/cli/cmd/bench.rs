//! `queuectl bench`: enqueue and burn down jobs through a real worker pool, then print
//! enqueue rate, jobs/s, pickup latency and peak RSS (see `cli::bench`).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::bench::{self, BenchConfig, BenchJob, BenchReport, Phase};
use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use queuectl::{Durability, JobStore, Scheduler, SqliteOptions, SqliteStore, StoreTarget};

use crate::cli::args::{BenchArgs, DurabilityArg};
use crate::cli::open_store::Sched;
use crate::cli::output::{print_json, print_lines};

pub(crate) fn run(db: Option<&str>, a: &BenchArgs) -> anyhow::Result<()> {
    let explicit = db.filter(|s| !s.is_empty()).map(str::to_owned).or_else(|| {
        std::env::var("QUEUECTL_DB_PATH")
            .ok()
            .filter(|s| !s.is_empty())
    });
    // Without --db: a fresh file in a temp dir, removed (with its WAL) when the run ends.
    let (target, _tempdir) = match explicit {
        Some(text) => (StoreTarget::parse(&text)?, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("queuectl-bench-")
                .tempdir()
                .context("creating a temp dir for the bench database")?;
            (StoreTarget::Sqlite(dir.path().join("bench.db")), Some(dir))
        }
    };
    let durability = match a.durability {
        DurabilityArg::Normal => Durability::Normal,
        DurabilityArg::Full => Durability::Full,
    };
    let open = || -> anyhow::Result<Sched> {
        let store: Arc<dyn JobStore> = match &target {
            StoreTarget::Sqlite(path) => Arc::new(SqliteStore::open_with(
                path,
                SqliteOptions::default().durability(durability),
            )?),
            other => other.open()?,
        };
        Ok(Scheduler::new(store))
    };
    let sched = open().with_context(|| format!("opening the store at {target}"))?;
    let counts = sched.store().counts()?;
    if counts.pending + counts.failed + counts.processing > 0 {
        bail!(
            "the store at {} has unfinished jobs; bench needs one without (omit --db for a \
             fresh temp file)",
            target
        );
    }
    let other = if sched.store().capabilities().multi_process {
        Some(open()?)
    } else {
        None
    };

    let job = if a.job == "noop" {
        BenchJob::Noop
    } else {
        BenchJob::Shell(a.job.clone())
    };
    let shell = matches!(job, BenchJob::Shell(_));
    let cfg = BenchConfig {
        jobs: a.jobs,
        workers: a.workers.unwrap_or(if shell { 4 } else { 2 }),
        batch: a.batch,
        prefetch: a.prefetch,
        job,
        backlog: a.backlog,
        pickup_samples: a.pickup_samples,
        idle: Duration::from_secs(a.idle_secs),
        raw_spawn: a.raw_spawn,
        poll_interval: a.poll_interval_ms.map(Duration::from_millis),
    };

    // Hidden unless stderr is a terminal.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let progress = |phase: Phase, done: u64, total: u64| {
        if bar.prefix() != phase.as_str() {
            bar.set_prefix(phase.as_str());
            bar.reset();
        }
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = bench::run(&sched, other, &target.to_string(), &cfg, &progress);
    bar.finish_and_clear();
    let report = report?;
    if a.json {
        print_json(&report)
    } else {
        print_lines(human(&report))
    }
}

fn human(r: &BenchReport) -> Vec<String> {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2} ms"));
    let mut lines = vec![
        format!("store:            {}", r.store),
        format!(
            "jobs:             {} ({}), {} workers, claims {}, backlog {}",
            r.jobs, r.job, r.workers, r.claim, r.backlog
        ),
        format!("enqueue:          {:.0} jobs/s batched", r.enqueue_per_sec),
        format!(
            "enqueue single:   {:.0} jobs/s (one commit each)",
            r.enqueue_single_per_sec
        ),
        format!(
            "run:              {:.0} jobs/s end to end ({:.2} s)",
            r.jobs_per_sec, r.run_secs
        ),
        format!(
            "pickup:           p50 {}, p99 {} (in-process)",
            ms(r.pickup_p50_ms),
            ms(r.pickup_p99_ms)
        ),
    ];
    if r.pickup_cross_p50_ms.is_some() {
        lines.push(format!(
            "pickup (other):   p50 {}, p99 {} (poll interval {} ms)",
            ms(r.pickup_cross_p50_ms),
            ms(r.pickup_cross_p99_ms),
            r.poll_interval_ms
        ));
    }
    if let Some(cpu) = r.idle_cpu_percent {
        lines.push(format!("idle CPU:         {cpu:.2} %"));
    }
    if let (Some(raw), Some(ratio)) = (r.raw_spawn_per_sec, r.spawn_ratio) {
        lines.push(format!(
            "raw spawn:        {raw:.0} sh -c true/s ({:.0} % of it reached)",
            ratio * 100.0
        ));
    }
    if let Some(rss) = r.peak_rss_bytes {
        lines.push(format!(
            "peak RSS:         {:.1} MB",
            rss as f64 / 1_048_576.0
        ));
    }
    lines
}
