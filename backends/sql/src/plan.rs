//! [`ClaimPlan`]: how a claim obeys the queue controls, the part both dialects' claims
//! share (which queues need care, how much room each limited queue has left, and putting
//! the candidates of several picks back in claim order).
//!
//! A claim first reads `queue_settings` (a row exists only for a paused or limited queue).
//! With no row the dialect's plain claim runs unchanged. Otherwise it picks candidates in
//! separate statements: up to `limit` due jobs of the queues without a row, and for each
//! limited queue the claim serves, up to the room that queue has left (its limit minus its
//! jobs `processing`, counted under the claim's lock). [`first_in_claim_order`] keeps the
//! `limit` best of them in the one order of [`queuectl_store::Jobs::claim`], so a limited or
//! paused queue never holds up the others and never jumps ahead of them. How the count and
//! the claim are made atomic is the dialect's: SQLite holds the file's write lock for the
//! whole claim; PostgreSQL locks the limited queues' rows first (see its `claim.rs`).

use std::collections::HashMap;

use diesel::sql_types::{BigInt, Integer};
use diesel::QueryableByName;
use queuectl_store::{ClaimRequest, QueueSettings};

/// What the stored queue settings mean for one claim; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimPlan {
    /// The unpaused limited queues the claim serves, with their limits, sorted by name (the
    /// order PostgreSQL locks them in, so two claimers never wait on each other in a cycle).
    pub limited: Vec<(String, u32)>,
}

impl ClaimPlan {
    /// The plan for `req` under `settings` (every stored row); `None` when there is none,
    /// and the plain claim applies.
    #[must_use]
    pub fn new(settings: &[QueueSettings], req: &ClaimRequest) -> Option<Self> {
        if settings.iter().all(QueueSettings::is_default) {
            return None;
        }
        let mut limited: Vec<(String, u32)> = settings
            .iter()
            .filter(|s| s.is_limited())
            .filter(|s| req.queues.is_empty() || req.queues.contains(&s.queue))
            .filter_map(|s| Some((s.queue.clone(), s.concurrency?)))
            .collect();
        limited.sort();
        Some(ClaimPlan { limited })
    }

    /// The limited queues' names, in [`ClaimPlan::limited`] order.
    #[must_use]
    pub fn limited_names(&self) -> Vec<String> {
        self.limited.iter().map(|(q, _)| q.clone()).collect()
    }

    /// How many jobs to pick from each limited queue, given how many of its jobs are
    /// `processing` now: its limit minus those, at most `limit`; queues with no room left
    /// are left out.
    #[must_use]
    pub fn rooms(&self, processing: &HashMap<String, u64>, limit: u32) -> Vec<(String, i64)> {
        self.limited
            .iter()
            .filter_map(|(queue, max)| {
                let running = processing.get(queue).copied().unwrap_or(0);
                let room = u64::from(*max)
                    .saturating_sub(running)
                    .min(u64::from(limit));
                (room > 0).then(|| (queue.clone(), i64::try_from(room).unwrap_or(0)))
            })
            .collect()
    }
}

/// A due job a claim may take, with its claim-order key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, QueryableByName)]
pub struct Candidate {
    /// Insertion order.
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    /// Higher first.
    #[diesel(sql_type = Integer)]
    pub priority: i32,
    /// Earlier first.
    #[diesel(sql_type = BigInt)]
    pub next_run_at: i64,
}

/// The first `limit` candidates in claim order (priority descending, then `next_run_at`,
/// then insertion order), in that order.
#[must_use]
pub fn first_in_claim_order(mut candidates: Vec<Candidate>, limit: u32) -> Vec<Candidate> {
    candidates.sort_by_key(|c| (std::cmp::Reverse(c.priority), c.next_run_at, c.seq));
    candidates.dedup_by_key(|c| c.seq);
    candidates.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    candidates
}

#[cfg(test)]
mod tests {
    use queuectl_store::Timestamp;

    use super::*;

    fn req(queues: &[&str]) -> ClaimRequest {
        ClaimRequest {
            limit: 10,
            worker_id: "w".to_owned(),
            now: Timestamp::from_millis(0),
            lease_until: Timestamp::from_millis(0),
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        }
    }

    fn settings(queue: &str, paused: bool, concurrency: Option<u32>) -> QueueSettings {
        QueueSettings {
            queue: queue.to_owned(),
            paused,
            concurrency,
        }
    }

    #[test]
    fn no_settings_means_the_plain_claim() {
        assert_eq!(ClaimPlan::new(&[], &req(&[])), None);
        assert_eq!(
            ClaimPlan::new(&[settings("a", false, None)], &req(&[])),
            None
        );
    }

    #[test]
    fn the_plan_lists_the_served_unpaused_limited_queues_by_name() {
        let all = [
            settings("z", false, Some(2)),
            settings("paused", true, Some(1)),
            settings("a", false, Some(5)),
            settings("p", true, None),
        ];
        let plan = ClaimPlan::new(&all, &req(&[])).expect("plan");
        assert_eq!(plan.limited, [("a".to_owned(), 5), ("z".to_owned(), 2)]);
        let plan = ClaimPlan::new(&all, &req(&["z", "other"])).expect("plan");
        assert_eq!(plan.limited, [("z".to_owned(), 2)]);
        let plan = ClaimPlan::new(&all, &req(&["p"])).expect("plan");
        assert!(plan.limited.is_empty());
    }

    #[test]
    fn rooms_subtract_running_jobs_and_cap_at_the_claim_limit() {
        let plan = ClaimPlan {
            limited: vec![("a".into(), 5), ("b".into(), 2), ("c".into(), 100)],
        };
        let running = HashMap::from([("a".to_owned(), 3), ("b".to_owned(), 7)]);
        assert_eq!(
            plan.rooms(&running, 10),
            [("a".to_owned(), 2), ("c".to_owned(), 10)]
        );
    }

    #[test]
    fn candidates_merge_in_claim_order() {
        let c = |seq, priority, next_run_at| Candidate {
            seq,
            priority,
            next_run_at,
        };
        let merged = first_in_claim_order(
            vec![c(1, 0, 5), c(2, 1, 9), c(3, 0, 5), c(4, 0, 1), c(2, 1, 9)],
            3,
        );
        assert_eq!(merged, [c(2, 1, 9), c(4, 0, 1), c(1, 0, 5)]);
    }
}
