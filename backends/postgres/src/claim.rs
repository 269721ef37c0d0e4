//! The claim: one statement that picks due jobs and moves them to `processing`.
//!
//! ```sql
//! WITH c AS MATERIALIZED (
//!     SELECT seq, next_run_at AS claim_due FROM jobs
//!     WHERE state IN ('pending', 'failed') AND unmet_parents = 0 AND next_run_at <= $now [AND queue = ANY($queues)]
//!       AND queue <> ALL (ARRAY(SELECT queue FROM queue_settings WHERE paused))
//!       AND NOT EXISTS (SELECT 1 FROM queue_settings
//!                       WHERE concurrency IS NOT NULL AND NOT paused [AND queue = ANY($queues)])
//!     ORDER BY priority DESC, next_run_at, seq
//!     LIMIT $limit
//!     FOR UPDATE SKIP LOCKED)
//! UPDATE jobs j SET state = 'processing', … FROM c WHERE j.seq = c.seq
//! RETURNING j.*, c.claim_due
//! ```
//!
//! `FOR UPDATE SKIP LOCKED` makes concurrent claimers (threads or machines) pass over rows
//! another claimer holds instead of waiting for it or taking the same row: no job is
//! returned twice and no claimer blocks. The `WHERE` and `ORDER BY` match the partial index
//! `jobs_claim_idx` exactly, which holds only claimable rows, so the cost stays flat as
//! finished history grows. `MATERIALIZED` pins the locking subquery to run once (PostgreSQL
//! already does not inline a CTE with `FOR UPDATE`; this says so). `RETURNING` has no
//! order, so rows are sorted again in Rust by the same key, using the `next_run_at` the CTE
//! saw (the update clears it).
//!
//! # Queue controls
//! `queue_settings` has a row only for a paused or limited queue, and is normally empty.
//! Both of its sub-selects above are uncorrelated, so PostgreSQL runs each once per
//! statement (an `InitPlan`) and the claim keeps its plan and its single round trip:
//! a paused queue's jobs are filtered out as the index is read. A limit cannot be checked
//! that way: with `SKIP LOCKED`, concurrent claims each count the queue's running jobs
//! in their own snapshot, and together overshoot. So while a queue this claim serves is
//! limited, the statement claims nothing (its `NOT EXISTS` is false, and the scan never
//! starts), and [`claim_under_controls`] takes over, in a transaction:
//!
//! 1. lock the served limited queues' `queue_settings` rows (`FOR UPDATE`, in name order):
//!    claims of the same limited queue now run one after the other, while claims of other
//!    queues never wait for these locks;
//! 2. count each limited queue's `processing` jobs, in a statement that starts after the
//!    lock was granted and so sees every claim committed before it;
//! 3. pick candidates (`FOR UPDATE SKIP LOCKED`): up to `limit` of the queues without a
//!    row, and up to its room (limit minus running) of each limited queue; keep the first
//!    `limit` in claim order (`queuectl_store_sql::ClaimPlan`);
//! 4. move those to `processing`.
//!
//! Nothing else moves a job into `processing`, so the count plus what this claim takes
//! never exceeds the limit, however many claimers on however many hosts.

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Text, Untyped};
use std::collections::HashMap;

use queuectl_store::{ClaimRequest, ClaimToken};

use queuectl_store_sql::pg::{processing_per_queue, ClaimStamp};
use queuectl_store_sql::row::{JobRow, QueueSettingsRow};
use queuectl_store_sql::schema::queue_settings;
use queuectl_store_sql::{first_in_claim_order, Candidate, ClaimPlan, Failure};

/// The claim statement with its parameters.
///
/// Not a `diesel::sql_query`: diesel never caches those, so every claim paid a `Parse`
/// round trip and a fresh plan. This builds the same text through [`AstPass`] without
/// marking it uncacheable, so each connection prepares it once (one cached statement per
/// shape: with and without a queue filter) and then only executes it.
#[derive(Debug)]
pub(crate) struct ClaimQuery<'a> {
    now: i64,
    limit: i64,
    /// What the claim writes on each job.
    stamp: ClaimStamp<'a>,
    queues: Option<&'a [String]>,
    /// Prefix `EXPLAIN` (tests only: to check the plan of exactly this statement).
    explain: bool,
}

impl<'a> ClaimQuery<'a> {
    pub(crate) fn new(req: &'a ClaimRequest, token: ClaimToken) -> Self {
        ClaimQuery {
            now: req.now.as_millis(),
            limit: i64::from(req.limit),
            stamp: ClaimStamp::new(req, token),
            queues: (!req.queues.is_empty()).then_some(req.queues.as_slice()),
            explain: false,
        }
    }
}

impl QueryFragment<Pg> for ClaimQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.explain {
            out.push_sql("EXPLAIN ");
        }
        out.push_sql(
            "WITH c AS MATERIALIZED ( \
             SELECT seq, next_run_at AS claim_due FROM jobs \
             WHERE state IN ('pending', 'failed') AND unmet_parents = 0 AND next_run_at <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        if let Some(queues) = &self.queues {
            out.push_sql(" AND queue = ANY(");
            out.push_bind_param::<Array<Text>, _>(queues)?;
            out.push_sql(")");
        }
        out.push_sql(
            " AND queue <> ALL (ARRAY(SELECT queue FROM queue_settings WHERE paused)) \
             AND NOT EXISTS (SELECT 1 FROM queue_settings \
             WHERE concurrency IS NOT NULL AND NOT paused",
        );
        if let Some(queues) = &self.queues {
            out.push_sql(" AND queue = ANY(");
            out.push_bind_param::<Array<Text>, _>(queues)?;
            out.push_sql(")");
        }
        out.push_sql(") ORDER BY priority DESC, next_run_at, seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(" FOR UPDATE SKIP LOCKED) UPDATE jobs j SET ");
        self.stamp.walk_ast(out.reborrow())?;
        out.push_sql(" FROM c WHERE j.seq = c.seq RETURNING j.*, c.claim_due");
        Ok(())
    }
}

queuectl_store_sql::statement!(ClaimQuery<'_>, PgConnection, Untyped);

/// A claimed row plus the `next_run_at` it was claimed at, for sorting.
#[derive(Debug, QueryableByName)]
struct ClaimedRow {
    #[diesel(embed)]
    job: JobRow,
    #[diesel(sql_type = BigInt)]
    claim_due: i64,
}

/// Runs the claim and returns the rows in claim order. `req.limit` must be > 0.
pub(crate) fn claim(
    conn: &mut PgConnection,
    req: &ClaimRequest,
    token: ClaimToken,
) -> QueryResult<Vec<JobRow>> {
    let mut rows: Vec<ClaimedRow> = ClaimQuery::new(req, token).load(conn)?;
    rows.sort_by(|a, b| {
        b.job
            .priority
            .cmp(&a.job.priority)
            .then(a.claim_due.cmp(&b.claim_due))
            .then(a.job.seq.cmp(&b.job.seq))
    });
    Ok(rows.into_iter().map(|r| r.job).collect())
}

/// Claims as [`queuectl_store::Jobs::claim`] says while a queue the claim serves is
/// limited: see "Queue controls" in the module docs. Must run inside a transaction (READ
/// COMMITTED, the default: each statement's snapshot is taken when it starts). Returns the
/// rows in claim order; none when no served queue is limited any more (the plain claim
/// found nothing else).
pub(crate) fn claim_under_controls(
    conn: &mut PgConnection,
    req: &ClaimRequest,
    token: ClaimToken,
) -> Result<Vec<JobRow>, Failure> {
    let limited = queue_settings::table
        .filter(queue_settings::concurrency.is_not_null())
        .filter(queue_settings::paused.eq(false))
        .order(queue_settings::queue.asc())
        .select(QueueSettingsRow::as_select());
    let rows: Vec<QueueSettingsRow> = if req.queues.is_empty() {
        limited.for_update().load(conn)?
    } else {
        limited
            .filter(queue_settings::queue.eq_any(&req.queues))
            .for_update()
            .load(conn)?
    };
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let limited = rows
        .into_iter()
        .map(QueueSettingsRow::into_settings)
        .collect::<Result<Vec<_>, _>>()?;
    let plan = ClaimPlan {
        limited: limited
            .into_iter()
            .filter_map(|s| Some((s.queue, s.concurrency?)))
            .collect(),
    };
    let now = req.now.as_millis();
    let mut candidates: Vec<Candidate> = PickCandidates {
        now,
        limit: i64::from(req.limit),
        queues: (!req.queues.is_empty()).then_some(req.queues.as_slice()),
        only: None,
    }
    .load(conn)?;
    let running = processing_per_queue(conn, &plan.limited_names())?;
    for (queue, room) in plan.rooms(&running, req.limit) {
        candidates.extend(
            PickCandidates {
                now,
                limit: room,
                queues: None,
                only: Some(&queue),
            }
            .load::<Candidate>(conn)?,
        );
    }
    let chosen = first_in_claim_order(candidates, req.limit);
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = chosen.iter().map(|c| c.seq).collect();
    let mut taken: Vec<JobRow> = TakeSeqs {
        stamp: ClaimStamp::new(req, token),
        seqs: &seqs,
    }
    .load(conn)?;
    let rank: HashMap<i64, usize> = seqs.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    taken.sort_by_key(|row| rank.get(&row.seq).copied().unwrap_or(usize::MAX));
    Ok(taken)
}

/// Due jobs with their claim-order key, locked (`FOR UPDATE SKIP LOCKED`) for the
/// transaction: of one limited queue (`only`), or else of every served queue without a
/// `queue_settings` row.
#[derive(Debug)]
struct PickCandidates<'a> {
    now: i64,
    limit: i64,
    queues: Option<&'a [String]>,
    only: Option<&'a str>,
}

impl QueryFragment<Pg> for PickCandidates<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT seq, priority, next_run_at FROM jobs \
             WHERE state IN ('pending', 'failed') AND unmet_parents = 0 AND next_run_at <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        if let Some(queues) = &self.queues {
            out.push_sql(" AND queue = ANY(");
            out.push_bind_param::<Array<Text>, _>(queues)?;
            out.push_sql(")");
        }
        if let Some(queue) = &self.only {
            out.push_sql(" AND queue = ");
            out.push_bind_param::<Text, _>(queue)?;
        } else {
            out.push_sql(
                " AND queue <> ALL (ARRAY(SELECT queue FROM queue_settings \
                 WHERE paused OR concurrency IS NOT NULL))",
            );
        }
        out.push_sql(" ORDER BY priority DESC, next_run_at, seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(" FOR UPDATE SKIP LOCKED");
        Ok(())
    }
}

queuectl_store_sql::statement!(PickCandidates<'_>, PgConnection, Untyped);

/// `UPDATE jobs SET <claimed> WHERE seq = ANY($seqs) RETURNING *`, on rows this
/// transaction already locked.
#[derive(Debug)]
struct TakeSeqs<'a> {
    stamp: ClaimStamp<'a>,
    seqs: &'a [i64],
}

impl QueryFragment<Pg> for TakeSeqs<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE jobs SET ");
        self.stamp.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE seq = ANY(");
        out.push_bind_param::<Array<BigInt>, _>(&self.seqs)?;
        out.push_sql(") RETURNING *");
        Ok(())
    }
}

queuectl_store_sql::statement!(TakeSeqs<'_>, PgConnection, Untyped);

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use diesel::sql_types::Text;
    use queuectl_store::prelude::*;
    use queuectl_store::{JobId, NewJob, Timestamp};

    use super::*;
    use crate::testutil::TestSchema;

    #[test]
    fn four_handles_claiming_concurrently_never_share_a_job() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let producer = schema.open();
        let now = Timestamp::from_millis(1_000_000);
        let jobs: Vec<NewJob> = (0..400)
            .map(|i| NewJob::shell(format!("echo {i}"), now))
            .collect();
        producer.enqueue_many(&jobs, now).expect("enqueue");

        let claimed: Vec<Vec<JobId>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|w| {
                    let schema = &schema;
                    s.spawn(move || {
                        let store = schema.open();
                        let req = ClaimRequest {
                            limit: 7,
                            worker_id: format!("w{w}"),
                            now,
                            lease_until: now.add(Duration::from_secs(60)),
                            queues: Vec::new(),
                        };
                        let mut mine = Vec::new();
                        loop {
                            let got = store.claim(&req).expect("claim");
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.into_iter().map(|j| j.id));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|h| h.join().expect("worker thread"))
                .collect()
        });

        let total: usize = claimed.iter().map(Vec::len).sum();
        let distinct: HashSet<&JobId> = claimed.iter().flatten().collect();
        assert_eq!(distinct.len(), total, "a job was claimed twice");
        assert_eq!(total, jobs.len(), "every job is claimed exactly once");
    }

    #[test]
    fn the_claim_query_can_use_the_partial_index() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        drop(schema.open());
        let mut conn = schema.raw_connection();
        diesel::sql_query("SET enable_seqscan = off")
            .execute(&mut conn)
            .expect("planner setting");
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
            line: String,
        }
        let now = queuectl_store::Timestamp::from_millis(0);
        for queues in [vec![], vec!["q".to_owned()]] {
            let req = ClaimRequest {
                limit: 10,
                worker_id: "w".into(),
                now,
                lease_until: now,
                queues,
            };
            let mut query = ClaimQuery::new(&req, ClaimToken(1));
            query.explain = true;
            let plan: Vec<Plan> = query.load(&mut conn).expect("explain");
            let text: Vec<String> = plan.into_iter().map(|p| p.line).collect();
            assert!(
                text.iter().any(|l| l.contains("jobs_claim_idx")),
                "claim does not use jobs_claim_idx:\n{}",
                text.join("\n")
            );
        }
    }
}
