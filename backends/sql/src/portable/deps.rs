//! Dependencies (contract v2, "Dependencies"), written once for both dialects: each
//! function runs inside the caller's write transaction, next to the transition it follows,
//! so a parent's transition and what it does to its children commit together.
//!
//! The model: a child that waits on parents which have not completed has one `job_deps`
//! row per such parent and their count in `jobs.unmet_parents`; the claim index
//! `jobs_claim` holds only jobs with `unmet_parents = 0`, so a blocked job costs the claim
//! nothing. Then:
//!
//! - [`link_new_jobs`] (after an enqueue's insert): checks each new job's parents and
//!   writes its rows and count; a parent already `completed` is met at once.
//! - [`settle`] (after a finish or a cancel): a parent that `completed` deletes its rows
//!   and decrements its children; one that ended `dead` or `cancelled` cancels its
//!   waiting children, transitively ([`cascade`]). It costs one indexed probe of
//!   `job_deps` per call when none of the jobs has dependants.
//! - [`cascade`] (after a delete of a job that had not completed), as above.
//! - [`recount`] (after a retry): refuses a child whose parent is `dead`, `cancelled` or
//!   deleted unfinished, and otherwise makes it wait again for the parents still running.
//!
//! A parent's rows outlive its death (they name it when a retry is refused) and go with
//! the child (`ON DELETE CASCADE`).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use queuectl_store::{DependencyProblem, Enqueued, JobId, JobState, NewJob, StoreError, Timestamp};

use super::Conn;
use crate::schema::{job_deps, jobs};
use crate::Failure;

/// Ids per `IN (…)` list: far below both dialects' bound-variable limits.
const CHUNK: usize = 500;

/// Records the dependencies of the jobs `enqueue_batch` just inserted (`outcomes[i]` says
/// what became of `jobs[i]`). A parent named by an earlier job of the batch that was held
/// by its unique key stands for the job holding the key. Fails, so that the caller's
/// transaction rolls the whole batch back, on a parent that does not exist, is `dead` or
/// `cancelled`, is the job itself or comes later in the batch.
///
/// # Errors
/// [`StoreError::Dependency`], or driver failures.
pub fn link_new_jobs(
    conn: &mut Conn,
    new_jobs: &[NewJob],
    outcomes: &[Enqueued],
) -> Result<bool, Failure> {
    if new_jobs.iter().all(|j| j.options.depends_on.is_empty()) {
        return Ok(false);
    }
    let position: HashMap<&str, usize> = new_jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();
    // Each waiting child with its parents, after substitution, without repeats.
    let mut children: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, job) in new_jobs.iter().enumerate() {
        if job.options.depends_on.is_empty() || outcomes.get(i) != Some(&Enqueued::Stored) {
            continue;
        }
        let mut parents: Vec<String> = Vec::new();
        for parent in &job.options.depends_on {
            let problem = |problem| StoreError::Dependency {
                job: job.id.clone(),
                parent: parent.clone(),
                problem,
            };
            let id = match position.get(parent.as_str()) {
                Some(&p) if p == i => return Err(problem(DependencyProblem::Itself).into()),
                Some(&p) if p > i => return Err(problem(DependencyProblem::LaterInBatch).into()),
                Some(&p) => match outcomes.get(p) {
                    Some(Enqueued::Held(holder)) => holder.as_str().to_owned(),
                    _ => parent.as_str().to_owned(),
                },
                None => parent.as_str().to_owned(),
            };
            if !parents.contains(&id) {
                parents.push(id);
            }
        }
        children.push((i, parents));
    }
    if children.is_empty() {
        return Ok(false);
    }

    let wanted: Vec<&str> = children
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(String::as_str))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut states: HashMap<String, String> = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(CHUNK) {
        states.extend(super::parent_states(conn, chunk)?);
    }
    let child_ids: Vec<&str> = children
        .iter()
        .filter_map(|(i, _)| new_jobs.get(*i).map(|j| j.id.as_str()))
        .collect();
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(child_ids.len());
    for chunk in child_ids.chunks(CHUNK) {
        seqs.extend(
            jobs::table
                .filter(jobs::id.eq_any(chunk))
                .select((jobs::id, jobs::seq))
                .load::<(String, i64)>(conn)?,
        );
    }

    let mut edges: Vec<(String, i64)> = Vec::new();
    let mut waiting: HashMap<i32, Vec<i64>> = HashMap::new();
    for (i, parents) in &children {
        let Some(job) = new_jobs.get(*i) else {
            continue;
        };
        let Some(&seq) = seqs.get(job.id.as_str()) else {
            return Err(StoreError::Corrupt {
                what: format!("job {} was inserted but cannot be read back", job.id),
            }
            .into());
        };
        let mut unmet = 0i32;
        for parent in parents {
            let problem = |problem| StoreError::Dependency {
                job: job.id.clone(),
                parent: JobId::new(parent.as_str()),
                problem,
            };
            match states.get(parent).map(String::as_str) {
                None => return Err(problem(DependencyProblem::Unknown).into()),
                Some(s) if s == JobState::Dead.as_str() => {
                    return Err(problem(DependencyProblem::Dead).into())
                }
                Some(s) if s == JobState::Cancelled.as_str() => {
                    return Err(problem(DependencyProblem::Cancelled).into())
                }
                // Met for good.
                Some(s) if s == JobState::Completed.as_str() => {}
                Some(_) => {
                    unmet += 1;
                    edges.push((parent.clone(), seq));
                }
            }
        }
        let named: Vec<&str> = job.options.depends_on.iter().map(JobId::as_str).collect();
        let substituted = parents.len() != named.len()
            || parents.iter().zip(&named).any(|(a, b)| a.as_str() != *b);
        if substituted {
            let depends_on = serde_json::to_string(parents)
                .map_err(|e| StoreError::backend("encoding depends_on", e))?;
            diesel::update(jobs::table.filter(jobs::seq.eq(seq)))
                .set((
                    jobs::unmet_parents.eq(unmet),
                    jobs::depends_on.eq(Some(depends_on)),
                ))
                .execute(conn)?;
        } else {
            waiting.entry(unmet).or_default().push(seq);
        }
    }
    // The exact count for every job with dependencies (PostgreSQL inserts them with a
    // placeholder 1, see below), one UPDATE per count and chunk, not one per job: 10,000
    // jobs after one parent are 20 statements.
    //
    // Why the placeholder: a PostgreSQL UPDATE leaves the old row version's index entries
    // behind until vacuum. A job inserted claimable (`unmet_parents = 0`) and then blocked
    // would leave a dead entry in the claim index for every blocked job, which the claim
    // then walks (100,000 blocked jobs: 23 ms per claim). Inserted with 1, a blocked job
    // never enters that index.
    for (unmet, seqs) in waiting {
        for chunk in seqs.chunks(CHUNK) {
            diesel::update(jobs::table.filter(jobs::seq.eq_any(chunk)))
                .set(jobs::unmet_parents.eq(unmet))
                .execute(conn)?;
        }
    }
    for chunk in edges.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(parent, child)| {
                (
                    job_deps::parent_id.eq(parent.as_str()),
                    job_deps::child_seq.eq(*child),
                )
            })
            .collect();
        diesel::insert_into(job_deps::table)
            .values(&rows)
            .execute(conn)?;
    }
    Ok(!edges.is_empty())
}

/// Rebuilds the dependency rows of imported jobs (`seqs[i]` is the `seq` of `jobs[i]`),
/// from each job's `depends_on`, once every record of the import is stored: a parent that
/// exists and has not completed gets a row; a missing one (pruned after it completed) is
/// met.
///
/// # Errors
/// Driver failures.
pub fn link_imported(
    conn: &mut Conn,
    new_jobs: &[&queuectl_store::Job],
    seqs: &[i64],
) -> Result<(), Failure> {
    for (job, &seq) in new_jobs.iter().zip(seqs) {
        if job.options.depends_on.is_empty() {
            continue;
        }
        let parents: Vec<&str> = job.options.depends_on.iter().map(JobId::as_str).collect();
        let open: Vec<String> = super::parent_states(conn, &parents)?
            .into_iter()
            .filter(|(_, state)| state != JobState::Completed.as_str())
            .map(|(id, _)| id)
            .collect();
        if open.is_empty() {
            continue;
        }
        let rows: Vec<_> = open
            .iter()
            .map(|p| {
                (
                    job_deps::parent_id.eq(p.as_str()),
                    job_deps::child_seq.eq(seq),
                )
            })
            .collect();
        diesel::insert_into(job_deps::table)
            .values(&rows)
            .execute(conn)?;
        let unmet = i32::try_from(open.len()).unwrap_or(i32::MAX);
        diesel::update(jobs::table.filter(jobs::seq.eq(seq)))
            .set(jobs::unmet_parents.eq(unmet))
            .execute(conn)?;
    }
    Ok(())
}

/// Applies what the transitions of the jobs `ids` just made (a finish, a cancel) mean to
/// the jobs waiting on them: see the module docs. Returns whether a waiting job became
/// claimable.
///
/// # Errors
/// Driver failures.
pub fn settle(conn: &mut Conn, ids: &[&str], now: Timestamp) -> Result<bool, Failure> {
    // One indexed probe whether or not anything waits: the common finish of one job
    // asks with `=` (a statement of fixed text, prepared once per connection).
    let mut parents: Vec<String> = Vec::new();
    match ids {
        [] => return Ok(false),
        [one] => parents.extend(
            job_deps::table
                .filter(job_deps::parent_id.eq(*one))
                .select(job_deps::parent_id)
                .limit(1)
                .load::<String>(conn)?,
        ),
        _ => {
            for chunk in ids.chunks(CHUNK) {
                parents.extend(
                    job_deps::table
                        .filter(job_deps::parent_id.eq_any(chunk))
                        .select(job_deps::parent_id)
                        .distinct()
                        .load::<String>(conn)?,
                );
            }
        }
    }
    if parents.is_empty() {
        return Ok(false);
    }
    for chunk in parents.chunks(CHUNK) {
        super::lock_children(conn, chunk)?;
    }
    let mut states: Vec<(String, String)> = Vec::with_capacity(parents.len());
    for chunk in parents.chunks(CHUNK) {
        states.extend(
            jobs::table
                .filter(jobs::id.eq_any(chunk))
                .select((jobs::id, jobs::state))
                .load::<(String, String)>(conn)?,
        );
    }
    let mut ready = false;
    let mut doomed = Vec::new();
    for (parent, state) in states {
        match state_name(&state) {
            Some(JobState::Completed) => ready |= met(conn, &parent, now)?,
            Some(JobState::Dead) => doomed.push((parent, "ended dead")),
            Some(JobState::Cancelled) => doomed.push((parent, "was cancelled")),
            _ => {}
        }
    }
    for (parent, why) in doomed {
        cascade(conn, &parent, why, now)?;
    }
    Ok(ready)
}

/// Cancels every job waiting on `parent` (which ended `why`: `"ended dead"`, `"was
/// deleted before it completed"`…), and every job waiting on those, each with
/// `last_error` naming the parent it waited on. Returns how many were cancelled.
///
/// # Errors
/// Driver failures.
pub fn cascade(conn: &mut Conn, parent: &str, why: &str, now: Timestamp) -> Result<u64, Failure> {
    let mut cancelled = 0u64;
    let mut frontier: Vec<(String, String)> = vec![(parent.to_owned(), why.to_owned())];
    while let Some((parent, why)) = frontier.pop() {
        let ids: Vec<String> = diesel::update(
            jobs::table
                .filter(
                    jobs::seq.eq_any(
                        job_deps::table
                            .filter(job_deps::parent_id.eq(parent.as_str()))
                            .select(job_deps::child_seq),
                    ),
                )
                .filter(jobs::state.eq(JobState::Pending.as_str())),
        )
        .set((
            jobs::state.eq(JobState::Cancelled.as_str()),
            jobs::next_run_at.eq(None::<i64>),
            jobs::updated_at.eq(now.as_millis()),
            jobs::last_error.eq(Some(format!("dependency {parent} {why}"))),
        ))
        .returning(jobs::id)
        .load(conn)?;
        cancelled += ids.len() as u64;
        frontier.extend(ids.into_iter().map(|id| (id, "was cancelled".to_owned())));
    }
    Ok(cancelled)
}

/// Makes the retried job `seq` (`id`) wait for its parents that have not completed, or
/// refuses the retry naming a parent that is `dead`, `cancelled` or was deleted before
/// it completed.
///
/// # Errors
/// [`StoreError::Dependency`], or driver failures.
pub fn recount(conn: &mut Conn, seq: i64, id: &str) -> Result<(), Failure> {
    let parents: Vec<String> = job_deps::table
        .filter(job_deps::child_seq.eq(seq))
        .select(job_deps::parent_id)
        .load(conn)?;
    let mut unmet = 0i32;
    if !parents.is_empty() {
        let states: HashMap<String, String> =
            super::parent_states(conn, &parents)?.into_iter().collect();
        for parent in &parents {
            let problem = |problem| StoreError::Dependency {
                job: JobId::new(id),
                parent: JobId::new(parent.as_str()),
                problem,
            };
            match states.get(parent).and_then(|s| state_name(s)) {
                None => return Err(problem(DependencyProblem::Deleted).into()),
                Some(JobState::Dead) => return Err(problem(DependencyProblem::Dead).into()),
                Some(JobState::Cancelled) => {
                    return Err(problem(DependencyProblem::Cancelled).into())
                }
                Some(JobState::Completed) => {
                    // Its completion deleted such rows; one left is met all the same.
                    diesel::delete(
                        job_deps::table
                            .filter(job_deps::parent_id.eq(parent.as_str()))
                            .filter(job_deps::child_seq.eq(seq)),
                    )
                    .execute(conn)?;
                }
                Some(_) => unmet += 1,
            }
        }
    }
    diesel::update(jobs::table.filter(jobs::seq.eq(seq)))
        .set(jobs::unmet_parents.eq(unmet))
        .execute(conn)?;
    Ok(())
}

/// Locks the parents the job `id` still waits on (PostgreSQL: `FOR SHARE`, in id order)
/// before a retry changes the job, so the retry takes its locks in the order finishes and
/// cancels do (parent, then child).
///
/// # Errors
/// Driver failures.
pub fn lock_parents_of(conn: &mut Conn, id: &str) -> Result<(), Failure> {
    let parents: Vec<String> = job_deps::table
        .filter(job_deps::child_seq.eq_any(jobs::table.filter(jobs::id.eq(id)).select(jobs::seq)))
        .select(job_deps::parent_id)
        .load(conn)?;
    if !parents.is_empty() {
        super::parent_states(conn, &parents)?;
    }
    Ok(())
}

/// `parent` completed: its children have one parent fewer to wait for. Returns whether
/// one of them became claimable.
fn met(conn: &mut Conn, parent: &str, now: Timestamp) -> Result<bool, Failure> {
    let left: Vec<(i64, i32)> = diesel::update(
        jobs::table.filter(
            jobs::seq.eq_any(
                job_deps::table
                    .filter(job_deps::parent_id.eq(parent))
                    .select(job_deps::child_seq),
            ),
        ),
    )
    .set(jobs::unmet_parents.eq(jobs::unmet_parents - 1))
    .returning((jobs::seq, jobs::unmet_parents))
    .load(conn)?;
    diesel::delete(job_deps::table.filter(job_deps::parent_id.eq(parent))).execute(conn)?;
    // A released job has waited since it became claimable, not since it was enqueued:
    // claim order, the oldest-due age and pickup times count from now.
    let released: Vec<i64> = left
        .iter()
        .filter(|(_, unmet)| *unmet == 0)
        .map(|(seq, _)| *seq)
        .collect();
    if !released.is_empty() {
        diesel::update(
            jobs::table
                .filter(jobs::seq.eq_any(&released))
                .filter(jobs::state.eq(JobState::Pending.as_str()))
                .filter(jobs::next_run_at.lt(now.as_millis())),
        )
        .set(jobs::next_run_at.eq(now.as_millis()))
        .execute(conn)?;
    }
    Ok(!released.is_empty())
}

fn state_name(s: &str) -> Option<JobState> {
    s.parse().ok()
}
