//! `queuectl migrate --to TARGET`: copy a whole queue to another store.
//!
//! Every job is copied verbatim (state, attempts, timestamps, lease, last output and
//! attempt history) with [`Jobs::import`], in insertion order, all or nothing; then the
//! totals the source keeps of the attempts of jobs it pruned or deleted
//! ([`Jobs::import_folded_attempts`], so the metrics' counters and the throughput chart do
//! not go back), the settings and the schedules (`cron`). The worker registry is not copied: workers belong to the store they run on.
//!
//! Rules, each for a reason:
//! - **No live workers on the source.** A running worker would keep changing jobs that were
//!   already copied. `processing` jobs of a crashed worker are copied as they are: workers
//!   on the target recover them when their lease expires, as they would have on the source.
//! - **An empty target.** Merging two queues could collide on ids and mix two insertion
//!   orders; a target with jobs is refused before anything is written. Its settings, if
//!   any, are overwritten by the source's.
//! - **The source is only read.** After the copy the target's counts per state must equal
//!   the copied ones, and the source's must not have moved (a producer enqueued meanwhile):
//!   either mismatch is an error naming the numbers, with the source still intact.

use std::time::Duration;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use queuectl::{live_workers, JobFilter, JobRecord, StateCounts, StoreTarget, Timestamp};

use crate::cli::args::MigrateArgs;
use crate::cli::open_store::{open, target_text};
use crate::cli::output::print_lines;
use crate::cli::UsageError;

/// Below this many jobs the copy is quick enough to need no progress bar.
const PROGRESS_FROM: usize = 1_000;

pub(crate) fn run(db: Option<&str>, a: &MigrateArgs) -> anyhow::Result<()> {
    let to = StoreTarget::parse(&a.to)?;
    let from = StoreTarget::parse(&target_text(db))?;
    if same_store(&to, &from) {
        return Err(UsageError(format!("--to names the source store itself ({from})")).into());
    }
    if to == StoreTarget::Memory {
        return Err(
            UsageError("--to memory: would be lost when this command exits".to_owned()).into(),
        );
    }
    let (sched, source_name) = open(db)?;
    let live = live_workers(&sched)?;
    if !live.is_empty() {
        bail!(
            "{} worker(s) are running on {source_name}; stop them first \
             (queuectl worker stop --wait)",
            live.len()
        );
    }
    let source = sched.store();
    let target_name = to.to_string();
    let target = to
        .open()
        .with_context(|| format!("opening the store at {target_name}"))?;
    let existing = target.counts()?.total();
    if existing > 0 {
        bail!("{target_name} already holds {existing} job(s); migrate only into an empty store");
    }

    let before = source.counts()?;
    let jobs = source.list(&JobFilter::default())?;
    let bar = progress(jobs.len(), "reading");
    let mut records: Vec<JobRecord> = Vec::with_capacity(jobs.len());
    for job in &jobs {
        records.push(
            source
                .get_record(&job.id)
                .with_context(|| format!("reading job {} from {source_name}", job.id))?,
        );
        bar.inc(1);
    }
    bar.set_message("writing");
    bar.enable_steady_tick(Duration::from_millis(120));
    target
        .import(&records)
        .with_context(|| format!("writing the jobs to {target_name} (nothing was written)"))?;
    bar.finish_and_clear();

    // The totals of attempts of jobs the source pruned or deleted, so that the target's
    // metrics counters and throughput chart go on from where the source's were.
    let folded = source.folded_attempts()?;
    target
        .import_folded_attempts(&folded)
        .with_context(|| format!("copying the attempt totals to {target_name}"))?;

    let settings = source.settings()?;
    let now = Timestamp::now();
    for (key, value) in &settings {
        target
            .set_setting(key, value, now)
            .with_context(|| format!("copying setting {key} to {target_name}"))?;
    }

    let schedules = source.list_schedules()?;
    for schedule in &schedules {
        target
            .put_schedule(schedule)
            .with_context(|| format!("copying schedule {} to {target_name}", schedule.name))?;
    }

    let copied = counts_of(&records);
    let landed = target.counts()?;
    if landed != copied {
        bail!(
            "verification failed: {target_name} holds {} job(s) {}, but {} were copied {}",
            landed.total(),
            describe(&landed),
            copied.total(),
            describe(&copied)
        );
    }
    let after = source.counts()?;
    if after != before || copied != before {
        bail!(
            "{source_name} changed during the copy ({} job(s) {} before, {} {} after); \
             {target_name} holds the {} copied; stop every producer and migrate again into \
             an empty store",
            before.total(),
            describe(&before),
            after.total(),
            describe(&after),
            copied.total()
        );
    }
    print_lines([format!(
        "copied {} job(s) {}, {} setting(s) and {} schedule(s) from {source_name} to {target_name}",
        copied.total(),
        describe(&copied),
        settings.len(),
        schedules.len()
    )])
}

/// Whether two targets name the same store (one SQLite file under two spellings too).
fn same_store(a: &StoreTarget, b: &StoreTarget) -> bool {
    match (a, b) {
        (StoreTarget::Sqlite(x), StoreTarget::Sqlite(y)) => {
            x == y
                || matches!(
                    (std::fs::canonicalize(x), std::fs::canonicalize(y)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        _ => a == b,
    }
}

/// A progress bar on stderr for a big queue (hidden when stderr is not a terminal).
fn progress(len: usize, message: &'static str) -> ProgressBar {
    if len < PROGRESS_FROM {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} jobs ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar
}

fn counts_of(records: &[JobRecord]) -> StateCounts {
    let mut counts = StateCounts::default();
    for r in records {
        *counts.get_mut(r.job.state) += 1;
    }
    counts
}

/// `(3 pending, 2 completed)`: the non-zero states.
fn describe(counts: &StateCounts) -> String {
    let parts: Vec<String> = queuectl::JobState::ALL
        .iter()
        .filter(|s| counts.get(**s) > 0)
        .map(|s| format!("{} {s}", counts.get(*s)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("({})", parts.join(", "))
    }
}
