//! `queuectl retry ID…`: finished jobs (completed, failed, dead, cancelled) back to pending.

use anyhow::bail;
use queuectl::StoreError;

use crate::cli::job_ref;
use crate::cli::open_store::{open, Sched};
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, ids: &[String]) -> anyhow::Result<()> {
    let (sched, _) = open(db)?;
    each(ids, "retry", |text| retry_one(&sched, text))
}

fn retry_one(sched: &Sched, text: &str) -> anyhow::Result<()> {
    let id = job_ref::resolve(sched, text)?;
    match sched.retry(&id) {
        Ok(job) => print_lines([format!("requeued {}", job.id)]),
        Err(queuectl::Error::Store(StoreError::WrongState { id, state })) => bail!(
            "cannot retry job {id}: it is {state} (only completed, failed, dead or cancelled \
             jobs can be retried)"
        ),
        Err(queuectl::Error::Store(StoreError::Dependency {
            job,
            parent,
            problem,
        })) => bail!("cannot retry job {job}: its dependency {parent} {problem}"),
        Err(e) => Err(e.into()),
    }
}

/// Runs `op` on every id, each on its own: a failure is reported on stderr and the next id
/// still runs; the result fails (exit 1) if any did.
pub(crate) fn each(
    ids: &[String],
    verb: &str,
    mut op: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let [only] = ids {
        return op(only);
    }
    let mut failed = 0usize;
    for text in ids {
        if let Err(e) = op(text) {
            if crate::cli::is_broken_pipe(&e) {
                return Err(e);
            }
            eprintln!("queuectl: error: {}", crate::cli::render_error(&e));
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("could not {verb} {failed} of {} jobs", ids.len());
    }
    Ok(())
}
