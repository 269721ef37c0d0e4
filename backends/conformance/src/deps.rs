//! Cases for dependencies (contract v2, "Dependencies"): a job with `depends_on` is
//! claimable only once every parent completed; a parent that ends `dead` or `cancelled`,
//! or is deleted unfinished, cancels its dependants transitively in the same call; enqueue
//! refuses parents it cannot wait for; a retried dependant waits again or is refused.

use std::sync::Arc;

use queuectl_store::{
    DependencyProblem, Enqueued, Job, JobId, JobState, JobStore, NewJob, StoreError, TransitionKind,
};

use crate::fixture::{
    at, claim_request, execution, ids, insert, job_in_state, new_job_with_id, transition, T0,
};
use crate::TestStore;

/// A new job with id `id` waiting on `parents`.
fn child(id: &str, parents: &[&str]) -> NewJob {
    let mut job = new_job_with_id(id);
    job.options.depends_on = parents.iter().map(|p| JobId::new(*p)).collect();
    job
}

/// Every job claimable at `T0`, claimed.
fn claim_all<S: JobStore>(store: &S) -> Vec<Job> {
    store.claim(&claim_request("w1", T0, 100)).expect("claim")
}

fn complete<S: JobStore>(store: &S, job: &Job) {
    let kind = TransitionKind::Completed {
        execution: execution(0, "", ""),
    };
    let done = store.finish(&[transition(job, kind)], T0).expect("finish");
    assert!(done[0].is_applied(), "{} was not finished", job.id);
}

fn kill<S: JobStore>(store: &S, job: &Job) {
    let kind = TransitionKind::Dead {
        execution: execution(1, "", ""),
        error: "exit code 1".to_owned(),
    };
    let done = store.finish(&[transition(job, kind)], T0).expect("finish");
    assert!(done[0].is_applied(), "{} was not finished", job.id);
}

fn state_of<S: JobStore>(store: &S, id: &str) -> (JobState, Option<String>) {
    let job = store.get(&JobId::new(id)).expect("get");
    (job.state, job.last_error)
}

fn expect_problem<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    parent: &str,
    problem: DependencyProblem,
) {
    match result {
        Err(StoreError::Dependency {
            parent: p,
            problem: got,
            ..
        }) => {
            assert_eq!(p.as_str(), parent);
            assert_eq!(got, problem);
        }
        other => panic!("expected Dependency({parent}, {problem:?}), got {other:?}"),
    }
}

/// A job waiting on two parents is not claimable (and counts as waiting in its queue's
/// stats) until both completed, whatever the order; then it is.
pub fn a_dependant_is_claimable_only_once_every_parent_completed<S: JobStore>(store: TestStore<S>) {
    store.enqueue(&new_job_with_id("p1"), T0).expect("enqueue");
    store.enqueue(&new_job_with_id("p2"), T0).expect("enqueue");
    store
        .enqueue(&child("c", &["p1", "p2"]), T0)
        .expect("enqueue");
    let stats = store.queue_stats(T0).expect("queue_stats");
    assert_eq!(stats[0].waiting, 1, "{stats:?}");
    let parents = claim_all(&*store);
    assert_eq!(ids(&parents), ["p1", "p2"]);
    complete(&*store, &parents[1]);
    assert!(claim_all(&*store).is_empty(), "c ran with p1 unfinished");
    complete(&*store, &parents[0]);
    let c = claim_all(&*store);
    assert_eq!(ids(&c), ["c"]);
    assert_eq!(
        store.get(&JobId::new("c")).expect("get").options.depends_on,
        [JobId::new("p1"), JobId::new("p2")]
    );
}

/// A job released by its last parent has waited since then: its `next_run_at` (claim
/// order, the oldest-due age) is the release time, and while blocked it is not due.
pub fn a_released_dependant_is_due_from_its_release<S: JobStore>(store: TestStore<S>) {
    store.enqueue(&new_job_with_id("p"), T0).expect("enqueue");
    store.enqueue(&child("c", &["p"]), T0).expect("enqueue");
    let p = store.claim(&claim_request("w1", T0, 10)).expect("claim");
    assert_eq!(ids(&p), ["p"]);
    let stats = store.queue_stats(at(30)).expect("queue_stats");
    assert_eq!(
        stats[0].oldest_due, None,
        "a blocked job is not due: {stats:?}"
    );
    let kind = TransitionKind::Completed {
        execution: execution(0, "", ""),
    };
    store
        .finish(&[transition(&p[0], kind)], at(60))
        .expect("finish");
    let c = store.get(&JobId::new("c")).expect("get");
    assert_eq!(c.next_run_at, Some(at(60)));
    let stats = store.queue_stats(at(61)).expect("queue_stats");
    assert_eq!(stats[0].oldest_due, Some(at(60)), "{stats:?}");
    assert_eq!(stats[0].waiting, 0);
}

/// An enqueue with dependencies whose id is taken is a `Conflict` naming it, as without.
pub fn an_enqueue_with_dependencies_of_a_taken_id_is_a_conflict<S: JobStore>(store: TestStore<S>) {
    store.enqueue(&new_job_with_id("p"), T0).expect("enqueue");
    store
        .enqueue(&new_job_with_id("taken"), T0)
        .expect("enqueue");
    match store.enqueue(&child("taken", &["p"]), T0) {
        Err(StoreError::Conflict(id)) => assert_eq!(id.as_str(), "taken"),
        other => panic!("expected Conflict(taken), got {other:?}"),
    }
    assert_eq!(store.list(&Default::default()).expect("list").len(), 2);
}

/// A parent that completed before the child was enqueued is met at once, and stays met
/// when the parent is deleted or retried afterwards.
pub fn a_completed_parent_is_met_for_good<S: JobStore>(store: TestStore<S>) {
    insert(&*store, job_in_state("done", JobState::Completed));
    store.enqueue(&child("c1", &["done"]), T0).expect("enqueue");
    assert_eq!(ids(&claim_all(&*store)), ["c1"]);

    store.enqueue(&new_job_with_id("p"), T0).expect("enqueue");
    store.enqueue(&child("c2", &["p"]), T0).expect("enqueue");
    let p = claim_all(&*store);
    assert_eq!(ids(&p), ["p"]);
    complete(&*store, &p[0]);
    store.delete(&JobId::new("p"), T0).expect("delete");
    assert_eq!(ids(&claim_all(&*store)), ["c2"]);
}

/// A parent that ends dead cancels its dependants and theirs, in the same call, each
/// naming the parent it waited on; so do a cancelled parent and one deleted unfinished.
pub fn a_parent_that_cannot_complete_cancels_its_dependants_transitively<S: JobStore>(
    store: TestStore<S>,
) {
    store.enqueue(&new_job_with_id("p"), T0).expect("enqueue");
    store.enqueue(&child("c", &["p"]), T0).expect("enqueue");
    store.enqueue(&child("g", &["c"]), T0).expect("enqueue");
    let p = claim_all(&*store);
    kill(&*store, &p[0]);
    assert_eq!(
        state_of(&*store, "c"),
        (
            JobState::Cancelled,
            Some("dependency p ended dead".to_owned())
        )
    );
    assert_eq!(
        state_of(&*store, "g"),
        (
            JobState::Cancelled,
            Some("dependency c was cancelled".to_owned())
        )
    );

    store.enqueue(&new_job_with_id("q"), T0).expect("enqueue");
    store.enqueue(&child("qc", &["q"]), T0).expect("enqueue");
    store.cancel(&JobId::new("q"), T0).expect("cancel");
    assert_eq!(
        state_of(&*store, "qc"),
        (
            JobState::Cancelled,
            Some("dependency q was cancelled".to_owned())
        )
    );

    store.enqueue(&new_job_with_id("r"), T0).expect("enqueue");
    store.enqueue(&child("rc", &["r"]), T0).expect("enqueue");
    store.delete(&JobId::new("r"), T0).expect("delete");
    assert_eq!(
        state_of(&*store, "rc"),
        (
            JobState::Cancelled,
            Some("dependency r was deleted before it completed".to_owned())
        )
    );
    assert!(claim_all(&*store).is_empty());
}

/// A running parent whose cancel was requested ends cancelled at its finish, and that
/// cancels its dependants too.
pub fn a_parent_cancelled_while_running_cancels_its_dependants<S: JobStore>(store: TestStore<S>) {
    store.enqueue(&new_job_with_id("p"), T0).expect("enqueue");
    store.enqueue(&child("c", &["p"]), T0).expect("enqueue");
    let p = claim_all(&*store);
    store.cancel(&JobId::new("p"), T0).expect("cancel request");
    assert_eq!(state_of(&*store, "c").0, JobState::Pending);
    complete(&*store, &p[0]);
    assert_eq!(state_of(&*store, "p").0, JobState::Cancelled);
    assert_eq!(
        state_of(&*store, "c"),
        (
            JobState::Cancelled,
            Some("dependency p was cancelled".to_owned())
        )
    );
}

/// Enqueue refuses a parent that does not exist, is dead or cancelled, the job itself or a
/// job later in the batch; the whole batch is then refused and nothing is stored.
pub fn enqueue_refuses_parents_it_cannot_wait_for_storing_nothing<S: JobStore>(
    store: TestStore<S>,
) {
    insert(&*store, job_in_state("dead", JobState::Dead));
    insert(&*store, job_in_state("gone", JobState::Cancelled));
    let cases = [
        (
            vec![child("a", &["nope"])],
            "nope",
            DependencyProblem::Unknown,
        ),
        (vec![child("a", &["dead"])], "dead", DependencyProblem::Dead),
        (
            vec![child("a", &["gone"])],
            "gone",
            DependencyProblem::Cancelled,
        ),
        (vec![child("a", &["a"])], "a", DependencyProblem::Itself),
        (
            vec![child("a", &["b"]), child("b", &["a"])],
            "b",
            DependencyProblem::LaterInBatch,
        ),
        (
            vec![new_job_with_id("ok"), child("a", &["ok", "nope"])],
            "nope",
            DependencyProblem::Unknown,
        ),
    ];
    for (batch, parent, problem) in cases {
        expect_problem(store.enqueue_batch(&batch, T0), parent, problem);
        let stored = store.list(&Default::default()).expect("list");
        assert_eq!(
            ids(&stored),
            ["dead", "gone"],
            "after {parent}: {problem:?}"
        );
    }
}

/// A job may wait on a job earlier in its batch; a batch job held by its unique key stands
/// for the job holding the key, which the dependant then names.
pub fn a_batch_may_name_earlier_jobs_and_a_held_one_stands_for_its_holder<S: JobStore>(
    store: TestStore<S>,
) {
    let mut holder = new_job_with_id("holder");
    holder.options.unique_key = Some("k".to_owned());
    store.enqueue(&holder, T0).expect("enqueue");

    let mut held = new_job_with_id("held");
    held.options.unique_key = Some("k".to_owned());
    let batch = [
        new_job_with_id("first"),
        child("second", &["first"]),
        held,
        child("third", &["held"]),
    ];
    let got = store.enqueue_batch(&batch, T0).expect("enqueue_batch");
    assert_eq!(got[2], Enqueued::Held(JobId::new("holder")));
    assert_eq!(
        store
            .get(&JobId::new("third"))
            .expect("get")
            .options
            .depends_on,
        [JobId::new("holder")]
    );
    let claimed = claim_all(&*store);
    assert_eq!(ids(&claimed), ["holder", "first"]);
    complete(&*store, &claimed[1]);
    assert_eq!(ids(&claim_all(&*store)), ["second"]);
    complete(&*store, &claimed[0]);
    assert_eq!(ids(&claim_all(&*store)), ["third"]);
}

/// A retry of a dependant cancelled by its parent is refused while the parent is dead,
/// cancelled or deleted; once the parent is retried, the dependant's retry makes it wait
/// for the parent again.
pub fn a_retried_dependant_waits_again_or_is_refused_naming_the_parent<S: JobStore>(
    store: TestStore<S>,
) {
    store.enqueue(&new_job_with_id("p"), T0).expect("enqueue");
    store.enqueue(&child("c", &["p"]), T0).expect("enqueue");
    let p = claim_all(&*store);
    kill(&*store, &p[0]);
    let c = JobId::new("c");
    expect_problem(
        store.requeue(&c, &[JobState::Cancelled], T0),
        "p",
        DependencyProblem::Dead,
    );
    assert_eq!(state_of(&*store, "c").0, JobState::Cancelled);

    store.requeue_dead(&JobId::new("p"), T0).expect("retry p");
    store
        .requeue(&c, &[JobState::Cancelled], T0)
        .expect("retry c");
    let p = claim_all(&*store);
    assert_eq!(ids(&p), ["p"], "c must wait for p again");
    complete(&*store, &p[0]);
    assert_eq!(ids(&claim_all(&*store)), ["c"]);

    store.enqueue(&new_job_with_id("r"), T0).expect("enqueue");
    store.enqueue(&child("rc", &["r"]), T0).expect("enqueue");
    store.delete(&JobId::new("r"), T0).expect("delete");
    expect_problem(
        store.requeue(&JobId::new("rc"), &[JobState::Cancelled], T0),
        "r",
        DependencyProblem::Deleted,
    );
}

/// Children enqueued while their parent is being completed from other threads are never
/// stranded: each either saw the parent completed or is released by its completion.
pub fn dependants_enqueued_while_the_parent_completes_are_never_stranded<S: JobStore>(
    store: TestStore<S>,
) {
    const PARENTS: usize = 12;
    const CHILDREN: usize = 4;
    let store = Arc::new(store);
    for p in 0..PARENTS {
        store
            .enqueue(&new_job_with_id(&format!("p{p}")), T0)
            .expect("enqueue");
    }
    let parents = claim_all(&**store);
    assert_eq!(parents.len(), PARENTS);
    std::thread::scope(|scope| {
        let finisher = Arc::clone(&store);
        let parents = &parents;
        scope.spawn(move || {
            for job in parents {
                loop {
                    let kind = TransitionKind::Completed {
                        execution: execution(0, "", ""),
                    };
                    match finisher.finish(&[transition(job, kind)], T0) {
                        Ok(_) => break,
                        Err(e) if e.is_transient() => continue,
                        Err(e) => panic!("finish failed: {e}"),
                    }
                }
            }
        });
        for t in 0..CHILDREN {
            let store = Arc::clone(&store);
            scope.spawn(move || {
                for p in 0..PARENTS {
                    let job = child(&format!("c{t}-{p}"), &[&format!("p{p}")]);
                    loop {
                        match store.enqueue(&job, T0) {
                            Ok(()) => break,
                            Err(e) if e.is_transient() => continue,
                            Err(e) => panic!("enqueue failed: {e}"),
                        }
                    }
                }
            });
        }
    });
    let claimed = claim_all(&**store);
    assert_eq!(
        claimed.len(),
        PARENTS * CHILDREN,
        "stranded: {:?}",
        store
            .list(&queuectl_store::JobFilter {
                state: Some(JobState::Pending),
                ..Default::default()
            })
            .expect("list")
    );
}
