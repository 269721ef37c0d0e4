//! `queuectl status`: one `state: N` line per state, then `workers: N` (live slots), then
//! the queues as `queue list` shows them.

use queuectl::{default_host_id, live_workers, recover_dead_workers};
use queuectl::{JobState, StateCounts};
use serde::Serialize;

use crate::cli::args::StatusArgs;
use crate::cli::cmd::queue::{self, QueueJson};
use crate::cli::open_store::open_to_read;
use crate::cli::output::{print_json, print_lines};

#[derive(Serialize)]
struct StatusJson<'a> {
    #[serde(flatten)]
    counts: StateCounts,
    workers: u64,
    queues: Vec<QueueJson<'a>>,
}

pub(crate) fn run(db: Option<&str>, a: &StatusArgs) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    // What dead workers on this host left behind goes back to pending first, so the
    // counts tell the truth even while no worker runs. Best effort.
    if let Err(e) = recover_dead_workers(&sched, &default_host_id()) {
        tracing::warn!(error = %e, "recovering dead workers' jobs failed");
    }
    let counts = sched.store().counts()?;
    let workers = live_workers(&sched)?
        .iter()
        .map(|w| u64::from(w.slots))
        .sum();
    let queues = sched.queue_overview()?;
    if a.json {
        return print_json(&StatusJson {
            counts,
            workers,
            queues: queue::json(&queues),
        });
    }
    let mut lines: Vec<String> = JobState::ALL
        .iter()
        .map(|s| format!("{s}: {}", counts.get(*s)))
        .chain(std::iter::once(format!("workers: {workers}")))
        .collect();
    if !queues.is_empty() {
        lines.push(String::new());
        lines.extend(queue::table(&queues));
    }
    print_lines(lines)
}
