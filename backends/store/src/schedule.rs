//! Periodic jobs as the store keeps them: [`Schedule`] (one row per name) and the guarded
//! fire ([`ScheduleFire`] → [`Fired`]).
//!
//! The store knows no cron syntax and no time zone: `schedule`, `tz` and `job` are text the
//! caller validated, and `next_run_at` is an instant the caller computed. What the store
//! guarantees is the exactly-once part: [`crate::Coordination::fire_schedule`] advances
//! `next_run_at` only from the value the caller read, and inserts the fire's job only if no
//! job has its id, both in one transaction.

use crate::{NewJob, Timestamp};

/// One periodic job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Unique name; the fired jobs' ids start with it (`NAME@<time>`).
    pub name: String,
    /// The schedule as the user wrote it (a 5-field cron expression, `@daily`, `@every 5m`…).
    pub schedule: String,
    /// IANA time zone the expression is read in (`UTC` by default).
    pub tz: String,
    /// The job JSON each fire enqueues, as the user wrote it.
    pub job: String,
    /// The next time to fire; due once it is `<= now`.
    pub next_run_at: Timestamp,
    /// The scheduled time of the last fire, `None` before the first.
    pub last_run_at: Option<Timestamp>,
    /// A paused schedule does not fire.
    pub paused: bool,
    /// When it was added (or last replaced); `@every D` counts from it.
    pub created_at: Timestamp,
}

/// One fire of a schedule: advance it and enqueue its job, or do nothing when another
/// worker fired it first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleFire {
    /// The schedule's name.
    pub name: String,
    /// The `next_run_at` the caller read: the fire applies only if it is still stored (and
    /// the schedule is not paused), so of several workers reading the same row one wins.
    pub expected_next_run_at: Timestamp,
    /// The scheduled time being fired (stored as `last_run_at`).
    pub fired_at: Timestamp,
    /// The schedule's next time after this fire.
    pub next_run_at: Timestamp,
    /// The job to enqueue, with its id `NAME@<fired_at>`; `None` advances the schedule
    /// without a job (its JSON no longer parses).
    pub job: Option<NewJob>,
}

/// What [`crate::Coordination::fire_schedule`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fired {
    /// The schedule advanced and its job was inserted.
    Enqueued,
    /// The schedule advanced but no job was inserted: one with its id (or, where the store
    /// enforces unique keys, its unique key) exists already, or the fire carried no job.
    Skipped,
    /// Nothing changed: the schedule is gone, paused, or its `next_run_at` is no longer the
    /// one the caller read (another worker fired it, or it was replaced).
    Stale,
}
