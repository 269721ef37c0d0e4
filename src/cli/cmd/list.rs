//! `queuectl list`: jobs in insertion order, filtered, as a table or a JSON array.

use queuectl::JobFilter;
use queuectl::{default_host_id, recover_dead_workers};

use crate::cli::args::ListArgs;
use crate::cli::open_store::open_to_read;
use crate::cli::output::{jobs_table, print_jobs_json, print_lines, TableStyle};

pub(crate) fn run(db: Option<&str>, a: &ListArgs, utc: bool) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    // What dead workers on this host left behind goes back to pending first, so the list
    // tells the truth even while no worker runs. Best effort.
    if let Err(e) = recover_dead_workers(&sched, &default_host_id()) {
        tracing::warn!(error = %e, "recovering dead workers' jobs failed");
    }
    let filter = JobFilter {
        state: a.state.map(Into::into),
        queue: a.queue.clone(),
        limit: a.limit,
    };
    let jobs = sched.store().list(&filter)?;
    if a.json {
        print_jobs_json(&jobs)
    } else if jobs.is_empty() {
        eprintln!("no jobs");
        Ok(())
    } else {
        print_lines(jobs_table(&jobs, &TableStyle::for_stdout(utc)))
    }
}
