//! Diesel's view of the tables, for both dialects: `migrations/sqlite` and
//! `migrations/postgres` create the same tables with the same columns, and every column
//! has the same Diesel type in both (timestamps are 64-bit integer milliseconds, a worker's
//! queues are JSON text). Kept by hand: each store's migration tests load every table
//! through it, so a column that drifts in either dialect fails there.

diesel::table! {
    /// Every job; one row per id.
    jobs (seq) {
        /// Insertion order (SQLite: the rowid; PostgreSQL: a `BIGSERIAL`).
        seq -> BigInt,
        /// The job id.
        id -> Text,
        /// See `Job::command`.
        command -> Text,
        /// See `Job::kind`.
        kind -> Text,
        /// The state's lowercase name.
        state -> Text,
        /// See `Job::attempts`.
        attempts -> BigInt,
        /// See `Job::max_retries`.
        max_retries -> BigInt,
        /// See `Job::priority`.
        priority -> Integer,
        /// See `Job::queue`.
        queue -> Text,
        /// See `Job::interrupts`.
        interrupts -> BigInt,
        /// Milliseconds since the epoch.
        created_at -> BigInt,
        /// Milliseconds since the epoch.
        updated_at -> BigInt,
        /// Milliseconds since the epoch.
        run_at -> BigInt,
        /// Milliseconds since the epoch.
        next_run_at -> Nullable<BigInt>,
        /// Seconds.
        timeout_secs -> Nullable<BigInt>,
        /// See `Job::exit_code`.
        exit_code -> Nullable<Integer>,
        /// See `Job::last_error`.
        last_error -> Nullable<Text>,
        /// See `Job::worker_id`.
        worker_id -> Nullable<Text>,
        /// Milliseconds since the epoch.
        started_at -> Nullable<BigInt>,
        /// Milliseconds since the epoch.
        finished_at -> Nullable<BigInt>,
        /// Milliseconds since the epoch.
        lease_until -> Nullable<BigInt>,
        /// The claim's fencing token.
        claim_token -> Nullable<BigInt>,
        /// See `Job::cancel_requested`.
        cancel_requested -> Bool,
        /// See `JobOptions::cwd`.
        cwd -> Nullable<Text>,
        /// See `JobOptions::env`: a JSON object, `NULL` when empty.
        env -> Nullable<Text>,
        /// See `JobOptions::limits`: a JSON object.
        limits -> Nullable<Text>,
        /// See `JobOptions::unique_key`.
        unique_key -> Nullable<Text>,
        /// See `JobOptions::depends_on`: a JSON array, `NULL` when empty.
        depends_on -> Nullable<Text>,
        /// How many of `depends_on` have not completed yet (rows of `job_deps` naming this
        /// job); a `pending` job with any is not claimable.
        unmet_parents -> Integer,
    }
}

diesel::table! {
    /// What each running attempt has written so far (see `Jobs::put_live_output`).
    live_output (job_seq) {
        /// The job's `seq`.
        job_seq -> BigInt,
        /// The claim of the attempt it belongs to.
        claim_token -> BigInt,
        /// The tail of standard output.
        stdout -> Text,
        /// The tail of standard error.
        stderr -> Text,
        /// Bytes of standard output cut before `stdout`.
        stdout_cut -> BigInt,
        /// Bytes of standard error cut before `stderr`.
        stderr_cut -> BigInt,
        /// Milliseconds since the epoch.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// One row per finished attempt, in `seq` order.
    job_attempts (seq) {
        /// History order.
        seq -> BigInt,
        /// The job's `seq`.
        job_seq -> BigInt,
        /// 1-based attempt number.
        attempt -> BigInt,
        /// Milliseconds since the epoch.
        started_at -> BigInt,
        /// Milliseconds since the epoch.
        finished_at -> BigInt,
        /// The attempt's exit code.
        exit_code -> Nullable<Integer>,
        /// The attempt's error.
        error -> Nullable<Text>,
        /// Its standard output; `NULL` when empty.
        stdout -> Nullable<Text>,
        /// Its standard error; `NULL` when empty.
        stderr -> Nullable<Text>,
    }
}

diesel::table! {
    /// Persisted settings.
    settings (key) {
        /// The setting's name.
        key -> Text,
        /// Its raw value.
        value -> Text,
        /// Milliseconds since the epoch.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// Per-queue controls: a row per queue whose settings differ from the defaults.
    queue_settings (queue) {
        /// The queue's name.
        queue -> Text,
        /// Whether claims skip the queue.
        paused -> Bool,
        /// At most this many of its jobs `processing` at once; `NULL`: no limit.
        concurrency -> Nullable<BigInt>,
        /// Milliseconds since the epoch.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// The worker registry, in registration order.
    workers (seq) {
        /// Registration order.
        seq -> BigInt,
        /// Unique per worker process.
        id -> Text,
        /// Host id.
        host -> Text,
        /// OS process id.
        pid -> BigInt,
        /// Concurrent job slots.
        slots -> BigInt,
        /// JSON array of queue names (`[]`: every queue).
        queues -> Text,
        /// Milliseconds since the epoch.
        started_at -> BigInt,
        /// Milliseconds since the epoch.
        heartbeat_at -> BigInt,
        /// Whether a stop was requested.
        stop_requested -> Bool,
    }
}

diesel::table! {
    /// Periodic jobs, one row per name.
    schedules (name) {
        /// Unique name.
        name -> Text,
        /// The schedule as written (cron expression, `@daily`, `@every 5m`…).
        schedule -> Text,
        /// IANA time zone.
        tz -> Text,
        /// The job JSON each fire enqueues.
        job -> Text,
        /// Milliseconds since the epoch.
        next_run_at -> BigInt,
        /// Milliseconds since the epoch.
        last_run_at -> Nullable<BigInt>,
        /// Whether it is paused.
        paused -> Bool,
        /// Milliseconds since the epoch.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// One row per dependency not met yet: `child_seq` waits for the job `parent_id` to
    /// complete. Kept after its parent ended `dead`, `cancelled` or was deleted (the
    /// child, cancelled, then names it when a retry is refused); deleted when the parent
    /// completes and with the child.
    job_deps (parent_id, child_seq) {
        /// The id of the job waited for (no foreign key: it may be deleted).
        parent_id -> Text,
        /// The waiting job's `seq`.
        child_seq -> BigInt,
    }
}

diesel::joinable!(live_output -> jobs (job_seq));
diesel::joinable!(job_attempts -> jobs (job_seq));
diesel::allow_tables_to_appear_in_same_query!(
    jobs,
    live_output,
    job_attempts,
    queue_settings,
    settings,
    workers,
    schedules,
    job_deps
);
