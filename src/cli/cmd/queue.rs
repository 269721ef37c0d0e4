//! `queuectl queue list | pause | resume | concurrency`: the queue controls, and the
//! per-queue rows `status` shows too.

use queuectl::{JobState, QueueOverview, QueueSettings};
use serde::Serialize;

use crate::cli::args::QueueCommand;
use crate::cli::open_store::{open, open_to_read};
use crate::cli::output::{one_line, print_json, print_lines};

pub(crate) fn run(db: Option<&str>, command: QueueCommand) -> anyhow::Result<()> {
    match command {
        QueueCommand::List(a) => {
            let (sched, _) = open_to_read(db)?;
            let queues = sched.queue_overview()?;
            if a.json {
                return print_json(&json(&queues));
            }
            if queues.is_empty() {
                eprintln!("no queues");
                return Ok(());
            }
            print_lines(table(&queues))
        }
        QueueCommand::Pause(a) => {
            let (sched, _) = open(db)?;
            print_change(&sched.pause_queue(&a.queue)?)
        }
        QueueCommand::Resume(a) => {
            let (sched, _) = open(db)?;
            print_change(&sched.resume_queue(&a.queue)?)
        }
        QueueCommand::Concurrency(a) => {
            let (sched, _) = open(db)?;
            print_change(&sched.set_queue_concurrency(&a.queue, a.limit)?)
        }
    }
}

/// One line saying what the queue's controls are now.
fn print_change(s: &QueueSettings) -> anyhow::Result<()> {
    let paused = if s.paused { "paused" } else { "not paused" };
    let limit = s.concurrency.map_or_else(
        || "no concurrency limit".to_owned(),
        |n| format!("concurrency {n}"),
    );
    print_lines([format!(
        "queue {}: {paused}, {limit}",
        one_line(&s.queue, usize::MAX)
    )])
}

/// A queue as `queue list --json` and `status --json` print it: exactly these keys, in
/// this order.
#[derive(Serialize)]
pub(crate) struct QueueJson<'a> {
    queue: &'a str,
    paused: bool,
    concurrency: Option<u32>,
    pending: u64,
    processing: u64,
    failed: u64,
    dead: u64,
    completed: u64,
    cancelled: u64,
}

/// The JSON objects of `queues`.
pub(crate) fn json(queues: &[QueueOverview]) -> Vec<QueueJson<'_>> {
    queues
        .iter()
        .map(|q| QueueJson {
            queue: &q.queue,
            paused: q.paused,
            concurrency: q.concurrency,
            pending: q.counts.pending,
            processing: q.counts.processing,
            failed: q.counts.failed,
            dead: q.counts.dead,
            completed: q.counts.completed,
            cancelled: q.counts.cancelled,
        })
        .collect()
}

/// The states a queue row counts, in the contract's column order.
const COUNTED: [JobState; 6] = [
    JobState::Pending,
    JobState::Processing,
    JobState::Failed,
    JobState::Dead,
    JobState::Completed,
    JobState::Cancelled,
];

/// `queues` as an aligned table for people, header first.
pub(crate) fn table(queues: &[QueueOverview]) -> Vec<String> {
    let mut rows: Vec<Vec<String>> = vec![["QUEUE", "PAUSED", "CONCURRENCY"]
        .into_iter()
        .map(str::to_owned)
        .chain(COUNTED.iter().map(|s| s.as_str().to_uppercase()))
        .collect()];
    for q in queues {
        let mut row = vec![
            one_line(&q.queue, usize::MAX),
            if q.paused { "yes" } else { "no" }.to_owned(),
            q.concurrency
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        ];
        row.extend(COUNTED.iter().map(|s| q.counts.get(*s).to_string()));
        rows.push(row);
    }
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                // Padded by hand: `{:<w$}` panics for widths above u16::MAX, and queue
                // names have no length limit.
                .map(|(cell, w)| {
                    let pad = w.saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use queuectl::StateCounts;

    use super::*;

    fn overview(queue: &str, paused: bool, concurrency: Option<u32>) -> QueueOverview {
        QueueOverview {
            queue: queue.to_owned(),
            paused,
            concurrency,
            counts: StateCounts {
                pending: 12,
                completed: 3,
                ..StateCounts::default()
            },
        }
    }

    #[test]
    fn the_json_has_exactly_the_contract_keys_in_order() {
        let text = serde_json::to_string(&json(&[overview("mail", true, None)])).expect("json");
        assert_eq!(
            text,
            r#"[{"queue":"mail","paused":true,"concurrency":null,"pending":12,"processing":0,"failed":0,"dead":0,"completed":3,"cancelled":0}]"#
        );
    }

    #[test]
    fn the_table_aligns_columns() {
        let lines = table(&[
            overview("default", false, None),
            overview("a\nb", true, Some(2)),
        ]);
        assert_eq!(
            lines,
            [
                "QUEUE    PAUSED  CONCURRENCY  PENDING  PROCESSING  FAILED  DEAD  COMPLETED  CANCELLED",
                "default  no      none         12       0           0       0     3          0",
                "a b      yes     2            12       0           0       0     3          0",
            ]
        );
    }
}
