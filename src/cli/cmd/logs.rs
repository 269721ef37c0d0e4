//! `queuectl logs ID`: the stdout and stderr of the job's last attempt.

use std::io::{self, Write};

use queuectl::JobId;

use crate::cli::args::LogsArgs;
use crate::cli::open_store::open_to_read;

pub(crate) fn run(db: Option<&str>, a: &LogsArgs) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    let record = sched.store().get_record(&JobId::new(a.id.as_str()))?;
    let Some(output) = record.output else {
        eprintln!(
            "job {} has no output yet (it has not finished an attempt)",
            a.id
        );
        return Ok(());
    };
    let mut out = io::stdout().lock();
    if a.stdout || a.stderr {
        let text = if a.stdout {
            &output.stdout
        } else {
            &output.stderr
        };
        out.write_all(text.as_bytes())?;
    } else {
        // Both streams go to stdout, labelled, so `logs ID > file` keeps everything.
        for (name, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            writeln!(out, "==> {name} <==")?;
            out.write_all(text.as_bytes())?;
            if !text.is_empty() && !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
