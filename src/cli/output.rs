//! What the commands print: the job JSON of docs/CLI.md and the human tables.
//!
//! Everything goes through a locked stdout with errors propagated, so a closed pipe
//! (`queuectl list | head`) ends the command quietly instead of panicking in `println!`.

use std::io::{self, Write};

use queuectl::{AttemptRecord, Job, JobRecord, Timestamp};
use serde::Serialize;

/// A job as docs/CLI.md "Job JSON: output" fixes it: every field always present, `null`
/// when unknown, in this order.
#[derive(Debug, Serialize)]
pub(crate) struct JobJson<'a> {
    id: &'a str,
    command: &'a str,
    state: &'static str,
    attempts: u32,
    max_retries: u32,
    created_at: String,
    updated_at: String,
    queue: &'a str,
    priority: i32,
    run_at: Option<String>,
    next_run_at: Option<String>,
    /// Seconds; `null` when the job has no timeout.
    timeout: Option<u64>,
    exit_code: Option<i32>,
    last_error: Option<&'a str>,
    worker_id: Option<&'a str>,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl<'a> JobJson<'a> {
    pub(crate) fn new(job: &'a Job) -> Self {
        JobJson {
            id: job.id.as_str(),
            command: &job.command,
            state: job.state.as_str(),
            attempts: job.attempts,
            max_retries: job.max_retries,
            created_at: job.created_at.to_rfc3339(),
            updated_at: job.updated_at.to_rfc3339(),
            queue: &job.queue,
            priority: job.priority,
            run_at: Some(job.run_at.to_rfc3339()),
            next_run_at: job.next_run_at.map(Timestamp::to_rfc3339),
            timeout: job.timeout_secs.filter(|s| *s > 0),
            exit_code: job.exit_code,
            last_error: job.last_error.as_deref(),
            worker_id: job.worker_id.as_deref(),
            started_at: job.started_at.map(Timestamp::to_rfc3339),
            finished_at: job.finished_at.map(Timestamp::to_rfc3339),
        }
    }
}

/// `show`: the job plus the last attempt's output and the history.
#[derive(Debug, Serialize)]
pub(crate) struct RecordJson<'a> {
    #[serde(flatten)]
    job: JobJson<'a>,
    stdout: Option<&'a str>,
    stderr: Option<&'a str>,
    history: Vec<AttemptJson<'a>>,
}

impl<'a> RecordJson<'a> {
    pub(crate) fn new(record: &'a JobRecord) -> Self {
        RecordJson {
            job: JobJson::new(&record.job),
            stdout: record.output.as_ref().map(|o| o.stdout.as_str()),
            stderr: record.output.as_ref().map(|o| o.stderr.as_str()),
            history: record.history.iter().map(AttemptJson::new).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct AttemptJson<'a> {
    attempt: u32,
    started_at: String,
    finished_at: String,
    exit_code: Option<i32>,
    error: Option<&'a str>,
}

impl<'a> AttemptJson<'a> {
    fn new(a: &'a AttemptRecord) -> Self {
        AttemptJson {
            attempt: a.attempt,
            started_at: a.started_at.to_rfc3339(),
            finished_at: a.finished_at.to_rfc3339(),
            exit_code: a.exit_code,
            error: a.error.as_deref(),
        }
    }
}

/// Pretty JSON and a newline on stdout.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Each line on stdout.
pub(crate) fn print_lines<I, S>(lines: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = io::stdout().lock();
    for line in lines {
        writeln!(out, "{}", line.as_ref())?;
    }
    out.flush()?;
    Ok(())
}

/// Jobs as a JSON array.
pub(crate) fn print_jobs_json(jobs: &[Job]) -> anyhow::Result<()> {
    let items: Vec<_> = jobs.iter().map(JobJson::new).collect();
    print_json(&items)
}

/// The widest a command gets in a table before it is cut with `…`.
const COMMAND_WIDTH: usize = 40;

/// Jobs as an aligned table for people: id, state, attempts, queue, priority, command
/// (one line, cut to fit), updated.
pub(crate) fn jobs_table(jobs: &[Job]) -> Vec<String> {
    let header = [
        "ID", "STATE", "ATTEMPTS", "QUEUE", "PRIORITY", "COMMAND", "UPDATED",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = jobs
        .iter()
        .map(|j| {
            [
                one_line(j.id.as_str(), usize::MAX),
                j.state.as_str().to_owned(),
                format!("{}/{}", j.attempts, j.max_retries.max(1)),
                one_line(&j.queue, usize::MAX),
                j.priority.to_string(),
                one_line(&j.command, COMMAND_WIDTH),
                j.updated_at.to_rfc3339(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                // Padded by hand: `{:<w$}` panics for widths above u16::MAX, and ids and
                // queue names have no length limit.
                .map(|(cell, w)| {
                    let pad = w.saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// `s` on one line (control characters become spaces), at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use queuectl::{JobId, JobState, NewJob};

    #[test]
    fn tables_take_ids_longer_than_any_format_width() {
        let long = "i".repeat(70_000);
        let lines = jobs_table(&[job(&long, "true")]);
        assert!(lines[1].starts_with(&long));
        assert_eq!(lines[0].find("STATE"), Some(70_002));
    }

    fn job(id: &str, command: &str) -> Job {
        let t = Timestamp::from_millis(1_764_350_109_123);
        let n = NewJob::shell(command, t);
        Job {
            id: JobId::new(id),
            command: n.command,
            kind: n.kind,
            state: JobState::Pending,
            attempts: 0,
            max_retries: 3,
            priority: 0,
            queue: "default".into(),
            interrupts: 0,
            created_at: t,
            updated_at: t,
            run_at: t,
            next_run_at: Some(t),
            timeout_secs: None,
            exit_code: None,
            last_error: None,
            worker_id: None,
            started_at: None,
            finished_at: None,
            lease_until: None,
            claim_token: None,
        }
    }

    #[test]
    fn job_json_has_every_contract_field_in_order() {
        let j = job("a", "echo hi");
        let text = serde_json::to_string(&JobJson::new(&j)).unwrap();
        assert_eq!(
            text,
            r#"{"id":"a","command":"echo hi","state":"pending","attempts":0,"max_retries":3,"created_at":"2025-11-28T17:15:09.123Z","updated_at":"2025-11-28T17:15:09.123Z","queue":"default","priority":0,"run_at":"2025-11-28T17:15:09.123Z","next_run_at":"2025-11-28T17:15:09.123Z","timeout":null,"exit_code":null,"last_error":null,"worker_id":null,"started_at":null,"finished_at":null}"#
        );
    }

    #[test]
    fn table_aligns_columns_and_cuts_long_commands() {
        let long = "x".repeat(100);
        let lines = jobs_table(&[job("a", "echo\nhi"), job("bbbbbb", &long)]);
        assert_eq!(lines.len(), 3);
        let state_col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("pending"), Some(state_col));
        assert_eq!(lines[2].find("pending"), Some(state_col));
        assert!(lines[1].contains("echo hi"));
        assert!(lines[2].contains(&format!("{}…", "x".repeat(COMMAND_WIDTH - 1))));
        assert!(!lines[2].contains(&"x".repeat(COMMAND_WIDTH)));
    }
}
