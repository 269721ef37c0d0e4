//! `queuectl wait ID… [--timeout D]`: block until every job has ended (`completed`, `dead`
//! or `cancelled`); exit 0 only if every one completed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use queuectl::{JobId, JobState};

use crate::cli::args::WaitArgs;
use crate::cli::open_store::{open_to_read, Sched};
use crate::cli::output::print_lines;

/// How often the jobs are read while some have not ended. Each look is one indexed read
/// per job still waited on.
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn run(db: Option<&str>, a: &WaitArgs) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    let deadline = a.timeout.map(|t| Instant::now() + t);
    // Unknown ids fail at once, before any waiting; prefixes are resolved once.
    let ids = a
        .ids
        .iter()
        .map(|text| crate::cli::job_ref::resolve(&sched, text))
        .collect::<anyhow::Result<Vec<JobId>>>()?;
    let mut waiting: BTreeSet<&str> = ids.iter().map(JobId::as_str).collect();
    let mut not_completed = Vec::new();
    loop {
        let mut ended = Vec::new();
        for &id in &waiting {
            let state = sched.store().get(&JobId::new(id))?.state;
            if is_final(state) {
                ended.push((id, state));
            }
        }
        for (id, state) in ended {
            waiting.remove(id);
            print_lines([format!("{id} {state}")])?;
            if state != JobState::Completed {
                not_completed.push(format!("{id} ({state})"));
            }
        }
        if waiting.is_empty() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!(
                "timed out waiting for {}",
                still_running(&sched, &waiting).join(", ")
            );
        }
        let nap = deadline.map_or(POLL, |d| {
            POLL.min(d.saturating_duration_since(Instant::now()))
        });
        std::thread::sleep(nap);
    }
    if not_completed.is_empty() {
        Ok(())
    } else {
        bail!("not completed: {}", not_completed.join(", "))
    }
}

fn is_final(state: JobState) -> bool {
    matches!(
        state,
        JobState::Completed | JobState::Dead | JobState::Cancelled
    )
}

/// `id (state)` for each job still waited on, for the timeout message.
fn still_running(sched: &Sched, ids: &BTreeSet<&str>) -> Vec<String> {
    ids.iter()
        .map(|&id| match sched.store().get(&JobId::new(id)) {
            Ok(job) => format!("{id} ({})", job.state),
            Err(_) => id.to_owned(),
        })
        .collect()
}
