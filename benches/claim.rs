//! Claim throughput per store: claim + finish of single jobs beside 0 and 100,000 jobs
//! blocked on a dependency, claim + finish at batch sizes 1, 16 and 128, finish + next
//! claim in one call at 1 and 16, and enqueue single and batched. One generic harness, one
//! adapter line per store (redb's `BenchDatabase` idea).
//!
//! Run: `cargo bench --bench claim` (add `-- claim_finish` to run one group).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use queuectl::{
    ClaimRequest, Execution, JobId, JobStore, NewJob, Timestamp, Transition, TransitionKind,
};
use queuectl_store_memory::MemoryStore;
use queuectl_store_sqlite::SqliteStore;

const NOW: Timestamp = Timestamp::from_millis(1_764_000_000_000);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn jobs(n: u64) -> Vec<NewJob> {
    (0..n)
        .map(|_| {
            let mut j = NewJob::shell("true", NOW);
            j.id = JobId::new(format!("b{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
            j
        })
        .collect()
}

/// Enqueues `iters * batch` jobs (untimed), then times claiming them `batch` at a time
/// and finishing each batch as completed in one call.
fn claim_finish<S: JobStore>(store: &S, batch: u32, iters: u64) -> Duration {
    for chunk in jobs(iters * u64::from(batch)).chunks(10_000) {
        store.enqueue_many(chunk, NOW).unwrap();
    }
    let req = ClaimRequest {
        limit: batch,
        worker_id: "bench".into(),
        now: NOW,
        lease_until: NOW.add(Duration::from_secs(30)),
        queues: Vec::new(),
    };
    let start = Instant::now();
    for _ in 0..iters {
        let claimed = store.claim(&req).unwrap();
        let done: Vec<Transition> = claimed
            .into_iter()
            .map(|j| Transition {
                id: j.id,
                token: j.claim_token.unwrap(),
                kind: TransitionKind::Completed {
                    execution: Execution::default(),
                },
            })
            .collect();
        store.finish(&done, NOW).unwrap();
    }
    start.elapsed()
}

/// As [`claim_finish`], but each batch's finish and the next claim go in one
/// `finish_and_claim` call, as the worker pool does (one transaction on SQLite).
fn finish_and_claim<S: JobStore>(store: &S, batch: u32, iters: u64) -> Duration {
    for chunk in jobs(iters * u64::from(batch)).chunks(10_000) {
        store.enqueue_many(chunk, NOW).unwrap();
    }
    let req = ClaimRequest {
        limit: batch,
        worker_id: "bench".into(),
        now: NOW,
        lease_until: NOW.add(Duration::from_secs(30)),
        queues: Vec::new(),
    };
    let start = Instant::now();
    let mut claimed = store.claim(&req).unwrap();
    for _ in 0..iters {
        let done: Vec<Transition> = claimed
            .into_iter()
            .map(|j| Transition {
                id: j.id,
                token: j.claim_token.unwrap(),
                kind: TransitionKind::Completed {
                    execution: Execution::default(),
                },
            })
            .collect();
        claimed = store.finish_and_claim(&done, NOW, &req).unwrap().1;
    }
    start.elapsed()
}

/// Stores `n` jobs that wait on a parent that never becomes claimable (it is due in 2100),
/// so they stay blocked for the whole bench.
fn block<S: JobStore>(store: &S, n: u64) {
    if n == 0 {
        return;
    }
    let parent = jobs(1).remove(0);
    let mut parent = NewJob {
        run_at: Timestamp::from_millis(4_102_444_800_000),
        ..parent
    };
    parent.id = JobId::new(format!(
        "parent-{}",
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    ));
    store.enqueue(&parent, NOW).unwrap();
    let mut children = jobs(n);
    for child in &mut children {
        child.options.depends_on = vec![parent.id.clone()];
    }
    for chunk in children.chunks(10_000) {
        store.enqueue_many(chunk, NOW).unwrap();
    }
}

/// Registers every group for one store.
pub fn bench_store<S: JobStore>(c: &mut Criterion, name: &str, make: impl Fn() -> S) {
    // A job waiting on a parent must cost the claim nothing: claim + finish of single jobs
    // with no blocked job in the store and with 100,000.
    let mut g = c.benchmark_group("claim_with_blocked");
    for blocked in [0u64, 100_000] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new(name, blocked), &blocked, |b, &blocked| {
            let store = make();
            block(&store, blocked);
            b.iter_custom(|iters| claim_finish(&store, 1, iters));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("claim_finish");
    for batch in [1u32, 16, 128] {
        g.throughput(Throughput::Elements(u64::from(batch)));
        g.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
            let store = make();
            b.iter_custom(|iters| claim_finish(&store, batch, iters));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("finish_and_claim");
    for batch in [1u32, 16] {
        g.throughput(Throughput::Elements(u64::from(batch)));
        g.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
            let store = make();
            b.iter_custom(|iters| finish_and_claim(&store, batch, iters));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("enqueue");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new(name, "single"), |b| {
        let store = make();
        b.iter_custom(|iters| {
            let batch = jobs(iters);
            let start = Instant::now();
            for j in &batch {
                store.enqueue(j, NOW).unwrap();
            }
            start.elapsed()
        });
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function(BenchmarkId::new(name, "batch_1000"), |b| {
        let store = make();
        b.iter_custom(|iters| {
            let batches: Vec<Vec<NewJob>> = (0..iters).map(|_| jobs(1000)).collect();
            let start = Instant::now();
            for batch in &batches {
                store.enqueue_many(batch, NOW).unwrap();
            }
            start.elapsed()
        });
    });
    g.finish();
}

fn memory(c: &mut Criterion) {
    bench_store(c, "memory", MemoryStore::new);
}

fn sqlite(c: &mut Criterion) {
    // One temp dir for the whole run; each bench opens a fresh file in it.
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicU64::new(0);
    bench_store(c, "sqlite", || {
        let path = dir
            .path()
            .join(format!("bench-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        SqliteStore::open(path).unwrap()
    });
}

/// PostgreSQL, when `QUEUECTL_TEST_POSTGRES_URL` names a server (each bench gets a fresh
/// schema, dropped at the end); skipped with a note otherwise.
#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    use diesel::{Connection as _, RunQueryDsl as _};

    let Ok(url) = std::env::var("QUEUECTL_TEST_POSTGRES_URL") else {
        eprintln!("skipping postgres benches: QUEUECTL_TEST_POSTGRES_URL not set");
        return;
    };
    let schemas = std::sync::Mutex::new(Vec::new());
    bench_store(c, "postgres", || {
        let schema = format!("bench_{}", uuid_suffix());
        schemas.lock().unwrap().push(schema.clone());
        queuectl_store_postgres::PostgresStore::connect_with(
            &url,
            queuectl_store_postgres::PostgresOptions {
                schema: Some(schema),
                ..Default::default()
            },
        )
        .unwrap()
    });
    // Every store is gone by now; a schema left behind is only clutter, so best effort.
    if let Ok(mut conn) = diesel::PgConnection::establish(&url) {
        for schema in schemas.lock().unwrap().iter() {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut conn);
        }
    }
}

/// A build without the `postgres` feature has no PostgreSQL store to measure.
#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    eprintln!("skipping postgres benches: built without the postgres feature");
}

#[cfg(feature = "postgres")]
fn uuid_suffix() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = memory, sqlite, postgres
}
criterion_main!(benches);
