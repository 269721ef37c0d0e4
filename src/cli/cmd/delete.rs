//! `queuectl delete ID…`: jobs that are not running go, with their output and history.

use anyhow::bail;
use queuectl::StoreError;

use crate::cli::cmd::retry::each;
use crate::cli::job_ref;
use crate::cli::open_store::{open, Sched};
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, ids: &[String]) -> anyhow::Result<()> {
    let (sched, _) = open(db)?;
    each(ids, "delete", |text| delete_one(&sched, text))
}

fn delete_one(sched: &Sched, text: &str) -> anyhow::Result<()> {
    let id = job_ref::resolve(sched, text)?;
    match sched.delete(&id) {
        Ok(job) => print_lines([format!("deleted {}", job.id)]),
        Err(queuectl::Error::Store(StoreError::WrongState { id, state })) => {
            bail!("cannot delete job {id}: it is {state} (cancel it, or wait for it to end, first)")
        }
        Err(e) => Err(e.into()),
    }
}
