//! The operator's writes on single jobs and on finished history, written once for both
//! dialects (compiled per connection type like `job.rs`): `retry` ([`requeue`]), `delete`
//! ([`delete`]), `prune` / `dlq purge` / retention ([`prune_finished`]) and id-prefix
//! lookup ([`find_ids_by_prefix`]).

use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Text};
use queuectl_store::{Job, JobId, JobState, PruneRequest, StoreResult, Timestamp};

use super::job::{check_key_free, not_applicable, requeued};
use super::Conn;
use crate::row::{count_of, limit_of, JobRow};
use crate::schema::jobs;
use crate::Session;

/// The backend of [`Conn`].
type Db = <Conn as Connection>::Backend;

/// [`Jobs::requeue`](queuectl_store::Jobs::requeue): one guarded `UPDATE … WHERE id = ?
/// AND state IN (from) RETURNING *`.
///
/// # Errors
/// `NotFound`, or `WrongState` naming the job's state.
pub fn requeue<S: Session<Conn = Conn>>(
    store: &S,
    id: &JobId,
    from: &[JobState],
    now: Timestamp,
) -> StoreResult<Job> {
    let from: Vec<&'static str> = from.iter().map(|s| s.as_str()).collect();
    let row = store.write(|conn| {
        // A job whose unique key another active job holds stays where it is (KeyHeld).
        check_key_free(conn, id)?;
        super::deps::lock_parents_of(conn, id.as_str())?;
        let row = diesel::update(
            jobs::table
                .filter(jobs::id.eq(id.as_str()))
                .filter(jobs::state.eq_any(&from)),
        )
        .set(requeued(now))
        .returning(JobRow::as_returning())
        .get_result(conn)
        .optional()?;
        let row = row.ok_or_else(|| not_applicable(conn, id))?;
        // A dependant waits again for its parents still running, or the retry is refused
        // (rolling the update back) naming a parent that is dead, cancelled or was deleted
        // unfinished.
        super::deps::recount(conn, row.seq, id.as_str())?;
        S::wake(conn)?;
        Ok(row)
    })?;
    store.jobs_changed();
    row.into_job()
}

/// [`Jobs::delete`](queuectl_store::Jobs::delete): `DELETE … WHERE id = ? AND state <>
/// 'processing' RETURNING *`; output and history go with the job (`ON DELETE CASCADE`).
///
/// # Errors
/// `NotFound`, or `WrongState` for a `processing` job.
pub fn delete<S: Session<Conn = Conn>>(store: &S, id: &JobId, now: Timestamp) -> StoreResult<Job> {
    let row = store.write(|conn| {
        let row = diesel::delete(
            jobs::table
                .filter(jobs::id.eq(id.as_str()))
                .filter(jobs::state.ne(JobState::Processing.as_str())),
        )
        .returning(JobRow::as_returning())
        .get_result(conn)
        .optional()?;
        let row = row.ok_or_else(|| not_applicable(conn, id))?;
        // A job deleted before it completed cancels the jobs waiting on it, transitively.
        if row.state != JobState::Completed.as_str() {
            super::deps::cascade(conn, id.as_str(), "was deleted before it completed", now)?;
        }
        Ok(row)
    })?;
    store.jobs_changed();
    row.into_job()
}

/// [`Jobs::find_ids_by_prefix`](queuectl_store::Jobs::find_ids_by_prefix): a range scan of
/// the id index, `id >= prefix AND id < successor(prefix)`, in byte order. A range needs no
/// escaping (`%`, `_` and `\` are plain bytes in it) and, unlike `LIKE` or `GLOB` with a
/// bound pattern, is an index range for every planner and every prepared plan.
///
/// # Errors
/// Only driver failures.
pub fn find_ids_by_prefix<S: Session<Conn = Conn>>(
    store: &S,
    prefix: &str,
    limit: u32,
) -> StoreResult<Vec<JobId>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let high = successor(prefix);
    let ids: Vec<String> = store.read(|conn| {
        let query = IdsByPrefix {
            low: prefix,
            high: high.as_deref(),
            limit: limit_of(limit),
        };
        Ok(query.load(conn)?)
    })?;
    Ok(ids.into_iter().map(JobId::new).collect())
}

/// The least string greater than every string that starts with `prefix`, or `None` when
/// there is none (`prefix` is empty or all `char::MAX`). UTF-8 byte order is code point
/// order, so bumping the last code point that can be bumped (dropping those after it)
/// gives it for byte-wise comparison.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `SELECT id FROM jobs WHERE ID >= $low [AND ID < $high] ORDER BY ID LIMIT $limit`, with
/// `ID` the dialect's byte-ordered id ([`super::ID_BYTES`]: SQLite's `id` compares with
/// `BINARY`, PostgreSQL's needs `COLLATE "C"` and has an index on that expression).
#[derive(Debug)]
struct IdsByPrefix<'a> {
    low: &'a str,
    high: Option<&'a str>,
    limit: i64,
}

impl QueryFragment<Db> for IdsByPrefix<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT id FROM jobs WHERE ");
        out.push_sql(super::ID_BYTES);
        out.push_sql(" >= ");
        out.push_bind_param::<Text, _>(&self.low)?;
        if let Some(high) = &self.high {
            out.push_sql(" AND ");
            out.push_sql(super::ID_BYTES);
            out.push_sql(" < ");
            out.push_bind_param::<Text, _>(high)?;
        }
        out.push_sql(" ORDER BY ");
        out.push_sql(super::ID_BYTES);
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        Ok(())
    }
}

crate::statement!(IdsByPrefix<'_>, Conn, Text);

/// [`Jobs::prune_finished`](queuectl_store::Jobs::prune_finished): one `DELETE` of up to
/// `limit` rows (or one `COUNT` for a dry run), oldest finished first.
///
/// # Errors
/// Only driver failures.
pub fn prune_finished<S: Session<Conn = Conn>>(store: &S, req: &PruneRequest) -> StoreResult<u64> {
    let states: Vec<&'static str> = JobState::FINAL
        .iter()
        .filter(|s| req.states.contains(s))
        .map(|s| s.as_str())
        .collect();
    if states.is_empty() || req.limit == 0 {
        return Ok(0);
    }
    let query = |count_only| PruneQuery {
        states: &states,
        before: req.before.as_millis(),
        limit: limit_of(req.limit),
        count_only,
    };
    if req.dry_run {
        let n: i64 = store.read(|conn| Ok(query(true).get_result(conn)?))?;
        return Ok(u64::try_from(n).unwrap_or(0));
    }
    let n = store.write(|conn| Ok(query(false).execute(conn)?))?;
    if n > 0 {
        store.jobs_changed();
    }
    Ok(count_of(n))
}

/// The prune statement. Its condition starts with the literal `state IN ('completed',
/// 'dead', 'cancelled')` of the partial index of finished jobs (SQLite `jobs_finished`,
/// PostgreSQL `jobs_prune_idx`, both on `(updated_at, seq)`): a planner can use a partial
/// index only when the query repeats its predicate, which bound values cannot prove. So
/// the rows are read in the index's order and the cost is the rows deleted, not the
/// history kept. The table is named through the dialect's `JOBS_BY_FINISH`: without
/// statistics SQLite's planner prefers `jobs_state` and a sort over every finished row of
/// the state, so SQLite names the index.
///
/// The `DELETE` picks its rows in a subquery and repeats the condition outside it:
/// PostgreSQL re-checks that on a row a concurrent requeue changed after the subquery's
/// snapshot, so a job that just left a final state is never deleted (SQLite's write lock
/// rules the race out).
#[derive(Debug)]
struct PruneQuery<'a> {
    states: &'a [&'static str],
    before: i64,
    limit: i64,
    count_only: bool,
}

impl PruneQuery<'_> {
    fn condition<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("state IN ('completed', 'dead', 'cancelled') AND state IN (");
        for (i, state) in self.states.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_bind_param::<Text, _>(state)?;
        }
        out.push_sql(") AND updated_at < ");
        out.push_bind_param::<BigInt, _>(&self.before)
    }
}

impl QueryFragment<Db> for PruneQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        if self.count_only {
            out.push_sql("SELECT COUNT(*) FROM (SELECT 1 FROM ");
            out.push_sql(super::JOBS_BY_FINISH);
            out.push_sql(" WHERE ");
            self.condition(&mut out)?;
            out.push_sql(" LIMIT ");
            out.push_bind_param::<BigInt, _>(&self.limit)?;
            out.push_sql(") AS doomed");
        } else {
            out.push_sql("DELETE FROM jobs WHERE seq IN (SELECT seq FROM ");
            out.push_sql(super::JOBS_BY_FINISH);
            out.push_sql(" WHERE ");
            self.condition(&mut out)?;
            out.push_sql(" ORDER BY updated_at, seq LIMIT ");
            out.push_bind_param::<BigInt, _>(&self.limit)?;
            out.push_sql(") AND ");
            self.condition(&mut out)?;
        }
        Ok(())
    }
}

crate::statement!(PruneQuery<'_>, Conn, BigInt);

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_is_the_least_string_above_every_extension() {
        assert_eq!(successor("abc").as_deref(), Some("abd"));
        assert_eq!(successor("a%").as_deref(), Some("a&"));
        assert_eq!(successor("").as_deref(), None);
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        for ext in ["", "\u{10FFFF}\u{10FFFF}", "zzz", "\u{0}"] {
            let s = format!("ab{ext}");
            assert!(s.as_str() < "ac" && s.as_str() >= "ab", "{s:?}");
        }
    }
}
