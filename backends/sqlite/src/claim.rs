//! The claim: pick the due jobs in contract order and move them to `processing`, inside the
//! caller's `BEGIN IMMEDIATE` transaction.
//!
//! Two statements, both hand-written because the DSL cannot say what matters here:
//!
//! 1. [`PickDue`] selects the `seq`s of up to `limit` due jobs through the partial index
//!    `jobs_claim`, which holds only `pending`/`failed` rows in exactly the claim's
//!    `ORDER BY`, so the scan stops after `limit` due rows and never touches finished
//!    history. SQLite uses a partial index only when the query repeats its `WHERE` as
//!    literal text (a bound `state IN (?, ?)` is not provably the same), hence the literal,
//!    and `INDEXED BY` turns a plan regression into an error instead of a slow scan.
//! 2. [`TakeJobs`] updates exactly those rows by rowid and returns them (`RETURNING`).
//!
//! They are separate because SQLite's `RETURNING` yields rows in no particular order and
//! only with their new values: once `next_run_at` is cleared, the claim order can no longer
//! be recovered from the returned rows. The write lock is held from `BEGIN IMMEDIATE` to
//! `COMMIT`, so no other connection or process can change the picked rows in between; the
//! pair is as exclusive as one `UPDATE … WHERE seq IN (SELECT …) RETURNING`.
//!
//! Both are query types of their own (not `sql_query`) so that Diesel caches their prepared
//! statements: the SQL text depends only on whether a queue filter is present.
//!
//! Queue controls: the claim first reads `queue_settings`, which has a row only for a paused
//! or limited queue, so it is empty (and [`PickDue`] runs as described) unless an operator
//! paused or limited a queue. Otherwise [`PickCandidates`] picks from the other queues and
//! from each limited queue up to its room (limit minus its jobs `processing`), and the
//! candidates are merged in claim order (`queuectl_store_sql::ClaimPlan`). The count and the
//! claim run under the write lock of the same `BEGIN IMMEDIATE` transaction, so no other
//! claimer, in this process or another, can change the count between them: the limit holds
//! exactly.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Text, Untyped};
use diesel::sqlite::Sqlite;
use queuectl_store::{ClaimRequest, ClaimToken, Job, StoreError};

use queuectl_store_sql::row::{JobRow, QueueSettingsRow};
use queuectl_store_sql::sqlite::{load_queue_settings, processing_per_queue, ClaimStamp};
use queuectl_store_sql::{first_in_claim_order, Candidate, ClaimPlan, Failure};

/// Claims as [`queuectl_store::Jobs::claim`] says. Must run inside an immediate
/// transaction.
pub(crate) fn claim(conn: &mut SqliteConnection, req: &ClaimRequest) -> Result<Vec<Job>, Failure> {
    if req.limit == 0 {
        return Ok(Vec::new());
    }
    let queues = if req.queues.is_empty() {
        None
    } else {
        Some(json_array(&req.queues)?)
    };
    let settings = load_queue_settings(conn)?
        .into_iter()
        .map(QueueSettingsRow::into_settings)
        .collect::<Result<Vec<_>, _>>()?;
    let picked: Vec<i64> = match ClaimPlan::new(&settings, req) {
        None => PickDue {
            now: req.now.as_millis(),
            limit: i64::from(req.limit),
            queues,
        }
        .load(conn)?,
        Some(plan) => pick_under_controls(conn, req, queues, &plan)?,
    };
    if picked.is_empty() {
        return Ok(Vec::new());
    }

    let rows: Vec<JobRow> = TakeJobs {
        stamp: ClaimStamp::new(req, ClaimToken::random()),
        seqs: json_array(&picked)?,
    }
    .load(conn)?;

    let rank: HashMap<i64, usize> = picked.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut ranked = rows
        .into_iter()
        .map(|row| (rank.get(&row.seq).copied().unwrap_or(usize::MAX), row))
        .collect::<Vec<_>>();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked
        .into_iter()
        .map(|(_, row)| row.into_job().map_err(Failure::Store))
        .collect()
}

/// The `seq`s of the jobs to claim when some queue is paused or limited, in claim order:
/// see the module docs.
fn pick_under_controls(
    conn: &mut SqliteConnection,
    req: &ClaimRequest,
    queues: Option<String>,
    plan: &ClaimPlan,
) -> Result<Vec<i64>, Failure> {
    let now = req.now.as_millis();
    let mut candidates: Vec<Candidate> = PickCandidates {
        now,
        limit: i64::from(req.limit),
        queues,
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
                only: Some(queue),
            }
            .load::<Candidate>(conn)?,
        );
    }
    Ok(first_in_claim_order(candidates, req.limit)
        .into_iter()
        .map(|c| c.seq)
        .collect())
}

/// A JSON array, the one bind parameter that carries a list into `json_each(?)`: the SQL
/// text (and so the cached statement) stays the same whatever the list's length, and no
/// list can exceed SQLite's bound-variable limit.
fn json_array<T: serde::Serialize>(items: &[T]) -> Result<String, Failure> {
    serde_json::to_string(items)
        .map_err(|e| Failure::Store(StoreError::backend("encoding a claim parameter", e)))
}

/// `SELECT seq … ORDER BY priority DESC, next_run_at, seq LIMIT ?` over `jobs_claim`.
#[derive(Debug)]
struct PickDue {
    now: i64,
    limit: i64,
    queues: Option<String>,
}

impl QueryFragment<Sqlite> for PickDue {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // Repeats the WHERE of `jobs_claim` (migration) as literal text: SQLite uses a
        // partial index only when it can prove the query's terms imply the index's.
        out.push_sql(
            "SELECT seq FROM jobs INDEXED BY jobs_claim \
             WHERE state IN ('pending', 'failed') AND unmet_parents = 0 AND next_run_at <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        if let Some(queues) = &self.queues {
            out.push_sql(" AND queue IN (SELECT value FROM json_each(");
            out.push_bind_param::<Text, _>(queues)?;
            out.push_sql("))");
        }
        out.push_sql(" ORDER BY priority DESC, next_run_at, seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        Ok(())
    }
}

queuectl_store_sql::statement!(PickDue, SqliteConnection, BigInt);

/// [`PickDue`] with each row's claim-order key, for a claim under queue controls: due jobs
/// of one limited queue (`only`), or else of every queue without a `queue_settings` row
/// (neither paused nor limited), through the same partial index.
#[derive(Debug)]
struct PickCandidates {
    now: i64,
    limit: i64,
    queues: Option<String>,
    only: Option<String>,
}

impl QueryFragment<Sqlite> for PickCandidates {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "SELECT seq, priority, next_run_at FROM jobs INDEXED BY jobs_claim \
             WHERE state IN ('pending', 'failed') AND unmet_parents = 0 AND next_run_at <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        if let Some(queues) = &self.queues {
            out.push_sql(" AND queue IN (SELECT value FROM json_each(");
            out.push_bind_param::<Text, _>(queues)?;
            out.push_sql("))");
        }
        if let Some(queue) = &self.only {
            out.push_sql(" AND queue = ");
            out.push_bind_param::<Text, _>(queue)?;
        } else {
            out.push_sql(
                " AND queue NOT IN (SELECT queue FROM queue_settings \
                 WHERE paused OR concurrency IS NOT NULL)",
            );
        }
        out.push_sql(" ORDER BY priority DESC, next_run_at, seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        Ok(())
    }
}

queuectl_store_sql::statement!(PickCandidates, SqliteConnection, Untyped);

/// `UPDATE jobs SET <claimed> WHERE seq IN (<picked>) RETURNING <every column>`.
#[derive(Debug)]
struct TakeJobs<'a> {
    stamp: ClaimStamp<'a>,
    seqs: String,
}

/// Every `jobs` column, named as [`JobRow`] reads them.
const RETURNING_JOB: &str = " RETURNING seq, id, command, kind, state, attempts, max_retries, \
    priority, queue, interrupts, created_at, updated_at, run_at, next_run_at, timeout_secs, \
    exit_code, last_error, worker_id, started_at, finished_at, lease_until, claim_token, \
    cancel_requested, cwd, env, limits, unique_key, depends_on";

impl QueryFragment<Sqlite> for TakeJobs<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE jobs SET ");
        self.stamp.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE seq IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.seqs)?;
        out.push_sql("))");
        out.push_sql(RETURNING_JOB);
        Ok(())
    }
}

queuectl_store_sql::statement!(TakeJobs<'_>, SqliteConnection, Untyped);

#[cfg(test)]
mod tests {
    use diesel::sql_types::Text;

    use super::*;

    #[derive(QueryableByName)]
    struct PlanRow {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    fn plan(conn: &mut SqliteConnection, query: &PickDue) -> Vec<String> {
        let sql = diesel::debug_query::<Sqlite, _>(query).to_string();
        // debug_query prints the binds after "-- binds:"; the plan needs only the text
        // with placeholders, and EXPLAIN accepts unbound parameters as NULL.
        let text = sql.split(" -- binds:").next().unwrap_or_default();
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {text}"))
            .load::<PlanRow>(conn)
            .expect("plan")
            .into_iter()
            .map(|r| r.detail)
            .collect()
    }

    #[test]
    fn the_pick_scans_the_partial_index_in_order_without_sorting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.db");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("open");
        crate::migrate::run_pending(&mut conn).expect("migrate");
        for queues in [None, Some("[\"a\"]".to_owned())] {
            let query = PickDue {
                now: 0,
                limit: 1,
                queues,
            };
            let plan = plan(&mut conn, &query);
            assert!(
                plan.iter().any(|d| d.contains("USING INDEX jobs_claim")),
                "{plan:?}"
            );
            assert!(
                !plan.iter().any(|d| d.contains("TEMP B-TREE")),
                "claim sorts: {plan:?}"
            );
        }
    }
}
