//! What the commands print: the job JSON of docs/CLI.md and the human tables.
//!
//! Everything goes through a locked stdout with errors propagated, so a closed pipe
//! (`queuectl list | head`) ends the command quietly instead of panicking in `println!`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use queuectl::{AttemptRecord, Job, JobId, JobRecord, Limits, Timestamp};
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
    /// `true` while a `processing` job waits for its worker to stop it (`cancel`).
    cancel_requested: bool,
    cwd: Option<&'a str>,
    unique_key: Option<&'a str>,
    limits: Option<&'a Limits>,
    /// Values of secret-looking names masked ([`masked_env`]).
    env: BTreeMap<&'a str, &'a str>,
    depends_on: Vec<&'a str>,
}

/// What every output shows instead of the value of a secret-looking variable.
pub(crate) const MASK: &str = "***";

/// Whether an `env` entry's value is hidden in output: its name contains `PASSWORD`,
/// `SECRET`, `TOKEN` or `KEY`, in any case. The job itself gets the real value.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY"]
        .iter()
        .any(|w| upper.contains(w))
}

/// A job's `env` as every output shows it: secret-looking values replaced by [`MASK`].
pub(crate) fn masked_env(env: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    env.iter()
        .map(|(k, v)| {
            let shown = if is_secret_name(k) { MASK } else { v.as_str() };
            (k.as_str(), shown)
        })
        .collect()
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
            cancel_requested: job.cancel_requested,
            cwd: job.options.cwd.as_deref(),
            unique_key: job.options.unique_key.as_deref(),
            limits: job.options.limits.as_ref(),
            env: masked_env(&job.options.env),
            depends_on: job.options.depends_on.iter().map(JobId::as_str).collect(),
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

/// The widest an id or a queue name gets in a table before it is cut with `…` (the
/// table crate counts columns in `u16`; ids are at most 1024 bytes anyway).
const CELL_WIDTH: usize = 4_096;

/// How a human table shows times and how wide it may be.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableStyle {
    /// RFC 3339 UTC instead of relative ("3 min ago"): the global `--utc`.
    pub(crate) utc: bool,
    /// The width to fit, in terminal columns; `None`: as wide as the content.
    pub(crate) width: Option<u16>,
    /// What relative times are relative to.
    pub(crate) now: Timestamp,
}

impl TableStyle {
    /// For stdout: `$COLUMNS` if set to a number, else the terminal's width when stdout is
    /// one; unlimited into a pipe or a file (scripts get whole cells).
    pub(crate) fn for_stdout(utc: bool) -> Self {
        use std::io::IsTerminal as _;
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|c| *c > 0);
        let width = columns.or_else(|| {
            io::stdout()
                .is_terminal()
                .then(|| comfy_table::Table::new().width())
                .flatten()
        });
        TableStyle {
            utc,
            width,
            now: Timestamp::now(),
        }
    }

    /// An instant as this style shows it.
    pub(crate) fn time(&self, at: Timestamp) -> String {
        if self.utc {
            at.to_rfc3339()
        } else {
            relative(at, self.now)
        }
    }
}

/// Jobs as an aligned table for people: id, state, attempts, queue, priority, command
/// (one line, cut to fit), updated (relative unless `--utc`).
///
/// comfy-table measures cells by display width (a CJK character or an emoji takes two
/// columns), so columns stay aligned whatever the ids hold. Given a width, it fits the
/// table into it, each job on one line, cutting the cells that must give way with `…`.
pub(crate) fn jobs_table(jobs: &[Job], style: &TableStyle) -> Vec<String> {
    use comfy_table::{presets, ColumnConstraint, ContentArrangement, Row, Table};

    let mut table = Table::new();
    let mut header = Row::from([
        "ID", "STATE", "ATTEMPTS", "QUEUE", "PRIORITY", "COMMAND", "UPDATED",
    ]);
    header.max_height(1);
    table
        .load_style(presets::NOTHING)
        .force_no_tty()
        .set_truncation_indicator("…")
        .set_header(header);
    if let Some(width) = style.width {
        table
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    }
    for j in jobs {
        let mut row = Row::from([
            one_line(j.id.as_str(), CELL_WIDTH),
            j.state.as_str().to_owned(),
            format!("{}/{}", j.attempts, j.max_retries.max(1)),
            one_line(&j.queue, CELL_WIDTH),
            j.priority.to_string(),
            one_line(&j.command, COMMAND_WIDTH),
            style.time(j.updated_at),
        ]);
        row.max_height(1);
        table.add_row(row);
    }
    // Two spaces between columns, none before the first (the NOTHING preset pads each
    // cell by one on both sides).
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == 6 { 0 } else { 2 }));
        // State, attempts, priority and the time never shrink: the id, the queue and
        // the command give way.
        if matches!(i, 1 | 2 | 4 | 6) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    table.lines().map(|l| l.trim_end().to_owned()).collect()
}

/// `3 s ago`, `5 min ago`, `in 2 h`, … from `at` relative to `now`.
pub(crate) fn relative(at: Timestamp, now: Timestamp) -> String {
    if at <= now {
        format!("{} ago", span(now.since(at)))
    } else {
        format!("in {}", span(at.since(now)))
    }
}

/// A span of time for people: `42 s`, `3 min`, `5 h`, `2 d`.
pub(crate) fn span(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3_599 => format!("{} min", secs / 60),
        3_600..=172_799 => format!("{} h", secs / 3_600),
        _ => format!("{} d", secs / 86_400),
    }
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

    fn style(width: Option<u16>) -> TableStyle {
        TableStyle {
            utc: true,
            width,
            now: Timestamp::from_millis(1_764_350_109_123),
        }
    }

    #[test]
    fn tables_take_ids_longer_than_any_format_width() {
        let long = "i".repeat(70_000);
        let lines = jobs_table(&[job(&long, "true")], &style(None));
        let shown = format!("{}…", "i".repeat(CELL_WIDTH - 1));
        assert!(
            lines[1].starts_with(&format!("{shown}  pending")),
            "{}",
            &lines[1][..10]
        );
        assert_eq!(lines[0].find("STATE"), Some(CELL_WIDTH + 2));
    }

    fn job(id: &str, command: &str) -> Job {
        let t = Timestamp::from_millis(1_764_350_109_123);
        let n = NewJob::shell(command, t);
        Job {
            options: Default::default(),
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
            cancel_requested: false,
        }
    }

    #[test]
    fn job_json_has_every_contract_field_in_order() {
        let j = job("a", "echo hi");
        let text = serde_json::to_string(&JobJson::new(&j)).unwrap();
        assert_eq!(
            text,
            r#"{"id":"a","command":"echo hi","state":"pending","attempts":0,"max_retries":3,"created_at":"2025-11-28T17:15:09.123Z","updated_at":"2025-11-28T17:15:09.123Z","queue":"default","priority":0,"run_at":"2025-11-28T17:15:09.123Z","next_run_at":"2025-11-28T17:15:09.123Z","timeout":null,"exit_code":null,"last_error":null,"worker_id":null,"started_at":null,"finished_at":null,"cancel_requested":false,"cwd":null,"unique_key":null,"limits":null,"env":{},"depends_on":[]}"#
        );
    }

    #[test]
    fn table_aligns_columns_and_cuts_long_commands() {
        let long = "x".repeat(100);
        let lines = jobs_table(&[job("a", "echo\nhi"), job("bbbbbb", &long)], &style(None));
        assert_eq!(lines.len(), 3);
        let state_col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("pending"), Some(state_col));
        assert_eq!(lines[2].find("pending"), Some(state_col));
        assert!(lines[1].contains("echo hi"));
        assert!(lines[2].contains(&format!("{}…", "x".repeat(COMMAND_WIDTH - 1))));
        assert!(!lines[2].contains(&"x".repeat(COMMAND_WIDTH)));
    }

    /// Display width, not characters: a row with CJK and emoji ids keeps the columns
    /// aligned on screen, and a width limit is met in columns, one line per job.
    #[test]
    fn wide_characters_align_and_fit_the_width() {
        use unicode_width::UnicodeWidthStr as _;
        let jobs = [
            job("📊-月次レポート", "make report"),
            job("plain", &"x".repeat(100)),
        ];
        let lines = jobs_table(&jobs, &style(None));
        let at = |line: &str, word: &str| line[..line.find(word).unwrap()].width();
        let state = at(&lines[0], "STATE");
        assert_eq!(at(&lines[1], "pending"), state, "{lines:#?}");
        assert_eq!(at(&lines[2], "pending"), state, "{lines:#?}");

        let mut fit = style(Some(60));
        fit.utc = false;
        let fitted = jobs_table(&jobs, &fit);
        assert_eq!(fitted.len(), 3, "{fitted:#?}");
        for line in &fitted {
            assert!(line.width() <= 60, "{} > 60: {line}", line.width());
        }
        assert!(fitted[1].starts_with("📊"), "{fitted:#?}");
    }

    #[test]
    fn times_are_relative_unless_utc() {
        let now = Timestamp::from_millis(1_764_350_109_123);
        let mut relative_style = style(None);
        relative_style.utc = false;
        relative_style.now = now.add(std::time::Duration::from_secs(180));
        assert_eq!(relative_style.time(now), "3 min ago");
        assert_eq!(style(None).time(now), "2025-11-28T17:15:09.123Z");
        assert_eq!(
            relative(now.add(std::time::Duration::from_secs(7_200)), now),
            "in 2 h"
        );
    }
}
