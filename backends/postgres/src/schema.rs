//! Diesel table definitions, written by hand to match `migrations/postgres`.

diesel::table! {
    jobs (seq) {
        seq -> BigInt,
        id -> Text,
        command -> Text,
        kind -> Text,
        state -> Text,
        attempts -> BigInt,
        max_retries -> BigInt,
        priority -> Integer,
        queue -> Text,
        interrupts -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        run_at -> BigInt,
        next_run_at -> Nullable<BigInt>,
        timeout_secs -> Nullable<BigInt>,
        exit_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        worker_id -> Nullable<Text>,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        lease_until -> Nullable<BigInt>,
        claim_token -> Nullable<BigInt>,
    }
}

diesel::table! {
    job_output (job_seq) {
        job_seq -> BigInt,
        stdout -> Text,
        stderr -> Text,
    }
}

diesel::table! {
    job_attempts (seq) {
        seq -> BigInt,
        job_seq -> BigInt,
        attempt -> BigInt,
        started_at -> BigInt,
        finished_at -> BigInt,
        exit_code -> Nullable<Integer>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    workers (seq) {
        seq -> BigInt,
        id -> Text,
        host -> Text,
        pid -> BigInt,
        slots -> BigInt,
        queues -> Array<Text>,
        started_at -> BigInt,
        heartbeat_at -> BigInt,
        stop_requested -> Bool,
    }
}

diesel::joinable!(job_output -> jobs (job_seq));
diesel::joinable!(job_attempts -> jobs (job_seq));
diesel::allow_tables_to_appear_in_same_query!(jobs, job_output, job_attempts, settings, workers);
