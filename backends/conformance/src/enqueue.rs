//! Cases for `enqueue`, `enqueue_many` and `get`.

use queuectl_store::{JobState, JobStore};

use crate::fixture::{new_job, T0};

/// A job enqueued is read back pending, with attempts 0 and the documented timestamps.
pub fn enqueue_then_get_round_trips<S: JobStore>(store: crate::TestStore<S>) {
    let new = new_job("echo hi");
    store.enqueue(&new, T0).expect("enqueue");
    let job = store.get(&new.id).expect("get");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.command, "echo hi");
    assert_eq!(job.created_at, T0);
    assert_eq!(job.updated_at, T0);
    assert_eq!(job.next_run_at, Some(T0));
    assert_eq!(job.claim_token, None);
}
