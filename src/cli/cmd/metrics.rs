//! `queuectl metrics`: the metrics of [`crate::cli::metrics`], printed once.

use crate::cli::metrics::Snapshot;
use crate::cli::open_store::open_to_read;

pub(crate) fn run(db: Option<&str>) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    let text = Snapshot::gather(&sched)?.render();
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}
