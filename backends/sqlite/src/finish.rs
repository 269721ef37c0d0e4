//! Finishing many executions at once: three statements for a whole batch of `Completed`,
//! `Failed` and `Dead` transitions, instead of three per job.
//!
//! Transitions are grouped by everything they write except the job (token, state, exit
//! code, error, retry time, output); a claimed batch of successes is one group. Per group:
//!
//! 1. [`FinishJobs`]: one `UPDATE … WHERE id IN (json_each(?)) AND state = 'processing'
//!    AND claim_token = ?` applies the group's transitions to the jobs still held under
//!    the token, and returns the rows it changed.
//! 2. [`InsertHistory`]: one `INSERT … SELECT` appends a history entry per changed job,
//!    read back from its updated row.
//!    The entry carries the attempt's output (`NULL` for an empty stream).
//! 3. [`DeleteLive`]: one `DELETE` of what the attempts published while they ran, run only
//!    when the `live_output` table has any row (usually it has none).
//!
//! Job lists travel as one JSON array of scalars (the claim's trick, see `claim.rs`): the
//! SQL text is fixed, so Diesel prepares each statement once per connection, and no batch
//! can exceed SQLite's bound-variable limit. The caller runs everything in one immediate
//! transaction and only with unique job ids, so the order of the groups does not matter.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use queuectl_store::{Guarded, StoreError, Timestamp, Transition, CANCELLED_WHILE_RUNNING};
use queuectl_store_sql::row::stored_text;
use queuectl_store_sql::{Failure, Finished};
use serde::Serialize;

/// What a group of transitions shares: everything they write except the job.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Shared<'a> {
    token: i64,
    state: &'static str,
    exit_code: Option<i32>,
    error: Option<&'a str>,
    next_run_at: Option<i64>,
    /// `NULL` for an empty stream.
    stdout: Option<&'a str>,
    stderr: Option<&'a str>,
}

/// What a transition that finishes an execution writes; `None` for the other kinds.
fn shared_of(t: &Transition) -> Option<Shared<'_>> {
    let finished = Finished::of(&t.kind)?;
    Some(Shared {
        token: t.token.0,
        state: finished.state.as_str(),
        exit_code: finished.execution.exit_code,
        error: finished.error,
        next_run_at: finished.next_run_at,
        stdout: stored_text(&finished.execution.output.stdout),
        stderr: stored_text(&finished.execution.output.stderr),
    })
}

/// Whether every transition finishes an execution (the kinds this module handles).
pub(crate) fn all_executions(transitions: &[Transition]) -> bool {
    transitions.iter().all(|t| shared_of(t).is_some())
}

/// Applies `transitions` (each finishing an execution, with unique ids) as
/// [`queuectl_store::Jobs::finish`] says. Must run inside an immediate transaction.
///
/// Transitions that write the same values (a claimed batch shares its token; successes
/// without output write the same state, exit code and output) form one group, and each
/// group costs three statements, whatever its size.
pub(crate) fn finish_executions(
    conn: &mut SqliteConnection,
    transitions: &[Transition],
    now: Timestamp,
) -> Result<Vec<Guarded>, Failure> {
    let mut groups: Vec<(Shared<'_>, Vec<usize>)> = Vec::new();
    let mut group_of: HashMap<Shared<'_>, usize> = HashMap::new();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(transitions.len());
    for (i, t) in transitions.iter().enumerate() {
        let Some(shared) = shared_of(t) else {
            return Err(Failure::Store(StoreError::Backend {
                message: "finish_executions got a transition that finishes no execution".to_owned(),
                source: None,
            }));
        };
        index.insert(t.id.as_str(), i);
        let g = *group_of.entry(shared).or_insert_with(|| {
            groups.push((shared, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, members)) = groups.get_mut(g) {
            members.push(i);
        }
    }

    let now_ms = now.as_millis();
    let mut results = vec![Guarded::Stale; transitions.len()];
    for (shared, members) in &groups {
        let ids: Vec<&str> = members
            .iter()
            .filter_map(|&i| transitions.get(i).map(|t| t.id.as_str()))
            .collect();
        let changed: Vec<(i64, String)> = FinishJobs {
            shared,
            now: now_ms,
            ids: json(&ids)?,
        }
        .load(conn)?;
        if changed.is_empty() {
            continue;
        }
        let mut seqs = Vec::with_capacity(changed.len());
        for (seq, id) in &changed {
            if let Some(&i) = index.get(id.as_str()) {
                results[i] = Guarded::Applied;
            }
            seqs.push(*seq);
        }
        let seqs = json(&seqs)?;
        InsertHistory {
            shared,
            now: now_ms,
            seqs: &seqs,
        }
        .execute(conn)?;
        if any_live_output(conn)? {
            DeleteLive { seqs: &seqs }.execute(conn)?;
        }
    }
    Ok(results)
}

/// Whether any attempt has published live output: almost never while a queue of short
/// jobs burns down (only attempts that write, and run long enough to publish, have a row),
/// so one probe of the table's root page usually replaces the [`DeleteLive`] statement.
/// The same transaction holds the write lock, so no row can appear in between.
fn any_live_output(conn: &mut SqliteConnection) -> Result<bool, Failure> {
    use queuectl_store_sql::schema::live_output;
    Ok(diesel::select(diesel::dsl::exists(
        live_output::table.select(live_output::job_seq),
    ))
    .get_result(conn)?)
}

fn json<T: Serialize + ?Sized>(rows: &T) -> Result<String, Failure> {
    serde_json::to_string(rows)
        .map_err(|e| Failure::Store(StoreError::backend("encoding finished jobs", e)))
}

/// Every statement here has fixed SQL text: a static query id lets Diesel find the
/// prepared statement by type, without rendering the SQL on every call.
macro_rules! fixed_sql {
    ($name:ident, $marker:ident) => {
        #[doc(hidden)]
        #[derive(Debug)]
        pub(crate) struct $marker;

        impl QueryId for $name<'_> {
            type QueryId = $marker;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl RunQueryDsl<SqliteConnection> for $name<'_> {}
    };
}

/// The guarded update of one group; returns `(seq, id)` of each job it changed.
struct FinishJobs<'a> {
    shared: &'a Shared<'a>,
    now: i64,
    ids: String,
}

impl QueryFragment<Sqlite> for FinishJobs<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let s = self.shared;
        // A job with a cancel request ends `cancelled` whatever it reports (every CASE
        // reads the row as it was before this write).
        out.push_sql("UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE ");
        out.push_bind_param::<Text, _>(&s.state)?;
        out.push_sql(" END, attempts = attempts + 1, exit_code = ");
        out.push_bind_param::<Nullable<Integer>, _>(&s.exit_code)?;
        out.push_sql(", last_error = CASE WHEN cancel_requested THEN ");
        out.push_bind_param::<Text, _>(&CANCELLED_WHILE_RUNNING)?;
        out.push_sql(" ELSE ");
        out.push_bind_param::<Nullable<Text>, _>(&s.error)?;
        out.push_sql(" END, next_run_at = CASE WHEN cancel_requested THEN NULL ELSE ");
        out.push_bind_param::<Nullable<BigInt>, _>(&s.next_run_at)?;
        out.push_sql(
            " END, cancel_requested = FALSE, lease_until = NULL, claim_token = NULL, \
             finished_at = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" WHERE id IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.ids)?;
        out.push_sql(")) AND state = 'processing' AND claim_token = ");
        out.push_bind_param::<BigInt, _>(&s.token)?;
        out.push_sql(" RETURNING seq, id");
        Ok(())
    }
}

impl Query for FinishJobs<'_> {
    type SqlType = (BigInt, Text);
}

fixed_sql!(FinishJobs, FinishJobsQuery);

/// One history entry per changed job of a group, read back from the job row: `attempts`
/// is already the new count, `started_at` the claim's, `exit_code` and `last_error` what
/// the update wrote (`cancelled while running` for a job with a cancel request).
struct InsertHistory<'a> {
    shared: &'a Shared<'a>,
    now: i64,
    seqs: &'a str,
}

impl QueryFragment<Sqlite> for InsertHistory<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let s = self.shared;
        // A processing job always has started_at (claim sets it); an imported one might not.
        out.push_sql(
            "INSERT INTO job_attempts (job_seq, attempt, started_at, finished_at, exit_code, \
             error, stdout, stderr) SELECT seq, attempts, coalesce(started_at, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql("), ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        // exit_code and last_error as the update wrote them (a cancel request overrides
        // the outcome); the output is the attempt's own.
        out.push_sql(", exit_code, last_error, ");
        out.push_bind_param::<Nullable<Text>, _>(&s.stdout)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&s.stderr)?;
        out.push_sql(" FROM jobs WHERE seq IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.seqs)?;
        out.push_sql(")) ORDER BY seq");
        Ok(())
    }
}

fixed_sql!(InsertHistory, InsertHistoryQuery);

/// Deletes the live output of every changed job: its attempt has ended.
struct DeleteLive<'a> {
    seqs: &'a str,
}

impl QueryFragment<Sqlite> for DeleteLive<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("DELETE FROM live_output WHERE job_seq IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.seqs)?;
        out.push_sql("))");
        Ok(())
    }
}

fixed_sql!(DeleteLive, DeleteLiveQuery);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use queuectl_store::prelude::*;
    use queuectl_store::{
        ClaimRequest, ClaimToken, Execution, Job, JobId, JobOutput, JobState, NewJob, Transition,
        TransitionKind,
    };

    use super::*;
    use crate::SqliteStore;

    const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

    fn claim(store: &SqliteStore, n: u32) -> Vec<Job> {
        store
            .claim(&ClaimRequest {
                limit: n,
                worker_id: "w".into(),
                now: T0,
                lease_until: T0.add(Duration::from_secs(30)),
                queues: Vec::new(),
            })
            .expect("claim")
    }

    fn exec(code: i32, out: &str) -> Execution {
        Execution {
            exit_code: Some(code),
            output: JobOutput {
                stdout: out.to_owned(),
                stderr: String::new(),
            },
        }
    }

    /// One batch mixing groups (two claim tokens, all three kinds, different outputs) and
    /// a stale transition writes exactly what one-by-one transitions would.
    #[test]
    fn a_mixed_batch_writes_each_transition_as_if_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("f.db")).expect("open");
        let jobs: Vec<NewJob> = (0..6)
            .map(|i| {
                let mut j = NewJob::shell("true", T0);
                j.id = JobId::new(format!("j{i}"));
                j
            })
            .collect();
        store.enqueue_many(&jobs, T0).expect("enqueue");
        let mut held = claim(&store, 3);
        held.extend(claim(&store, 3));
        assert_ne!(held[0].claim_token, held[3].claim_token);
        let t = |i: usize, kind: TransitionKind| Transition {
            id: held[i].id.clone(),
            token: held[i].claim_token.expect("token"),
            kind,
        };
        let retry_at = T0.add(Duration::from_secs(5));
        let batch = [
            t(
                0,
                TransitionKind::Completed {
                    execution: exec(0, "a"),
                },
            ),
            t(
                3,
                TransitionKind::Completed {
                    execution: exec(0, "a"),
                },
            ),
            t(
                1,
                TransitionKind::Completed {
                    execution: exec(0, "b"),
                },
            ),
            t(
                4,
                TransitionKind::Failed {
                    execution: exec(2, ""),
                    error: "exit code 2".into(),
                    retry_at,
                },
            ),
            t(
                5,
                TransitionKind::Dead {
                    execution: exec(3, "c"),
                    error: "exit code 3".into(),
                },
            ),
            Transition {
                token: ClaimToken(held[2].claim_token.expect("token").0 ^ 1),
                ..t(
                    2,
                    TransitionKind::Completed {
                        execution: exec(0, ""),
                    },
                )
            },
        ];
        let now = T0.add(Duration::from_secs(1));
        let results = store.finish(&batch, now).expect("finish");
        assert_eq!(
            results,
            [
                Guarded::Applied,
                Guarded::Applied,
                Guarded::Applied,
                Guarded::Applied,
                Guarded::Applied,
                Guarded::Stale
            ]
        );
        let expect = [
            (0, JobState::Completed, Some(0), None, None, "a"),
            (3, JobState::Completed, Some(0), None, None, "a"),
            (1, JobState::Completed, Some(0), None, None, "b"),
            (
                4,
                JobState::Failed,
                Some(2),
                Some("exit code 2"),
                Some(retry_at),
                "",
            ),
            (5, JobState::Dead, Some(3), Some("exit code 3"), None, "c"),
        ];
        for (i, state, code, error, next, out) in expect {
            let r = store.get_record(&held[i].id).expect("record");
            assert_eq!(r.job.state, state, "{i}");
            assert_eq!(r.job.attempts, 1, "{i}");
            assert_eq!(r.job.exit_code, code, "{i}");
            assert_eq!(r.job.last_error.as_deref(), error, "{i}");
            assert_eq!(r.job.next_run_at, next, "{i}");
            assert_eq!(r.job.finished_at, Some(now), "{i}");
            assert_eq!(r.job.updated_at, now, "{i}");
            assert_eq!((r.job.claim_token, r.job.lease_until), (None, None), "{i}");
            assert_eq!(r.output.expect("output").stdout, out, "{i}");
            assert_eq!(r.history.len(), 1, "{i}");
            let h = &r.history[0];
            assert_eq!(
                (h.attempt, h.started_at, h.finished_at, h.exit_code),
                (1, T0, now, code),
                "{i}"
            );
            assert_eq!(h.error.as_deref(), error, "{i}");
        }
        let stale = store.get_record(&held[2].id).expect("record");
        assert_eq!(stale.job.state, JobState::Processing);
        assert!(stale.history.is_empty() && stale.output.is_none());
    }

    /// The finish and the next claim share one transaction: the finished job is recorded,
    /// the next one claimed, and a stale transition does not stop the claim.
    #[test]
    fn finish_and_claim_records_then_claims_the_next_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("fc.db")).expect("open");
        let jobs: Vec<NewJob> = (0..3)
            .map(|i| {
                let mut j = NewJob::shell("true", T0);
                j.id = JobId::new(format!("n{i}"));
                j
            })
            .collect();
        store.enqueue_many(&jobs, T0).expect("enqueue");
        let first = claim(&store, 1).remove(0);
        let done = [
            Transition {
                id: first.id.clone(),
                token: first.claim_token.expect("token"),
                kind: TransitionKind::Completed {
                    execution: exec(0, ""),
                },
            },
            Transition {
                id: JobId::new("missing"),
                token: ClaimToken(1),
                kind: TransitionKind::Completed {
                    execution: exec(0, ""),
                },
            },
        ];
        let req = ClaimRequest {
            limit: 1,
            worker_id: "w".into(),
            now: T0,
            lease_until: T0.add(Duration::from_secs(30)),
            queues: Vec::new(),
        };
        let (finished, next) = store.finish_and_claim(&done, T0, &req).expect("call");
        assert_eq!(finished, [Guarded::Applied, Guarded::Stale]);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id.as_str(), "n1");
        assert_eq!(next[0].state, JobState::Processing);
        assert_eq!(
            store.get(&first.id).expect("get").state,
            JobState::Completed
        );
    }
}
