//! `queuectl cancel ID`: pending or failed → cancelled; processing → a cancel request that
//! the job's worker, on any host, carries out (TERM, grace, KILL), ending it `cancelled`.

use anyhow::anyhow;
use queuectl::{JobState, StoreError};

use crate::cli::open_store::open;
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, id: &str) -> anyhow::Result<()> {
    let (sched, _) = open(db)?;
    let id = crate::cli::job_ref::resolve(&sched, id)?;
    match sched.cancel(&id) {
        Ok(job) if job.state == JobState::Processing => print_lines([format!(
            "cancelling {}: it is running; its worker will stop it and it will end cancelled",
            job.id
        )]),
        Ok(job) => print_lines([format!("cancelled {}", job.id)]),
        Err(queuectl::Error::Store(StoreError::WrongState { id, state })) => Err(anyhow!(
            "cannot cancel job {id}: it is {state} (only pending, failed or processing jobs \
             can be cancelled)"
        )),
        Err(e) => Err(e.into()),
    }
}
