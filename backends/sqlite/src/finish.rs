//! Finishing many executions at once: three statements for a whole batch of `Completed`,
//! `Failed` and `Dead` transitions, instead of three per job.
//!
//! 1. [`FinishJobs`]: one `UPDATE … FROM json_each(?)` applies every transition whose job
//!    is still `processing` under its token and returns the rows it changed.
//! 2. [`InsertHistory`]: one `INSERT … SELECT FROM json_each(?)` appends a history entry
//!    per changed job.
//! 3. [`ReplaceOutput`]: one `INSERT OR REPLACE … SELECT FROM json_each(?)` stores their
//!    output.
//!
//! Each carries its rows as one JSON array (the claim's trick, see `claim.rs`): the SQL
//! text is fixed, so Diesel prepares each statement once per connection, and no batch can
//! exceed SQLite's bound-variable limit. The caller runs them in one immediate transaction
//! and only with unique job ids (an `UPDATE … FROM` would apply one of two transitions of a
//! job, not both in order).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use queuectl_store::{
    Execution, Guarded, JobState, StoreError, Timestamp, Transition, TransitionKind,
};
use serde::Serialize;

use crate::error::Failure;

/// What one execution-finishing transition writes, as [`FinishJobs`] reads it.
#[derive(Serialize)]
struct Row<'a>(
    &'a str,         // id
    i64,             // token
    &'static str,    // new state
    Option<i32>,     // exit code
    Option<&'a str>, // last_error
    Option<i64>,     // next_run_at
);

/// The execution, error and row of a transition that finishes an execution; `None` for the
/// other kinds.
fn execution_of(t: &Transition) -> Option<(&Execution, Option<&str>, Row<'_>)> {
    let (execution, state, error, next_run_at) = match &t.kind {
        TransitionKind::Completed { execution } => (execution, JobState::Completed, None, None),
        TransitionKind::Failed {
            execution,
            error,
            retry_at,
        } => (
            execution,
            JobState::Failed,
            Some(error.as_str()),
            Some(retry_at.as_millis()),
        ),
        TransitionKind::Dead { execution, error } => {
            (execution, JobState::Dead, Some(error.as_str()), None)
        }
        TransitionKind::Recovered | TransitionKind::Released | TransitionKind::Abandoned { .. } => {
            return None
        }
    };
    let row = Row(
        t.id.as_str(),
        t.token.0,
        state.as_str(),
        execution.exit_code,
        error,
        next_run_at,
    );
    Some((execution, error, row))
}

/// Whether every transition finishes an execution (the kinds this module handles).
pub(crate) fn all_executions(transitions: &[Transition]) -> bool {
    transitions.iter().all(|t| execution_of(t).is_some())
}

/// Applies `transitions` (each finishing an execution, with unique ids) as
/// [`queuectl_store::JobStore::finish`] says. Must run inside an immediate transaction.
pub(crate) fn finish_executions(
    conn: &mut SqliteConnection,
    transitions: &[Transition],
    now: Timestamp,
) -> Result<Vec<Guarded>, Failure> {
    let mut rows = Vec::with_capacity(transitions.len());
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(transitions.len());
    for (i, t) in transitions.iter().enumerate() {
        let Some((_, _, row)) = execution_of(t) else {
            return Err(Failure::Store(StoreError::Backend {
                message: "finish_executions got a transition that finishes no execution".to_owned(),
                source: None,
            }));
        };
        rows.push(row);
        index.insert(t.id.as_str(), i);
    }
    let now_ms = now.as_millis();
    let changed: Vec<(i64, String, i64, Option<i64>)> = FinishJobs {
        now: now_ms,
        rows: json(&rows)?,
    }
    .load(conn)?;

    let mut results = vec![Guarded::Stale; transitions.len()];
    let mut history = Vec::with_capacity(changed.len());
    let mut outputs = Vec::with_capacity(changed.len());
    for (seq, id, attempts, started_at) in &changed {
        let Some(&i) = index.get(id.as_str()) else {
            continue;
        };
        let Some((execution, error, _)) = transitions.get(i).and_then(execution_of) else {
            continue;
        };
        results[i] = Guarded::Applied;
        // A processing job always has started_at (claim sets it); an imported one might not.
        history.push((
            *seq,
            *attempts,
            started_at.unwrap_or(now_ms),
            execution.exit_code,
            error,
        ));
        outputs.push((
            *seq,
            execution.output.stdout.as_str(),
            execution.output.stderr.as_str(),
        ));
    }
    if !history.is_empty() {
        InsertHistory {
            now: now_ms,
            rows: json(&history)?,
        }
        .execute(conn)?;
        ReplaceOutput {
            rows: json(&outputs)?,
        }
        .execute(conn)?;
    }
    Ok(results)
}

fn json<T: Serialize>(rows: &T) -> Result<String, Failure> {
    serde_json::to_string(rows)
        .map_err(|e| Failure::Store(StoreError::backend("encoding finished jobs", e)))
}

/// The guarded update of every execution-finishing transition; returns
/// `(seq, id, attempts, started_at)` of each job it changed.
#[derive(Debug)]
struct FinishJobs {
    now: i64,
    rows: String,
}

impl QueryFragment<Sqlite> for FinishJobs {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // `->>` yields SQL values (TEXT, INTEGER or NULL), so the comparisons below are
        // the same as with bound parameters.
        out.push_sql(
            "UPDATE jobs SET state = t.state, attempts = jobs.attempts + 1, \
             exit_code = t.exit_code, last_error = t.error, next_run_at = t.next_run_at, \
             lease_until = NULL, claim_token = NULL, finished_at = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            " FROM (SELECT value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS state, \
             value ->> 3 AS exit_code, value ->> 4 AS error, value ->> 5 AS next_run_at \
             FROM json_each(",
        );
        out.push_bind_param::<Text, _>(&self.rows)?;
        out.push_sql(
            ")) AS t WHERE jobs.id = t.id AND jobs.state = 'processing' \
             AND jobs.claim_token = t.token \
             RETURNING jobs.seq, jobs.id, jobs.attempts, jobs.started_at",
        );
        Ok(())
    }
}

impl QueryId for FinishJobs {
    type QueryId = ();
    // Not static, so Diesel keys its statement cache by the (fixed) SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for FinishJobs {
    type SqlType = (BigInt, Text, BigInt, Nullable<BigInt>);
}

impl RunQueryDsl<SqliteConnection> for FinishJobs {}

/// One history entry per `[seq, attempt, started_at, exit_code, error]`.
#[derive(Debug)]
struct InsertHistory {
    now: i64,
    rows: String,
}

impl QueryFragment<Sqlite> for InsertHistory {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // ORDER BY key: history rows get their seqs in the order of the batch.
        out.push_sql(
            "INSERT INTO job_attempts (job_seq, attempt, started_at, finished_at, exit_code, \
             error) SELECT value ->> 0, value ->> 1, value ->> 2, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", value ->> 3, value ->> 4 FROM json_each(");
        out.push_bind_param::<Text, _>(&self.rows)?;
        out.push_sql(") ORDER BY key");
        Ok(())
    }
}

impl QueryId for InsertHistory {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<SqliteConnection> for InsertHistory {}

/// The last output per `[seq, stdout, stderr]`, replacing any stored one.
#[derive(Debug)]
struct ReplaceOutput {
    rows: String,
}

impl QueryFragment<Sqlite> for ReplaceOutput {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "INSERT OR REPLACE INTO job_output (job_seq, stdout, stderr) \
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(",
        );
        out.push_bind_param::<Text, _>(&self.rows)?;
        out.push_sql(")");
        Ok(())
    }
}

impl QueryId for ReplaceOutput {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<SqliteConnection> for ReplaceOutput {}
