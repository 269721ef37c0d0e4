//! `queuectl cancel ID`: pending or failed → cancelled.

use anyhow::anyhow;
use queuectl::StoreError;

use crate::cli::open_store::open;
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, id: &str) -> anyhow::Result<()> {
    let (sched, _) = open(db)?;
    let id = crate::cli::job_ref::resolve(&sched, id)?;
    match sched.cancel(&id) {
        Ok(job) => print_lines([format!("cancelled {}", job.id)]),
        Err(queuectl::Error::Store(StoreError::WrongState { id, state })) => Err(anyhow!(
            "cannot cancel job {id}: it is {state} (only pending or failed jobs can be cancelled)"
        )),
        Err(e) => Err(e.into()),
    }
}
