//! `queuectl list`: jobs in insertion order, filtered, as a table or a JSON array.
//!
//! `--json` streams: it reads the store a page at a time ([`Jobs::list_after`], keyset by
//! insertion order) and writes each page before reading the next, so a million jobs cost
//! one page of memory. The JSON is byte for byte what serialising the whole array would
//! give. The table needs every row to size its columns, so it still reads them all.

use std::io::{self, Write as _};

use queuectl::{default_host_id, recover_dead_workers};
use queuectl::{JobFilter, JobStore, Jobs as _};
use serde::ser::{SerializeSeq as _, Serializer as _};

use crate::cli::args::ListArgs;
use crate::cli::open_store::open_to_read;
use crate::cli::output::{jobs_table, print_lines, JobJson, TableStyle};

/// Jobs read per page while streaming JSON.
const PAGE: u32 = 1_000;

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
    if a.json {
        return stream_json(sched.store().as_ref(), &filter);
    }
    let jobs = sched.store().list(&filter)?;
    if jobs.is_empty() {
        eprintln!("no jobs");
        Ok(())
    } else {
        print_lines(jobs_table(&jobs, &TableStyle::for_stdout(utc)))
    }
}

/// Writes the JSON array of the jobs `filter` selects, a page at a time.
fn stream_json(store: &dyn JobStore, filter: &JobFilter) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut ser = serde_json::Serializer::pretty(&mut out);
    let mut seq = ser.serialize_seq(None)?;
    let mut left = filter.limit.map_or(u64::MAX, u64::from);
    let mut after = None;
    while left > 0 {
        let size = u32::try_from(left.min(u64::from(PAGE))).unwrap_or(PAGE);
        let page = store.list_after(filter, after, size)?;
        for job in &page.jobs {
            seq.serialize_element(&JobJson::new(job))?;
        }
        left = left.saturating_sub(page.jobs.len() as u64);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    seq.end()?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
