//! `MemoryStore`: a [`JobStore`](queuectl_store::JobStore) that keeps everything in this process's memory.
//!
//! It is for tests, benches and programs that embed the queue engine and do not need jobs to
//! survive a restart. It is **not** durable and **not** shared between processes:
//! [`Capabilities::multi_process`] is `false`, and two `MemoryStore`s never see each other's
//! jobs. Threads of one process share a store through an `Arc` (or a reference).
//!
//! ```
//! use std::time::Duration;
//!
//! use queuectl_store::prelude::*;
//! use queuectl_store::{ClaimRequest, JobState, NewJob, Timestamp};
//! use queuectl_store_memory::MemoryStore;
//!
//! # fn main() -> Result<(), queuectl_store::StoreError> {
//! let store = MemoryStore::new();
//! let now = Timestamp::from_millis(1_000);
//! let job = NewJob::shell("echo hello", now);
//! store.enqueue(&job, now)?;
//!
//! let claimed = store.claim(&ClaimRequest {
//!     limit: 1,
//!     worker_id: "w1".to_owned(),
//!     now,
//!     lease_until: now.add(Duration::from_secs(15)),
//!     queues: Vec::new(),
//! })?;
//! assert_eq!(claimed.len(), 1);
//! assert_eq!(store.get(&job.id)?.state, JobState::Processing);
//! # Ok(())
//! # }
//! ```
//!
//! # Deviations and tuning
//! - Every call takes one [`parking_lot::Mutex`] for its whole duration, which makes each call
//!   trivially atomic and serialises all of them. Calls are short (no I/O), so contention only
//!   shows at very high claim rates with many threads.
//! - `parking_lot` locks do not poison, so a panic in another thread (which the store's own
//!   code never causes) cannot turn later calls into errors; no call here returns an error
//!   other than the semantic ones (`NotFound`, `Conflict`, `WrongState`).
//! - [`ChangeFeed::change_marker`] is a counter bumped by every call that changed a job, so it is
//!   always [`Marker::At`].
//! - Claim walks an index of claimable jobs in claim order and skips those not yet due or in
//!   other queues; a finish finds its job through a map of the running ones. `expired_leases`,
//!   `list`, `counts` and `prune` scan every job.
//! - Jobs sit in a vector in insertion order. A pruned job leaves a hole until holes outnumber
//!   the jobs; then `prune` squeezes them out in one pass, so memory follows the number of jobs
//!   stored, not the number ever enqueued.
//!
//! The invariants that keep the indexes right are listed on the (private) `State` type and
//! checked by its unit tests after every kind of write.
#![warn(missing_docs)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use parking_lot::Mutex;
use queuectl_store::{
    page_matches, queue_stats_of, AttemptRecord, AttemptStats, AttemptStatsBuilder,
    AttemptStatsRequest, Capabilities, ChangeFeed, ClaimRequest, ClaimToken, Coordination,
    DependencyProblem, Enqueued, Execution, Fired, Guarded, Heartbeat, Job, JobCursor, JobFilter,
    JobId, JobPage, JobPageRequest, JobRecord, JobState, Jobs, LeaseRef, LiveOutput, Marker,
    NewJob, PruneRequest, QueueChange, QueueSettings, QueueStats, Schedule, ScheduleFire,
    StateCounts, StoreError, StoreResult, Timestamp, Transition, TransitionKind, WorkerInfo,
    CANCELLED_WHILE_RUNNING,
};

/// An in-process [`JobStore`](queuectl_store::JobStore); see the [crate docs](crate).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// Insertion sequence number: the "insertion order" of the trait docs.
type Seq = u64;

/// Claim-order key of a claimable job: priority descending, then `next_run_at`, then `seq`.
type ReadyKey = (Reverse<i32>, Timestamp, Seq);

#[derive(Debug)]
struct Entry {
    job: Job,
    /// The running attempt's published output, under the claim it belongs to (boxed: most
    /// jobs never have one, and every slab slot is as large as an entry).
    live: Option<Box<(ClaimToken, LiveOutput)>>,
    history: Vec<AttemptRecord>,
    /// Parents it waits for that have not completed (the SQL stores' `unmet_parents`): a
    /// job with any is not claimable.
    unmet: u32,
}

/// Every job, in insertion order, at the index that is its [`Seq`].
///
/// Sequences are dense from 0, so a job is found by indexing a vector: one step where a
/// tree walks several cache-missing nodes. On the bench a `BTreeMap<Seq, Entry>` in its
/// place made the whole memory bench about 13 % costlier (instructions plus simulated cache
/// misses) and claim + finish of single jobs more than twice as slow, with 30 % more memory
/// at a million jobs. The price is a hole per removed job (an empty slot is as large as an
/// entry, a few hundred bytes), so [`Slab::compact`] squeezes the holes out once they
/// outnumber the jobs.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Option<Entry>>,
    /// Each slot's insertion number, strictly increasing and never renumbered (unlike the
    /// slot index): the [`JobCursor`] of [`Jobs::page`], which must survive a compaction
    /// between two pages.
    numbers: Vec<u64>,
    next_number: u64,
    /// Occupied slots.
    len: usize,
}

/// Holes tolerated before a compaction is worth its pass over every job.
const COMPACT_FROM_HOLES: usize = 4096;

impl Slab {
    fn get(&self, seq: Seq) -> Option<&Entry> {
        self.slots.get(usize::try_from(seq).ok()?)?.as_ref()
    }

    fn get_mut(&mut self, seq: Seq) -> Option<&mut Entry> {
        self.slots.get_mut(usize::try_from(seq).ok()?)?.as_mut()
    }

    /// Stores `entry` after every other job; returns its sequence number.
    fn push(&mut self, entry: Entry) -> Seq {
        let seq = self.slots.len() as Seq;
        self.slots.push(Some(entry));
        self.numbers.push(self.next_number);
        self.next_number += 1;
        self.len += 1;
        seq
    }

    /// Takes the job out, leaving a hole: the sequences of the others do not move.
    fn remove(&mut self, seq: Seq) -> Option<Entry> {
        let entry = self.slots.get_mut(usize::try_from(seq).ok()?)?.take()?;
        self.len -= 1;
        Some(entry)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Whether holes outnumber the jobs (and are many): see [`Slab::compact`].
    fn is_sparse(&self) -> bool {
        let holes = self.slots.len() - self.len;
        holes >= COMPACT_FROM_HOLES && holes > self.len
    }

    /// Drops the holes, renumbering the jobs 0, 1, 2, … in the same order. Every [`Seq`]
    /// held elsewhere is then stale: the caller rebuilds its indexes.
    fn compact(&mut self) {
        let (slots, numbers): (Vec<_>, Vec<_>) = std::mem::take(&mut self.slots)
            .into_iter()
            .zip(std::mem::take(&mut self.numbers))
            .filter(|(slot, _)| slot.is_some())
            .unzip();
        self.slots = slots;
        self.numbers = numbers;
    }

    /// Every job with its sequence, in insertion order.
    fn iter(&self) -> impl Iterator<Item = (Seq, &Entry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| Some((i as Seq, slot.as_ref()?)))
    }

    /// Every job inserted before the one numbered `end` (see [`Slab::numbers`]; all when
    /// `None`) with its number, newest first.
    fn iter_newest_first(&self, end: Option<u64>) -> impl Iterator<Item = (u64, &Entry)> {
        let cut = end.map_or(self.slots.len(), |end| {
            self.numbers.partition_point(|n| *n < end)
        });
        self.slots
            .get(..cut)
            .unwrap_or_default()
            .iter()
            .zip(&self.numbers)
            .rev()
            .filter_map(|(slot, n)| Some((*n, slot.as_ref()?)))
    }

    /// Every job, in insertion order.
    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }
}

/// Job ids are hashed on every enqueue, claim and finish, and SipHash's strength against
/// crafted keys (std's default) costs time a store inside one process does not need.
/// foldhash is hashbrown's own default hasher, already in most builds; its per-map random
/// seed still keeps crafted ids from being an easy way to degrade the maps.
type IdHasher = foldhash::fast::RandomState;

/// Everything the store holds, behind the store's one mutex.
///
/// Invariants, true whenever the mutex is free (`assert_consistent` in the tests checks
/// them after every kind of write):
/// 1. `jobs` holds every job once; their order is insertion order.
/// 2. `ids` maps the id of every job in `jobs` to its sequence, and nothing else.
/// 3. `ready` holds exactly `ready_key(entry, seq)` of every claimable job (`pending` or
///    `failed`, with a `next_run_at` and no unmet parent), due or not.
/// 4. `processing` maps the id of every `processing` job to its sequence, and nothing else.
/// 5. `keys` maps the `unique_key` of every job that holds it (`pending`, `failed` or
///    `processing`) to that job's sequence, and nothing else: the partial unique index of
///    the SQL stores.
///
/// A stored job changes only through [`State::modify`], which keeps 3 and 4; only
/// [`State::insert`] and [`State::remove`] add or drop jobs, and [`State::compact_if_sparse`]
/// renumbers them, each keeping all four. Sequences never leave the store (callers name jobs
/// by id, hold claims by token, and page with the slab's stable numbers), so renumbering is
/// invisible outside.
#[derive(Debug, Default)]
struct State {
    jobs: Slab,
    ids: HashMap<JobId, Seq, IdHasher>,
    /// A finish finds its job here, in a map as small as the number of running jobs (and so
    /// in cache), rather than in `ids`.
    processing: HashMap<JobId, Seq, IdHasher>,
    /// Claim walks this in order and stops after `limit` due jobs of its queues.
    ready: BTreeSet<ReadyKey>,
    /// Invariant 5.
    keys: HashMap<String, Seq>,
    /// Bumped by every call that changed a job: [`ChangeFeed::change_marker`].
    change_marker: u64,
    settings: BTreeMap<String, String>,
    /// Queues whose settings differ from the defaults.
    queues: BTreeMap<String, QueueSettings>,
    /// In registration order.
    workers: Vec<WorkerInfo>,
    /// Periodic jobs by name (so listed in byte order of names).
    schedules: BTreeMap<String, Schedule>,
    /// Dependencies not met yet, parent id → waiting children (the SQL stores' `job_deps`):
    /// kept after the parent ended `dead` or `cancelled` or was deleted, so that a retry of
    /// a child can be refused naming it; a child's ids leave with the child.
    deps: HashMap<JobId, Vec<JobId>>,
}

/// Adds a newly stored (or renumbered) job to the indexes of invariants 2–4.
fn index_job(
    ids: &mut HashMap<JobId, Seq, IdHasher>,
    processing: &mut HashMap<JobId, Seq, IdHasher>,
    ready: &mut BTreeSet<ReadyKey>,
    keys: &mut HashMap<String, Seq>,
    seq: Seq,
    entry: &Entry,
) {
    let job = &entry.job;
    if let Some(key) = held_key(job) {
        keys.insert(key.to_owned(), seq);
    }
    if let Some(key) = ready_key(entry, seq) {
        ready.insert(key);
    }
    if job.state == JobState::Processing {
        processing.insert(job.id.clone(), seq);
    }
    ids.insert(job.id.clone(), seq);
}

/// The unique key the job holds, if any (invariant 5).
fn held_key(job: &Job) -> Option<&str> {
    job.options
        .unique_key
        .as_deref()
        .filter(|_| job.state.holds_unique_key())
}

/// The job's place in `ready`, if it is claimable.
fn ready_key(entry: &Entry, seq: Seq) -> Option<ReadyKey> {
    let job = &entry.job;
    match (
        job.state.is_claimable() && entry.unmet == 0,
        job.next_run_at,
    ) {
        (true, Some(at)) => Some((Reverse(job.priority), at, seq)),
        _ => None,
    }
}

impl State {
    fn contains(&self, id: &JobId) -> bool {
        self.ids.contains_key(id)
    }

    fn entry(&self, id: &JobId) -> StoreResult<&Entry> {
        self.ids
            .get(id)
            .and_then(|seq| self.jobs.get(*seq))
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    fn insert(&mut self, entry: Entry) {
        let seq = self.jobs.push(entry);
        if let Some(entry) = self.jobs.get(seq) {
            index_job(
                &mut self.ids,
                &mut self.processing,
                &mut self.ready,
                &mut self.keys,
                seq,
                entry,
            );
        }
    }

    /// Squeezes out the holes removals left once they outnumber the jobs (see [`Slab`]),
    /// then rebuilds the three indexes for the new sequence numbers.
    fn compact_if_sparse(&mut self) {
        if !self.jobs.is_sparse() {
            return;
        }
        self.jobs.compact();
        self.ids.clear();
        self.ids.shrink_to(self.jobs.len);
        self.processing.clear();
        self.ready.clear();
        self.keys.clear();
        for (seq, entry) in self.jobs.iter() {
            index_job(
                &mut self.ids,
                &mut self.processing,
                &mut self.ready,
                &mut self.keys,
                seq,
                entry,
            );
        }
    }

    /// Applies `f` to the job with sequence `seq`, keeping the claim index and the
    /// processing map in step.
    fn modify<R>(&mut self, seq: Seq, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let entry = self.jobs.get_mut(seq)?;
        if let Some(key) = ready_key(entry, seq) {
            self.ready.remove(&key);
        }
        let was_processing = entry.job.state == JobState::Processing;
        if let Some(key) = held_key(&entry.job) {
            self.keys.remove(key);
        }
        let result = f(entry);
        if let Some(key) = held_key(&entry.job) {
            self.keys.insert(key.to_owned(), seq);
        }
        if let Some(key) = ready_key(entry, seq) {
            self.ready.insert(key);
        }
        match (was_processing, entry.job.state == JobState::Processing) {
            (false, true) => {
                self.processing.insert(entry.job.id.clone(), seq);
            }
            (true, false) => {
                self.processing.remove(&entry.job.id);
            }
            _ => {}
        }
        Some(result)
    }

    fn remove(&mut self, seq: Seq) {
        if let Some(entry) = self.jobs.remove(seq) {
            self.unlink_child(&entry.job);
            if let Some(key) = ready_key(&entry, seq) {
                self.ready.remove(&key);
            }
            self.ids.remove(&entry.job.id);
            self.processing.remove(&entry.job.id);
            if let Some(key) = held_key(&entry.job) {
                self.keys.remove(key);
            }
        }
    }

    /// The id of the job holding `key`, if any.
    fn key_holder(&self, key: &str) -> Option<&JobId> {
        let seq = self.keys.get(key)?;
        self.jobs.get(*seq).map(|e| &e.job.id)
    }

    /// `KeyHeld` if another job holds the key of the job at `seq`.
    fn check_key_free(&self, seq: Seq) -> StoreResult<()> {
        let Some(job) = self.jobs.get(seq).map(|e| &e.job) else {
            return Ok(());
        };
        let Some(key) = job.options.unique_key.as_deref() else {
            return Ok(());
        };
        match self.key_holder(key) {
            Some(holder) if *holder != job.id => Err(StoreError::KeyHeld {
                key: key.to_owned(),
                holder: holder.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// How many more jobs each paused (0) or limited queue admits now: its limit minus its
    /// jobs `processing`. Queues not listed admit any number.
    fn queue_room(&self) -> HashMap<&str, u64> {
        let mut room: HashMap<&str, u64> = self
            .queues
            .values()
            .filter(|q| !q.is_default())
            .map(|q| {
                let limit = if q.paused {
                    0
                } else {
                    q.concurrency.map_or(u64::MAX, u64::from)
                };
                (q.queue.as_str(), limit)
            })
            .collect();
        if room.values().any(|r| *r > 0) {
            for seq in self.processing.values() {
                if let Some(left) = self
                    .jobs
                    .get(*seq)
                    .and_then(|e| room.get_mut(e.job.queue.as_str()))
                {
                    *left = left.saturating_sub(1);
                }
            }
        }
        room
    }

    /// Links the jobs of a batch just stored (see `enqueue_batch`) to their parents, as
    /// the SQL stores' `link_new_jobs` does; on an error nothing is linked (the caller
    /// then removes the batch).
    fn link_new_jobs(&mut self, jobs: &[NewJob], outcomes: &[Enqueued]) -> StoreResult<()> {
        let position: HashMap<&JobId, usize> =
            jobs.iter().enumerate().map(|(i, j)| (&j.id, i)).collect();
        let mut links: Vec<(JobId, Vec<JobId>, Vec<JobId>)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if job.options.depends_on.is_empty() || outcomes.get(i) != Some(&Enqueued::Stored) {
                continue;
            }
            let mut parents: Vec<JobId> = Vec::new();
            let mut open: Vec<JobId> = Vec::new();
            for named in &job.options.depends_on {
                let problem = |problem| StoreError::Dependency {
                    job: job.id.clone(),
                    parent: named.clone(),
                    problem,
                };
                let parent = match position.get(named) {
                    Some(&p) if p == i => return Err(problem(DependencyProblem::Itself)),
                    Some(&p) if p > i => return Err(problem(DependencyProblem::LaterInBatch)),
                    Some(&p) => match outcomes.get(p) {
                        Some(Enqueued::Held(holder)) => holder.clone(),
                        _ => named.clone(),
                    },
                    None => named.clone(),
                };
                if parents.contains(&parent) {
                    continue;
                }
                let state = self.entry(&parent).map(|e| e.job.state).ok();
                match state {
                    None => return Err(problem(DependencyProblem::Unknown)),
                    Some(JobState::Dead) => return Err(problem(DependencyProblem::Dead)),
                    Some(JobState::Cancelled) => return Err(problem(DependencyProblem::Cancelled)),
                    Some(JobState::Completed) => {}
                    Some(_) => open.push(parent.clone()),
                }
                parents.push(parent);
            }
            links.push((job.id.clone(), parents, open));
        }
        for (child, parents, open) in links {
            let Some(&seq) = self.ids.get(&child) else {
                continue;
            };
            let unmet = u32::try_from(open.len()).unwrap_or(u32::MAX);
            self.modify(seq, |e| {
                e.unmet = unmet;
                e.job.options.depends_on = parents;
            });
            for parent in open {
                self.deps.entry(parent).or_default().push(child.clone());
            }
        }
        Ok(())
    }

    /// What the job at `seq` reaching its state means to the jobs waiting on it: see the
    /// SQL stores' `settle`.
    fn settle(&mut self, seq: Seq, now: Timestamp) {
        if self.deps.is_empty() {
            return;
        }
        let Some((id, state)) = self.jobs.get(seq).map(|e| (e.job.id.clone(), e.job.state)) else {
            return;
        };
        match state {
            JobState::Completed => {
                for child in self.deps.remove(&id).unwrap_or_default() {
                    if let Some(&c) = self.ids.get(&child) {
                        self.modify(c, |e| {
                            e.unmet = e.unmet.saturating_sub(1);
                            // Released: it has waited since now (see the SQL `met`).
                            if e.unmet == 0 && e.job.state == JobState::Pending {
                                e.job.next_run_at = e.job.next_run_at.map(|at| at.max(now));
                            }
                        });
                    }
                }
            }
            JobState::Dead => self.cascade(&id, "ended dead", now),
            JobState::Cancelled => self.cascade(&id, "was cancelled", now),
            _ => {}
        }
    }

    /// Cancels the jobs waiting on `parent`, transitively (see the SQL stores' `cascade`).
    fn cascade(&mut self, parent: &JobId, why: &str, now: Timestamp) {
        let mut frontier: Vec<(JobId, String)> = vec![(parent.clone(), why.to_owned())];
        while let Some((parent, why)) = frontier.pop() {
            let children = self.deps.get(&parent).cloned().unwrap_or_default();
            for child in children {
                let Some(&c) = self.ids.get(&child) else {
                    continue;
                };
                let cancelled = self.modify(c, |e| {
                    if e.job.state != JobState::Pending {
                        return false;
                    }
                    e.job.state = JobState::Cancelled;
                    e.job.next_run_at = None;
                    e.job.updated_at = now;
                    e.job.last_error = Some(format!("dependency {parent} {why}"));
                    true
                });
                if cancelled == Some(true) {
                    frontier.push((child, "was cancelled".to_owned()));
                }
            }
        }
    }

    /// The unmet parents of the job at `seq` for a retry (see the SQL stores' `recount`),
    /// or the error refusing it; changes nothing.
    fn recount(&self, seq: Seq) -> StoreResult<u32> {
        let Some(entry) = self.jobs.get(seq) else {
            return Ok(0);
        };
        let child = &entry.job.id;
        let mut unmet = 0;
        for parent in &entry.job.options.depends_on {
            let waits = self.deps.get(parent).is_some_and(|c| c.contains(child));
            if !waits {
                continue;
            }
            let problem = |problem| StoreError::Dependency {
                job: child.clone(),
                parent: parent.clone(),
                problem,
            };
            match self.entry(parent).map(|e| e.job.state).ok() {
                None => return Err(problem(DependencyProblem::Deleted)),
                Some(JobState::Dead) => return Err(problem(DependencyProblem::Dead)),
                Some(JobState::Cancelled) => return Err(problem(DependencyProblem::Cancelled)),
                Some(JobState::Completed) => {}
                Some(_) => unmet += 1,
            }
        }
        Ok(unmet)
    }

    /// Drops the dependencies of the job `id` (being removed) as a child.
    fn unlink_child(&mut self, job: &Job) {
        for parent in &job.options.depends_on {
            if let Some(children) = self.deps.get_mut(parent) {
                children.retain(|c| c != &job.id);
                if children.is_empty() {
                    self.deps.remove(parent);
                }
            }
        }
    }

    fn changed(&mut self) {
        self.change_marker = self.change_marker.wrapping_add(1);
    }

    /// Fails with `Conflict` on the first id that exists or repeats within `ids`.
    fn check_new_ids<'a>(&self, ids: impl Iterator<Item = &'a JobId>) -> StoreResult<()> {
        let mut seen = HashSet::with_hasher(IdHasher::default());
        for id in ids {
            if self.contains(id) || !seen.insert(id) {
                return Err(StoreError::Conflict(id.clone()));
            }
        }
        Ok(())
    }

    /// The sequence of the job `id` if it is in `state`; otherwise the matching error.
    fn seq_in_state(&self, id: &JobId, accepted: &[JobState]) -> StoreResult<Seq> {
        let seq = *self
            .ids
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let state = self
            .jobs
            .get(seq)
            .map(|e| e.job.state)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        if accepted.contains(&state) {
            Ok(seq)
        } else {
            Err(StoreError::WrongState {
                id: id.clone(),
                state,
            })
        }
    }

    /// The sequence of `id` if it is `processing` under `token`.
    fn held(&self, id: &JobId, token: ClaimToken) -> Option<Seq> {
        let seq = *self.processing.get(id)?;
        let job = &self.jobs.get(seq)?.job;
        (job.state == JobState::Processing && job.claim_token == Some(token)).then_some(seq)
    }

    /// Whether the job at `seq` has a lease that ended before `now`.
    fn lease_expired(&self, seq: Seq, now: Timestamp) -> bool {
        self.jobs
            .get(seq)
            .and_then(|e| e.job.lease_until)
            .is_some_and(|until| until < now)
    }
}

fn new_entry(new: &NewJob, now: Timestamp) -> Entry {
    Entry {
        job: Job {
            id: new.id.clone(),
            command: new.command.clone(),
            kind: new.kind.clone(),
            state: JobState::Pending,
            attempts: 0,
            max_retries: new.max_retries,
            priority: new.priority,
            queue: new.queue.clone(),
            interrupts: 0,
            created_at: now,
            updated_at: now,
            run_at: new.run_at,
            next_run_at: Some(new.run_at),
            timeout_secs: new.timeout_secs,
            exit_code: None,
            last_error: None,
            worker_id: None,
            started_at: None,
            finished_at: None,
            lease_until: None,
            claim_token: None,
            cancel_requested: false,
            options: new.options.clone(),
        },
        live: None,
        history: Vec::new(),
        unmet: 0,
    }
}

/// Writes what `kind` writes (see [`TransitionKind`]) to a job held under a valid claim;
/// a job with a cancel request ends `cancelled` whatever the kind.
fn apply_transition(entry: &mut Entry, kind: &TransitionKind, now: Timestamp) {
    let job = &mut entry.job;
    job.updated_at = now;
    job.lease_until = None;
    job.claim_token = None;
    entry.live = None;
    if std::mem::take(&mut job.cancel_requested) {
        let execution = match kind {
            TransitionKind::Completed { execution }
            | TransitionKind::Failed { execution, .. }
            | TransitionKind::Dead { execution, .. } => Some(execution),
            TransitionKind::Recovered { .. }
            | TransitionKind::Abandoned { .. }
            | TransitionKind::Released => None,
        };
        job.state = JobState::Cancelled;
        job.attempts = job.attempts.saturating_add(1);
        job.finished_at = Some(now);
        job.exit_code = execution.and_then(|e| e.exit_code);
        job.last_error = Some(CANCELLED_WHILE_RUNNING.to_owned());
        job.next_run_at = None;
        entry.history.push(AttemptRecord {
            attempt: job.attempts,
            started_at: job.started_at.unwrap_or(now),
            finished_at: now,
            exit_code: job.exit_code,
            error: Some(CANCELLED_WHILE_RUNNING.to_owned()),
            output: execution.map(|e| e.output.clone()).unwrap_or_default(),
        });
        return;
    }
    let finished = |entry: &mut Entry, execution: &Execution, error: Option<&String>| {
        let job = &mut entry.job;
        job.attempts = job.attempts.saturating_add(1);
        job.finished_at = Some(now);
        job.exit_code = execution.exit_code;
        entry.history.push(AttemptRecord {
            attempt: job.attempts,
            // A processing job always has `started_at` (claim stamps it); an imported one
            // without it gets the finish time rather than a made-up start.
            started_at: job.started_at.unwrap_or(now),
            finished_at: now,
            exit_code: execution.exit_code,
            error: error.cloned(),
            output: execution.output.clone(),
        });
    };
    match kind {
        TransitionKind::Completed { execution } => {
            job.state = JobState::Completed;
            job.last_error = None;
            job.next_run_at = None;
            finished(entry, execution, None);
        }
        TransitionKind::Failed {
            execution,
            error,
            retry_at,
        } => {
            job.state = JobState::Failed;
            job.last_error = Some(error.clone());
            job.next_run_at = Some(*retry_at);
            finished(entry, execution, Some(error));
        }
        TransitionKind::Dead { execution, error } => {
            job.state = JobState::Dead;
            job.last_error = Some(error.clone());
            job.next_run_at = None;
            finished(entry, execution, Some(error));
        }
        TransitionKind::Recovered { .. } => {
            job.state = JobState::Pending;
            job.interrupts = job.interrupts.saturating_add(1);
            job.next_run_at = Some(now);
        }
        TransitionKind::Abandoned { error, .. } => {
            job.state = JobState::Dead;
            job.interrupts = job.interrupts.saturating_add(1);
            job.last_error = Some(error.clone());
            job.next_run_at = None;
        }
        TransitionKind::Released => {
            job.state = JobState::Pending;
            job.next_run_at = Some(now);
        }
    }
}

fn requeue(job: &mut Job, now: Timestamp) {
    job.state = JobState::Pending;
    job.attempts = 0;
    job.interrupts = 0;
    job.last_error = None;
    job.run_at = now;
    job.next_run_at = Some(now);
    job.updated_at = now;
}

impl Jobs for MemoryStore {
    // ----- producer -----

    fn enqueue_batch(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<Enqueued>> {
        let mut state = self.state.lock();
        state.check_new_ids(jobs.iter().map(|j| &j.id))?;
        let mut results = Vec::with_capacity(jobs.len());
        for new in jobs {
            let holder = new
                .options
                .unique_key
                .as_deref()
                .and_then(|k| state.key_holder(k));
            if let Some(holder) = holder {
                results.push(Enqueued::Held(holder.clone()));
                continue;
            }
            state.insert(new_entry(new, now));
            results.push(Enqueued::Stored);
        }
        if let Err(e) = state.link_new_jobs(jobs, &results) {
            // All or nothing: take the batch back out.
            for (new, outcome) in jobs.iter().zip(&results) {
                if *outcome == Enqueued::Stored {
                    if let Some(&seq) = state.ids.get(&new.id) {
                        state.remove(seq);
                    }
                }
            }
            return Err(e);
        }
        if results.contains(&Enqueued::Stored) {
            state.changed();
        }
        Ok(results)
    }

    // ----- worker -----

    fn claim(&self, req: &ClaimRequest) -> StoreResult<Vec<Job>> {
        let mut state = self.state.lock();
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        // Room left in each queue that is paused (none) or limited; the store's one mutex
        // makes counting and claiming one atomic step.
        let mut room = state.queue_room();
        let picked: Vec<Seq> = state
            .ready
            .iter()
            .filter(|(_, at, _)| *at <= req.now)
            .filter(|(_, _, seq)| {
                if req.queues.is_empty() && room.is_empty() {
                    return true;
                }
                let Some(entry) = state.jobs.get(*seq) else {
                    return false;
                };
                let queue = &entry.job.queue;
                if !req.queues.is_empty() && !req.queues.contains(queue) {
                    return false;
                }
                match room.get_mut(queue.as_str()) {
                    None => true,
                    Some(0) => false,
                    Some(left) => {
                        *left -= 1;
                        true
                    }
                }
            })
            .map(|(_, _, seq)| *seq)
            .take(limit)
            .collect();
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let token = ClaimToken::random();
        let mut claimed = Vec::with_capacity(picked.len());
        for seq in picked {
            let job = state.modify(seq, |entry| {
                let job = &mut entry.job;
                job.state = JobState::Processing;
                job.worker_id = Some(req.worker_id.clone());
                job.claim_token = Some(token);
                job.lease_until = Some(req.lease_until);
                job.started_at = Some(req.now);
                job.updated_at = req.now;
                job.next_run_at = None;
                job.clone()
            });
            claimed.extend(job);
        }
        state.changed();
        Ok(claimed)
    }

    fn finish(&self, transitions: &[Transition], now: Timestamp) -> StoreResult<Vec<Guarded>> {
        let mut state = self.state.lock();
        let mut results = Vec::with_capacity(transitions.len());
        for t in transitions {
            let held = state
                .held(&t.id, t.token)
                .filter(|&seq| !t.kind.only_if_lease_expired() || state.lease_expired(seq, now));
            let applied = match held {
                Some(seq) => {
                    let applied = state
                        .modify(seq, |entry| apply_transition(entry, &t.kind, now))
                        .is_some();
                    state.settle(seq, now);
                    applied
                }
                None => false,
            };
            results.push(if applied {
                Guarded::Applied
            } else {
                Guarded::Stale
            });
        }
        if results.iter().any(|g| g.is_applied()) {
            state.changed();
        }
        Ok(results)
    }

    fn renew_leases(
        &self,
        leases: &[LeaseRef],
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Guarded>> {
        let mut state = self.state.lock();
        let mut results = Vec::with_capacity(leases.len());
        for lease in leases {
            let applied = match state.held(&lease.id, lease.token) {
                Some(seq) => state
                    .modify(seq, |entry| {
                        entry.job.lease_until = Some(lease_until);
                        entry.job.updated_at = now;
                    })
                    .is_some(),
                None => false,
            };
            results.push(if applied {
                Guarded::Applied
            } else {
                Guarded::Stale
            });
        }
        if results.iter().any(|g| g.is_applied()) {
            state.changed();
        }
        Ok(results)
    }

    fn cancel_requests(&self, leases: &[LeaseRef]) -> StoreResult<Vec<JobId>> {
        let state = self.state.lock();
        Ok(leases
            .iter()
            .filter(|lease| {
                state
                    .held(&lease.id, lease.token)
                    .and_then(|seq| state.jobs.get(seq))
                    .is_some_and(|e| e.job.cancel_requested)
            })
            .map(|lease| lease.id.clone())
            .collect())
    }

    fn put_live_output(
        &self,
        lease: &LeaseRef,
        output: &LiveOutput,
        _now: Timestamp,
    ) -> StoreResult<Guarded> {
        let mut state = self.state.lock();
        let Some(seq) = state.held(&lease.id, lease.token) else {
            return Ok(Guarded::Stale);
        };
        let capped = output.clone().capped();
        Ok(match state.jobs.get_mut(seq) {
            Some(entry) => {
                entry.live = Some(Box::new((lease.token, capped)));
                Guarded::Applied
            }
            None => Guarded::Stale,
        })
    }

    // ----- maintenance -----

    fn expired_leases(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Job>> {
        let state = self.state.lock();
        let mut expired: Vec<(Timestamp, Seq, &Job)> = state
            .jobs
            .iter()
            .filter(|(_, e)| e.job.state == JobState::Processing)
            .filter_map(|(seq, e)| match e.job.lease_until {
                Some(until) if until < now => Some((until, seq, &e.job)),
                _ => None,
            })
            .collect();
        expired.sort_by_key(|(until, seq, _)| (*until, *seq));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(expired
            .into_iter()
            .take(limit)
            .map(|(_, _, job)| job.clone())
            .collect())
    }

    fn prune_finished(&self, req: &PruneRequest) -> StoreResult<u64> {
        let mut state = self.state.lock();
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        let mut doomed: Vec<(Timestamp, Seq)> = state
            .jobs
            .iter()
            .filter(|(_, e)| {
                e.job.state.is_final()
                    && req.states.contains(&e.job.state)
                    && e.job.updated_at < req.before
            })
            .map(|(seq, e)| (e.job.updated_at, seq))
            .collect();
        // Oldest finished first, as the SQL stores' index reads them.
        doomed.sort_unstable();
        doomed.truncate(limit);
        if req.dry_run {
            return Ok(doomed.len() as u64);
        }
        for (_, seq) in &doomed {
            state.remove(*seq);
        }
        if !doomed.is_empty() {
            state.compact_if_sparse();
            state.changed();
        }
        Ok(doomed.len() as u64)
    }

    // ----- operator -----

    fn attempt_stats(&self, req: &AttemptStatsRequest) -> StoreResult<AttemptStats> {
        let state = self.state.lock();
        let mut stats = AttemptStatsBuilder::new(req);
        for entry in state.jobs.values() {
            stats.add_pickup(&entry.job);
            for attempt in &entry.history {
                stats.add_attempt(&entry.job.queue, attempt);
            }
        }
        Ok(stats.build())
    }

    fn cancel(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        let mut state = self.state.lock();
        let seq = state.seq_in_state(
            id,
            &[JobState::Pending, JobState::Failed, JobState::Processing],
        )?;
        let job = state
            .modify(seq, |entry| {
                if entry.job.state == JobState::Processing {
                    entry.job.cancel_requested = true;
                } else {
                    entry.job.state = JobState::Cancelled;
                    entry.job.next_run_at = None;
                }
                entry.job.updated_at = now;
                entry.job.clone()
            })
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        state.settle(seq, now);
        state.changed();
        Ok(job)
    }

    fn counts(&self) -> StoreResult<StateCounts> {
        let state = self.state.lock();
        let mut counts = StateCounts::default();
        for entry in state.jobs.values() {
            *counts.get_mut(entry.job.state) += 1;
        }
        Ok(counts)
    }

    fn delete(&self, id: &JobId, now: Timestamp) -> StoreResult<Job> {
        let mut state = self.state.lock();
        let accepted: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| *s != JobState::Processing)
            .collect();
        let seq = state.seq_in_state(id, &accepted)?;
        let job = state
            .jobs
            .get(seq)
            .map(|e| e.job.clone())
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        state.remove(seq);
        if job.state != JobState::Completed {
            state.cascade(&job.id, "was deleted before it completed", now);
        }
        state.compact_if_sparse();
        state.changed();
        Ok(job)
    }

    /// Reads every id: the id map is hashed, not ordered (a sorted index would cost every
    /// enqueue for a lookup only people make).
    fn find_ids_by_prefix(&self, prefix: &str, limit: u32) -> StoreResult<Vec<JobId>> {
        let state = self.state.lock();
        let mut found: Vec<&JobId> = state
            .ids
            .keys()
            .filter(|id| id.as_str().starts_with(prefix))
            .collect();
        found.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(found.into_iter().take(limit).cloned().collect())
    }

    fn get(&self, id: &JobId) -> StoreResult<Job> {
        let state = self.state.lock();
        state.entry(id).map(|e| e.job.clone())
    }

    fn live_output(&self, id: &JobId) -> StoreResult<Option<LiveOutput>> {
        let state = self.state.lock();
        let entry = state.entry(id)?;
        Ok(entry.live.as_deref().and_then(|(token, live)| {
            (entry.job.state == JobState::Processing && entry.job.claim_token == Some(*token))
                .then(|| live.clone())
        }))
    }

    fn get_record(&self, id: &JobId) -> StoreResult<JobRecord> {
        let state = self.state.lock();
        state.entry(id).map(|e| JobRecord {
            job: e.job.clone(),
            output: JobRecord::last_output(&e.history),
            history: e.history.clone(),
        })
    }

    fn import(&self, records: &[JobRecord]) -> StoreResult<()> {
        let mut state = self.state.lock();
        state.check_new_ids(records.iter().map(|r| &r.job.id))?;
        for record in records {
            state.insert(Entry {
                job: record.job.clone(),
                live: None,
                history: record.history_for_import(),
                unmet: 0,
            });
        }
        // Dependencies come back from `depends_on`, as in the SQL stores' `link_imported`.
        for record in records {
            let job = &record.job;
            let open: Vec<JobId> = job
                .options
                .depends_on
                .iter()
                .filter(|p| {
                    state
                        .entry(p)
                        .is_ok_and(|e| e.job.state != JobState::Completed)
                })
                .cloned()
                .collect();
            if open.is_empty() {
                continue;
            }
            if let Some(&seq) = state.ids.get(&job.id) {
                let unmet = u32::try_from(open.len()).unwrap_or(u32::MAX);
                state.modify(seq, |e| e.unmet = unmet);
            }
            for parent in open {
                state.deps.entry(parent).or_default().push(job.id.clone());
            }
        }
        if !records.is_empty() {
            state.changed();
        }
        Ok(())
    }

    fn list(&self, filter: &JobFilter) -> StoreResult<Vec<Job>> {
        let state = self.state.lock();
        let limit = filter
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(state
            .jobs
            .values()
            .map(|e| &e.job)
            .filter(|job| filter.state.is_none_or(|s| job.state == s))
            .filter(|job| filter.queue.as_ref().is_none_or(|q| &job.queue == q))
            .take(limit)
            .cloned()
            .collect())
    }

    fn page(&self, req: &JobPageRequest) -> StoreResult<JobPage> {
        let state = self.state.lock();
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        let mut page = JobPage::default();
        let matching = state
            .jobs
            .iter_newest_first(req.before.map(|JobCursor(n)| n))
            .filter(|(_, e)| page_matches(req, &e.job));
        let mut last = None;
        for (seq, entry) in matching {
            if page.jobs.len() == limit {
                // One more matches: the next page starts below the last job returned.
                page.next = last.map(JobCursor);
                break;
            }
            page.jobs.push(entry.job.clone());
            last = Some(seq);
        }
        Ok(page)
    }

    fn queue_stats(&self, now: Timestamp) -> StoreResult<Vec<QueueStats>> {
        let state = self.state.lock();
        let mut stats = queue_stats_of(state.jobs.values().map(|e| &e.job), now);
        // Jobs waiting on dependencies are counted apart and are not due.
        let mut waiting: HashMap<&str, u64> = HashMap::new();
        for entry in state.jobs.values() {
            if entry.unmet > 0 && entry.job.state == JobState::Pending {
                *waiting.entry(entry.job.queue.as_str()).or_default() += 1;
            }
        }
        for s in &mut stats {
            if let Some(&n) = waiting.get(s.queue.as_str()) {
                s.waiting = n;
                s.oldest_due = state
                    .jobs
                    .values()
                    .filter(|e| e.unmet == 0 && e.job.queue == s.queue)
                    .filter(|e| e.job.state == JobState::Pending)
                    .filter_map(|e| e.job.next_run_at)
                    .filter(|at| *at <= now)
                    .min();
            }
        }
        Ok(stats)
    }

    fn requeue_all_dead(&self, now: Timestamp) -> StoreResult<u64> {
        let mut state = self.state.lock();
        let dead: Vec<Seq> = state
            .jobs
            .iter()
            .filter(|(_, e)| e.job.state == JobState::Dead)
            .map(|(seq, _)| seq)
            .collect();
        // A dead job whose key another job holds (or an earlier one of these just took) stays
        // dead, as in the SQL stores.
        let mut requeued = 0;
        for seq in &dead {
            if state.check_key_free(*seq).is_ok() {
                state.modify(*seq, |entry| requeue(&mut entry.job, now));
                requeued += 1;
            }
        }
        if requeued > 0 {
            state.changed();
        }
        Ok(requeued)
    }

    fn requeue(&self, id: &JobId, from: &[JobState], now: Timestamp) -> StoreResult<Job> {
        let mut state = self.state.lock();
        let seq = state.seq_in_state(id, from)?;
        state.check_key_free(seq)?;
        let unmet = state.recount(seq)?;
        let job = state
            .modify(seq, |entry| {
                requeue(&mut entry.job, now);
                entry.unmet = unmet;
                entry.job.clone()
            })
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        state.changed();
        Ok(job)
    }

    // ----- introspection -----

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_multi_process(false)
    }
}

impl Coordination for MemoryStore {
    // ----- schema -----

    /// Nothing persists, so no other build can have migrated it.
    fn check_schema_version(&self) -> StoreResult<()> {
        Ok(())
    }

    // ----- settings -----

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.state.lock().settings.get(key).cloned())
    }

    fn set_setting(&self, key: &str, value: &str, _now: Timestamp) -> StoreResult<()> {
        self.state
            .lock()
            .settings
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        let state = self.state.lock();
        Ok(state
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    // ----- queue controls -----

    fn queue_settings(&self) -> StoreResult<Vec<QueueSettings>> {
        Ok(self.state.lock().queues.values().cloned().collect())
    }

    fn set_queue_settings(
        &self,
        queue: &str,
        change: QueueChange,
        _now: Timestamp,
    ) -> StoreResult<QueueSettings> {
        let mut state = self.state.lock();
        let mut settings = state
            .queues
            .remove(queue)
            .unwrap_or_else(|| QueueSettings::new(queue));
        change.apply(&mut settings);
        if !settings.is_default() {
            state.queues.insert(queue.to_owned(), settings.clone());
        }
        // Jobs a pause or a limit held back may be claimable now.
        state.changed();
        Ok(settings)
    }

    // ----- worker registry -----

    fn deregister_worker(&self, worker_id: &str) -> StoreResult<()> {
        self.state.lock().workers.retain(|w| w.id != worker_id);
        Ok(())
    }

    fn heartbeat_worker(&self, worker_id: &str, now: Timestamp) -> StoreResult<Heartbeat> {
        let mut state = self.state.lock();
        Ok(state.workers.iter_mut().find(|w| w.id == worker_id).map_or(
            Heartbeat::Unregistered,
            |w| {
                w.heartbeat_at = now;
                Heartbeat::registered(w.stop_requested)
            },
        ))
    }

    fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>> {
        Ok(self.state.lock().workers.clone())
    }

    fn register_worker(&self, worker: &WorkerInfo) -> StoreResult<()> {
        let mut state = self.state.lock();
        // Re-registering keeps the worker's place in registration order.
        match state.workers.iter_mut().find(|w| w.id == worker.id) {
            Some(existing) => *existing = worker.clone(),
            None => state.workers.push(worker.clone()),
        }
        Ok(())
    }

    fn request_stop(&self) -> StoreResult<u64> {
        let mut state = self.state.lock();
        for w in &mut state.workers {
            w.stop_requested = true;
        }
        Ok(state.workers.len() as u64)
    }

    // ----- schedules (periodic jobs) -----

    fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        Ok(self.state.lock().schedules.remove(name).is_some())
    }

    fn fire_schedule(&self, fire: &ScheduleFire, now: Timestamp) -> StoreResult<Fired> {
        let mut state = self.state.lock();
        let Some(schedule) = state.schedules.get_mut(&fire.name) else {
            return Ok(Fired::Stale);
        };
        if schedule.paused || schedule.next_run_at != fire.expected_next_run_at {
            return Ok(Fired::Stale);
        }
        schedule.next_run_at = fire.next_run_at;
        schedule.last_run_at = Some(fire.fired_at);
        let Some(job) = &fire.job else {
            return Ok(Fired::Skipped);
        };
        if state.ids.contains_key(&job.id) {
            return Ok(Fired::Skipped);
        }
        state.insert(new_entry(job, now));
        state.changed();
        Ok(Fired::Enqueued)
    }

    fn list_schedules(&self) -> StoreResult<Vec<Schedule>> {
        Ok(self.state.lock().schedules.values().cloned().collect())
    }

    fn put_schedule(&self, schedule: &Schedule) -> StoreResult<()> {
        self.state
            .lock()
            .schedules
            .insert(schedule.name.clone(), schedule.clone());
        Ok(())
    }

    fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Timestamp,
    ) -> StoreResult<bool> {
        let mut state = self.state.lock();
        let Some(schedule) = state.schedules.get_mut(name) else {
            return Ok(false);
        };
        schedule.paused = paused;
        if !paused {
            schedule.next_run_at = next_run_at;
        }
        Ok(true)
    }
}

impl ChangeFeed for MemoryStore {
    fn change_marker(&self) -> StoreResult<Marker> {
        Ok(Marker::At(self.state.lock().change_marker))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    /// The invariants of [`State`], whatever moved the jobs.
    fn assert_consistent(store: &MemoryStore) {
        let state = store.state.lock();
        let ids: HashMap<JobId, Seq> = state
            .jobs
            .iter()
            .map(|(seq, e)| (e.job.id.clone(), seq))
            .collect();
        assert_eq!(ids.len(), state.jobs.len(), "an id is stored twice");
        let indexed: HashMap<JobId, Seq> = state.ids.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(indexed, ids);
        let expected: BTreeSet<ReadyKey> = state
            .jobs
            .iter()
            .filter_map(|(seq, e)| ready_key(e, seq))
            .collect();
        assert_eq!(state.ready, expected);
        let processing: HashMap<JobId, Seq> = state
            .jobs
            .iter()
            .filter(|(_, e)| e.job.state == JobState::Processing)
            .map(|(seq, e)| (e.job.id.clone(), seq))
            .collect();
        let indexed: HashMap<JobId, Seq> = state
            .processing
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(indexed, processing);
        let keys: HashMap<String, Seq> = state
            .jobs
            .iter()
            .filter_map(|(seq, e)| held_key(&e.job).map(|k| (k.to_owned(), seq)))
            .collect();
        assert_eq!(state.keys, keys);
    }

    #[test]
    fn claim_index_follows_every_kind_of_write() {
        let store = MemoryStore::new();
        let t = |s: u64| Timestamp::from_millis(0).add(Duration::from_secs(s));
        let jobs: Vec<NewJob> = (0..6)
            .map(|i| NewJob {
                id: JobId::new(format!("j{i}")),
                priority: i % 3,
                ..NewJob::shell("true", t(u64::try_from(i).unwrap()))
            })
            .collect();
        store.enqueue_many(&jobs, t(0)).unwrap();
        assert_consistent(&store);

        let req = |now| ClaimRequest {
            limit: 3,
            worker_id: "w".to_owned(),
            now,
            lease_until: t(100),
            queues: Vec::new(),
        };
        let claimed = store.claim(&req(t(10))).unwrap();
        assert_consistent(&store);
        let kinds = [
            TransitionKind::Failed {
                execution: Execution::default(),
                error: "e".to_owned(),
                retry_at: t(50),
            },
            TransitionKind::Dead {
                execution: Execution::default(),
                error: "e".to_owned(),
            },
            TransitionKind::Recovered {
                only_if_expired: false,
            },
        ];
        let transitions: Vec<Transition> = claimed
            .iter()
            .zip(kinds)
            .map(|(job, kind)| Transition {
                id: job.id.clone(),
                token: job.claim_token.unwrap(),
                kind,
            })
            .collect();
        let results = store.finish(&transitions, t(20)).unwrap();
        assert!(results.iter().all(|g| g.is_applied()));
        assert_consistent(&store);

        store.requeue_all_dead(t(21)).unwrap();
        assert_consistent(&store);
        let pending = store
            .list(&JobFilter {
                state: Some(JobState::Pending),
                ..JobFilter::default()
            })
            .unwrap();
        store.cancel(&pending[0].id, t(22)).unwrap();
        assert_consistent(&store);
        assert!(store.prune(t(23), 10).unwrap() > 0);
        assert_consistent(&store);
        let record = store.get_record(&pending[1].id).unwrap();
        store
            .import(&[JobRecord {
                job: Job {
                    id: JobId::new("imported"),
                    ..record.job
                },
                ..record
            }])
            .unwrap();
        assert_consistent(&store);
        while !store.claim(&req(t(60))).unwrap().is_empty() {}
        assert_consistent(&store);
        assert!(store.state.lock().ready.is_empty());
    }

    /// Pruning most of a large store gives the slab's holes back: the jobs are renumbered
    /// in the same order, every index follows, and page cursors keep their meaning.
    #[test]
    fn pruning_compacts_the_slab_keeping_order_and_indexes() {
        let store = MemoryStore::new();
        let t = |s: u64| Timestamp::from_millis(0).add(Duration::from_secs(s));
        let n = 3 * COMPACT_FROM_HOLES;
        let jobs: Vec<NewJob> = (0..n)
            .map(|i| NewJob {
                id: JobId::new(format!("j{i}")),
                ..NewJob::shell("true", t(0))
            })
            .collect();
        store.enqueue_many(&jobs, t(0)).unwrap();
        let req = |limit: usize, now| ClaimRequest {
            limit: u32::try_from(limit).unwrap(),
            worker_id: "w".to_owned(),
            now,
            lease_until: t(100),
            queues: Vec::new(),
        };
        // Complete all but every tenth job, leave one of those processing.
        let claimed = store.claim(&req(n, t(1))).unwrap();
        let done: Vec<Transition> = claimed
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 != 0)
            .map(|(_, job)| Transition {
                id: job.id.clone(),
                token: job.claim_token.unwrap(),
                kind: TransitionKind::Completed {
                    execution: Execution::default(),
                },
            })
            .collect();
        store.finish(&done, t(2)).unwrap();
        let released: Vec<Transition> = claimed
            .iter()
            .step_by(10)
            .skip(1)
            .map(|job| Transition {
                id: job.id.clone(),
                token: job.claim_token.unwrap(),
                kind: TransitionKind::Released,
            })
            .collect();
        store.finish(&released, t(2)).unwrap();
        assert_eq!(store.state.lock().jobs.slots.len(), n);

        // A page read before the compaction goes on where it stopped after it.
        let first_page = store
            .page(&JobPageRequest {
                limit: 15,
                ..JobPageRequest::default()
            })
            .unwrap();
        assert_eq!(first_page.jobs[14].id.as_str(), format!("j{}", n - 15));

        assert_eq!(store.prune(t(3), u32::MAX).unwrap(), done.len() as u64);
        let second_page = store
            .page(&JobPageRequest {
                before: first_page.next,
                limit: 2,
                ..JobPageRequest::default()
            })
            .unwrap();
        let ids: Vec<&str> = second_page.jobs.iter().map(|j| j.id.as_str()).collect();
        // The next older survivors of the prune (every tenth job) below j{n-15}.
        let a = (n - 16) / 10 * 10;
        let b = a - 10;
        assert_eq!(ids, [format!("j{a}"), format!("j{b}")]);
        let kept = n - done.len();
        assert_eq!(store.state.lock().jobs.slots.len(), kept, "not compacted");
        assert_eq!(store.state.lock().jobs.len(), kept);
        assert_consistent(&store);
        let ids: Vec<String> = store
            .list(&JobFilter::default())
            .unwrap()
            .into_iter()
            .map(|j| j.id.as_str().to_owned())
            .collect();
        let expected: Vec<String> = (0..n).step_by(10).map(|i| format!("j{i}")).collect();
        assert_eq!(ids, expected, "insertion order survives the renumbering");

        // The processing job still finishes under its claim; the released ones claim in order.
        let first = &claimed[0];
        let results = store
            .finish(
                &[Transition {
                    id: first.id.clone(),
                    token: first.claim_token.unwrap(),
                    kind: TransitionKind::Completed {
                        execution: Execution::default(),
                    },
                }],
                t(4),
            )
            .unwrap();
        assert!(results[0].is_applied());
        let next = store.claim(&req(2, t(10))).unwrap();
        assert_eq!(next[0].id.as_str(), "j10");
        assert_eq!(next[1].id.as_str(), "j20");
        store
            .enqueue(
                &NewJob {
                    id: JobId::new("new"),
                    ..NewJob::shell("true", t(5))
                },
                t(5),
            )
            .unwrap();
        assert_consistent(&store);
        assert_eq!(
            store.get(&JobId::new("new")).unwrap().state,
            JobState::Pending
        );
    }
}
