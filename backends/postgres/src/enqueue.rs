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
//!
//! A batch with unique keys adds `ON CONFLICT (unique_key) WHERE … DO NOTHING` and returns
//! the stored ids instead of a count; the caller looks up the holders of the skipped rows'
//! keys in the same transaction.

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
    cwds: Vec<Option<&'a str>>,
    envs: Vec<Option<String>>,
    limits: Vec<Option<String>>,
    unique_keys: Vec<Option<&'a str>>,
    depends_on: Vec<Option<String>>,
    /// Whether any row has a unique key: then rows held by their key are skipped and the
    /// statement returns the ids it stored.
    keyed: bool,
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
            q.cwds.push(r.cwd);
            q.envs.push(r.env.clone());
            q.limits.push(r.limits.clone());
            q.unique_keys.push(r.unique_key);
            q.depends_on.push(r.depends_on.clone());
            q.keyed |= r.unique_key.is_some();
        }
        q
    }

    /// The ids, in batch order (for finding which one was taken).
    pub(crate) fn ids(&self) -> &[&'a str] {
        &self.ids
    }

    /// The unique keys, in batch order.
    pub(crate) fn unique_keys(&self) -> &[Option<&'a str>] {
        &self.unique_keys
    }

    /// Whether any job has a unique key (see [`Stored`]).
    pub(crate) fn keyed(&self) -> bool {
        self.keyed
    }
}

impl QueryFragment<Pg> for EnqueueQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH ins AS (INSERT INTO jobs (id, command, kind, state, attempts, max_retries, \
               priority, queue, interrupts, created_at, updated_at, run_at, next_run_at, \
               timeout_secs, cwd, env, limits, unique_key, depends_on, unmet_parents) \
             SELECT id, command, kind, 'pending', 0, max_retries, priority, queue, 0, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", run_at, run_at, timeout_secs, cwd, env, limits, unique_key, depends_on, \
               CASE WHEN depends_on IS NULL THEN 0 ELSE 1 END \
             FROM unnest(",
        );
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
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.cwds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.envs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.limits)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.unique_keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.depends_on)?;
        out.push_sql(
            ") WITH ORDINALITY AS t(id, command, kind, max_retries, priority, queue, run_at, \
               timeout_secs, cwd, env, limits, unique_key, depends_on, ord) \
             ORDER BY ord",
        );
        if self.keyed {
            // The arbiter is the partial unique index of the migration: a row whose key a
            // job that may still run holds (or an earlier row of this batch took) is
            // skipped, waiting first for a concurrent insert of the key to commit or roll
            // back. A taken id still aborts the statement. The NOTIFY's subquery runs only
            // if a row comes back, i.e. when something was stored.
            out.push_sql(
                " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL \
                   AND state IN ('pending', 'failed', 'processing') DO NOTHING \
                 RETURNING id) \
                 SELECT id, (SELECT pg_notify('queuectl_jobs', current_schema()))::text IS NULL \
                   AS quiet FROM ins",
            );
        } else {
            out.push_sql(
                " RETURNING 1) \
                 SELECT count(*) AS inserted, \
                   (SELECT pg_notify('queuectl_jobs', current_schema()))::text IS NULL AS quiet \
                 FROM ins",
            );
        }
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

/// What the statement returns for a batch with unique keys: one row per stored job.
#[derive(Debug, QueryableByName)]
pub(crate) struct Stored {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
}

/// The jobs that may still run holding any of `keys`: (key, id).
pub(crate) fn holders(
    conn: &mut PgConnection,
    keys: &[&str],
) -> QueryResult<Vec<(String, String)>> {
    #[derive(QueryableByName)]
    struct Holder {
        #[diesel(sql_type = Text)]
        unique_key: String,
        #[diesel(sql_type = Text)]
        id: String,
    }
    let rows: Vec<Holder> = diesel::sql_query(
        "SELECT unique_key, id FROM jobs WHERE unique_key = ANY($1::text[]) \
         AND state IN ('pending', 'failed', 'processing')",
    )
    .bind::<Array<Text>, _>(keys)
    .load(conn)?;
    Ok(rows.into_iter().map(|h| (h.unique_key, h.id)).collect())
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
