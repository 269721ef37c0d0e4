//! `queuectl show ID`: the job as JSON, with its last output and history.

use crate::cli::open_store::open_to_read;
use crate::cli::output::{print_json, RecordJson};

pub(crate) fn run(db: Option<&str>, id: &str) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    let id = crate::cli::job_ref::resolve(&sched, id)?;
    let record = sched.store().get_record(&id)?;
    print_json(&RecordJson::new(&record))
}
