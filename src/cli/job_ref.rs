//! A job named on the command line: its whole id, or a unique prefix of one.
//!
//! The positional id of `show`, `logs`, `cancel`, `retry`, `delete` and `wait` goes through
//! [`resolve`]: a job with exactly that id wins; otherwise the one job whose id starts with
//! it, said on stderr (`resolved 3f2a to 3f2a9c…`). Ids given to be stored (`--id`,
//! `--after`, JSON fields) are never resolved.

use anyhow::bail;
use queuectl::{JobId, StoreError};

use crate::cli::open_store::Sched;

/// Matches listed when a prefix is ambiguous; one more is looked up to know there are more.
const SHOWN_MATCHES: u32 = 10;

/// The job `text` names: the job with that exact id, else the only job whose id starts
/// with `text`, announced on stderr.
///
/// # Errors
/// The store's `NotFound` (the usual "job X not found") when nothing matches; an error
/// listing the matches (exit 1) when several do.
pub(crate) fn resolve(sched: &Sched, text: &str) -> anyhow::Result<JobId> {
    let id = JobId::new(text);
    match sched.store().get(&id) {
        Ok(_) => return Ok(id),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if text.is_empty() {
        return Err(StoreError::NotFound(id).into());
    }
    let mut matches = sched.store().find_ids_by_prefix(text, SHOWN_MATCHES + 1)?;
    match matches.len() {
        0 => Err(StoreError::NotFound(id).into()),
        1 => {
            let found = matches.remove(0);
            eprintln!("resolved {text} to {found}");
            Ok(found)
        }
        n => {
            let more = n > SHOWN_MATCHES as usize;
            let listed: Vec<&str> = matches
                .iter()
                .take(SHOWN_MATCHES as usize)
                .map(JobId::as_str)
                .collect();
            bail!(
                "id prefix '{text}' is ambiguous: it matches {}{}{}",
                listed.join(", "),
                if more { ", …" } else { "" },
                if more {
                    format!(" (more than {SHOWN_MATCHES} jobs)")
                } else {
                    String::new()
                },
            )
        }
    }
}
