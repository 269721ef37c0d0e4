//! The shared schema against a database; compiled once per connection type like `job.rs`.

use diesel::prelude::*;

use super::Conn;
use crate::row::{AttemptRow, JobRow, LiveRow, QueueSettingsRow, ScheduleRow, WorkerRow};
use crate::schema::{
    job_attempts, jobs, live_output, queue_settings, schedules, settings, workers,
};

/// Reads every table through [`crate::schema`] and [`crate::row`]: fails if the dialect's
/// migrations left a table or column that the shared schema names missing, or of another
/// type. The stores' migration tests run it on a freshly migrated database.
///
/// # Errors
/// The driver's error for the first table that does not match.
pub fn check_schema(conn: &mut Conn) -> QueryResult<()> {
    jobs::table.select(JobRow::as_select()).load(conn)?;
    live_output::table
        .select((
            live_output::job_seq,
            LiveRow::as_select(),
            live_output::updated_at,
        ))
        .load::<(i64, LiveRow, i64)>(conn)?;
    job_attempts::table
        .select((
            job_attempts::seq,
            job_attempts::job_seq,
            AttemptRow::as_select(),
        ))
        .load::<(i64, i64, AttemptRow)>(conn)?;
    settings::table
        .select((settings::key, settings::value, settings::updated_at))
        .load::<(String, String, i64)>(conn)?;
    queue_settings::table
        .select(QueueSettingsRow::as_select())
        .load(conn)?;
    workers::table
        .select((workers::seq, WorkerRow::as_select()))
        .load::<(i64, WorkerRow)>(conn)?;
    schedules::table
        .select(ScheduleRow::as_select())
        .load(conn)?;
    Ok(())
}
