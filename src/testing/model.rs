//! The reference model: checks a [`JobStore`] (and the [`Scheduler`] over it) against a
//! plain model of the contract, one op sequence at a time.
//!
//! Written for store implementations: a new store, or a decorator around one, passes if
//! every op sequence leaves it where the model says. queuectl's own proptest suite runs it
//! on every store with random sequences, and the fuzz target `scheduler_ops` with
//! sequences decoded from bytes ([`ops_from_bytes`]).
//!
//! [`run_ops`] drives a [`Scheduler`] over any store with a [`ManualClock`] through a
//! sequence of [`Op`]s (enqueue, claim, finish ok / fail / timeout, renew, advance the
//! clock, crash a worker, recover leases, `dlq retry`, cancel, a late finish under a
//! superseded token) and compares every observable effect with a plain reference model.
//! After every op it checks the invariants: no job lost or duplicated, counts conserved,
//! every job's state, attempts and interrupts as the model says, attempts within budget,
//! dead only for a reason, and no job claimed while another claim holds it.
//!
//! Store errors (e.g. injected by a fault-injecting wrapper) are allowed: the op then
//! must have changed nothing, which the next check verifies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use queuectl_store::{
    ClaimToken, Execution, Guarded, Job, JobId, JobOutput, JobState, JobStore, LeaseRef,
    StateCounts, StoreError, Timestamp,
};

use crate::scheduler::{backoff_delay, MAX_INTERRUPTS};
use crate::testing::ManualClock;
use crate::{Clock, EnqueueRequest, Error, Outcome, Scheduler, Settings};

/// The lease every claim of the model takes.
pub const MODEL_LEASE: Duration = Duration::from_secs(15);

/// The instant every model run starts at.
pub const MODEL_T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

/// One step of a model run. Indices (`pick`, `worker`) are reduced modulo whatever they
/// choose from, so any value is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Enqueue a job due `delay_secs` from now.
    Enqueue {
        /// Priority.
        priority: i8,
        /// Seconds until due.
        delay_secs: u8,
        /// Attempt budget (0 behaves as 1).
        max_retries: u8,
    },
    /// Worker `worker` claims up to `limit` jobs.
    Claim {
        /// Which of the model's workers.
        worker: u8,
        /// Batch size (0 is treated as 1).
        limit: u8,
    },
    /// A live claim's job succeeds.
    Succeed {
        /// Which live claim.
        pick: u16,
    },
    /// A live claim's job fails with an exit code.
    Fail {
        /// Which live claim.
        pick: u16,
        /// Exit code (0 is treated as 1).
        exit_code: u8,
    },
    /// A live claim's job times out (exit 124).
    Timeout {
        /// Which live claim.
        pick: u16,
    },
    /// A live claim's lease is renewed.
    Renew {
        /// Which live claim.
        pick: u16,
    },
    /// The clock moves forward.
    Advance {
        /// Milliseconds.
        millis: u32,
    },
    /// A worker dies: its claims are never finished by it.
    Crash {
        /// Which worker.
        worker: u8,
    },
    /// The recovery pass runs.
    Recover,
    /// `dlq retry` on some job (any state; only dead ones may change).
    RequeueDead {
        /// Which job.
        pick: u16,
    },
    /// `dlq retry --all`.
    RequeueAllDead,
    /// `cancel` on some job (any state; only pending and failed ones may change).
    Cancel {
        /// Which job.
        pick: u16,
    },
    /// A worker whose claim was superseded tries to finish anyway: must be stale.
    LateFinish {
        /// Which superseded claim.
        pick: u16,
    },
}

/// What a model run did, for tests that want to see coverage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Jobs enqueued.
    pub enqueued: u64,
    /// Jobs claimed (claim results summed).
    pub claimed: u64,
    /// Guarded finishes applied.
    pub finished: u64,
    /// Late finishes correctly rejected as stale.
    pub stale_rejected: u64,
    /// Jobs recovered or abandoned.
    pub recovered: u64,
    /// Ops whose store call failed (injected faults).
    pub store_errors: u64,
}

#[derive(Clone, Debug)]
struct ModelJob {
    seq: usize,
    state: JobState,
    attempts: u32,
    interrupts: u32,
    max_retries: u32,
    priority: i32,
    next_run_at: Option<Timestamp>,
    lease_until: Option<Timestamp>,
    token: Option<ClaimToken>,
    /// `cancel` was called while it was processing: its next guarded write cancels it.
    cancel_requested: bool,
}

#[derive(Clone, Debug)]
struct Held {
    job: Job,
    worker: u8,
}

struct Run<S: JobStore> {
    sched: Scheduler<S>,
    clock: Arc<ManualClock>,
    model: BTreeMap<JobId, ModelJob>,
    order: Vec<JobId>,
    held: Vec<Held>,
    orphaned: Vec<Job>,
    superseded: Vec<Job>,
    stats: RunStats,
}

/// Runs `ops` against `store` and the reference model; `Err` describes the first
/// divergence or broken invariant.
///
/// # Errors
/// A description of what diverged, with the op index.
pub fn run_ops<S: JobStore>(store: S, ops: &[Op]) -> Result<RunStats, String> {
    let clock = Arc::new(ManualClock::new(MODEL_T0));
    let mut run = Run {
        sched: Scheduler::with_clock(store, clock.clone()),
        clock,
        model: BTreeMap::new(),
        order: Vec::new(),
        held: Vec::new(),
        orphaned: Vec::new(),
        superseded: Vec::new(),
        stats: RunStats::default(),
    };
    for (i, op) in ops.iter().enumerate() {
        run.apply(op).map_err(|e| format!("op #{i} {op:?}: {e}"))?;
        run.check()
            .map_err(|e| format!("after op #{i} {op:?}: {e}"))?;
    }
    Ok(run.stats)
}

fn effective_budget(max_retries: u32) -> u32 {
    max_retries.max(1)
}

impl<S: JobStore> Run<S> {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// `Ok(Some(v))` on success, `Ok(None)` on a tolerated store error.
    fn tolerate<T>(&mut self, r: crate::Result<T>) -> Result<Option<T>, String> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Error::Store(StoreError::Busy(_) | StoreError::Backend { .. })) => {
                self.stats.store_errors += 1;
                Ok(None)
            }
            Err(e) => Err(format!("unexpected error: {e}")),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Enqueue {
                priority,
                delay_secs,
                max_retries,
            } => self.enqueue(priority, delay_secs, max_retries),
            Op::Claim { worker, limit } => self.claim(worker, limit),
            Op::Succeed { pick } => self.finish(pick, Outcome::success()),
            Op::Fail { pick, exit_code } => {
                let code = i32::from(exit_code.max(1));
                self.finish(
                    pick,
                    Outcome::Failed {
                        execution: Execution {
                            exit_code: Some(code),
                            output: JobOutput::default(),
                        },
                        error: format!("exit code {code}"),
                    },
                )
            }
            Op::Timeout { pick } => self.finish(
                pick,
                Outcome::Failed {
                    execution: Execution {
                        exit_code: Some(124),
                        output: JobOutput::default(),
                    },
                    error: "timeout after 1s".into(),
                },
            ),
            Op::Renew { pick } => self.renew(pick),
            Op::Advance { millis } => {
                self.clock.advance(Duration::from_millis(u64::from(millis)));
                Ok(())
            }
            Op::Crash { worker } => {
                let (gone, kept): (Vec<Held>, Vec<Held>) =
                    self.held.drain(..).partition(|h| h.worker == worker % 4);
                self.held = kept;
                self.orphaned.extend(gone.into_iter().map(|h| h.job));
                Ok(())
            }
            Op::Recover => self.recover(),
            Op::RequeueDead { pick } => self.requeue(pick),
            Op::RequeueAllDead => self.requeue_all(),
            Op::Cancel { pick } => self.cancel(pick),
            Op::LateFinish { pick } => self.late_finish(pick),
        }
    }

    fn enqueue(&mut self, priority: i8, delay_secs: u8, max_retries: u8) -> Result<(), String> {
        let id = JobId::new(format!(
            "j{}",
            self.stats.enqueued + self.stats.store_errors
        ));
        let run_at = self.now().add(Duration::from_secs(u64::from(delay_secs)));
        let req = EnqueueRequest {
            id: Some(id.clone()),
            command: format!("echo {id}"),
            max_retries: Some(u32::from(max_retries)),
            priority: i32::from(priority),
            run_at: Some(run_at),
            ..EnqueueRequest::default()
        };
        let r = self.sched.enqueue(req);
        if self.tolerate(r)?.is_none() {
            return Ok(());
        }
        self.stats.enqueued += 1;
        self.model.insert(
            id.clone(),
            ModelJob {
                seq: self.order.len(),
                state: JobState::Pending,
                attempts: 0,
                interrupts: 0,
                max_retries: u32::from(max_retries),
                priority: i32::from(priority),
                next_run_at: Some(run_at),
                lease_until: None,
                token: None,
                cancel_requested: false,
            },
        );
        self.order.push(id);
        Ok(())
    }

    fn claim(&mut self, worker: u8, limit: u8) -> Result<(), String> {
        let worker = worker % 4;
        let limit = u32::from(limit.max(1));
        let now = self.now();
        let mut due: Vec<(&JobId, &ModelJob)> = self
            .model
            .iter()
            .filter(|(_, m)| m.state.is_claimable() && m.next_run_at.is_some_and(|t| t <= now))
            .collect();
        due.sort_by(|(_, a), (_, b)| {
            b.priority
                .cmp(&a.priority)
                .then(a.next_run_at.cmp(&b.next_run_at))
                .then(a.seq.cmp(&b.seq))
        });
        let expected: Vec<JobId> = due
            .into_iter()
            .take(limit as usize)
            .map(|(id, _)| id.clone())
            .collect();
        let r = self
            .sched
            .claim(&format!("w{worker}"), limit, &[], MODEL_LEASE);
        let Some(jobs) = self.tolerate(r)? else {
            return Ok(());
        };
        let got: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        if got != expected {
            return Err(format!(
                "claim returned {got:?}, model expected {expected:?}"
            ));
        }
        for job in jobs {
            let m = self
                .model
                .get_mut(&job.id)
                .ok_or_else(|| format!("claimed unknown job {}", job.id))?;
            if m.state == JobState::Processing {
                return Err(format!("job {} claimed while already held", job.id));
            }
            if job.claim_token.is_none() || job.state != JobState::Processing {
                return Err(format!("claimed job {} lacks a token or state", job.id));
            }
            m.state = JobState::Processing;
            m.next_run_at = None;
            m.lease_until = Some(now.add(MODEL_LEASE));
            m.token = job.claim_token;
            self.stats.claimed += 1;
            self.held.push(Held { job, worker });
        }
        Ok(())
    }

    fn finish(&mut self, pick: u16, outcome: Outcome) -> Result<(), String> {
        if self.held.is_empty() {
            return Ok(());
        }
        let i = usize::from(pick) % self.held.len();
        let job = self.held[i].job.clone();
        let failed = matches!(outcome, Outcome::Failed { .. });
        let r = self.sched.finish(&job, outcome);
        let Some(g) = self.tolerate(r)? else {
            return Ok(());
        };
        self.held.remove(i);
        let now = self.now();
        let m = self
            .model
            .get_mut(&job.id)
            .ok_or_else(|| format!("finished unknown job {}", job.id))?;
        let live = m.state == JobState::Processing && m.token == job.claim_token;
        match (live, g) {
            (true, Guarded::Applied) => {}
            (false, Guarded::Stale) => {
                self.stats.stale_rejected += 1;
                return Ok(());
            }
            (live, g) => return Err(format!("finish of {} was {g:?}, model live={live}", job.id)),
        }
        self.stats.finished += 1;
        m.attempts += 1;
        m.token = None;
        m.lease_until = None;
        if std::mem::take(&mut m.cancel_requested) {
            // A cancel wins over whatever the execution reports.
            m.state = JobState::Cancelled;
            m.next_run_at = None;
        } else if !failed {
            m.state = JobState::Completed;
            m.next_run_at = None;
        } else if m.attempts >= effective_budget(m.max_retries) {
            m.state = JobState::Dead;
            m.next_run_at = None;
        } else {
            let d = Settings::default();
            m.state = JobState::Failed;
            m.next_run_at = Some(now.add(backoff_delay(
                d.backoff_base,
                m.attempts,
                d.backoff_max_secs,
            )));
        }
        Ok(())
    }

    fn renew(&mut self, pick: u16) -> Result<(), String> {
        if self.held.is_empty() {
            return Ok(());
        }
        let i = usize::from(pick) % self.held.len();
        let job = &self.held[i].job;
        let lease = LeaseRef {
            id: job.id.clone(),
            token: job.claim_token.unwrap_or(ClaimToken(-1)),
        };
        let id = job.id.clone();
        let token = job.claim_token;
        let r = self.sched.renew_leases(&[lease], MODEL_LEASE);
        let Some(g) = self.tolerate(r)? else {
            return Ok(());
        };
        let now = self.now();
        let m = self.model.get_mut(&id).ok_or("renewed unknown job")?;
        let live = m.state == JobState::Processing && m.token == token;
        match (live, g.first()) {
            (true, Some(Guarded::Applied)) => {
                m.lease_until = Some(now.add(MODEL_LEASE));
                Ok(())
            }
            (false, Some(Guarded::Stale)) => Ok(()),
            (live, g) => Err(format!("renew of {id} was {g:?}, model live={live}")),
        }
    }

    fn recover(&mut self) -> Result<(), String> {
        let r = self.sched.recover_expired();
        let Some(rec) = self.tolerate(r)? else {
            return Ok(());
        };
        let now = self.now();
        let mut expected: Vec<JobId> = self
            .model
            .iter()
            .filter(|(_, m)| {
                m.state == JobState::Processing && m.lease_until.is_some_and(|t| t < now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut got: Vec<JobId> = rec
            .recovered
            .iter()
            .chain(&rec.abandoned)
            .cloned()
            .collect();
        expected.sort();
        got.sort();
        if got != expected {
            return Err(format!("recovered {got:?}, model expected {expected:?}"));
        }
        for id in &got {
            let m = self.model.get_mut(id).ok_or("recovered unknown job")?;
            m.token = None;
            m.lease_until = None;
            if std::mem::take(&mut m.cancel_requested) {
                // A recovery of a job with a cancel request ends it cancelled, charged.
                m.attempts += 1;
                m.state = JobState::Cancelled;
                m.next_run_at = None;
                self.stats.recovered += 1;
                continue;
            }
            m.interrupts += 1;
            if m.interrupts >= MAX_INTERRUPTS {
                m.state = JobState::Dead;
                m.next_run_at = None;
                if !rec.abandoned.contains(id) {
                    return Err(format!("{id} should have been abandoned"));
                }
            } else {
                m.state = JobState::Pending;
                m.next_run_at = Some(now);
            }
            self.stats.recovered += 1;
        }
        // Claims on recovered jobs are superseded, whoever holds them.
        let (gone, kept): (Vec<Held>, Vec<Held>) =
            self.held.drain(..).partition(|h| got.contains(&h.job.id));
        self.held = kept;
        self.superseded.extend(gone.into_iter().map(|h| h.job));
        let (gone, kept): (Vec<Job>, Vec<Job>) =
            self.orphaned.drain(..).partition(|j| got.contains(&j.id));
        self.orphaned = kept;
        self.superseded.extend(gone);
        Ok(())
    }

    fn pick_job(&self, pick: u16) -> Option<JobId> {
        if self.order.is_empty() {
            return None;
        }
        Some(self.order[usize::from(pick) % self.order.len()].clone())
    }

    fn requeue(&mut self, pick: u16) -> Result<(), String> {
        let Some(id) = self.pick_job(pick) else {
            return Ok(());
        };
        let r = self.sched.requeue_dead(&id);
        let now = self.now();
        let m = self.model.get_mut(&id).ok_or("unknown job")?;
        match (m.state, r) {
            (JobState::Dead, Ok(job)) if job.state == JobState::Pending => {
                m.state = JobState::Pending;
                m.attempts = 0;
                m.interrupts = 0;
                m.next_run_at = Some(now);
                Ok(())
            }
            (state, Err(Error::Store(StoreError::WrongState { state: s, .. })))
                if state != JobState::Dead && s == state =>
            {
                Ok(())
            }
            (_, Err(Error::Store(StoreError::Busy(_) | StoreError::Backend { .. }))) => {
                self.stats.store_errors += 1;
                Ok(())
            }
            (state, r) => Err(format!("requeue of {id} in {state}: {r:?}")),
        }
    }

    fn requeue_all(&mut self) -> Result<(), String> {
        let r = self.sched.requeue_all_dead();
        let Some(n) = self.tolerate(r)? else {
            return Ok(());
        };
        let now = self.now();
        let mut expected = 0;
        for m in self
            .model
            .values_mut()
            .filter(|m| m.state == JobState::Dead)
        {
            m.state = JobState::Pending;
            m.attempts = 0;
            m.interrupts = 0;
            m.next_run_at = Some(now);
            expected += 1;
        }
        if n != expected {
            return Err(format!("requeued {n}, model expected {expected}"));
        }
        Ok(())
    }

    fn cancel(&mut self, pick: u16) -> Result<(), String> {
        let Some(id) = self.pick_job(pick) else {
            return Ok(());
        };
        let r = self.sched.cancel(&id);
        let m = self.model.get_mut(&id).ok_or("unknown job")?;
        match (m.state, r) {
            (JobState::Pending | JobState::Failed, Ok(job)) if job.state == JobState::Cancelled => {
                m.state = JobState::Cancelled;
                m.next_run_at = None;
                Ok(())
            }
            (JobState::Processing, Ok(job))
                if job.state == JobState::Processing && job.cancel_requested =>
            {
                m.cancel_requested = true;
                Ok(())
            }
            (state, Err(Error::Store(StoreError::WrongState { state: s, .. })))
                if !state.is_claimable() && state != JobState::Processing && s == state =>
            {
                Ok(())
            }
            (_, Err(Error::Store(StoreError::Busy(_) | StoreError::Backend { .. }))) => {
                self.stats.store_errors += 1;
                Ok(())
            }
            (state, r) => Err(format!("cancel of {id} in {state}: {r:?}")),
        }
    }

    fn late_finish(&mut self, pick: u16) -> Result<(), String> {
        if self.superseded.is_empty() {
            return Ok(());
        }
        let job = self.superseded[usize::from(pick) % self.superseded.len()].clone();
        let r = self.sched.finish(&job, Outcome::success());
        match self.tolerate(r)? {
            None => Ok(()),
            Some(Guarded::Stale) => {
                self.stats.stale_rejected += 1;
                Ok(())
            }
            Some(Guarded::Applied) => Err(format!(
                "a finish under superseded token {:?} of {} was applied",
                job.claim_token, job.id
            )),
        }
    }

    fn check(&mut self) -> Result<(), String> {
        let counts = match self.sched.store().counts() {
            Ok(c) => c,
            Err(StoreError::Busy(_) | StoreError::Backend { .. }) => {
                self.stats.store_errors += 1;
                return Ok(());
            }
            Err(e) => return Err(format!("counts: {e}")),
        };
        let mut expected = StateCounts::default();
        for m in self.model.values() {
            *expected.get_mut(m.state) += 1;
        }
        if counts != expected {
            return Err(format!("counts {counts:?}, model {expected:?}"));
        }
        if counts.total() != self.order.len() as u64 {
            return Err("jobs lost or duplicated".into());
        }
        for (id, m) in &self.model {
            let job = match self.sched.store().get(id) {
                Ok(j) => j,
                Err(StoreError::Busy(_) | StoreError::Backend { .. }) => {
                    self.stats.store_errors += 1;
                    return Ok(());
                }
                Err(e) => return Err(format!("get {id}: {e}")),
            };
            let got = (
                job.state,
                job.attempts,
                job.interrupts,
                job.claim_token,
                job.cancel_requested,
            );
            let want = (
                m.state,
                m.attempts,
                m.interrupts,
                m.token,
                m.cancel_requested,
            );
            if got != want {
                return Err(format!(
                    "{id}: (state, attempts, interrupts, token, cancel_requested) {got:?}, \
                     model {want:?}"
                ));
            }
            if m.state.is_claimable() && job.next_run_at != m.next_run_at {
                return Err(format!(
                    "{id}: next_run_at {:?}, model {:?}",
                    job.next_run_at, m.next_run_at
                ));
            }
            if job.attempts > effective_budget(job.max_retries) {
                return Err(format!("{id}: attempts {} over budget", job.attempts));
            }
            if job.state == JobState::Dead
                && job.attempts < effective_budget(job.max_retries)
                && job.interrupts < MAX_INTERRUPTS
            {
                return Err(format!("{id}: dead without a reason"));
            }
        }
        Ok(())
    }
}

/// Decodes arbitrary bytes into an op sequence (at most 256 ops), so a fuzzer's input
/// drives [`run_ops`] directly: every byte string is a valid program.
#[must_use]
pub fn ops_from_bytes(data: &[u8]) -> Vec<Op> {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut ops = Vec::new();
    while ops.len() < 256 {
        let Some(code) = next() else { break };
        let a = next().unwrap_or(0);
        let b = next().unwrap_or(0);
        let pick = u16::from_le_bytes([a, b]);
        let op = match code % 13 {
            0 => Op::Enqueue {
                priority: i8::from_le_bytes([a]) % 4,
                delay_secs: b % 40,
                max_retries: a % 5,
            },
            1 => Op::Claim {
                worker: a,
                limit: b % 6,
            },
            2 => Op::Succeed { pick },
            3 => Op::Fail { pick, exit_code: b },
            4 => Op::Timeout { pick },
            5 => Op::Renew { pick },
            6 => Op::Advance {
                millis: u32::from(pick) * 8,
            },
            7 => Op::Crash { worker: a },
            8 => Op::Recover,
            9 => Op::RequeueDead { pick },
            10 => Op::RequeueAllDead,
            11 => Op::Cancel { pick },
            _ => Op::LateFinish { pick },
        };
        ops.push(op);
    }
    ops
}
