//! Queue controls and the per-queue overview, written once; compiled once per connection
//! type like `job.rs` (see the crate docs).
//!
//! The public operations are [`queuectl_store::Coordination::queue_settings`],
//! [`queuectl_store::Coordination::set_queue_settings`] and
//! [`queuectl_store::Jobs::queue_stats`]; the rest are the pieces both dialects' claims
//! share when a queue is paused or limited (see [`crate::ClaimPlan`]).

use std::collections::{BTreeMap, HashMap};

use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::upsert::excluded;
use queuectl_store::{
    JobState, QueueChange, QueueSettings, QueueStats, StateCounts, StoreResult, Timestamp,
};

use super::Conn;
use crate::row::{state_from_db, QueueSettingsRow};
use crate::schema::{jobs, queue_settings};
use crate::Session;

/// The backend of [`Conn`].
type Db = <Conn as Connection>::Backend;

// ----- queue controls -----

/// [`Coordination::queue_settings`](queuectl_store::Coordination::queue_settings), sorted
/// by name.
///
/// # Errors
/// Only driver failures, or a row that does not decode.
pub fn queue_settings<S: Session<Conn = Conn>>(store: &S) -> StoreResult<Vec<QueueSettings>> {
    let rows = store.read(|conn| Ok(load_queue_settings(conn)?))?;
    let mut all = rows
        .into_iter()
        .map(QueueSettingsRow::into_settings)
        .collect::<StoreResult<Vec<_>>>()?;
    // Sorted here, not by ORDER BY: a PostgreSQL database's collation may not be byte order.
    all.sort_by(|a, b| a.queue.cmp(&b.queue));
    Ok(all)
}

/// Every stored row of `queue_settings`, in no particular order: for the claims, which
/// read it inside their own transaction.
///
/// # Errors
/// Only driver failures.
pub fn load_queue_settings(conn: &mut Conn) -> QueryResult<Vec<QueueSettingsRow>> {
    queue_settings::table
        .select(QueueSettingsRow::as_select())
        .load(conn)
}

/// [`Coordination::set_queue_settings`](queuectl_store::Coordination::set_queue_settings):
/// one upsert that writes only the changed column, so two changes of different settings
/// at once both hold, then a delete if the row is back to the defaults; one transaction,
/// which wakes idle workers (a resumed queue, or a raised limit, may have claimable jobs).
///
/// # Errors
/// Only driver failures.
pub fn set_queue_settings<S: Session<Conn = Conn>>(
    store: &S,
    queue: &str,
    change: QueueChange,
    now: Timestamp,
) -> StoreResult<QueueSettings> {
    let mut fresh = QueueSettings::new(queue);
    change.apply(&mut fresh);
    let row = QueueSettingsRow::from_settings(&fresh, now);
    let settings = store.write(|conn| {
        let upsert = diesel::insert_into(queue_settings::table)
            .values(&row)
            .on_conflict(queue_settings::queue)
            .do_update();
        let stored: QueueSettingsRow = match change {
            QueueChange::Paused(_) => upsert
                .set((
                    queue_settings::paused.eq(excluded(queue_settings::paused)),
                    queue_settings::updated_at.eq(excluded(queue_settings::updated_at)),
                ))
                .returning(QueueSettingsRow::as_returning())
                .get_result(conn)?,
            QueueChange::Concurrency(_) => upsert
                .set((
                    queue_settings::concurrency.eq(excluded(queue_settings::concurrency)),
                    queue_settings::updated_at.eq(excluded(queue_settings::updated_at)),
                ))
                .returning(QueueSettingsRow::as_returning())
                .get_result(conn)?,
        };
        let settings = stored.into_settings()?;
        if settings.is_default() {
            diesel::delete(queue_settings::table.find(queue)).execute(conn)?;
        }
        S::wake(conn)?;
        Ok(settings)
    })?;
    store.jobs_changed();
    Ok(settings)
}

/// How many jobs of each of `queues` are `processing`, as of this statement. Queues with
/// none are left out. Reads only `processing` rows (through the state index), so its cost
/// follows the number of running jobs.
///
/// # Errors
/// Only driver failures.
pub fn processing_per_queue(
    conn: &mut Conn,
    queues: &[String],
) -> QueryResult<HashMap<String, u64>> {
    if queues.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = jobs::table
        .filter(jobs::state.eq(JobState::Processing.as_str()))
        .filter(jobs::queue.eq_any(queues))
        .group_by(jobs::queue)
        .select((jobs::queue, count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(q, n)| (q, u64::try_from(n).unwrap_or(0)))
        .collect())
}

// ----- overview -----

/// [`Jobs::queue_stats`](queuectl_store::Jobs::queue_stats): one aggregate query over
/// every job (see [`QueueStatsQuery`]), sorted by queue name in Rust (byte order, whatever
/// the database's collation).
///
/// # Errors
/// Only driver failures, or a state that does not decode.
pub fn queue_stats<S: Session<Conn = Conn>>(
    store: &S,
    now: Timestamp,
) -> StoreResult<Vec<QueueStats>> {
    let rows: Vec<QueueStateRow> = store.read(|conn| {
        Ok(QueueStatsQuery {
            now: now.as_millis(),
        }
        .load(conn)?)
    })?;
    let mut stats: BTreeMap<String, QueueStats> = BTreeMap::new();
    for row in rows {
        let state = state_from_db(&row.state)?;
        let entry = stats
            .entry(row.queue.clone())
            .or_insert_with(|| QueueStats {
                queue: row.queue,
                counts: StateCounts::default(),
                oldest_due: None,
                waiting: 0,
            });
        *entry.counts.get_mut(state) += u64::try_from(row.n).unwrap_or(0);
        if state == JobState::Pending {
            entry.waiting += u64::try_from(row.waiting).unwrap_or(0);
        }
        if let Some(due) = row.oldest_due.map(Timestamp::from_millis) {
            entry.oldest_due = Some(entry.oldest_due.map_or(due, |o| o.min(due)));
        }
    }
    Ok(stats.into_values().collect())
}

/// `SELECT queue, state, count(*), min(<next_run_at of a due pending job>) FROM jobs GROUP
/// BY queue, state`: one row per queue and state, in one pass over the jobs.
#[derive(Debug)]
pub struct QueueStatsQuery {
    now: i64,
}

impl QueryFragment<Db> for QueueStatsQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql(
            "SELECT queue, state, count(*) AS n, \
             sum(CASE WHEN unmet_parents > 0 THEN 1 ELSE 0 END) AS waiting, \
             min(CASE WHEN state = 'pending' AND unmet_parents = 0 AND next_run_at <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" THEN next_run_at END) AS oldest_due FROM jobs GROUP BY queue, state");
        Ok(())
    }
}

crate::statement!(QueueStatsQuery, Conn, diesel::sql_types::Untyped);

/// One row of [`QueueStatsQuery`].
#[derive(Debug, QueryableByName)]
struct QueueStateRow {
    #[diesel(sql_type = Text)]
    queue: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest_due: Option<i64>,
}
