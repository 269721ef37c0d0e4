//! How many jobs a slot asks for in each claim.
//!
//! A fixed batch ([`WorkerPoolBuilder::claim_batch`]) is a tuning for queues of many short
//! jobs. By default the claim adapts instead, between 1 and `1 + prefetch` jobs:
//!
//! - **to the backlog**: it starts at 1 and doubles after every claim that came back full
//!   (there were at least that many due jobs), and falls back to 1 after one that came
//!   back short (the queue ran dry). So a slot takes more than its next job only while a
//!   backlog is proven, and a few jobs arriving at once spread over the idle slots (and
//!   the other workers) instead of queuing behind one.
//! - **to the jobs' length**: the claimed jobs run one after the other, so the ones
//!   prefetched wait for those before them. The claim is capped so that a batch runs in
//!   about [`PREFETCH_WINDOW`], at the average job time seen so far: no-op or
//!   millisecond jobs prefetch fully, jobs of a second or more are claimed one at a time,
//!   and a job never waits long in one worker while another could run it. Every held job
//!   is covered by the lease, which the worker renews until it records the outcome.
//! - **outcomes**: jobs averaging under [`GROUP_BELOW`] have their outcomes committed
//!   together with the next claim; longer ones are recorded before the next job starts,
//!   so a job that finished never looks `processing` while a long one runs after it.
//!
//! [`WorkerPoolBuilder::claim_batch`]: crate::worker::WorkerPoolBuilder::claim_batch

use std::time::Duration;

/// About how long a slot's claimed batch should take to run, at the average job time.
pub(super) const PREFETCH_WINDOW: Duration = Duration::from_millis(25);

/// Under adaptive claims, the outcomes of a batch's jobs are committed together (with the
/// next claim) only while the average job is shorter than this; otherwise each outcome is
/// recorded before the next job starts, since that job could run long.
pub(super) const GROUP_BELOW: Duration = Duration::from_millis(1);

/// The pool's claim configuration (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::worker) struct ClaimPolicy {
    /// A fixed batch size, when set.
    pub(in crate::worker) fixed: Option<u32>,
    /// Jobs a slot may claim beyond the one it starts next (adaptive claims only).
    pub(in crate::worker) prefetch: u32,
}

impl ClaimPolicy {
    /// The most jobs one claim asks for.
    pub(super) fn max(self) -> u32 {
        self.fixed
            .unwrap_or_else(|| self.prefetch.saturating_add(1))
            .max(1)
    }
}

/// One slot's running claim size.
#[derive(Debug)]
pub(super) struct ClaimSizer {
    policy: ClaimPolicy,
    /// The backlog bound: doubles on a full claim, back to 1 on a short one.
    next: u32,
    /// Average run time per job (exponentially weighted), once jobs have run.
    per_job: Option<Duration>,
}

impl ClaimSizer {
    pub(super) fn new(policy: ClaimPolicy) -> Self {
        ClaimSizer {
            policy,
            next: 1,
            per_job: None,
        }
    }

    /// How many jobs to ask for now.
    pub(super) fn limit(&self) -> u32 {
        if let Some(fixed) = self.policy.fixed {
            return fixed.max(1);
        }
        let max = self.policy.max();
        let by_time = match self.per_job {
            Some(t) if !t.is_zero() => {
                let n = PREFETCH_WINDOW.as_nanos() / t.as_nanos();
                u32::try_from(n).unwrap_or(u32::MAX).max(1)
            }
            _ => max,
        };
        self.next.min(by_time).clamp(1, max)
    }

    /// Whether a batch's outcomes may wait for each other (see [`GROUP_BELOW`]); always
    /// for a fixed batch, which is a tuning for short jobs.
    pub(super) fn groups_outcomes(&self) -> bool {
        self.policy.fixed.is_some() || self.per_job.is_some_and(|t| t < GROUP_BELOW)
    }

    /// A claim asked for `asked` jobs and got `got`.
    pub(super) fn claimed(&mut self, asked: u32, got: usize) {
        let full = u32::try_from(got).unwrap_or(u32::MAX) >= asked;
        self.next = if full {
            self.next.saturating_mul(2).min(self.policy.max())
        } else {
            1
        };
    }

    /// `jobs` claimed jobs took `elapsed` to run.
    pub(super) fn ran(&mut self, jobs: usize, elapsed: Duration) {
        let Some(each) = u32::try_from(jobs)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| elapsed / n)
        else {
            return;
        };
        self.per_job = Some(match self.per_job {
            Some(avg) => (avg + each) / 2,
            None => each,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive(prefetch: u32) -> ClaimSizer {
        ClaimSizer::new(ClaimPolicy {
            fixed: None,
            prefetch,
        })
    }

    #[test]
    fn a_proven_backlog_doubles_the_claim_up_to_the_prefetch_and_a_dry_queue_resets_it() {
        let mut s = adaptive(6);
        let mut sizes = Vec::new();
        for _ in 0..5 {
            let n = s.limit();
            sizes.push(n);
            s.claimed(n, n as usize);
        }
        assert_eq!(sizes, [1, 2, 4, 7, 7]);
        s.claimed(7, 3);
        assert_eq!(s.limit(), 1);
    }

    #[test]
    fn prefetch_zero_claims_one_at_a_time() {
        let mut s = adaptive(0);
        s.claimed(1, 1);
        s.claimed(1, 1);
        assert_eq!(s.limit(), 1);
    }

    #[test]
    fn long_jobs_are_claimed_one_at_a_time_and_short_ones_fill_the_window() {
        let mut s = adaptive(32);
        for _ in 0..6 {
            let n = s.limit();
            s.claimed(n, n as usize);
        }
        assert_eq!(s.limit(), 33);
        s.ran(1, Duration::from_secs(2));
        assert_eq!(s.limit(), 1);
        let mut s = adaptive(32);
        for _ in 0..6 {
            let n = s.limit();
            s.claimed(n, n as usize);
        }
        s.ran(10, PREFETCH_WINDOW / 2);
        assert_eq!(s.limit(), 20);
    }

    #[test]
    fn outcomes_are_grouped_only_for_jobs_known_to_be_short() {
        let mut s = adaptive(32);
        assert!(!s.groups_outcomes());
        s.ran(100, Duration::from_micros(500));
        assert!(s.groups_outcomes());
        s.ran(1, Duration::from_secs(1));
        assert!(!s.groups_outcomes());
    }

    #[test]
    fn a_fixed_batch_ignores_backlog_and_time() {
        let mut s = ClaimSizer::new(ClaimPolicy {
            fixed: Some(256),
            prefetch: 0,
        });
        s.claimed(256, 0);
        s.ran(1, Duration::from_secs(5));
        assert_eq!(s.limit(), 256);
    }
}
