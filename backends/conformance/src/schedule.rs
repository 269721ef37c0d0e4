//! Cases for periodic jobs: `put_schedule`, `list_schedules`, `set_schedule_paused`,
//! `delete_schedule` and the guarded `fire_schedule`.

use queuectl_store::{Fired, JobId, JobState, JobStore, Schedule, ScheduleFire};

use crate::fixture::{at, new_job_with_id, T0};
use crate::TestStore;

fn schedule(name: &str) -> Schedule {
    Schedule {
        name: name.into(),
        schedule: "@every 1m".into(),
        tz: "UTC".into(),
        job: r#"{"command":"true"}"#.into(),
        next_run_at: at(60),
        last_run_at: None,
        paused: false,
        created_at: T0,
    }
}

fn fire(name: &str, expected: u64, next: u64) -> ScheduleFire {
    let fired_at = at(expected);
    ScheduleFire {
        name: name.into(),
        expected_next_run_at: fired_at,
        fired_at,
        next_run_at: at(next),
        job: Some(new_job_with_id(&format!(
            "{name}@{}",
            fired_at.to_rfc3339()
        ))),
    }
}

/// Schedules round-trip every field, list sorted by name, and a put replaces by name.
pub fn schedules_round_trip_list_by_name_and_put_replaces<S: JobStore>(store: TestStore<S>) {
    let mut b = schedule("b");
    b.last_run_at = Some(at(5));
    b.paused = true;
    b.tz = "Europe/Berlin".into();
    store.put_schedule(&b).expect("put b");
    store.put_schedule(&schedule("a")).expect("put a");
    assert_eq!(
        store.list_schedules().expect("list"),
        vec![schedule("a"), b.clone()]
    );
    let mut replaced = schedule("b");
    replaced.schedule = "0 2 * * *".into();
    store.put_schedule(&replaced).expect("replace b");
    assert_eq!(
        store.list_schedules().expect("list"),
        vec![schedule("a"), replaced]
    );
}

/// Pausing and resuming say whether the schedule exists; resuming sets `next_run_at`,
/// pausing leaves it; deleting removes only the named one.
pub fn schedules_pause_resume_and_delete<S: JobStore>(store: TestStore<S>) {
    store.put_schedule(&schedule("a")).expect("put");
    assert!(store
        .set_schedule_paused("a", true, at(999))
        .expect("pause"));
    let s = &store.list_schedules().expect("list")[0];
    assert!(s.paused);
    assert_eq!(s.next_run_at, at(60));
    assert!(store
        .set_schedule_paused("a", false, at(600))
        .expect("resume"));
    let s = &store.list_schedules().expect("list")[0];
    assert!(!s.paused);
    assert_eq!(s.next_run_at, at(600));
    assert!(!store
        .set_schedule_paused("zz", true, at(1))
        .expect("pause unknown"));
    assert!(!store.delete_schedule("zz").expect("delete unknown"));
    assert!(store.delete_schedule("a").expect("delete"));
    assert!(store.list_schedules().expect("list").is_empty());
}

/// A fire advances the schedule and enqueues its job; a second fire from the same read is
/// `Stale` and changes nothing; a fire of a paused or unknown schedule is `Stale`.
pub fn fire_schedule_is_guarded_by_the_next_run_at_it_read<S: JobStore>(store: TestStore<S>) {
    store.put_schedule(&schedule("a")).expect("put");
    let first = fire("a", 60, 120);
    assert_eq!(
        store.fire_schedule(&first, at(61)).expect("fire"),
        Fired::Enqueued
    );
    let s = &store.list_schedules().expect("list")[0];
    assert_eq!((s.next_run_at, s.last_run_at), (at(120), Some(at(60))));
    let job_id = first.job.as_ref().expect("job").id.clone();
    let job = store.get(&job_id).expect("fired job");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.created_at, at(61));
    assert_eq!(
        store.fire_schedule(&first, at(62)).expect("again"),
        Fired::Stale
    );
    assert_eq!(store.counts().expect("counts").pending, 1);

    store.set_schedule_paused("a", true, at(0)).expect("pause");
    assert_eq!(
        store
            .fire_schedule(&fire("a", 120, 180), at(121))
            .expect("paused"),
        Fired::Stale
    );
    assert_eq!(
        store
            .fire_schedule(&fire("zz", 60, 120), at(61))
            .expect("unknown"),
        Fired::Stale
    );
    assert_eq!(store.counts().expect("counts").pending, 1);
}

/// The fire's insert is if-absent: when a job with its id exists (a replaced schedule
/// reaching a time fired before), the schedule still advances and the stored job is
/// untouched; a fire without a job only advances.
pub fn fire_schedule_inserts_its_job_only_if_absent<S: JobStore>(store: TestStore<S>) {
    store.put_schedule(&schedule("a")).expect("put");
    let f = fire("a", 60, 120);
    let existing = f.job.clone().expect("job");
    let existing = queuectl_store::NewJob {
        command: "echo earlier".into(),
        ..existing
    };
    store.enqueue(&existing, T0).expect("enqueue");
    assert_eq!(
        store.fire_schedule(&f, at(61)).expect("fire"),
        Fired::Skipped
    );
    assert_eq!(
        store.get(&existing.id).expect("job").command,
        "echo earlier"
    );
    assert_eq!(
        store.list_schedules().expect("list")[0].next_run_at,
        at(120)
    );
    let no_job = ScheduleFire {
        job: None,
        ..fire("a", 120, 180)
    };
    assert_eq!(
        store.fire_schedule(&no_job, at(121)).expect("fire"),
        Fired::Skipped
    );
    assert_eq!(
        store.list_schedules().expect("list")[0].next_run_at,
        at(180)
    );
    assert_eq!(store.counts().expect("counts").pending, 1);
}

/// Threads firing the same due time at once: exactly one enqueues, the others are `Stale`;
/// one job exists for the time.
pub fn concurrent_fires_of_one_time_enqueue_exactly_once<S: JobStore>(store: TestStore<S>) {
    store.put_schedule(&schedule("a")).expect("put");
    let outcomes: Vec<Fired> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = &store;
                scope.spawn(move || loop {
                    match store.fire_schedule(&fire("a", 60, 120), at(61)) {
                        Err(e) if e.is_transient() => continue,
                        other => return other.expect("fire"),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("firing thread panicked"))
            .collect()
    });
    let enqueued = outcomes.iter().filter(|f| **f == Fired::Enqueued).count();
    assert_eq!(enqueued, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|f| matches!(f, Fired::Enqueued | Fired::Stale)));
    assert_eq!(store.counts().expect("counts").pending, 1);
    let id = JobId::new(format!("a@{}", at(60).to_rfc3339()));
    store.get(&id).expect("the one job");
}
