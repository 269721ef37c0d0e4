//! Periodic jobs (the `schedules` table), written once; compiled once per connection type
//! like `job.rs` (see the crate docs). Each public operation is one
//! [`queuectl_store::Coordination`] method, run through the store's [`Session`].

use diesel::prelude::*;
use queuectl_store::{Fired, Schedule, ScheduleFire, StoreResult, Timestamp};

use super::Conn;
use crate::row::{count_of, InsertJob, ScheduleRow};
use crate::schema::{jobs, schedules};
use crate::{Failure, Session};

/// [`Coordination::delete_schedule`](queuectl_store::Coordination::delete_schedule).
///
/// # Errors
/// Only driver failures.
pub fn delete_schedule<S: Session<Conn = Conn>>(store: &S, name: &str) -> StoreResult<bool> {
    let n = store.write(|conn| Ok(diesel::delete(schedules::table.find(name)).execute(conn)?))?;
    Ok(count_of(n) > 0)
}

/// [`Coordination::fire_schedule`](queuectl_store::Coordination::fire_schedule): the guarded
/// advance, then the job inserted with `ON CONFLICT DO NOTHING` (no conflict target, so
/// any unique index of `jobs` — the id's, or one on a unique key — turns a second insert
/// into nothing rather than an error that would roll the advance back).
///
/// # Errors
/// Only driver failures.
pub fn fire_schedule<S: Session<Conn = Conn>>(
    store: &S,
    fire: &ScheduleFire,
    now: Timestamp,
) -> StoreResult<Fired> {
    let row = fire
        .job
        .as_ref()
        .map(|job| InsertJob::from_new(job, now))
        .transpose()?;
    let fired = store.write(|conn| {
        let advanced = diesel::update(
            schedules::table
                .find(&fire.name)
                .filter(schedules::paused.eq(false))
                .filter(schedules::next_run_at.eq(fire.expected_next_run_at.as_millis())),
        )
        .set((
            schedules::next_run_at.eq(fire.next_run_at.as_millis()),
            schedules::last_run_at.eq(fire.fired_at.as_millis()),
        ))
        .execute(conn)?;
        if advanced == 0 {
            return Ok(Fired::Stale);
        }
        let Some(row) = &row else {
            return Ok(Fired::Skipped);
        };
        let inserted = diesel::insert_into(jobs::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(conn)?;
        if inserted == 0 {
            return Ok(Fired::Skipped);
        }
        S::wake(conn)?;
        Ok::<_, Failure>(Fired::Enqueued)
    })?;
    if fired == Fired::Enqueued {
        store.jobs_changed();
    }
    Ok(fired)
}

/// [`Coordination::list_schedules`](queuectl_store::Coordination::list_schedules), sorted
/// by name.
///
/// # Errors
/// Only driver failures.
pub fn list_schedules<S: Session<Conn = Conn>>(store: &S) -> StoreResult<Vec<Schedule>> {
    let rows = store.read(|conn| {
        Ok(schedules::table
            .select(ScheduleRow::as_select())
            .load(conn)?)
    })?;
    let mut all: Vec<Schedule> = rows.into_iter().map(ScheduleRow::into_schedule).collect();
    // Sorted here, not by ORDER BY: a PostgreSQL database's collation may not be byte order.
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// [`Coordination::put_schedule`](queuectl_store::Coordination::put_schedule).
///
/// # Errors
/// Only driver failures.
pub fn put_schedule<S: Session<Conn = Conn>>(store: &S, schedule: &Schedule) -> StoreResult<()> {
    let row = ScheduleRow::from_schedule(schedule);
    store.write(|conn| {
        diesel::insert_into(schedules::table)
            .values(&row)
            .on_conflict(schedules::name)
            .do_update()
            .set(&row)
            .execute(conn)?;
        Ok(())
    })
}

/// [`Coordination::set_schedule_paused`](queuectl_store::Coordination::set_schedule_paused).
///
/// # Errors
/// Only driver failures.
pub fn set_schedule_paused<S: Session<Conn = Conn>>(
    store: &S,
    name: &str,
    paused: bool,
    next_run_at: Timestamp,
) -> StoreResult<bool> {
    let n = store.write(|conn| {
        let target = schedules::table.find(name);
        Ok(if paused {
            diesel::update(target)
                .set(schedules::paused.eq(true))
                .execute(conn)?
        } else {
            diesel::update(target)
                .set((
                    schedules::paused.eq(false),
                    schedules::next_run_at.eq(next_run_at.as_millis()),
                ))
                .execute(conn)?
        })
    })?;
    Ok(count_of(n) > 0)
}
