//! Test fixtures: jobs in any state with consistent defaults, inserted through
//! [`JobStore::import`] (like River's `testfactory`).

use queuectl_store::{Job, JobId, JobRecord, JobState, JobStore, NewJob, Timestamp};

/// A fixed "now" for cases that do not care about the date.
pub const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

/// A pending shell job due at [`T0`] with the given command.
pub fn new_job(command: &str) -> NewJob {
    NewJob::shell(command, T0)
}

/// A job row in `state` with defaults consistent with that state.
pub fn job_in_state(id: &str, state: JobState) -> Job {
    let claimable = state.is_claimable();
    Job {
        id: JobId::new(id),
        command: format!("echo {id}"),
        kind: "shell".to_owned(),
        state,
        attempts: 0,
        max_retries: 3,
        priority: 0,
        queue: "default".to_owned(),
        interrupts: 0,
        created_at: T0,
        updated_at: T0,
        run_at: T0,
        next_run_at: claimable.then_some(T0),
        timeout_secs: None,
        exit_code: None,
        last_error: None,
        worker_id: None,
        started_at: None,
        finished_at: None,
        lease_until: None,
        claim_token: None,
    }
}

/// Inserts `job` with no output or history.
///
/// # Panics
/// If the store rejects it.
pub fn insert<S: JobStore>(store: &S, job: Job) -> Job {
    let record = JobRecord {
        job: job.clone(),
        output: None,
        history: Vec::new(),
    };
    store.import(&[record]).expect("fixture insert");
    job
}
