//! Cases for the queue controls: `queue_settings`, `set_queue_settings`, and how `claim`
//! obeys a paused queue and a queue's concurrency limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use queuectl_store::{Job, JobState, JobStore, NewJob, QueueChange, QueueSettings, TransitionKind};

use crate::fixture::{
    at, claim_request, enqueue_all, execution, ids, new_job_with_id, transition, T0,
};
use crate::TestStore;

/// A job `id` in `queue` with `priority`, due at `T0`.
fn job_in(id: &str, queue: &str, priority: i32) -> NewJob {
    NewJob {
        queue: queue.to_owned(),
        priority,
        ..new_job_with_id(id)
    }
}

fn settings(queue: &str, paused: bool, concurrency: Option<u32>) -> QueueSettings {
    QueueSettings {
        queue: queue.to_owned(),
        paused,
        concurrency,
    }
}

fn set<S: JobStore>(store: &S, queue: &str, change: QueueChange) -> QueueSettings {
    store
        .set_queue_settings(queue, change, T0)
        .expect("set_queue_settings")
}

fn complete<S: JobStore>(store: &S, jobs: &[Job]) {
    let done: Vec<_> = jobs
        .iter()
        .map(|j| {
            transition(
                j,
                TransitionKind::Completed {
                    execution: execution(0, "", ""),
                },
            )
        })
        .collect();
    let results = store.finish(&done, at(1)).expect("finish");
    assert!(results.iter().all(|g| g.is_applied()), "{results:?}");
}

/// Settings start at the defaults, each change keeps the other setting, the list holds only
/// queues whose settings differ from the defaults (sorted by name), and a queue needs no job.
pub fn queue_settings_change_one_setting_at_a_time_and_keep_only_non_defaults<S: JobStore>(
    store: TestStore<S>,
) {
    assert_eq!(store.queue_settings().expect("empty"), Vec::new());
    assert_eq!(
        set(&*store, "mail", QueueChange::Paused(true)),
        settings("mail", true, None)
    );
    assert_eq!(
        set(&*store, "mail", QueueChange::Concurrency(Some(3))),
        settings("mail", true, Some(3))
    );
    assert_eq!(
        set(&*store, "b-reports", QueueChange::Concurrency(Some(1))),
        settings("b-reports", false, Some(1))
    );
    assert_eq!(
        store.queue_settings().expect("list"),
        [
            settings("b-reports", false, Some(1)),
            settings("mail", true, Some(3))
        ]
    );
    assert_eq!(
        set(&*store, "mail", QueueChange::Paused(false)),
        settings("mail", false, Some(3))
    );
    assert_eq!(
        set(&*store, "mail", QueueChange::Concurrency(None)),
        settings("mail", false, None)
    );
    // Resuming a queue that was never paused changes nothing and stores nothing.
    assert_eq!(
        set(&*store, "never", QueueChange::Paused(false)),
        settings("never", false, None)
    );
    assert_eq!(
        store.queue_settings().expect("list"),
        [settings("b-reports", false, Some(1))]
    );
}

/// A paused queue's jobs are not claimed, even first in claim order or asked for by name;
/// other queues' jobs are claimed in their place; resuming makes them claimable again.
pub fn claim_skips_paused_queues_and_takes_other_queues_in_their_place<S: JobStore>(
    store: TestStore<S>,
) {
    enqueue_all(
        &*store,
        &[
            job_in("urgent-1", "urgent", 10),
            job_in("urgent-2", "urgent", 10),
            job_in("bulk-1", "bulk", 0),
            job_in("bulk-2", "bulk", 0),
            job_in("bulk-3", "bulk", 0),
        ],
    );
    set(&*store, "urgent", QueueChange::Paused(true));
    let mut only_urgent = claim_request("w", at(1), 10);
    only_urgent.queues = vec!["urgent".to_owned()];
    assert!(store.claim(&only_urgent).expect("claim").is_empty());
    let claimed = store.claim(&claim_request("w", at(1), 2)).expect("claim");
    assert_eq!(ids(&claimed), ["bulk-1", "bulk-2"]);

    // Enqueue still works while paused.
    store
        .enqueue(&job_in("urgent-3", "urgent", 10), at(1))
        .expect("enqueue into a paused queue");
    set(&*store, "urgent", QueueChange::Paused(false));
    let claimed = store.claim(&claim_request("w", at(2), 10)).expect("claim");
    assert_eq!(
        ids(&claimed),
        ["urgent-1", "urgent-2", "urgent-3", "bulk-3"]
    );
}

/// A paused queue with a limit stays paused: the limit does not let jobs through.
pub fn claim_skips_a_paused_queue_even_with_room_under_its_limit<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[job_in("a-1", "a", 0), job_in("b-1", "b", 0)]);
    set(&*store, "a", QueueChange::Concurrency(Some(5)));
    set(&*store, "a", QueueChange::Paused(true));
    let claimed = store.claim(&claim_request("w", at(1), 10)).expect("claim");
    assert_eq!(ids(&claimed), ["b-1"]);
}

/// A batch claim takes at most the room a limited queue has left (its limit minus its jobs
/// `processing`), fills the rest of the batch from other queues, and takes more of the
/// limited queue only as its jobs finish.
pub fn claim_takes_at_most_the_room_a_limited_queue_has_left<S: JobStore>(store: TestStore<S>) {
    let mut jobs: Vec<NewJob> = (0..5).map(|i| job_in(&format!("a-{i}"), "a", 5)).collect();
    jobs.extend((0..3).map(|i| job_in(&format!("b-{i}"), "b", 0)));
    enqueue_all(&*store, &jobs);
    set(&*store, "a", QueueChange::Concurrency(Some(2)));

    let first = store.claim(&claim_request("w1", at(1), 4)).expect("claim");
    assert_eq!(ids(&first), ["a-0", "a-1", "b-0", "b-1"]);
    let second = store.claim(&claim_request("w2", at(1), 4)).expect("claim");
    assert_eq!(ids(&second), ["b-2"], "a is full");
    assert!(store
        .claim(&claim_request("w2", at(1), 4))
        .expect("claim")
        .is_empty());

    complete(&*store, &first[..1]);
    let third = store.claim(&claim_request("w3", at(2), 4)).expect("claim");
    assert_eq!(ids(&third), ["a-2"], "one finished, so one more fits");

    // Raising the limit lets more through; removing it lets every due job through.
    set(&*store, "a", QueueChange::Concurrency(Some(3)));
    let fourth = store.claim(&claim_request("w3", at(2), 4)).expect("claim");
    assert_eq!(ids(&fourth), ["a-3"]);
    set(&*store, "a", QueueChange::Concurrency(None));
    let fifth = store.claim(&claim_request("w3", at(2), 4)).expect("claim");
    assert_eq!(ids(&fifth), ["a-4"]);
    let running = store
        .list(&queuectl_store::JobFilter {
            state: Some(JobState::Processing),
            queue: Some("a".to_owned()),
            limit: None,
        })
        .expect("list");
    assert_eq!(running.len(), 4);
}

/// A limit below what is already running (lowered while jobs ran) stops new claims of the
/// queue without touching the running jobs; a limit of 0 admits none.
pub fn claim_takes_nothing_from_a_queue_at_or_over_its_limit<S: JobStore>(store: TestStore<S>) {
    let jobs: Vec<NewJob> = (0..4).map(|i| job_in(&format!("a-{i}"), "a", 0)).collect();
    enqueue_all(&*store, &jobs);
    let running = store.claim(&claim_request("w", at(1), 3)).expect("claim");
    assert_eq!(running.len(), 3);
    set(&*store, "a", QueueChange::Concurrency(Some(1)));
    assert!(store
        .claim(&claim_request("w", at(1), 4))
        .expect("claim")
        .is_empty());
    complete(&*store, &running[..2]);
    assert!(
        store
            .claim(&claim_request("w", at(2), 4))
            .expect("claim")
            .is_empty(),
        "one still runs, and the limit is 1"
    );
    complete(&*store, &running[2..]);
    set(&*store, "a", QueueChange::Concurrency(Some(0)));
    assert!(store
        .claim(&claim_request("w", at(2), 4))
        .expect("claim")
        .is_empty());
    set(&*store, "a", QueueChange::Concurrency(Some(1)));
    let claimed = store.claim(&claim_request("w", at(2), 4)).expect("claim");
    assert_eq!(ids(&claimed), ["a-3"]);
}

/// Jobs of a limited queue keep their place in claim order among other queues' jobs, also
/// when the claim names its queues.
pub fn claim_keeps_claim_order_across_limited_and_other_queues<S: JobStore>(store: TestStore<S>) {
    let job = |id: &str, queue: &str, priority: i32, due: u64| NewJob {
        run_at: at(due),
        ..job_in(id, queue, priority)
    };
    enqueue_all(
        &*store,
        &[
            job("b-early", "b", 0, 0),
            job("a-high", "a", 9, 3),
            job("c-ignored", "c", 99, 0),
            job("a-late", "a", 0, 2),
            job("b-late", "b", 0, 4),
            job("a-over", "a", 0, 5),
        ],
    );
    set(&*store, "a", QueueChange::Concurrency(Some(2)));
    let mut req = claim_request("w", at(10), 10);
    req.queues = vec!["a".to_owned(), "b".to_owned()];
    let claimed = store.claim(&req).expect("claim");
    assert_eq!(ids(&claimed), ["a-high", "b-early", "a-late", "b-late"]);
}

/// Future jobs of a limited queue are not claimed early, and a limited queue that is not
/// served by the claim is left alone.
pub fn claim_of_a_limited_queue_skips_jobs_not_due_and_queues_not_served<S: JobStore>(
    store: TestStore<S>,
) {
    let later = NewJob {
        run_at: at(100),
        ..job_in("a-later", "a", 0)
    };
    enqueue_all(
        &*store,
        &[later, job_in("a-now", "a", 0), job_in("b-now", "b", 0)],
    );
    set(&*store, "a", QueueChange::Concurrency(Some(5)));
    let mut only_b = claim_request("w", at(1), 10);
    only_b.queues = vec!["b".to_owned()];
    assert_eq!(ids(&store.claim(&only_b).expect("claim")), ["b-now"]);
    let claimed = store.claim(&claim_request("w", at(1), 10)).expect("claim");
    assert_eq!(ids(&claimed), ["a-now"]);
}

/// Eight threads claiming in batches, holding each job a moment and finishing it, never
/// have more than the limit of a queue's jobs `processing` at once, reach the limit, and
/// keep claiming an unlimited queue alongside.
pub fn concurrent_claimers_never_exceed_a_queue_limit<S: JobStore>(store: TestStore<S>) {
    const THREADS: usize = 8;
    const LIMIT: u64 = 3;
    const LIMITED: usize = 60;
    const OTHER: usize = 60;
    let mut jobs: Vec<NewJob> = (0..LIMITED)
        .map(|i| job_in(&format!("cap-{i:03}"), "capped", 0))
        .collect();
    jobs.extend((0..OTHER).map(|i| job_in(&format!("free-{i:03}"), "free", 0)));
    enqueue_all(&*store, &jobs);
    set(
        &*store,
        "capped",
        QueueChange::Concurrency(Some(u32::try_from(LIMIT).expect("small"))),
    );

    // Counted up after a claim returned and down before its finish is sent, so it never
    // exceeds what the store holds as processing: a value above the limit is a violation.
    let held = AtomicU64::new(0);
    let peak = AtomicU64::new(0);
    let finished = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (store, held, peak, finished) = (&store, &held, &peak, &finished);
            scope.spawn(move || loop {
                let req = claim_request(&format!("w{t}"), at(1), 3);
                let batch = match store.claim(&req) {
                    Ok(batch) => batch,
                    Err(e) if e.is_transient() => continue,
                    Err(e) => panic!("claim failed: {e}"),
                };
                let capped = batch.iter().filter(|j| j.queue == "capped").count() as u64;
                let now = held.fetch_add(capped, Ordering::SeqCst) + capped;
                peak.fetch_max(now, Ordering::SeqCst);
                if batch.is_empty() {
                    if finished.load(Ordering::SeqCst) == (LIMITED + OTHER) as u64 {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                std::thread::sleep(Duration::from_millis(2));
                held.fetch_sub(capped, Ordering::SeqCst);
                loop {
                    match store.finish(
                        &batch
                            .iter()
                            .map(|j| {
                                transition(
                                    j,
                                    TransitionKind::Completed {
                                        execution: execution(0, "", ""),
                                    },
                                )
                            })
                            .collect::<Vec<_>>(),
                        at(2),
                    ) {
                        Ok(_) => break,
                        Err(e) if e.is_transient() => continue,
                        Err(e) => panic!("finish failed: {e}"),
                    }
                }
                finished.fetch_add(batch.len() as u64, Ordering::SeqCst);
            });
        }
    });
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= LIMIT,
        "{peak} jobs of a queue limited to {LIMIT} ran at once"
    );
    assert_eq!(peak, LIMIT, "the limit is reached when enough jobs are due");
    let counts = store.counts().expect("counts");
    assert_eq!(counts.completed, (LIMITED + OTHER) as u64);
}
