//! Finishing executions: a batch of `Completed` / `Failed` / `Dead` transitions in one
//! statement.
//!
//! ```sql
//! WITH t AS (SELECT * FROM unnest($ords, $ids, $tokens, $states, …) AS t(…)),
//!   l AS MATERIALIZED (SELECT seq, id, claim_token FROM jobs
//!                      WHERE id IN (SELECT id FROM t) AND state = 'processing'
//!                      ORDER BY id FOR UPDATE),
//!   p AS (SELECT DISTINCT ON (l.seq) … FROM l JOIN t ON t.id = l.id
//!         AND t.token = l.claim_token ORDER BY l.seq, t.ord),
//!   u AS (UPDATE jobs j SET state = CASE WHEN j.cancel_requested THEN 'cancelled'
//!                           ELSE p.state END, attempts = j.attempts + 1, …
//!         FROM p WHERE j.seq = p.seq AND j.state = 'processing' AND j.claim_token = p.token
//!         RETURNING …),
//!   o AS (DELETE FROM live_output WHERE job_seq IN (SELECT seq FROM u)),
//!   a AS (INSERT INTO job_attempts … SELECT … FROM u)
//! SELECT ord, state FROM u
//! ```
//!
//! One round trip and one commit for any batch size, where applying transitions one by one
//! took three statements per job inside a transaction. The semantics are those of applying
//! the batch in order: the guard (still `processing`, same claim token) is checked in the
//! `UPDATE`'s own `WHERE`, which PostgreSQL re-evaluates on the newest row version, so a
//! concurrent recovery makes the transition `Stale`; of two transitions of one job the
//! first whose token matches wins (`DISTINCT ON … ORDER BY ord`), the second finds the job
//! no longer `processing`. `l` locks the rows in id order, like every other multi-row
//! write of this store, so concurrent finishes and renewals never deadlock.

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Untyped};
use queuectl_store::{Timestamp, Transition, CANCELLED_WHILE_RUNNING};
use queuectl_store_sql::Finished;

/// The columns of a batch of execution transitions, as arrays for `unnest`.
#[derive(Clone, Debug, Default)]
pub(crate) struct FinishQuery<'a> {
    ords: Vec<i64>,
    ids: Vec<&'a str>,
    tokens: Vec<i64>,
    states: Vec<&'static str>,
    exit_codes: Vec<Option<i32>>,
    errors: Vec<Option<&'a str>>,
    next_run_ats: Vec<Option<i64>>,
    stdouts: Vec<&'a str>,
    stderrs: Vec<&'a str>,
    now: i64,
}

impl<'a> FinishQuery<'a> {
    /// The statement for `transitions`, or `None` when one of them does not finish an
    /// execution (those take the row-by-row path).
    pub(crate) fn new(transitions: &'a [Transition], now: Timestamp) -> Option<Self> {
        let mut q = FinishQuery {
            now: now.as_millis(),
            ..FinishQuery::default()
        };
        for (ord, t) in transitions.iter().enumerate() {
            let finished = Finished::of(&t.kind)?;
            q.ords.push(i64::try_from(ord).unwrap_or(i64::MAX));
            q.ids.push(t.id.as_str());
            q.tokens.push(t.token.0);
            q.states.push(finished.state.as_str());
            q.exit_codes.push(finished.execution.exit_code);
            q.errors.push(finished.error);
            q.next_run_ats.push(finished.next_run_at);
            q.stdouts.push(&finished.execution.output.stdout);
            q.stderrs.push(&finished.execution.output.stderr);
        }
        Some(q)
    }
}

impl QueryFragment<Pg> for FinishQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH t AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(&self.ords)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.tokens)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.states)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Integer>>, _>(&self.exit_codes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.errors)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.next_run_ats)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.stdouts)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.stderrs)?;
        out.push_sql(
            ") AS t(ord, id, token, state, exit_code, error, next_run_at, stdout, stderr)), \
             l AS MATERIALIZED (SELECT seq, id, claim_token FROM jobs \
               WHERE id IN (SELECT id FROM t) AND state = 'processing' \
               ORDER BY id FOR UPDATE), \
             p AS (SELECT DISTINCT ON (l.seq) l.seq, t.ord, t.token, t.state, t.exit_code, \
               t.error, t.next_run_at, t.stdout, t.stderr \
               FROM l JOIN t ON t.id = l.id AND t.token = l.claim_token \
               ORDER BY l.seq, t.ord), \
             u AS (UPDATE jobs j SET \
               state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE p.state END, \
               attempts = j.attempts + 1, finished_at = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", exit_code = p.exit_code, \
             last_error = CASE WHEN j.cancel_requested THEN ",
        );
        out.push_bind_param::<Text, _>(&CANCELLED_WHILE_RUNNING)?;
        out.push_sql(
            " ELSE p.error END, \
             next_run_at = CASE WHEN j.cancel_requested THEN NULL ELSE p.next_run_at END, \
             cancel_requested = FALSE, updated_at = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", lease_until = NULL, claim_token = NULL \
               FROM p WHERE j.seq = p.seq AND j.state = 'processing' \
               AND j.claim_token = p.token \
               RETURNING j.seq, j.attempts, j.started_at, p.ord, j.state AS state, \
               p.exit_code, j.last_error AS error, p.stdout, p.stderr), \
             o AS (DELETE FROM live_output WHERE job_seq IN (SELECT seq FROM u)), \
             a AS (INSERT INTO job_attempts \
               (job_seq, attempt, started_at, finished_at, exit_code, error, stdout, stderr) \
               SELECT seq, attempts, coalesce(started_at, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql("), ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", exit_code, error, NULLIF(stdout, ''), NULLIF(stderr, '') FROM u ORDER BY ord) \
             SELECT ord, state FROM u",
        );
        Ok(())
    }
}

queuectl_store_sql::statement!(FinishQuery<'_>, PgConnection, Untyped);

/// One applied transition: its index in the batch and the state it wrote.
#[derive(Debug, QueryableByName)]
pub(crate) struct Done {
    #[diesel(sql_type = BigInt)]
    pub(crate) ord: i64,
    #[diesel(sql_type = Text)]
    pub(crate) state: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use queuectl_store::prelude::*;
    use queuectl_store::{
        ClaimRequest, ClaimToken, Execution, Guarded, Job, JobId, JobOutput, JobState, NewJob,
        Timestamp, Transition, TransitionKind,
    };

    use crate::testutil::TestSchema;

    fn execution(code: i32, stdout: &str) -> Execution {
        Execution {
            exit_code: Some(code),
            output: JobOutput {
                stdout: stdout.to_owned(),
                stderr: String::new(),
            },
        }
    }

    fn t(job: &Job, kind: TransitionKind) -> Transition {
        Transition {
            id: job.id.clone(),
            token: job.claim_token.unwrap(),
            kind,
        }
    }

    /// The one-statement path applies a mixed batch exactly as one-by-one application
    /// would: missing ids and wrong tokens are stale, the first of two transitions of one
    /// job wins, each applied one writes its state, attempt, output and history.
    #[test]
    fn a_batch_of_executions_applies_in_order_with_the_guard() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let store = schema.open();
        let now = Timestamp::from_millis(1_000_000);
        let jobs: Vec<NewJob> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| {
                let mut j = NewJob::shell("true", now);
                j.id = JobId::new(*id);
                j
            })
            .collect();
        store.enqueue_many(&jobs, now).unwrap();
        let claimed = store
            .claim(&ClaimRequest {
                limit: 5,
                worker_id: "w".into(),
                now,
                lease_until: now.add(Duration::from_secs(30)),
                queues: vec![],
            })
            .unwrap();
        let [a, b, c, d, _e] = &claimed[..] else {
            panic!("claimed {claimed:?}");
        };
        let waiter = schema.open();
        assert!(!waiter.wait_for_notification(Duration::ZERO).unwrap());

        let later = now.add(Duration::from_secs(5));
        let retry_at = later.add(Duration::from_secs(2));
        let mut wrong_b = t(
            b,
            TransitionKind::Failed {
                execution: execution(1, "wrong"),
                error: "x".into(),
                retry_at,
            },
        );
        wrong_b.token = ClaimToken(wrong_b.token.0 ^ 1);
        let missing = Transition {
            id: JobId::new("zz"),
            ..t(
                a,
                TransitionKind::Completed {
                    execution: execution(0, ""),
                },
            )
        };
        let batch = [
            missing,
            t(
                a,
                TransitionKind::Completed {
                    execution: execution(0, "A"),
                },
            ),
            wrong_b,
            t(
                c,
                TransitionKind::Dead {
                    execution: execution(9, "C"),
                    error: "boom".into(),
                },
            ),
            t(
                a,
                TransitionKind::Completed {
                    execution: execution(0, "again"),
                },
            ),
            t(
                d,
                TransitionKind::Failed {
                    execution: execution(1, "D"),
                    error: "exit code 1".into(),
                    retry_at,
                },
            ),
            t(
                b,
                TransitionKind::Completed {
                    execution: execution(0, "B"),
                },
            ),
        ];
        let out = store.finish(&batch, later).unwrap();
        use Guarded::{Applied, Stale};
        assert_eq!(
            out,
            [Stale, Applied, Stale, Applied, Stale, Applied, Applied]
        );

        let rec = |id: &str| store.get_record(&JobId::new(id)).unwrap();
        let a = rec("a");
        assert_eq!(a.job.state, JobState::Completed);
        assert_eq!(a.job.attempts, 1);
        assert_eq!(a.output.unwrap().stdout, "A");
        assert_eq!(a.history.len(), 1);
        assert_eq!(a.history[0].started_at, now);
        assert_eq!(a.history[0].finished_at, later);
        assert_eq!(rec("b").job.state, JobState::Completed);
        let c = rec("c");
        assert_eq!(c.job.state, JobState::Dead);
        assert_eq!(c.job.last_error.as_deref(), Some("boom"));
        assert_eq!(c.job.exit_code, Some(9));
        assert_eq!(c.history[0].error.as_deref(), Some("boom"));
        let d = rec("d");
        assert_eq!(d.job.state, JobState::Failed);
        assert_eq!(d.job.next_run_at, Some(retry_at));
        assert_eq!(d.job.claim_token, None);
        assert_eq!(d.job.lease_until, None);
        assert_eq!(rec("e").job.state, JobState::Processing);
        // The failure made `d` claimable later: listeners are told.
        assert!(waiter
            .wait_for_notification(Duration::from_secs(30))
            .unwrap());
    }
}
