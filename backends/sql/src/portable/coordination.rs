//! Settings and the worker registry, written once; compiled once per connection type like
//! `job.rs` (see the crate docs). Each public operation is one
//! [`queuectl_store::Coordination`] method, run through the store's [`Session`].

use diesel::prelude::*;
use diesel::upsert::excluded;
use queuectl_store::{Heartbeat, StoreResult, Timestamp, WorkerInfo};

use super::Conn;
use crate::row::{count_of, WorkerRow};
use crate::schema::{settings, workers};
use crate::Session;

// ----- schema -----

/// [`Coordination::check_schema_version`](queuectl_store::Coordination::check_schema_version),
/// given this build's migration versions: one read of Diesel's migration table.
///
/// # Errors
/// [`StoreError::NewerSchema`](queuectl_store::StoreError::NewerSchema), or driver failures.
pub fn check_schema_version<S: Session<Conn = Conn>>(
    store: &S,
    known: &[String],
) -> StoreResult<()> {
    let applied = store.read(|conn| Ok(schema_versions(conn)?))?;
    crate::version::check_versions(known, &applied)
}

/// Every migration version recorded in the store (Diesel's `__diesel_schema_migrations`).
///
/// # Errors
/// Only driver failures (the table is missing on a store that was never migrated).
pub fn schema_versions(conn: &mut Conn) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    Ok(
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect(),
    )
}

// ----- settings -----

/// [`Coordination::setting`](queuectl_store::Coordination::setting).
///
/// # Errors
/// Only driver failures.
pub fn setting<S: Session<Conn = Conn>>(store: &S, key: &str) -> StoreResult<Option<String>> {
    store.read(|conn| {
        Ok(settings::table
            .find(key)
            .select(settings::value)
            .first(conn)
            .optional()?)
    })
}

/// [`Coordination::set_setting`](queuectl_store::Coordination::set_setting).
///
/// # Errors
/// Only driver failures.
pub fn set_setting<S: Session<Conn = Conn>>(
    store: &S,
    key: &str,
    value: &str,
    now: Timestamp,
) -> StoreResult<()> {
    store.write(|conn| {
        diesel::insert_into(settings::table)
            .values((
                settings::key.eq(key),
                settings::value.eq(value),
                settings::updated_at.eq(now.as_millis()),
            ))
            .on_conflict(settings::key)
            .do_update()
            .set((
                settings::value.eq(excluded(settings::value)),
                settings::updated_at.eq(excluded(settings::updated_at)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// [`Coordination::settings`](queuectl_store::Coordination::settings), sorted by key.
///
/// # Errors
/// Only driver failures.
pub fn settings<S: Session<Conn = Conn>>(store: &S) -> StoreResult<Vec<(String, String)>> {
    let mut all: Vec<(String, String)> = store.read(|conn| {
        Ok(settings::table
            .select((settings::key, settings::value))
            .load(conn)?)
    })?;
    // Sorted here, not by ORDER BY: a PostgreSQL database's collation may not be byte order.
    all.sort();
    Ok(all)
}

// ----- worker registry -----

/// [`Coordination::deregister_worker`](queuectl_store::Coordination::deregister_worker).
///
/// # Errors
/// Only driver failures.
pub fn deregister_worker<S: Session<Conn = Conn>>(store: &S, worker_id: &str) -> StoreResult<()> {
    store.write(|conn| {
        diesel::delete(workers::table.filter(workers::id.eq(worker_id))).execute(conn)?;
        Ok(())
    })
}

/// [`Coordination::heartbeat_worker`](queuectl_store::Coordination::heartbeat_worker).
///
/// # Errors
/// Only driver failures.
pub fn heartbeat_worker<S: Session<Conn = Conn>>(
    store: &S,
    worker_id: &str,
    now: Timestamp,
) -> StoreResult<Heartbeat> {
    let stop_requested = store.write(|conn| {
        Ok(
            diesel::update(workers::table.filter(workers::id.eq(worker_id)))
                .set(workers::heartbeat_at.eq(now.as_millis()))
                .returning(workers::stop_requested)
                .get_result(conn)
                .optional()?,
        )
    })?;
    Ok(stop_requested.map_or(Heartbeat::Unregistered, Heartbeat::registered))
}

/// [`Coordination::list_workers`](queuectl_store::Coordination::list_workers), in
/// registration order.
///
/// # Errors
/// Only driver failures, or a row that does not decode.
pub fn list_workers<S: Session<Conn = Conn>>(store: &S) -> StoreResult<Vec<WorkerInfo>> {
    let rows = store.read(|conn| {
        Ok(workers::table
            .order(workers::seq.asc())
            .select(WorkerRow::as_select())
            .load(conn)?)
    })?;
    rows.into_iter().map(WorkerRow::into_info).collect()
}

/// [`Coordination::register_worker`](queuectl_store::Coordination::register_worker).
///
/// # Errors
/// Only driver failures.
pub fn register_worker<S: Session<Conn = Conn>>(store: &S, worker: &WorkerInfo) -> StoreResult<()> {
    let row = WorkerRow::from_info(worker)?;
    store.write(|conn| {
        // Re-registering replaces the entry but keeps its place in registration order.
        diesel::insert_into(workers::table)
            .values(&row)
            .on_conflict(workers::id)
            .do_update()
            .set(&row)
            .execute(conn)?;
        Ok(())
    })
}

/// [`Coordination::request_stop`](queuectl_store::Coordination::request_stop).
///
/// # Errors
/// Only driver failures.
pub fn request_stop<S: Session<Conn = Conn>>(store: &S) -> StoreResult<u64> {
    let n = store.write(|conn| {
        Ok(diesel::update(workers::table)
            .set(workers::stop_requested.eq(true))
            .execute(conn)?)
    })?;
    Ok(count_of(n))
}
