//! `queuectl init`: create or migrate the store; idempotent.

use crate::cli::open_store::open;
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>) -> anyhow::Result<()> {
    let (_, target) = open(db)?;
    print_lines([format!("initialized {target}")])
}
