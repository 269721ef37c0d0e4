//! Enqueueing: any batch of new jobs in one statement, with its wake-up.
//!
//! ```sql
//! WITH ins AS (
//!     INSERT INTO jobs (…)
//!     SELECT … FROM unnest($ids, $commands, …) WITH ORDINALITY AS t(…, ord)
//!     ORDER BY ord
//!     RETURNING 1)
//! SELECT count(*) AS inserted,
//!        (SELECT pg_notify('queuectl_jobs', current_schema()))::text IS NULL AS quiet
//! FROM ins
//! ```
//!
//! The columns travel as one array each, so the text is the same for every batch size
//! (prepared once per connection) and no batch runs into PostgreSQL's 65535 bind
//! parameters. One statement is one transaction: a taken id aborts it with a unique
//! violation and nothing is stored, and the `NOTIFY` is sent exactly when the rows commit.
//! `ORDER BY ord` makes `seq` follow the batch order.

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Untyped};

use queuectl_store_sql::row::InsertJob;

/// New `pending` jobs as column arrays.
#[derive(Clone, Debug, Default)]
pub(crate) struct EnqueueQuery<'a> {
    ids: Vec<&'a str>,
    commands: Vec<&'a str>,
    kinds: Vec<&'a str>,
    max_retries: Vec<i64>,
    priorities: Vec<i32>,
    queues: Vec<&'a str>,
    run_ats: Vec<i64>,
    timeouts: Vec<Option<i64>>,
    now: i64,
}

impl<'a> EnqueueQuery<'a> {
    /// The statement inserting `rows` (as built by [`InsertJob::from_new`]).
    pub(crate) fn new(rows: &[InsertJob<'a>], now: i64) -> Self {
        let mut q = EnqueueQuery {
            now,
            ..EnqueueQuery::default()
        };
        for r in rows {
            q.ids.push(r.id);
            q.commands.push(r.command);
            q.kinds.push(r.kind);
            q.max_retries.push(r.max_retries);
            q.priorities.push(r.priority);
            q.queues.push(r.queue);
            q.run_ats.push(r.run_at);
            q.timeouts.push(r.timeout_secs);
        }
        q
    }

    /// The ids, in batch order (for finding which one was taken).
    pub(crate) fn ids(&self) -> &[&'a str] {
        &self.ids
    }
}

impl QueryFragment<Pg> for EnqueueQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH ins AS (INSERT INTO jobs (id, command, kind, state, attempts, max_retries, \
               priority, queue, interrupts, created_at, updated_at, run_at, next_run_at, \
               timeout_secs) \
             SELECT id, command, kind, 'pending', 0, max_retries, priority, queue, 0, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", run_at, run_at, timeout_secs FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.commands)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.max_retries)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.priorities)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.queues)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.run_ats)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.timeouts)?;
        out.push_sql(
            ") WITH ORDINALITY AS t(id, command, kind, max_retries, priority, queue, run_at, \
               timeout_secs, ord) \
             ORDER BY ord RETURNING 1) \
             SELECT count(*) AS inserted, \
               (SELECT pg_notify('queuectl_jobs', current_schema()))::text IS NULL AS quiet \
             FROM ins",
        );
        Ok(())
    }
}

queuectl_store_sql::statement!(EnqueueQuery<'_>, PgConnection, Untyped);

/// What the statement returns.
#[derive(Debug, QueryableByName)]
pub(crate) struct Enqueued {
    #[diesel(sql_type = BigInt)]
    pub(crate) inserted: i64,
}

/// The first of `ids` (in batch order) that a job already has, if any.
pub(crate) fn first_taken(conn: &mut PgConnection, ids: &[&str]) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = Text)]
        id: String,
    }
    let taken: Option<Taken> = diesel::sql_query(
        "SELECT t.id FROM unnest($1::text[]) WITH ORDINALITY AS t(id, ord) \
         JOIN jobs j ON j.id = t.id ORDER BY t.ord LIMIT 1",
    )
    .bind::<Array<Text>, _>(ids)
    .get_result(conn)
    .optional()?;
    Ok(taken.map(|t| t.id))
}
