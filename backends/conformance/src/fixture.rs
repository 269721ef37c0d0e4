//! Test fixtures: jobs in any state with consistent defaults, inserted through
//! [`Jobs::import`](queuectl_store::Jobs::import) (like River's `testfactory`), and small builders for requests.

use std::time::Duration;

use queuectl_store::{
    ClaimRequest, Execution, Job, JobId, JobOutput, JobRecord, JobState, JobStore, LeaseRef,
    NewJob, Timestamp, Transition, TransitionKind, WorkerInfo,
};

/// A fixed "now" for cases that do not care about the date.
pub const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

/// The lease length [`claim_request`] grants.
pub const LEASE: Duration = Duration::from_secs(30);

/// `T0` plus `secs` seconds.
pub fn at(secs: u64) -> Timestamp {
    T0.add(Duration::from_secs(secs))
}

/// A pending shell job due at [`T0`] with the given command.
pub fn new_job(command: &str) -> NewJob {
    NewJob::shell(command, T0)
}

/// A pending shell job with a chosen id, due at [`T0`].
pub fn new_job_with_id(id: &str) -> NewJob {
    NewJob {
        id: JobId::new(id),
        ..NewJob::shell(format!("echo {id}"), T0)
    }
}

/// A job row in `state` with defaults consistent with that state.
///
/// A `processing` job gets a worker, a start time, a lease until `T0 + LEASE` and a claim
/// token derived from its id; finished ones get `finished_at = T0`.
pub fn job_in_state(id: &str, state: JobState) -> Job {
    let claimable = state.is_claimable();
    let processing = state == JobState::Processing;
    let finished = matches!(
        state,
        JobState::Completed | JobState::Failed | JobState::Dead
    );
    Job {
        options: Default::default(),
        id: JobId::new(id),
        command: format!("echo {id}"),
        kind: "shell".to_owned(),
        state,
        attempts: u32::from(finished),
        max_retries: 3,
        priority: 0,
        queue: "default".to_owned(),
        interrupts: 0,
        created_at: T0,
        updated_at: T0,
        run_at: T0,
        next_run_at: claimable.then_some(T0),
        timeout_secs: None,
        exit_code: finished.then_some(i32::from(state != JobState::Completed)),
        last_error: matches!(state, JobState::Failed | JobState::Dead)
            .then(|| "exit code 1".to_owned()),
        worker_id: (processing || finished).then(|| "fixture-worker".to_owned()),
        started_at: (processing || finished).then_some(T0),
        finished_at: finished.then_some(T0),
        lease_until: processing.then(|| T0.add(LEASE)),
        claim_token: processing.then(|| fixture_token(id)),
        cancel_requested: false,
    }
}

/// The claim token [`job_in_state`] gives a `processing` job with this id.
pub fn fixture_token(id: &str) -> queuectl_store::ClaimToken {
    // Any stable value works; the guard compares exact tokens.
    let sum = id.bytes().fold(7_i64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(i64::from(b))
    });
    queuectl_store::ClaimToken(sum & i64::MAX)
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

/// Enqueues each job, at `T0`.
///
/// # Panics
/// If the store rejects one.
pub fn enqueue_all<S: JobStore>(store: &S, jobs: &[NewJob]) {
    for job in jobs {
        store.enqueue(job, T0).expect("fixture enqueue");
    }
}

/// A claim of up to `limit` jobs of any queue by `worker` at `now`, leased for [`LEASE`].
pub fn claim_request(worker: &str, now: Timestamp, limit: u32) -> ClaimRequest {
    ClaimRequest {
        limit,
        worker_id: worker.to_owned(),
        now,
        lease_until: now.add(LEASE),
        queues: Vec::new(),
    }
}

/// Claims exactly one job at `now` by worker `w1`.
///
/// # Panics
/// If the claim fails or returns no job.
pub fn claim_one<S: JobStore>(store: &S, now: Timestamp) -> Job {
    let mut jobs = store
        .claim(&claim_request("w1", now, 1))
        .expect("fixture claim");
    assert_eq!(jobs.len(), 1, "expected one claimable job at {now}");
    jobs.remove(0)
}

/// The claim token of a claimed job.
///
/// # Panics
/// If the job has none.
pub fn token_of(job: &Job) -> queuectl_store::ClaimToken {
    job.claim_token.expect("a claimed job has a token")
}

/// A transition of a claimed job.
///
/// # Panics
/// If the job has no claim token.
pub fn transition(job: &Job, kind: TransitionKind) -> Transition {
    Transition {
        id: job.id.clone(),
        token: token_of(job),
        kind,
    }
}

/// The lease of a claimed job.
///
/// # Panics
/// If the job has no claim token.
pub fn lease_of(job: &Job) -> LeaseRef {
    LeaseRef {
        id: job.id.clone(),
        token: token_of(job),
    }
}

/// An execution with an exit code and some output.
pub fn execution(exit_code: i32, stdout: &str, stderr: &str) -> Execution {
    Execution {
        exit_code: Some(exit_code),
        output: JobOutput {
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
        },
    }
}

/// The ids of `jobs`, as strings, in order.
pub fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

/// A worker registry entry started at `T0`.
pub fn worker(id: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.to_owned(),
        host: "host-a".to_owned(),
        pid: 4242,
        slots: 2,
        queues: vec!["default".to_owned(), "mail".to_owned()],
        started_at: T0,
        heartbeat_at: T0,
        stop_requested: false,
    }
}
