//! Cases for the operator's aggregate reads (`attempt_stats`, `page`, `queue_stats`): what
//! the dashboard and the metrics show.

use queuectl_store::{
    AttemptStatsRequest, Histogram, JobCursor, JobPageRequest, JobState, JobStore, NewJob,
    QueueAttempts, QueueStats, StateCounts, ThroughputBucket, Timestamp, TransitionKind,
};

use crate::fixture::{
    at, claim_request, execution, ids, insert, job_in_state, new_job_with_id, transition, T0,
};
use crate::TestStore;

fn in_queue(id: &str, queue: &str, state: JobState) -> queuectl_store::Job {
    queuectl_store::Job {
        queue: queue.to_owned(),
        ..job_in_state(id, state)
    }
}

fn counts(pairs: &[(JobState, u64)]) -> StateCounts {
    let mut counts = StateCounts::default();
    for (state, n) in pairs {
        *counts.get_mut(*state) += n;
    }
    counts
}

// ----- queue_stats -----

/// Every queue holding a job appears once, sorted by name in byte order, with its jobs
/// counted by state; an empty store has no queues.
pub fn queue_stats_counts_each_queue_by_state_sorted_by_name<S: JobStore>(store: TestStore<S>) {
    assert_eq!(store.queue_stats(T0).expect("empty"), Vec::new());
    let jobs = [
        ("m1", "mail", JobState::Completed),
        ("d1", "default", JobState::Pending),
        ("m2", "mail", JobState::Dead),
        ("B1", "Zeta", JobState::Processing),
        ("m3", "mail", JobState::Completed),
        ("d2", "default", JobState::Cancelled),
        ("u1", "übung", JobState::Failed),
    ];
    for (id, queue, state) in jobs {
        insert(&*store, in_queue(id, queue, state));
    }
    let stats = store.queue_stats(at(3600)).expect("queue_stats");
    let names: Vec<&str> = stats.iter().map(|q| q.queue.as_str()).collect();
    // Byte order: upper case before lower case, and "ü" (0xC3…) after ASCII.
    assert_eq!(names, ["Zeta", "default", "mail", "übung"]);
    assert_eq!(stats[0].counts, counts(&[(JobState::Processing, 1)]));
    assert_eq!(
        stats[1].counts,
        counts(&[(JobState::Pending, 1), (JobState::Cancelled, 1)])
    );
    assert_eq!(
        stats[2].counts,
        counts(&[(JobState::Completed, 2), (JobState::Dead, 1)])
    );
    assert_eq!(stats[3].counts, counts(&[(JobState::Failed, 1)]));
    let total: u64 = stats.iter().map(|q| q.counts.total()).sum();
    assert_eq!(total, store.counts().expect("counts").total());
}

/// `oldest_due` is the earliest `next_run_at <= now` among a queue's `pending` jobs;
/// future-dated pending jobs and jobs in other states (a due `failed` one included) do
/// not count, and a queue without a due pending job has none.
pub fn queue_stats_oldest_due_is_the_earliest_due_pending_job<S: JobStore>(store: TestStore<S>) {
    let due = |id: &str, queue: &str, state: JobState, secs: u64| queuectl_store::Job {
        next_run_at: Some(at(secs)),
        run_at: at(secs),
        ..in_queue(id, queue, state)
    };
    insert(&*store, due("late", "a", JobState::Pending, 50));
    insert(&*store, due("early", "a", JobState::Pending, 20));
    insert(&*store, due("future", "a", JobState::Pending, 500));
    insert(&*store, due("retry", "a", JobState::Failed, 5));
    insert(&*store, due("later-only", "b", JobState::Pending, 500));
    insert(&*store, in_queue("done", "c", JobState::Completed));
    let stats = store.queue_stats(at(100)).expect("queue_stats");
    let oldest: Vec<(&str, Option<Timestamp>)> = stats
        .iter()
        .map(|q| (q.queue.as_str(), q.oldest_due))
        .collect();
    assert_eq!(
        oldest,
        [("a", Some(at(20))), ("b", None), ("c", None)],
        "{stats:?}"
    );
    // Exactly at its due time, a job counts as due.
    let stats = store.queue_stats(at(500)).expect("queue_stats");
    assert_eq!(stats[1].oldest_due, Some(at(500)));
}

// ----- page -----

/// Pages run newest first; each page's `next` continues below its last job, the last page
/// has none, and jobs inserted after the first page was read never shift later pages.
pub fn page_returns_newest_first_and_continues_below_the_cursor<S: JobStore>(store: TestStore<S>) {
    for i in 1..=7 {
        store
            .enqueue(&new_job_with_id(&format!("j{i}")), T0)
            .expect("enqueue");
    }
    let mut req = JobPageRequest {
        limit: 3,
        ..JobPageRequest::default()
    };
    let first = store.page(&req).expect("page 1");
    assert_eq!(ids(&first.jobs), ["j7", "j6", "j5"]);
    let Some(cursor) = first.next else {
        panic!("more jobs follow the first page: {first:?}")
    };
    store
        .enqueue(&new_job_with_id("j8"), T0)
        .expect("enqueue between pages");
    req.before = Some(cursor);
    let second = store.page(&req).expect("page 2");
    assert_eq!(ids(&second.jobs), ["j4", "j3", "j2"]);
    req.before = second.next;
    assert!(req.before.is_some(), "one job is left: {second:?}");
    let third = store.page(&req).expect("page 3");
    assert_eq!(ids(&third.jobs), ["j1"]);
    assert_eq!(third.next, None);
    // A page that ends exactly with the last job has no `next`.
    req.before = None;
    req.limit = 8;
    let all = store.page(&req).expect("all");
    assert_eq!(all.jobs.len(), 8);
    assert_eq!(all.next, None);
    req.limit = 0;
    assert_eq!(store.page(&req).expect("limit 0").jobs, Vec::new());
    // The cursor of the first page still means the same position.
    req.limit = 10;
    req.before = Some(cursor);
    assert_eq!(
        ids(&store.page(&req).expect("again").jobs),
        ["j4", "j3", "j2", "j1"]
    );
}

/// `list_after` pages through exactly what `list` returns, oldest first, for any filter and
/// page size; its filter's own `limit` is ignored; a page ending with the last job has no
/// `next`.
pub fn list_after_pages_through_what_list_returns_in_insertion_order<S: JobStore>(
    store: TestStore<S>,
) {
    let jobs = (0..11).map(|i| {
        let state = if i % 3 == 0 {
            JobState::Dead
        } else {
            JobState::Pending
        };
        in_queue(
            &format!("l{i:02}"),
            if i % 2 == 0 { "a" } else { "b" },
            state,
        )
    });
    for job in jobs {
        insert(&*store, job);
    }
    let filters = [
        queuectl_store::JobFilter::default(),
        queuectl_store::JobFilter {
            state: Some(JobState::Pending),
            ..queuectl_store::JobFilter::default()
        },
        queuectl_store::JobFilter {
            queue: Some("a".to_owned()),
            limit: Some(1),
            ..queuectl_store::JobFilter::default()
        },
        queuectl_store::JobFilter {
            state: Some(JobState::Dead),
            queue: Some("b".to_owned()),
            limit: None,
        },
    ];
    for filter in filters {
        let expected = store
            .list(&queuectl_store::JobFilter {
                limit: None,
                ..filter.clone()
            })
            .expect("list");
        for size in [1, 2, 3, 20] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store.list_after(&filter, after, size).expect("list_after");
                assert!(page.jobs.len() <= size as usize, "{filter:?} {size}");
                seen.extend(page.jobs);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(ids(&seen), ids(&expected), "{filter:?}, pages of {size}");
        }
    }
    assert!(store
        .list_after(&queuectl_store::JobFilter::default(), None, 0)
        .expect("limit 0")
        .jobs
        .is_empty());
}

/// State, queue and search filters combine; search is a case-sensitive substring of the
/// id or the command, with `%`, `_` and `*` matching only themselves; the returned jobs are
/// the full rows `get` returns.
pub fn page_filters_by_state_queue_and_search<S: JobStore>(store: TestStore<S>) {
    let job = |id: &str, command: &str, queue: &str, state: JobState| queuectl_store::Job {
        command: command.to_owned(),
        ..in_queue(id, queue, state)
    };
    let rows = [
        job("a-1", "echo Report 100%", "mail", JobState::Dead),
        job("a-2", "echo report_x", "mail", JobState::Completed),
        job("b-1", "send report", "default", JobState::Dead),
        job("report-9", "true", "mail", JobState::Dead),
        job("c-1", "echo 1000", "mail", JobState::Dead),
    ];
    for row in rows {
        insert(&*store, row);
    }
    let page = |state: Option<JobState>, queue: Option<&str>, search: Option<&str>| {
        let req = JobPageRequest {
            state,
            queue: queue.map(str::to_owned),
            search: search.map(str::to_owned),
            before: None,
            limit: 10,
        };
        let page = store.page(&req).expect("page");
        ids(&page.jobs)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(page(None, None, Some("report")), ["report-9", "b-1", "a-2"]);
    assert_eq!(page(None, None, Some("Report")), ["a-1"]);
    assert_eq!(page(None, None, Some("100%")), ["a-1"]);
    assert_eq!(page(None, None, Some("10%")), Vec::<String>::new());
    assert_eq!(page(None, None, Some("t_x")), ["a-2"]);
    assert_eq!(page(None, None, Some("t%x")), Vec::<String>::new());
    assert_eq!(page(None, None, Some("*")), Vec::<String>::new());
    assert_eq!(
        page(Some(JobState::Dead), Some("mail"), Some("report")),
        ["report-9"]
    );
    assert_eq!(
        page(Some(JobState::Dead), None, None),
        ["c-1", "report-9", "b-1", "a-1"]
    );
    assert_eq!(page(None, Some("mail"), Some("")).len(), 4);
    assert_eq!(page(None, Some("nowhere"), None), Vec::<String>::new());
    // Paging through a filtered list skips the jobs that do not match.
    let req = JobPageRequest {
        state: Some(JobState::Dead),
        queue: Some("mail".to_owned()),
        search: None,
        before: None,
        limit: 2,
    };
    let first = store.page(&req).expect("first");
    assert_eq!(ids(&first.jobs), ["c-1", "report-9"]);
    assert_eq!(first.jobs[0], store.get(&first.jobs[0].id).expect("get"));
    let second = store
        .page(&JobPageRequest {
            before: first.next,
            ..req.clone()
        })
        .expect("second");
    assert_eq!(ids(&second.jobs), ["a-1"]);
    assert_eq!(second.next, None);
    // A cursor far past the newest job behaves like none.
    let far = store
        .page(&JobPageRequest {
            before: Some(JobCursor(u64::MAX)),
            ..req
        })
        .expect("far");
    assert_eq!(ids(&far.jobs), ["c-1", "report-9"]);
}

// ----- attempt_stats -----

fn stats_request(since: Option<Timestamp>) -> AttemptStatsRequest {
    AttemptStatsRequest {
        since,
        duration_bounds_ms: vec![1_000, 5_000],
        pickup_bounds_ms: vec![10_000, 60_000],
        step_ms: 60_000,
    }
}

fn histogram(buckets: &[u64], sum_ms: u64) -> Histogram {
    Histogram {
        buckets: buckets.to_vec(),
        count: buckets.iter().sum(),
        sum_ms,
    }
}

/// Every finished attempt in the store counts once, as completed or failed by whether its
/// history entry has an error, per queue; durations and first pickups fill the histograms;
/// the series buckets attempts by finish time; `since` drops what finished before it.
pub fn attempt_stats_summarise_finished_attempts_per_queue<S: JobStore>(store: TestStore<S>) {
    let new = |id: &str, queue: &str| NewJob {
        queue: queue.to_owned(),
        ..new_job_with_id(id)
    };
    // "flaky" (queue a) fails once after 2 s, then succeeds after 4 s; "quick" (queue b)
    // succeeds after 0.5 s; "waiting" (queue b) is claimed but still running; "idle" never
    // runs. Everything was due at T0.
    for (id, queue) in [
        ("flaky", "a"),
        ("quick", "b"),
        ("waiting", "b"),
        ("idle", "c"),
    ] {
        store.enqueue(&new(id, queue), T0).expect("enqueue");
    }
    let claim = |id: &str, now: Timestamp| {
        let claimed = store
            .claim(&claim_request("w1", now, 1))
            .expect("claim")
            .pop()
            .expect("a job");
        assert_eq!(claimed.id.as_str(), id);
        claimed
    };
    let flaky = claim("flaky", at(5));
    let failed = TransitionKind::Failed {
        execution: execution(1, "", "boom"),
        error: "exit code 1".to_owned(),
        retry_at: at(60),
    };
    store
        .finish(&[transition(&flaky, failed)], at(7))
        .expect("fail");
    let quick = claim("quick", at(30));
    let ok = |code| TransitionKind::Completed {
        execution: execution(code, "ok", ""),
    };
    store
        .finish(
            &[transition(&quick, ok(0))],
            Timestamp::from_millis(at(30).as_millis() + 500),
        )
        .expect("complete quick");
    let waiting = claim("waiting", at(40));
    assert_eq!(waiting.attempts, 0);
    // "idle" is in queue c and left alone by claiming with its queue excluded.
    let flaky = store
        .claim(&queuectl_store::ClaimRequest {
            queues: vec!["a".to_owned()],
            ..claim_request("w1", at(70), 1)
        })
        .expect("reclaim")
        .pop()
        .expect("flaky again");
    store
        .finish(&[transition(&flaky, ok(0))], at(74))
        .expect("complete flaky");

    let stats = store.attempt_stats(&stats_request(None)).expect("stats");
    assert_eq!(
        stats.queues,
        [
            QueueAttempts {
                queue: "a".to_owned(),
                completed: 1,
                failed: 1,
                duration: histogram(&[0, 2, 0], 6_000),
                // flaky ran twice: its first pickup's start is gone, so it is left out.
                pickup: histogram(&[0, 0, 0], 0),
            },
            QueueAttempts {
                queue: "b".to_owned(),
                completed: 1,
                failed: 0,
                duration: histogram(&[1, 0, 0], 500),
                // quick waited 30 s, waiting (still running, no attempt yet) 40 s.
                pickup: histogram(&[0, 2, 0], 70_000),
            },
        ]
    );
    let minute = |m: i64| Timestamp::from_millis((T0.as_millis() / 60_000 + m) * 60_000);
    // T0 is a whole minute: attempts at T0+7s and T0+30.5s fall in its bucket, T0+74s in
    // the next.
    assert_eq!(T0.as_millis() % 60_000, 0);
    assert_eq!(
        stats.series,
        [
            ThroughputBucket {
                start: minute(0),
                completed: 1,
                failed: 1,
            },
            ThroughputBucket {
                start: minute(1),
                completed: 1,
                failed: 0,
            },
        ]
    );

    // Only what finished at or after `since` (and pickups that started then).
    let recent = store
        .attempt_stats(&stats_request(Some(at(31))))
        .expect("recent");
    let summary: Vec<(&str, u64, u64, u64)> = recent
        .queues
        .iter()
        .map(|q| (q.queue.as_str(), q.completed, q.failed, q.pickup.count))
        .collect();
    assert_eq!(summary, [("a", 1, 0, 0), ("b", 0, 0, 1)]);
    assert_eq!(recent.series.len(), 1);

    // No series when no step is asked for.
    let no_series = store
        .attempt_stats(&AttemptStatsRequest {
            step_ms: 0,
            ..stats_request(None)
        })
        .expect("no series");
    assert!(no_series.series.is_empty());
    assert_eq!(no_series.queues, stats.queues);
}

/// A store without finished attempts or running jobs has nothing to summarise; queues of
/// pending jobs do not appear.
pub fn attempt_stats_of_a_store_without_attempts_is_empty<S: JobStore>(store: TestStore<S>) {
    assert_eq!(
        store.attempt_stats(&stats_request(None)).expect("empty"),
        queuectl_store::AttemptStats::default()
    );
    store
        .enqueue(&new_job_with_id("pending"), T0)
        .expect("enqueue");
    assert_eq!(
        store.attempt_stats(&stats_request(None)).expect("pending"),
        queuectl_store::AttemptStats::default()
    );
    // QueueStats still lists the queue: the two reads answer different questions.
    assert_eq!(
        store.queue_stats(T0).expect("queue_stats"),
        [QueueStats {
            queue: "default".to_owned(),
            counts: counts(&[(JobState::Pending, 1)]),
            oldest_due: Some(T0),
            waiting: 0,
        }]
    );
}
