//! The claim: one statement that picks due jobs and moves them to `processing`.
//!
//! ```sql
//! WITH c AS MATERIALIZED (
//!     SELECT seq, next_run_at AS claim_due FROM jobs
//!     WHERE state IN ('pending', 'failed') AND next_run_at <= $now [AND queue = ANY($queues)]
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

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Text, Untyped};
use queuectl_store::{ClaimRequest, ClaimToken};

use crate::row::JobRow;

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
    worker_id: &'a str,
    token: i64,
    lease_until: i64,
    queues: Option<&'a [String]>,
    /// Prefix `EXPLAIN` (tests only: to check the plan of exactly this statement).
    explain: bool,
}

impl<'a> ClaimQuery<'a> {
    pub(crate) fn new(req: &'a ClaimRequest, token: ClaimToken) -> Self {
        ClaimQuery {
            now: req.now.as_millis(),
            limit: i64::from(req.limit),
            worker_id: &req.worker_id,
            token: token.0,
            lease_until: req.lease_until.as_millis(),
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
             WHERE state IN ('pending', 'failed') AND next_run_at <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        if let Some(queues) = &self.queues {
            out.push_sql(" AND queue = ANY(");
            out.push_bind_param::<Array<Text>, _>(queues)?;
            out.push_sql(")");
        }
        out.push_sql(" ORDER BY priority DESC, next_run_at, seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(
            " FOR UPDATE SKIP LOCKED) \
             UPDATE jobs j SET state = 'processing', worker_id = ",
        );
        out.push_bind_param::<Text, _>(&self.worker_id)?;
        out.push_sql(", claim_token = ");
        out.push_bind_param::<BigInt, _>(&self.token)?;
        out.push_sql(", lease_until = ");
        out.push_bind_param::<BigInt, _>(&self.lease_until)?;
        out.push_sql(", started_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", next_run_at = NULL FROM c WHERE j.seq = c.seq \
             RETURNING j.*, c.claim_due",
        );
        Ok(())
    }
}

// No static query id: the text differs with and without a queue filter, so diesel keys its
// statement cache by the SQL text.
impl QueryId for ClaimQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for ClaimQuery<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for ClaimQuery<'_> {}

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
