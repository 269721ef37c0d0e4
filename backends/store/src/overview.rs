//! What the operator's views read in aggregate: jobs per queue and state, a page of jobs
//! after a cursor, and statistics of finished attempts (the dashboard and the metrics).

use std::collections::BTreeMap;

use crate::{AttemptRecord, Job, JobFilter, JobState, Jobs, StateCounts, StoreResult, Timestamp};

/// One queue's jobs counted by state; see [`crate::Jobs::queue_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name.
    pub queue: String,
    /// Its jobs in each state.
    pub counts: StateCounts,
    /// The smallest `next_run_at` at or before `now` among its `pending` jobs: since when
    /// the longest-waiting due job has been waiting. `None` when no pending job is due.
    pub oldest_due: Option<Timestamp>,
    /// How many of its `pending` jobs wait on dependencies that have not completed (not
    /// claimable until they do).
    pub waiting: u64,
}

/// A position in insertion order, as returned in [`JobPage::next`]: opaque to callers, who
/// pass it back unchanged to read the following page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobCursor(pub u64);

/// Which jobs [`crate::Jobs::page`] returns: newest first (reverse insertion order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobPageRequest {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs whose id or command contains this text: case-sensitive, byte for byte,
    /// with no wildcards (`%`, `_`, `*` are ordinary characters). Empty matches every job.
    pub search: Option<String>,
    /// Only jobs inserted before the one this cursor stands for (a previous page's
    /// [`JobPage::next`]); `None` starts at the newest job.
    pub before: Option<JobCursor>,
    /// At most this many jobs (0 returns none).
    pub limit: u32,
}

/// One page of jobs; see [`crate::Jobs::page`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// Where the next (older) page starts: `Some` exactly when more matching jobs were
    /// inserted before the last one returned.
    pub next: Option<JobCursor>,
}

/// What [`crate::Jobs::attempt_stats`] summarises.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptStatsRequest {
    /// Only attempts that finished at or after this instant (and, for pickup latency, jobs
    /// whose attempt started at or after it); `None`: every attempt in the store.
    pub since: Option<Timestamp>,
    /// Upper bounds (inclusive, in milliseconds, ascending) of the attempt-duration
    /// histogram's buckets.
    pub duration_bounds_ms: Vec<u64>,
    /// Upper bounds (inclusive, in milliseconds, ascending) of the pickup-latency
    /// histogram's buckets.
    pub pickup_bounds_ms: Vec<u64>,
    /// Width in milliseconds of the throughput series' buckets, which start at multiples
    /// of it since the epoch; 0 asks for no series.
    pub step_ms: u64,
}

/// Finished attempts summarised; see [`crate::Jobs::attempt_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptStats {
    /// One entry per queue with at least one counted attempt or pickup, sorted by name.
    pub queues: Vec<QueueAttempts>,
    /// Attempts per time bucket, oldest first; buckets without attempts are left out.
    pub series: Vec<ThroughputBucket>,
}

/// One queue's finished attempts; see [`AttemptStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueAttempts {
    /// The queue's name.
    pub queue: String,
    /// Attempts that succeeded (a history entry without an error).
    pub completed: u64,
    /// Attempts that failed (a history entry with an error: an exit code other than 0, a
    /// timeout, a cancel while running, …).
    pub failed: u64,
    /// `finished_at - started_at` of every counted attempt.
    pub duration: Histogram,
    /// `started_at - run_at` of every counted job whose current or last attempt is its
    /// first since it was enqueued or retried (`attempts` 0 while `processing`, else 1, and
    /// never interrupted): how long a due job waited for a worker. Later attempts are left
    /// out because their due time (the end of a backoff) is not kept.
    pub pickup: Histogram,
}

/// A histogram of milliseconds over the bounds a request gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// How many values fell in each bucket, **not** cumulative: `buckets[i]` counts values
    /// `<= bounds[i]` and above `bounds[i - 1]`; one more entry at the end counts the values
    /// above the last bound. Always `bounds.len() + 1` entries.
    pub buckets: Vec<u64>,
    /// How many values in all.
    pub count: u64,
    /// Their sum, in milliseconds.
    pub sum_ms: u64,
}

impl Histogram {
    /// An empty histogram over `bounds`.
    #[must_use]
    pub fn empty(bounds: &[u64]) -> Self {
        Histogram {
            buckets: vec![0; bounds.len() + 1],
            count: 0,
            sum_ms: 0,
        }
    }

    /// Counts `value_ms` into the bucket `bounds` assign it to.
    pub fn observe(&mut self, bounds: &[u64], value_ms: u64) {
        let at = bounds.partition_point(|b| *b < value_ms);
        if let Some(bucket) = self.buckets.get_mut(at) {
            *bucket += 1;
        }
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(value_ms);
    }
}

/// Attempts that finished within one bucket of a throughput series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThroughputBucket {
    /// The bucket's start (a multiple of the step since the epoch).
    pub start: Timestamp,
    /// Attempts that succeeded.
    pub completed: u64,
    /// Attempts that failed.
    pub failed: u64,
}

/// Whether `job`'s `started_at` is the start of its first attempt since it was enqueued or
/// retried (see [`QueueAttempts::pickup`]).
#[must_use]
fn is_first_pickup(job: &Job) -> bool {
    let first = if job.state == JobState::Processing {
        job.attempts == 0
    } else {
        job.attempts == 1
    };
    first && job.interrupts == 0 && job.started_at.is_some()
}

/// Adds a pre-aggregated group to a histogram; a bucket index past the end counts as the
/// overflow bucket.
fn add_group(h: &mut Histogram, bucket: usize, count: u64, sum_ms: u64) {
    let last = h.buckets.len().saturating_sub(1);
    if let Some(b) = h.buckets.get_mut(bucket.min(last)) {
        *b += count;
    }
    h.count += count;
    h.sum_ms = h.sum_ms.saturating_add(sum_ms);
}

/// Milliseconds from `from` to `to`, 0 if `to` is earlier.
fn millis_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.as_millis().saturating_sub(from.as_millis())).unwrap_or(0)
}

/// Builds an [`AttemptStats`] from jobs and their histories, whatever store they come from:
/// the reference for every implementation of [`Jobs::attempt_stats`].
#[derive(Debug)]
pub struct AttemptStatsBuilder<'r> {
    req: &'r AttemptStatsRequest,
    queues: BTreeMap<String, QueueAttempts>,
    series: BTreeMap<i64, ThroughputBucket>,
}

impl<'r> AttemptStatsBuilder<'r> {
    /// An empty summary for `req`.
    #[must_use]
    pub fn new(req: &'r AttemptStatsRequest) -> Self {
        AttemptStatsBuilder {
            req,
            queues: BTreeMap::new(),
            series: BTreeMap::new(),
        }
    }

    /// Whether an instant lies in the request's window.
    #[must_use]
    pub fn in_window(&self, at: Timestamp) -> bool {
        self.req.since.is_none_or(|since| at >= since)
    }

    fn queue(&mut self, name: &str) -> &mut QueueAttempts {
        let req = self.req;
        self.queues
            .entry(name.to_owned())
            .or_insert_with(|| QueueAttempts {
                queue: name.to_owned(),
                completed: 0,
                failed: 0,
                duration: Histogram::empty(&req.duration_bounds_ms),
                pickup: Histogram::empty(&req.pickup_bounds_ms),
            })
    }

    /// Counts the job's pickup latency, if it is a first pickup in the window.
    pub fn add_pickup(&mut self, job: &Job) {
        let Some(started) = job.started_at.filter(|_| is_first_pickup(job)) else {
            return;
        };
        if !self.in_window(started) {
            return;
        }
        let bounds = &self.req.pickup_bounds_ms;
        let wait = millis_between(job.run_at, started);
        self.queue(&job.queue).pickup.observe(bounds, wait);
    }

    /// Counts one finished attempt of a job in `queue`, if it finished in the window.
    pub fn add_attempt(&mut self, queue: &str, attempt: &AttemptRecord) {
        if !self.in_window(attempt.finished_at) {
            return;
        }
        let req = self.req;
        let ok = attempt.error.is_none();
        let entry = self.queue(queue);
        if ok {
            entry.completed += 1;
        } else {
            entry.failed += 1;
        }
        let took = millis_between(attempt.started_at, attempt.finished_at);
        entry.duration.observe(&req.duration_bounds_ms, took);
        if let Ok(step) = i64::try_from(req.step_ms) {
            if step > 0 {
                let start = attempt.finished_at.as_millis().div_euclid(step) * step;
                let bucket = self.series.entry(start).or_insert(ThroughputBucket {
                    start: Timestamp::from_millis(start),
                    completed: 0,
                    failed: 0,
                });
                if ok {
                    bucket.completed += 1;
                } else {
                    bucket.failed += 1;
                }
            }
        }
    }

    /// Counts `count` finished attempts of `queue` at once, every one succeeded (`ok`) or
    /// every one failed, whose durations all fell in duration bucket `bucket` (an index
    /// into the histogram's buckets; past the end means the overflow bucket) and add up to
    /// `sum_ms`: one row of a store's aggregate query. Unlike [`Self::add_attempt`], the
    /// window and the series are the caller's (see [`Self::add_series`]).
    pub fn add_attempts(&mut self, queue: &str, ok: bool, bucket: usize, count: u64, sum_ms: u64) {
        let entry = self.queue(queue);
        if ok {
            entry.completed += count;
        } else {
            entry.failed += count;
        }
        add_group(&mut entry.duration, bucket, count, sum_ms);
    }

    /// Counts `count` first pickups of jobs of `queue` at once, whose waits all fell in
    /// pickup bucket `bucket` and add up to `sum_ms` (as [`Self::add_attempts`]).
    pub fn add_pickups(&mut self, queue: &str, bucket: usize, count: u64, sum_ms: u64) {
        add_group(&mut self.queue(queue).pickup, bucket, count, sum_ms);
    }

    /// Counts `count` attempts, all succeeded (`ok`) or all failed, into the throughput
    /// bucket starting at `start` (a multiple of the request's step).
    pub fn add_series(&mut self, start: Timestamp, ok: bool, count: u64) {
        let bucket = self
            .series
            .entry(start.as_millis())
            .or_insert(ThroughputBucket {
                start,
                completed: 0,
                failed: 0,
            });
        if ok {
            bucket.completed += count;
        } else {
            bucket.failed += count;
        }
    }

    /// The summary.
    #[must_use]
    pub fn build(self) -> AttemptStats {
        AttemptStats {
            queues: self.queues.into_values().collect(),
            series: self.series.into_values().collect(),
        }
    }
}

/// Counts `job` into per-queue stats (see [`Jobs::queue_stats`]).
fn add_to_queue_stats(stats: &mut BTreeMap<String, QueueStats>, job: &Job, now: Timestamp) {
    let entry = stats
        .entry(job.queue.clone())
        .or_insert_with(|| QueueStats {
            queue: job.queue.clone(),
            counts: StateCounts::default(),
            oldest_due: None,
            waiting: 0,
        });
    *entry.counts.get_mut(job.state) += 1;
    if job.state == JobState::Pending {
        if let Some(due) = job.next_run_at.filter(|at| *at <= now) {
            entry.oldest_due = Some(entry.oldest_due.map_or(due, |o| o.min(due)));
        }
    }
}

/// Per-queue stats of `jobs`, sorted by queue name; the reference for every
/// implementation of [`Jobs::queue_stats`].
pub fn queue_stats_of<'a>(
    jobs: impl IntoIterator<Item = &'a Job>,
    now: Timestamp,
) -> Vec<QueueStats> {
    let mut stats = BTreeMap::new();
    for job in jobs {
        add_to_queue_stats(&mut stats, job, now);
    }
    stats.into_values().collect()
}

/// Whether `job` matches a page request's filters (not its cursor).
#[must_use]
pub fn page_matches(req: &JobPageRequest, job: &Job) -> bool {
    req.state.is_none_or(|s| job.state == s)
        && req.queue.as_ref().is_none_or(|q| job.queue == *q)
        && req
            .search
            .as_deref()
            .is_none_or(|text| job.id.as_str().contains(text) || job.command.contains(text))
}

/// Every job, unfiltered, in insertion order.
fn every_job<J: Jobs + ?Sized>(store: &J) -> StoreResult<Vec<Job>> {
    store.list(&JobFilter::default())
}

/// The provided [`Jobs::queue_stats`].
pub(crate) fn queue_stats_by_listing<J: Jobs + ?Sized>(
    store: &J,
    now: Timestamp,
) -> StoreResult<Vec<QueueStats>> {
    Ok(queue_stats_of(&every_job(store)?, now))
}

/// The provided [`Jobs::page`]: the cursor is a position in the unfiltered list.
pub(crate) fn page_by_listing<J: Jobs + ?Sized>(
    store: &J,
    req: &JobPageRequest,
) -> StoreResult<JobPage> {
    let jobs = every_job(store)?;
    let end = req.before.map_or(jobs.len(), |JobCursor(pos)| {
        usize::try_from(pos).map_or(jobs.len(), |p| p.min(jobs.len()))
    });
    let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let mut page = JobPage::default();
    let mut last_pos = None;
    let matching = jobs
        .into_iter()
        .take(end)
        .enumerate()
        .rev()
        .filter(|(_, job)| page_matches(req, job));
    for (pos, job) in matching {
        if page.jobs.len() == limit {
            // One more matches: the next page starts below the last job returned.
            page.next = last_pos.map(|p: usize| JobCursor(u64::try_from(p).unwrap_or(u64::MAX)));
            break;
        }
        page.jobs.push(job);
        last_pos = Some(pos);
    }
    Ok(page)
}

/// The provided [`Jobs::list_after`]: the cursor is a position in the filtered list.
pub(crate) fn list_after_by_listing<J: Jobs + ?Sized>(
    store: &J,
    filter: &JobFilter,
    after: Option<JobCursor>,
    limit: u32,
) -> StoreResult<JobPage> {
    let all = store.list(&JobFilter {
        limit: None,
        ..filter.clone()
    })?;
    let start = after.map_or(0, |JobCursor(pos)| {
        usize::try_from(pos).map_or(all.len(), |p| p.saturating_add(1).min(all.len()))
    });
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(all.len());
    let next = (end < all.len() && end > start)
        .then(|| JobCursor(u64::try_from(end - 1).unwrap_or(u64::MAX)));
    Ok(JobPage {
        jobs: all.into_iter().skip(start).take(end - start).collect(),
        next,
    })
}

/// The provided [`Jobs::attempt_stats`].
pub(crate) fn attempt_stats_by_listing<J: Jobs + ?Sized>(
    store: &J,
    req: &AttemptStatsRequest,
) -> StoreResult<AttemptStats> {
    let mut stats = AttemptStatsBuilder::new(req);
    for job in every_job(store)? {
        stats.add_pickup(&job);
        // The last attempt finishes last: a job whose last attempt ended before the window
        // has no attempt in it.
        if !job.finished_at.is_some_and(|at| stats.in_window(at)) {
            continue;
        }
        let record = match store.get_record(&job.id) {
            Ok(record) => record,
            // Deleted since the list: it has no attempts any more.
            Err(crate::StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        for attempt in &record.history {
            stats.add_attempt(&record.job.queue, attempt);
        }
    }
    Ok(stats.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_inclusive_upper_bounds_with_an_overflow_bucket() {
        let bounds = [10, 100];
        let mut h = Histogram::empty(&bounds);
        for v in [0, 10, 11, 100, 101, 5000] {
            h.observe(&bounds, v);
        }
        assert_eq!(h.buckets, vec![2, 2, 2]);
        assert_eq!(h.count, 6);
        assert_eq!(h.sum_ms, 5222);
        let mut none = Histogram::empty(&[]);
        none.observe(&[], 7);
        assert_eq!(none.buckets, vec![1]);
    }
}
