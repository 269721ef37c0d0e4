//! `WorkerPool` against a `MemoryStore`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use queuectl::prelude::*;
use queuectl::{
    Call, ClaimRequest, EnqueueRequest, Execution, Job, JobId, JobState, JobStore, Outcome,
    Scheduler, Transition, TransitionKind, WorkerInfo,
};
use queuectl::{JobContext, Shutdown, WorkerPool, WorkerPoolBuilder};
use queuectl_store_memory::MemoryStore;

use crate::support::intercept::Intercept;

use super::{join, manual_clock, memory_scheduler, pid_gone, read_pid, spawn, wait_until, HANG};

/// A pool builder with test-friendly timings and a private group directory.
fn builder<S: JobStore + Clone>(scheduler: Scheduler<S>, dir: &Path) -> WorkerPoolBuilder<S> {
    WorkerPool::builder(scheduler)
        .poll_interval(Duration::from_millis(10))
        .lease(Duration::from_secs(5))
        .host_id("test-host")
        .group_dir(dir.join("groups"))
}

fn shell(command: impl Into<String>) -> EnqueueRequest {
    EnqueueRequest {
        command: command.into(),
        ..EnqueueRequest::default()
    }
}

fn state<S: JobStore>(s: &Scheduler<S>, id: &JobId) -> JobState {
    s.store().get(id).unwrap().state
}

#[test]
fn four_slots_run_every_job_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let ids: Vec<JobId> = (0..200)
        .map(|i| {
            scheduler
                .enqueue(EnqueueRequest {
                    command: format!("{i}"),
                    kind: Some("count".to_owned()),
                    ..EnqueueRequest::default()
                })
                .unwrap()
        })
        .collect();
    let seen = runs.clone();
    let report = builder(scheduler.clone(), dir.path())
        .slots(4)
        .drain(true)
        .handler("count", move |job: &Job, _: &JobContext| {
            *seen.lock().entry(job.id.clone()).or_default() += 1;
            Outcome::Succeeded {
                execution: Execution::default(),
            }
        })
        .build()
        .run(&Shutdown::new())
        .unwrap();
    assert_eq!(report.succeeded, 200);
    let runs = runs.lock();
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|n| *n == 1));
    for id in &ids {
        let job = scheduler.store().get(id).unwrap();
        assert_eq!((job.state, job.attempts), (JobState::Completed, 1));
    }
    assert!(
        scheduler.store().list_workers().unwrap().is_empty(),
        "deregistered"
    );
}

#[test]
fn shell_jobs_run_once_each_with_their_output_stored() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let log = dir.path().join("log");
    let ids: Vec<JobId> = (0..12)
        .map(|_| {
            let cmd = format!("echo $QUEUECTL_JOB_ID >> {}; echo hi", log.display());
            scheduler.enqueue(shell(cmd)).unwrap()
        })
        .collect();
    let report = builder(scheduler.clone(), dir.path())
        .slots(4)
        .drain(true)
        .build()
        .run(&Shutdown::new())
        .unwrap();
    assert_eq!(report.succeeded, 12);
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    let mut expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(lines, expected);
    let record = scheduler.store().get_record(&ids[0]).unwrap();
    assert_eq!(record.output.unwrap().stdout, "hi\n");
    assert_eq!(record.job.exit_code, Some(0));
}

#[test]
fn a_failed_job_is_retried_after_its_backoff_and_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let scheduler = Scheduler::with_clock(Arc::new(MemoryStore::new()), clock.clone());
    let marker = dir.path().join("marker");
    let cmd = format!(
        "test -f {m} || {{ touch {m}; echo first >&2; exit 7; }}",
        m = marker.display()
    );
    let id = scheduler.enqueue(shell(cmd)).unwrap();
    let handle = spawn(
        builder(scheduler.clone(), dir.path()).drain(true).build(),
        &Shutdown::new(),
    );
    wait_until("the first attempt failed", || {
        state(&scheduler, &id) == JobState::Failed
    });
    let job = scheduler.store().get(&id).unwrap();
    assert_eq!((job.attempts, job.exit_code), (1, Some(7)));
    assert_eq!(job.last_error.as_deref(), Some("exit code 7"));
    // Not due yet: the drain worker keeps waiting instead of exiting or running it.
    assert!(!handle.is_finished());
    clock.advance(Duration::from_secs(3600));
    let report = join(handle);
    assert_eq!((report.succeeded, report.failed), (1, 1));
    let record = scheduler.store().get_record(&id).unwrap();
    assert_eq!(
        (record.job.state, record.job.attempts),
        (JobState::Completed, 2)
    );
    assert_eq!(record.job.last_error, None);
    assert_eq!(record.history.len(), 2);
    assert_eq!(record.history[0].error.as_deref(), Some("exit code 7"));
}

#[test]
fn graceful_shutdown_finishes_the_running_job_and_leaves_the_next_pending() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let started = dir.path().join("started");
    let go = dir.path().join("go");
    let first = scheduler
        .enqueue(EnqueueRequest {
            priority: 10,
            ..shell(format!(
                "touch {}; while [ ! -f {} ]; do sleep 0.01; done; echo finished",
                started.display(),
                go.display()
            ))
        })
        .unwrap();
    let second = scheduler.enqueue(shell("echo second")).unwrap();
    let shutdown = Shutdown::new();
    let handle = spawn(builder(scheduler.clone(), dir.path()).build(), &shutdown);
    wait_until("the first job runs", || started.exists());
    shutdown.request_graceful();
    std::fs::write(&go, "").unwrap();
    let report = join(handle);
    assert_eq!((report.succeeded, report.released), (1, 0));
    let done = scheduler.store().get_record(&first).unwrap();
    assert_eq!(done.job.state, JobState::Completed);
    assert_eq!(done.output.unwrap().stdout, "finished\n");
    let next = scheduler.store().get(&second).unwrap();
    assert_eq!((next.state, next.attempts), (JobState::Pending, 0));
}

#[test]
fn immediate_shutdown_kills_running_jobs_and_releases_them_uncharged() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let ids: Vec<(JobId, std::path::PathBuf)> = (0..2)
        .map(|i| {
            let pidfile = dir.path().join(format!("pid{i}"));
            let cmd = format!("echo $$ > {}; exec sleep 30", pidfile.display());
            (scheduler.enqueue(shell(cmd)).unwrap(), pidfile)
        })
        .collect();
    let shutdown = Shutdown::new();
    let handle = spawn(
        builder(scheduler.clone(), dir.path()).slots(2).build(),
        &shutdown,
    );
    let pids: Vec<i32> = ids.iter().map(|(_, f)| read_pid(f)).collect();
    shutdown.request_graceful();
    shutdown.request_immediate();
    let report = join(handle);
    assert_eq!(
        (report.released, report.succeeded, report.failed),
        (2, 0, 0)
    );
    for (id, _) in &ids {
        let job = scheduler.store().get(id).unwrap();
        assert_eq!(
            (job.state, job.attempts, job.interrupts),
            (JobState::Pending, 0, 0)
        );
    }
    for pid in pids {
        wait_until("the job process is gone", || pid_gone(pid));
    }
}

#[test]
fn a_kind_without_a_handler_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let id = scheduler
        .enqueue(EnqueueRequest {
            command: "{}".to_owned(),
            kind: Some("mystery".to_owned()),
            max_retries: Some(1),
            ..EnqueueRequest::default()
        })
        .unwrap();
    builder(scheduler.clone(), dir.path())
        .drain(true)
        .build()
        .run(&Shutdown::new())
        .unwrap();
    let job = scheduler.store().get(&id).unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(
        job.last_error.as_deref(),
        Some("no handler for kind mystery")
    );
}

#[test]
fn a_panicking_handler_fails_the_job_and_the_worker_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let boom = scheduler
        .enqueue(EnqueueRequest {
            kind: Some("boom".to_owned()),
            max_retries: Some(1),
            ..shell("x")
        })
        .unwrap();
    let fine = scheduler.enqueue(shell("true")).unwrap();
    let report = builder(scheduler.clone(), dir.path())
        .drain(true)
        .handler("boom", |_: &Job, _: &JobContext| -> Outcome {
            panic!("kaboom")
        })
        .build()
        .run(&Shutdown::new())
        .unwrap();
    assert_eq!((report.succeeded, report.failed), (1, 1));
    let job = scheduler.store().get(&boom).unwrap();
    assert_eq!(
        job.last_error.as_deref(),
        Some("the boom handler panicked: kaboom")
    );
    assert_eq!(state(&scheduler, &fine), JobState::Completed);
}

#[test]
fn drain_only_waits_for_its_own_queues() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let mine = scheduler
        .enqueue(EnqueueRequest {
            queue: Some("mine".to_owned()),
            ..shell("true")
        })
        .unwrap();
    let other = scheduler
        .enqueue(EnqueueRequest {
            queue: Some("other".to_owned()),
            ..shell("true")
        })
        .unwrap();
    builder(scheduler.clone(), dir.path())
        .queues(vec!["mine".to_owned()])
        .drain(true)
        .build()
        .run(&Shutdown::new())
        .unwrap();
    assert_eq!(state(&scheduler, &mine), JobState::Completed);
    assert_eq!(state(&scheduler, &other), JobState::Pending);
}

#[test]
fn worker_stop_from_the_store_stops_the_pool_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let pool = builder(scheduler.clone(), dir.path())
        .heartbeat_interval(Duration::from_millis(20))
        .build();
    let id = pool.id().to_owned();
    let handle = spawn(pool, &Shutdown::new());
    wait_until("the worker registered", || {
        scheduler
            .store()
            .list_workers()
            .unwrap()
            .iter()
            .any(|w| w.id == id)
    });
    let info = scheduler.store().list_workers().unwrap().remove(0);
    assert_eq!(
        (info.host.as_str(), info.pid),
        ("test-host", std::process::id())
    );
    assert!(id.starts_with(&format!("test-host:{}:", std::process::id())));
    assert_eq!(scheduler.store().request_stop().unwrap(), 1);
    join(handle);
    assert!(scheduler.store().list_workers().unwrap().is_empty());
}

#[test]
fn a_worker_deregistered_by_mistake_registers_again() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let pool = builder(scheduler.clone(), dir.path())
        .heartbeat_interval(Duration::from_millis(20))
        .build();
    let id = pool.id().to_owned();
    let shutdown = Shutdown::new();
    let handle = spawn(pool, &shutdown);
    let registered = || {
        scheduler
            .store()
            .list_workers()
            .unwrap()
            .iter()
            .any(|w| w.id == id)
    };
    wait_until("the worker registered", registered);
    scheduler.store().deregister_worker(&id).unwrap();
    wait_until("the worker registered again", registered);
    shutdown.request_graceful();
    join(handle);
}

#[test]
fn an_enqueue_in_this_process_wakes_an_idle_slot_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    // Without the wake-up the slot would sleep for an hour.
    let pool = builder(scheduler.clone(), dir.path())
        .poll_interval(Duration::from_secs(3600))
        .build();
    let shutdown = Shutdown::new();
    let handle = spawn(pool, &shutdown);
    wait_until("the worker registered", || {
        !scheduler.store().list_workers().unwrap().is_empty()
    });
    // Registration happens before the first claim; give the slot time to go idle so the
    // enqueue below (usually) lands while it sleeps. Either way the job must run promptly.
    thread::sleep(Duration::from_millis(50));
    let id = scheduler.enqueue(shell("true")).unwrap();
    wait_until("the job ran", || {
        state(&scheduler, &id) == JobState::Completed
    });
    shutdown.request_graceful();
    join(handle);
}

#[test]
fn a_dead_worker_on_this_host_is_recovered_and_its_job_group_killed() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    // A "dead worker": a registry entry whose pid is a reaped child, holding a claimed job,
    // with an orphaned job process group recorded for it.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = WorkerInfo {
        id: format!("test-host:{dead_pid}:deadbeef"),
        host: "test-host".to_owned(),
        pid: dead_pid,
        slots: 1,
        queues: Vec::new(),
        started_at: scheduler.now(),
        heartbeat_at: scheduler.now(),
        stop_requested: false,
    };
    scheduler.store().register_worker(&dead).unwrap();
    let id = scheduler.enqueue(shell("echo rerun")).unwrap();
    let claimed = scheduler
        .claim(&dead.id, 1, &[], Duration::from_secs(3600))
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mut orphan = std::process::Command::new("sleep");
    std::os::unix::process::CommandExt::process_group(&mut orphan, 0);
    let mut orphan = orphan.arg("30").spawn().unwrap();
    let group_dir = dir.path().join("groups").join(&dead.id);
    std::fs::create_dir_all(&group_dir).unwrap();
    std::fs::write(group_dir.join(orphan.id().to_string()), "").unwrap();

    let shutdown = Shutdown::new();
    let handle = spawn(builder(scheduler.clone(), dir.path()).build(), &shutdown);
    wait_until("the dead worker's job ran again", || {
        state(&scheduler, &id) == JobState::Completed
    });
    let job = scheduler.store().get(&id).unwrap();
    assert_eq!((job.attempts, job.interrupts), (1, 1));
    let status = orphan.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!scheduler
        .store()
        .list_workers()
        .unwrap()
        .iter()
        .any(|w| w.id == dead.id));
    shutdown.request_graceful();
    join(handle);
}

/// A store where, before each lease renewal, another worker ("thief") takes every renewed
/// job (released, then claimed under its own long lease), so the renewal comes back
/// `Stale`, as when another worker has recovered the job; the counter says how many
/// renewals were attempted.
fn stale_renewals() -> (Arc<Intercept<MemoryStore>>, Arc<AtomicU32>) {
    let renewals = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&renewals);
    let store = Intercept::new(MemoryStore::new(), move |inner, call| {
        let Call::RenewLeases { leases, now, .. } = *call else {
            return Ok(());
        };
        count.fetch_add(1, Ordering::SeqCst);
        let released: Vec<Transition> = leases
            .iter()
            .map(|l| Transition {
                id: l.id.clone(),
                token: l.token,
                kind: TransitionKind::Released,
            })
            .collect();
        if inner.finish(&released, now)?.iter().any(|g| g.is_applied()) {
            inner.claim(&ClaimRequest {
                limit: u32::try_from(leases.len()).unwrap(),
                worker_id: "thief".into(),
                now,
                lease_until: now.add(Duration::from_secs(3600)),
                queues: Vec::new(),
            })?;
        }
        Ok(())
    });
    (Arc::new(store), renewals)
}

#[test]
fn a_stale_lease_renewal_kills_the_job_and_discards_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let (store, renewals) = stale_renewals();
    let scheduler = Scheduler::new(store);
    let pidfile = dir.path().join("pid");
    let id = scheduler
        .enqueue(shell(format!(
            "echo $$ > {}; exec sleep 30",
            pidfile.display()
        )))
        .unwrap();
    let shutdown = Shutdown::new();
    let pool = builder(scheduler.clone(), dir.path())
        .lease(Duration::from_millis(300))
        // Keep recovery from taking the unrenewed job back and running it again.
        .recovery_interval(HANG * 10)
        .build();
    let handle = spawn(pool, &shutdown);
    let pid = read_pid(&pidfile);
    wait_until("the job process is killed", || pid_gone(pid));
    assert!(renewals.load(Ordering::SeqCst) >= 1);
    shutdown.request_graceful();
    let report = join(handle);
    assert_eq!((report.lost, report.succeeded, report.failed), (1, 0, 0));
    let job = scheduler.store().get(&id).unwrap();
    assert_eq!(
        (job.state, job.attempts),
        (JobState::Processing, 0),
        "not reported"
    );
}

#[test]
fn a_pool_runs_over_a_type_erased_store_as_the_cli_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(MemoryStore::new());
    let scheduler = Scheduler::new(store);
    let id = scheduler.enqueue(shell("echo erased")).unwrap();
    let report = builder(scheduler.clone(), dir.path())
        .drain(true)
        .build()
        .run(&Shutdown::new())
        .unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(state(&scheduler, &id), JobState::Completed);
}

/// An in-process handler sees an operator's cancel (`Jobs::cancel` on its running job, as
/// `queuectl cancel` does) through `JobContext::is_cancel_requested` and its `sleep`
/// waking early; whatever it then reports, the job ends `cancelled` with the attempt in its
/// history.
#[test]
fn an_in_process_handler_sees_a_cancel_request_and_its_job_ends_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = memory_scheduler();
    let id = scheduler
        .enqueue(EnqueueRequest {
            kind: Some("poll".into()),
            ..shell("x")
        })
        .unwrap();
    let shutdown = Shutdown::new();
    let saw = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&saw);
    let pool = builder(scheduler.clone(), dir.path())
        .handler("poll", move |_: &Job, ctx: &JobContext| {
            // A long wait that a cancel request cuts short.
            while !ctx.sleep(Duration::from_secs(3600)) {}
            if ctx.is_cancel_requested() && !ctx.is_cancelled() {
                seen.store(1, Ordering::SeqCst);
            }
            // Reports success: the store still records the cancel.
            Outcome::Succeeded {
                execution: Execution::default(),
            }
        })
        .build();
    let handle = spawn(pool, &shutdown);
    wait_until("the job to run", || {
        state(&scheduler, &id) == JobState::Processing
    });
    let requested = scheduler.cancel(&id).unwrap();
    assert!(requested.cancel_requested);
    let asked = std::time::Instant::now();
    wait_until("the job to end cancelled", || {
        state(&scheduler, &id) == JobState::Cancelled
    });
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    shutdown.request_graceful();
    let report = join(handle);
    assert_eq!((report.succeeded, report.failed), (0, 1));
    assert_eq!(saw.load(Ordering::SeqCst), 1, "the handler saw the request");
    let record = scheduler.store().get_record(&id).unwrap();
    assert_eq!(record.job.attempts, 1);
    assert!(!record.job.cancel_requested);
    assert_eq!(
        record.job.last_error.as_deref(),
        Some(queuectl::CANCELLED_WHILE_RUNNING)
    );
    assert_eq!(record.history.len(), 1);
}
