//! The scheduler end to end: enqueue (untimed), then a [`WorkerPool`] in drain mode claims,
//! runs (a no-op in-process handler) and records every job. Per store and claim batch.
//!
//! Run: `cargo bench --bench scheduler` (add `-- memory` for one store). The same figure
//! with pickup latency and RSS: `queuectl bench` (docs/PERFORMANCE.md).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use queuectl::{JobId, JobStore, NewJob, Outcome, Scheduler, Timestamp};
use queuectl::{Shutdown, WorkerPool};
use queuectl_store_memory::MemoryStore;
use queuectl_store_sqlite::SqliteStore;

/// Jobs per measured run (a tenth of it at claim batch 1, which is slow on SQLite).
const JOBS: u64 = 20_000;
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Enqueues [`JOBS`] no-op jobs, then times a drain-mode pool running them all.
fn burn_down<S: JobStore + Clone>(store: S, n: u64, workers: u32, batch: u32) -> Duration {
    let now = Timestamp::now();
    let jobs: Vec<NewJob> = (0..n)
        .map(|_| {
            let mut j = NewJob::shell("noop", now);
            j.kind = "noop".to_owned();
            j.id = JobId::new(format!("s{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
            j
        })
        .collect();
    for chunk in jobs.chunks(10_000) {
        store.enqueue_many(chunk, now).unwrap();
    }
    let pool = WorkerPool::builder(Scheduler::new(store))
        .slots(workers)
        .claim_batch(batch)
        .poll_interval(Duration::from_millis(50))
        .drain(true)
        .handler("noop", |_: &queuectl::Job, _: &queuectl::JobContext| {
            Outcome::success()
        })
        .build();
    let start = Instant::now();
    let report = pool.run(&Shutdown::new()).unwrap();
    let took = start.elapsed();
    assert_eq!(report.succeeded, n);
    took
}

fn bench_store<S: JobStore + Clone>(c: &mut Criterion, name: &str, make: impl Fn() -> S) {
    let mut g = c.benchmark_group("scheduler_end_to_end");
    for (workers, batch) in [(1u32, 1u32), (2, 64), (2, 256)] {
        let n = if batch == 1 { JOBS / 10 } else { JOBS };
        g.throughput(Throughput::Elements(n));
        let id = BenchmarkId::new(name, format!("w{workers}_b{batch}"));
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| burn_down(make(), n, workers, batch))
                    .sum()
            });
        });
    }
    g.finish();
}

fn memory(c: &mut Criterion) {
    bench_store(c, "memory", || Arc::new(MemoryStore::new()));
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicU64::new(0);
    bench_store(c, "sqlite", || {
        let path = dir
            .path()
            .join(format!("sched-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        Arc::new(SqliteStore::open(path).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = memory, sqlite
}
criterion_main!(benches);
