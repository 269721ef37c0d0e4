//! The queue's metrics in the Prometheus text format (version 0.0.4), read from the store.
//!
//! `queuectl metrics`, the dashboard's `GET /metrics` and `worker start --metrics ADDR` all
//! print the same series, computed from the store at the moment of the scrape, so every
//! process watching one store reports the same values whichever one Prometheus asks:
//!
//! | series | type | what it is |
//! |---|---|---|
//! | `queuectl_jobs{queue,state}` | gauge | jobs in the store in that queue and state (all six states of every queue that holds a job, zeros included) |
//! | `queuectl_workers` | gauge | live worker slots, as `status` counts them |
//! | `queuectl_oldest_pending_age_seconds{queue}` | gauge | how long the queue's longest-waiting *due* `pending` job has been claimable (now − its `next_run_at`); 0 when none is due |
//! | `queuectl_attempts_total{queue,outcome}` | counter | finished attempts, `outcome` `completed` or `failed`: those in the history of the jobs in the store plus those of jobs since pruned or deleted |
//! | `queuectl_attempt_duration_seconds{queue}` | histogram | finish − start of the attempts of the jobs still in the store |
//! | `queuectl_pickup_latency_seconds{queue}` | histogram | claim − due time of each job's first attempt since it was enqueued or retried (later attempts wait out a backoff whose end is not kept) |
//!
//! The attempt series are derived from the store, not counted in a process: a
//! process-local counter would only see the attempts of its own process, and a dashboard
//! or a one-shot `queuectl metrics` runs none. `queuectl_attempts_total` never goes down:
//! whatever deletes jobs (retention, `prune`, `dlq purge`, `delete`) first adds their
//! attempts to the store's totals per queue and minute, in the same transaction, and
//! [`Jobs::attempt_stats`](queuectl::Jobs::attempt_stats) counts those too. The two
//! histograms cover the jobs still stored, so pruning lowers them (Prometheus reads a
//! reset); see docs/DECISIONS.md.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use queuectl::live_workers;
use queuectl::{AttemptStats, AttemptStatsRequest, Histogram, JobState, QueueStats, Timestamp};

use crate::cli::open_store::Sched;

/// The `Content-Type` of what [`render`] returns.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the attempt-duration buckets, in milliseconds: from a no-op job to an
/// hour-long batch.
const DURATION_BOUNDS_MS: [u64; 12] = [
    10, 50, 100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];

/// Upper bounds of the pickup-latency buckets, in milliseconds: from an idle worker woken at
/// once to a backlog an hour deep.
const PICKUP_BOUNDS_MS: [u64; 13] = [
    10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000,
];

/// What one scrape reports, read from the store.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    now: Timestamp,
    queues: Vec<QueueStats>,
    attempts: AttemptStats,
    worker_slots: u64,
}

impl Snapshot {
    /// Reads everything the metrics report (three store reads; see the module docs for
    /// their cost).
    pub(crate) fn gather(sched: &Sched) -> anyhow::Result<Self> {
        let now = sched.now();
        let store = sched.store();
        let queues = store.queue_stats(now)?;
        let attempts = store.attempt_stats(&AttemptStatsRequest {
            since: None,
            duration_bounds_ms: DURATION_BOUNDS_MS.to_vec(),
            pickup_bounds_ms: PICKUP_BOUNDS_MS.to_vec(),
            step_ms: 0,
        })?;
        let worker_slots = live_workers(sched)?
            .iter()
            .map(|w| u64::from(w.slots))
            .sum();
        Ok(Snapshot {
            now,
            queues,
            attempts,
            worker_slots,
        })
    }

    /// The Prometheus text.
    pub(crate) fn render(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in the
        // collector below, which then still returns what was written.
        if prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).is_err() {
            let _ = writeln!(text, "# queuectl: the metrics could not be encoded in full");
        }
        text
    }
}

/// Serves `GET /metrics` on `listener` from a thread of its own until the process exits
/// (`worker start --metrics ADDR`). Each scrape reads the store on the runtime's blocking
/// pool, so a slow read never holds up the worker's slots. Only aggregates are served
/// (counts, queue names, timings), no job's command or output, so no token is asked.
///
/// # Errors
/// The thread or the runtime could not be started.
pub(crate) fn serve_in_background(
    listener: std::net::TcpListener,
    sched: Sched,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse as _;
    use std::sync::Arc;

    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let sched = Arc::new(sched);
    std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let scrape = move || {
                    let sched = Arc::clone(&sched);
                    async move {
                        let text = tokio::task::spawn_blocking(move || {
                            Snapshot::gather(&sched).map(|s| s.render())
                        })
                        .await;
                        match text {
                            Ok(Ok(text)) => {
                                ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
                            }
                            Ok(Err(e)) => {
                                let message = crate::cli::render_error(&e);
                                tracing::warn!(error = %message, "metrics scrape failed");
                                (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
                            }
                            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                        }
                    }
                };
                let router = axum::Router::new().route("/metrics", axum::routing::get(scrape));
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, router).await {
                            tracing::warn!(error = %e, "the metrics server stopped");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot serve metrics"),
                }
            });
        })?;
    Ok(())
}

fn seconds(ms: u64) -> f64 {
    Duration::from_millis(ms).as_secs_f64()
}

/// The `(upper bound in seconds, count)` pairs of a histogram, non-cumulative, ending with
/// `+Inf` as the encoder expects.
fn buckets(bounds_ms: &[u64], h: &Histogram) -> Vec<(f64, u64)> {
    bounds_ms
        .iter()
        .map(|b| seconds(*b))
        .chain(std::iter::once(f64::INFINITY))
        .zip(h.buckets.iter().copied().chain(std::iter::repeat(0)))
        .collect()
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut jobs = encoder.encode_descriptor(
            "queuectl_jobs",
            "Jobs in the store by queue and state.",
            None,
            MetricType::Gauge,
        )?;
        for q in &self.queues {
            for state in JobState::ALL {
                let labels = [("queue", q.queue.as_str()), ("state", state.as_str())];
                jobs.encode_family(&labels)?
                    .encode_gauge(&q.counts.get(state))?;
            }
        }

        encoder
            .encode_descriptor(
                "queuectl_workers",
                "Live worker slots (a worker started with --count 3 has 3).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.worker_slots)?;

        let mut oldest = encoder.encode_descriptor(
            "queuectl_oldest_pending_age_seconds",
            "How long the queue's longest-waiting due pending job has been claimable (0 when none is due).",
            None,
            MetricType::Gauge,
        )?;
        for q in &self.queues {
            let age = q
                .oldest_due
                .map_or(0.0, |due| self.now.since(due).as_secs_f64());
            oldest
                .encode_family(&[("queue", q.queue.as_str())])?
                .encode_gauge(&age)?;
        }

        let mut attempts = encoder.encode_descriptor(
            "queuectl_attempts",
            "Finished attempts by queue and outcome, including those of jobs since pruned or deleted.",
            None,
            MetricType::Counter,
        )?;
        for q in &self.attempts.queues {
            for (outcome, n) in [("completed", q.completed), ("failed", q.failed)] {
                attempts
                    .encode_family(&[("queue", q.queue.as_str()), ("outcome", outcome)])?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }

        for (name, help, bounds, pick) in [
            (
                "queuectl_attempt_duration_seconds",
                "Duration of the finished attempts of the jobs in the store.",
                &DURATION_BOUNDS_MS[..],
                (|q| &q.duration) as fn(&queuectl::QueueAttempts) -> &Histogram,
            ),
            (
                "queuectl_pickup_latency_seconds",
                "From due to claimed, for each job's first attempt since it was enqueued or retried.",
                &PICKUP_BOUNDS_MS[..],
                |q| &q.pickup,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for q in &self.attempts.queues {
                let h = pick(q);
                metric
                    .encode_family(&[("queue", q.queue.as_str())])?
                    .encode_histogram::<NoLabelSet>(
                        seconds(h.sum_ms),
                        h.count,
                        &buckets(bounds, h),
                        None,
                    )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_end_with_inf_and_keep_every_count() {
        let h = Histogram {
            buckets: vec![1, 0, 4],
            count: 5,
            sum_ms: 12_000,
        };
        assert_eq!(
            buckets(&[10, 1_000], &h),
            vec![(0.01, 1), (1.0, 0), (f64::INFINITY, 4)]
        );
    }
}
