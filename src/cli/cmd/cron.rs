//! `queuectl cron add | list | remove | pause | resume`: periodic jobs. Workers fire them
//! (see `worker start`); this only manages the schedules.

use std::sync::Arc;

use anyhow::anyhow;
use queuectl::{EnqueueRequest, JobTemplate, Schedule, ScheduleRequest, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::cli::args::{CronAddArgs, CronCommand};
use crate::cli::input::parse_job;
use crate::cli::open_store::{open, open_to_read};
use crate::cli::output::{print_json, print_lines};

pub(crate) fn run(db: Option<&str>, command: CronCommand) -> anyhow::Result<()> {
    match command {
        CronCommand::Add(a) => add(db, a),
        CronCommand::List(a) => {
            let (sched, _) = open_to_read(db)?;
            let all = sched.store().list_schedules()?;
            if a.json {
                let items: Vec<ScheduleJson<'_>> = all.iter().map(ScheduleJson::new).collect();
                print_json(&items)
            } else if all.is_empty() {
                eprintln!("no schedules");
                Ok(())
            } else {
                print_lines(table(&all))
            }
        }
        CronCommand::Remove(a) => {
            let (sched, _) = open(db)?;
            if !sched.store().delete_schedule(&a.name)? {
                return Err(not_found(&a.name));
            }
            print_lines([format!("removed {}", a.name)])
        }
        CronCommand::Pause(a) => {
            let (sched, _) = open(db)?;
            sched
                .set_schedule_paused(&a.name, true)?
                .ok_or_else(|| not_found(&a.name))?;
            print_lines([format!("paused {}", a.name)])
        }
        CronCommand::Resume(a) => {
            let (sched, _) = open(db)?;
            let s = sched
                .set_schedule_paused(&a.name, false)?
                .ok_or_else(|| not_found(&a.name))?;
            print_lines([format!(
                "resumed {}; next run at {}",
                s.name,
                s.next_run_at.to_rfc3339()
            )])
        }
    }
}

/// The job parser every fire uses: exactly `enqueue`'s, so every field `enqueue` accepts
/// works for periodic jobs too. Workers get it through [`template`].
fn parse_template(json: &str) -> Result<EnqueueRequest, String> {
    parse_job(json)
        .map(|p| p.request)
        .map_err(|e| e.to_string())
}

/// [`parse_template`] as the worker pool takes it.
pub(crate) fn template() -> Arc<JobTemplate> {
    Arc::new(parse_template)
}

fn add(db: Option<&str>, a: CronAddArgs) -> anyhow::Result<()> {
    // The same warning `enqueue` gives, once, at add time rather than at every fire.
    if let Ok(parsed) = parse_job(&a.job) {
        if !parsed.unknown_fields.is_empty() {
            let list: Vec<String> = parsed
                .unknown_fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect();
            let noun = if list.len() == 1 { "field" } else { "fields" };
            eprintln!(
                "queuectl: warning: ignoring unknown {noun} {}",
                list.join(", ")
            );
        }
    }
    let (sched, _) = open(db)?;
    let req = ScheduleRequest {
        name: a.name,
        schedule: a.schedule,
        tz: a.tz,
        job: a.job,
    };
    let stored = sched.add_schedule(req, &parse_template)?;
    print_lines([stored.next_run_at.to_rfc3339()])
}

fn not_found(name: &str) -> anyhow::Error {
    anyhow!("no schedule named '{name}'")
}

/// A schedule in `cron list --json`.
#[derive(Serialize)]
struct ScheduleJson<'a> {
    name: &'a str,
    schedule: &'a str,
    tz: &'a str,
    /// The job JSON as an object (as stored, it was validated at add time).
    job: Value,
    next_run_at: String,
    last_run_at: Option<String>,
    paused: bool,
}

impl<'a> ScheduleJson<'a> {
    fn new(s: &'a Schedule) -> Self {
        ScheduleJson {
            name: &s.name,
            schedule: &s.schedule,
            tz: &s.tz,
            job: serde_json::from_str(&s.job).unwrap_or_else(|_| Value::String(s.job.clone())),
            next_run_at: s.next_run_at.to_rfc3339(),
            last_run_at: s.last_run_at.map(Timestamp::to_rfc3339),
            paused: s.paused,
        }
    }
}

/// Schedules as an aligned table: the `cron list --json` keys as columns.
fn table(all: &[Schedule]) -> Vec<String> {
    let header = [
        "NAME",
        "SCHEDULE",
        "TZ",
        "JOB",
        "NEXT_RUN_AT",
        "LAST_RUN_AT",
        "PAUSED",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = all
        .iter()
        .map(|s| {
            [
                one_line(&s.name),
                one_line(&s.schedule),
                one_line(&s.tz),
                one_line(&compact(&s.job)),
                s.next_run_at.to_rfc3339(),
                s.last_run_at
                    .map_or_else(|| "-".to_owned(), Timestamp::to_rfc3339),
                if s.paused { "yes" } else { "no" }.to_owned(),
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
                .map(|(cell, w)| {
                    let pad = w.saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// The job JSON on one line, without the user's spacing.
fn compact(job: &str) -> String {
    serde_json::from_str::<Value>(job).map_or_else(|_| job.to_owned(), |v| v.to_string())
}

/// Control characters become spaces, so a row stays one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
