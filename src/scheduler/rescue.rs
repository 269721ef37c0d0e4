//! Recovery policy: what happens to a job whose worker was lost.
//!
//! A lost worker's job goes back to `pending` without charging an attempt (its command may
//! not have finished), unless it has been interrupted so often that running it again looks
//! like the cause rather than the victim: then it is dead-lettered.

use queuectl_store::{Job, Transition, TransitionKind};

/// After this many interrupts a job is dead (docs/CLI.md, "States": a job recovered 5 times
/// is dead).
pub(crate) const MAX_INTERRUPTS: u32 = 5;

/// The guarded transition that recovers `job` (which must carry its claim token).
///
/// `only_if_expired` is for a recovery decided because the lease looked expired: the store
/// then applies it only if the lease is still expired at write time, so an owner that
/// renewed meanwhile keeps its job. A worker known to be dead is recovered without it.
///
/// Returns `None` for a job without a token (not `processing`): nothing to recover.
#[must_use]
pub(crate) fn recovery_transition(job: &Job, only_if_expired: bool) -> Option<Transition> {
    let token = job.claim_token?;
    let interrupts = job.interrupts.saturating_add(1);
    let kind = if interrupts >= MAX_INTERRUPTS {
        TransitionKind::Abandoned {
            error: format!(
                "interrupted too often: its worker was lost {interrupts} times while it ran"
            ),
            only_if_expired,
        }
    } else {
        TransitionKind::Recovered { only_if_expired }
    };
    Some(Transition {
        id: job.id.clone(),
        token,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuectl_store::{ClaimToken, JobId, JobState, Timestamp};

    fn processing(interrupts: u32) -> Job {
        Job {
            options: Default::default(),
            id: JobId::new("j"),
            command: "true".into(),
            kind: "shell".into(),
            state: JobState::Processing,
            attempts: 1,
            max_retries: 3,
            priority: 0,
            queue: "default".into(),
            interrupts,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            run_at: Timestamp::EPOCH,
            next_run_at: None,
            timeout_secs: None,
            exit_code: None,
            last_error: None,
            worker_id: Some("w".into()),
            started_at: Some(Timestamp::EPOCH),
            finished_at: None,
            lease_until: Some(Timestamp::EPOCH),
            claim_token: Some(ClaimToken(7)),
            cancel_requested: false,
        }
    }

    #[test]
    fn first_four_interrupts_recover_the_fifth_abandons() {
        for guard in [false, true] {
            for i in 0..4 {
                let t = recovery_transition(&processing(i), guard);
                assert_eq!(
                    t.map(|t| t.kind),
                    Some(TransitionKind::Recovered {
                        only_if_expired: guard
                    }),
                    "at {i}"
                );
            }
            let t = recovery_transition(&processing(4), guard);
            assert!(matches!(
                t.map(|t| t.kind),
                Some(TransitionKind::Abandoned { error, only_if_expired })
                    if error.contains("interrupted too often") && only_if_expired == guard
            ));
        }
    }

    #[test]
    fn a_job_without_a_token_is_left_alone() {
        let mut j = processing(0);
        j.claim_token = None;
        assert_eq!(recovery_transition(&j, true), None);
    }
}
