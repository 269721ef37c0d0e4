//! The dashboard's and the metrics' reads, each one indexed or aggregate query instead of
//! the provided defaults' full listing (see [`queuectl_store::Jobs::page`] and
//! [`queuectl_store::Jobs::attempt_stats`]).
//!
//! Compiled once per dialect like the rest of `src/portable/`. The dialect module supplies
//! `position_of(haystack, needle)`: SQLite's `instr`, PostgreSQL's `strpos`, both a plain
//! byte-for-byte substring test (no wildcards, case-sensitive).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use queuectl_store::{
    AttemptStats, AttemptStatsBuilder, AttemptStatsRequest, JobCursor, JobFilter, JobPage,
    JobPageRequest, StoreResult, Timestamp,
};

use super::{position_of, Conn};
use crate::row::{decode_jobs, JobRow};
use crate::schema::jobs;
use crate::Session;

/// [`Jobs::page`](queuectl_store::Jobs::page): newest first by `seq`, the cursor holding
/// the `seq` of the last job returned. Filtered by state it walks the `(state, seq)` index
/// backwards; otherwise the table's own `seq` order. Both stop after `limit + 1` matches,
/// so a page costs the same however deep it is (a search, or a queue filter, reads rows
/// until it has found enough).
///
/// # Errors
/// Only driver failures.
pub fn page<S: Session<Conn = Conn>>(store: &S, req: &JobPageRequest) -> StoreResult<JobPage> {
    if req.limit == 0 {
        return Ok(JobPage::default());
    }
    let rows: Vec<JobRow> = store.read(|conn| {
        let mut query = jobs::table
            .select(JobRow::as_select())
            .order(jobs::seq.desc())
            .limit(i64::from(req.limit) + 1)
            .into_boxed();
        if let Some(state) = req.state {
            query = query.filter(jobs::state.eq(state.as_str()));
        }
        if let Some(queue) = &req.queue {
            query = query.filter(jobs::queue.eq(queue.as_str()));
        }
        if let Some(JobCursor(before)) = req.before {
            query = query.filter(jobs::seq.lt(i64::try_from(before).unwrap_or(i64::MAX)));
        }
        if let Some(text) = req.search.as_deref().filter(|t| !t.is_empty()) {
            query = query.filter(
                position_of(jobs::id, text.to_owned()).gt(0).or(position_of(
                    jobs::command,
                    text.to_owned(),
                )
                .gt(0)),
            );
        }
        Ok(query.load(conn)?)
    })?;
    into_page(rows, req.limit)
}

/// [`Jobs::list_after`](queuectl_store::Jobs::list_after): oldest first by `seq` from just
/// after the cursor (the `seq` of the last job returned), through the `(state, seq)` index
/// when filtered by state, stopping after `limit + 1` rows.
///
/// # Errors
/// Only driver failures.
pub fn list_after<S: Session<Conn = Conn>>(
    store: &S,
    filter: &JobFilter,
    after: Option<JobCursor>,
    limit: u32,
) -> StoreResult<JobPage> {
    if limit == 0 {
        return Ok(JobPage::default());
    }
    let rows: Vec<JobRow> = store.read(|conn| {
        let mut query = jobs::table
            .select(JobRow::as_select())
            .order(jobs::seq.asc())
            .limit(i64::from(limit) + 1)
            .into_boxed();
        if let Some(state) = filter.state {
            query = query.filter(jobs::state.eq(state.as_str()));
        }
        if let Some(queue) = &filter.queue {
            query = query.filter(jobs::queue.eq(queue.as_str()));
        }
        if let Some(JobCursor(after)) = after {
            query = query.filter(jobs::seq.gt(i64::try_from(after).unwrap_or(i64::MAX)));
        }
        Ok(query.load(conn)?)
    })?;
    into_page(rows, limit)
}

/// The page of at most `limit` of `rows` (read with `limit + 1`): one row more than the
/// page means more follow, and the cursor is the `seq` of the page's last job.
fn into_page(mut rows: Vec<JobRow>, limit: u32) -> StoreResult<JobPage> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
            .map(|row| JobCursor(u64::try_from(row.seq).unwrap_or(0)))
    } else {
        None
    };
    Ok(JobPage {
        jobs: decode_jobs(rows)?,
        next,
    })
}

#[derive(QueryableByName)]
struct AttemptGroup {
    #[diesel(sql_type = Text)]
    queue: String,
    #[diesel(sql_type = Integer)]
    ok: i32,
    #[diesel(sql_type = Integer)]
    bucket: i32,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct SeriesGroup {
    #[diesel(sql_type = BigInt)]
    start: i64,
    #[diesel(sql_type = Integer)]
    ok: i32,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct FoldedGroup {
    #[diesel(sql_type = Text)]
    queue: String,
    #[diesel(sql_type = BigInt)]
    minute: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// [`Jobs::attempt_stats`](queuectl_store::Jobs::attempt_stats) as three aggregate
/// queries (attempts by queue, outcome and duration bucket; the throughput series; first
/// pickups by queue and bucket), each returning one row per group rather than per attempt,
/// plus the rows of `attempt_totals` in the window (the attempts of deleted jobs, see
/// `fold_attempts`), all in one snapshot.
/// The histogram buckets are a `CASE` over the request's bounds, which are integers
/// written into the SQL (nothing from outside is spliced in as text).
///
/// # Errors
/// Only driver failures.
pub fn attempt_stats<S: Session<Conn = Conn>>(
    store: &S,
    req: &AttemptStatsRequest,
) -> StoreResult<AttemptStats> {
    let since = req
        .since
        .map(|t| format!("WHERE a.finished_at >= {}", t.as_millis()))
        .unwrap_or_default();
    let duration = "CASE WHEN a.finished_at > a.started_at \
                    THEN a.finished_at - a.started_at ELSE 0 END";
    let attempts_sql = format!(
        "SELECT queue, ok, bucket, count(*) AS n, CAST(coalesce(sum(d), 0) AS BIGINT) AS total \
         FROM (SELECT j.queue AS queue, \
                      CASE WHEN a.error IS NULL THEN 1 ELSE 0 END AS ok, \
                      {bucket} AS bucket, {duration} AS d \
               FROM job_attempts a JOIN jobs j ON j.seq = a.job_seq {since}) s \
         GROUP BY queue, ok, bucket",
        bucket = bucket_case(duration, &req.duration_bounds_ms),
    );
    let step = i64::try_from(req.step_ms).unwrap_or(0);
    let series_sql = (step > 0).then(|| {
        format!(
            "SELECT start, ok, count(*) AS n \
             FROM (SELECT (a.finished_at / {step}) * {step} AS start, \
                          CASE WHEN a.error IS NULL THEN 1 ELSE 0 END AS ok \
                   FROM job_attempts a {since}) s \
             GROUP BY start, ok"
        )
    });
    // A first pickup: the job's current or last attempt is its first since it was enqueued
    // or retried, and it was never interrupted (as `AttemptStatsBuilder::add_pickup`).
    let wait = "CASE WHEN j.started_at > j.run_at THEN j.started_at - j.run_at ELSE 0 END";
    let started_since = req
        .since
        .map(|t| format!("AND j.started_at >= {}", t.as_millis()))
        .unwrap_or_default();
    let pickup_sql = format!(
        "SELECT queue, 1 AS ok, bucket, count(*) AS n, CAST(coalesce(sum(d), 0) AS BIGINT) AS total \
         FROM (SELECT j.queue AS queue, {bucket} AS bucket, {wait} AS d FROM jobs j \
               WHERE j.started_at IS NOT NULL AND j.interrupts = 0 {started_since} \
                 AND ((j.state = 'processing' AND j.attempts = 0) \
                   OR (j.state <> 'processing' AND j.attempts = 1))) s \
         GROUP BY queue, bucket",
        bucket = bucket_case(wait, &req.pickup_bounds_ms),
    );

    // The totals of deleted jobs' attempts in the window: per minute for a series (read
    // through the `minute` index), else one row per queue (what the metrics ask for, over
    // every minute ever folded).
    let folded_since = req
        .since
        .map(|t| format!("WHERE minute >= {}", t.as_millis()))
        .unwrap_or_default();
    let folded_sql = if step > 0 {
        format!("SELECT queue, minute, completed, failed FROM attempt_totals {folded_since}")
    } else {
        format!(
            "SELECT queue, CAST(min(minute) AS BIGINT) AS minute, \
                    CAST(sum(completed) AS BIGINT) AS completed, \
                    CAST(sum(failed) AS BIGINT) AS failed \
             FROM attempt_totals {folded_since} GROUP BY queue"
        )
    };
    // One snapshot: a prune committing between the live attempts' query and the totals'
    // would count its jobs' attempts twice (or not at all), and a counter read then would
    // go down at the next read.
    let (attempts, series, pickups, folded) = store.snapshot(|conn| {
        let attempts = diesel::sql_query(&attempts_sql).load::<AttemptGroup>(conn)?;
        let series = match &series_sql {
            Some(sql) => diesel::sql_query(sql).load::<SeriesGroup>(conn)?,
            None => Vec::new(),
        };
        let pickups = diesel::sql_query(&pickup_sql).load::<AttemptGroup>(conn)?;
        let folded = diesel::sql_query(&folded_sql).load::<FoldedGroup>(conn)?;
        Ok((attempts, series, pickups, folded))
    })?;

    let mut stats = AttemptStatsBuilder::new(req);
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let index = |b: i32| usize::try_from(b).unwrap_or(0);
    for g in attempts {
        stats.add_attempts(
            &g.queue,
            g.ok == 1,
            index(g.bucket),
            count(g.n),
            count(g.total),
        );
    }
    for g in series {
        stats.add_series(Timestamp::from_millis(g.start), g.ok == 1, count(g.n));
    }
    for g in pickups {
        stats.add_pickups(&g.queue, index(g.bucket), count(g.n), count(g.total));
    }
    for g in folded {
        let minute = Timestamp::from_millis(g.minute);
        stats.add_folded(&g.queue, minute, count(g.completed), count(g.failed));
    }
    Ok(stats.build())
}

/// `CASE WHEN value <= b0 THEN 0 WHEN value <= b1 THEN 1 … ELSE n END`: the index of the
/// histogram bucket `value` falls in (inclusive upper bounds, then the overflow bucket).
fn bucket_case(value: &str, bounds: &[u64]) -> String {
    if bounds.is_empty() {
        return "0".to_owned();
    }
    let mut sql = String::from("CASE");
    for (i, bound) in bounds.iter().enumerate() {
        // A bound past i64 holds every value: later ones never match.
        let bound = i64::try_from(*bound).unwrap_or(i64::MAX);
        sql.push_str(&format!(" WHEN {value} <= {bound} THEN {i}"));
    }
    sql.push_str(&format!(" ELSE {} END", bounds.len()));
    sql
}
