//! `queuectl enqueue`: parse and validate every job first, then store them in one
//! all-or-nothing call, then print ids (or the stored jobs with `--json`).

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use queuectl::{EnqueueRequest, Enqueued, Job, JobId, Timestamp};

use crate::cli::args::EnqueueArgs;
use crate::cli::input::{parse_job, parse_jobs, ParsedJob};
use crate::cli::open_store::open;
use crate::cli::output::{print_jobs_json, print_json, print_lines, JobJson};
use crate::cli::UsageError;

pub(crate) fn run(db: Option<&str>, a: EnqueueArgs) -> anyhow::Result<()> {
    // Reading and validating come before opening the store: bad input touches nothing.
    let (jobs, batch) = match (a.job.as_deref(), a.file.as_deref()) {
        (Some("-"), _) => (parse_jobs(&read_input(None)?)?, true),
        (Some(json), _) => (vec![parse_job(json)?], false),
        (None, Some(path)) => (parse_jobs(&read_input(Some(path))?)?, true),
        (None, None) if !a.words.is_empty() => (vec![job_of_words(&a.words)?], false),
        (None, None) => {
            return Err(
                UsageError("give a job as JSON, `-`, --file, or a command after --".into()).into(),
            )
        }
    };
    if a.id.is_some() && jobs.len() > 1 {
        return Err(UsageError(format!(
            "--id names one job, but the input holds {} jobs",
            jobs.len()
        ))
        .into());
    }
    warn_unknown_fields(&jobs);

    let (sched, _) = open(db)?;
    let now = sched.now();
    let requests: Vec<EnqueueRequest> = jobs
        .into_iter()
        .map(|j| apply_overrides(j.request, &a, now))
        .collect();
    let outcomes = sched.enqueue_batch(requests)?;
    let ids: Vec<JobId> = outcomes
        .into_iter()
        .map(|(id, outcome)| match outcome {
            Enqueued::Stored => id,
            Enqueued::Held(holder) => {
                eprintln!(
                    "queuectl: not enqueued: job {holder} holds the same unique_key; \
                     printing its id"
                );
                holder
            }
        })
        .collect();
    if !a.json {
        return print_lines(ids.iter().map(JobId::as_str));
    }
    let stored = ids
        .iter()
        .map(|id| sched.store().get(id))
        .collect::<Result<Vec<Job>, _>>()?;
    match stored.as_slice() {
        [one] if !batch => print_json(&JobJson::new(one)),
        all => print_jobs_json(all),
    }
}

/// `enqueue -- WORD…`: the words joined into one `sh -c` command that runs exactly them,
/// each quoted for a POSIX shell (by `shlex`, not by hand), then validated as JSON input is.
fn job_of_words(words: &[String]) -> anyhow::Result<ParsedJob> {
    let command = shlex::try_join(words.iter().map(String::as_str)).map_err(|_| {
        UsageError("a command word contains a NUL byte, which no process can receive".into())
    })?;
    let json = serde_json::json!({ "command": command }).to_string();
    Ok(parse_job(&json)?)
}

/// Flags win over the JSON.
fn apply_overrides(mut r: EnqueueRequest, a: &EnqueueArgs, now: Timestamp) -> EnqueueRequest {
    if let Some(id) = &a.id {
        r.id = Some(JobId::new(id.as_str()));
    }
    if let Some(p) = a.priority {
        r.priority = p;
    }
    if let Some(t) = a.run_at {
        r.run_at = Some(t);
    }
    if let Some(d) = a.delay {
        r.run_at = Some(now.add(d));
    }
    if let Some(q) = &a.queue {
        r.queue = Some(q.clone());
    }
    if let Some(m) = a.max_retries {
        r.max_retries = Some(m);
    }
    if let Some(t) = a.timeout {
        r.timeout_secs = Some(t);
    }
    if let Some(dir) = &a.cwd {
        r.cwd = Some(dir.clone());
    }
    for (k, v) in &a.env {
        r.env.insert(k.clone(), v.clone());
    }
    if let Some(k) = &a.unique_key {
        r.unique_key = Some(k.clone());
    }
    r.depends_on
        .extend(a.after.iter().map(|id| JobId::new(id.as_str())));
    r
}

/// One warning naming every distinct unknown field, in order of first appearance.
fn warn_unknown_fields(jobs: &[ParsedJob]) {
    let mut names: Vec<&str> = Vec::new();
    let mut affected = 0;
    for job in jobs {
        if !job.unknown_fields.is_empty() {
            affected += 1;
        }
        for f in &job.unknown_fields {
            if !names.contains(&f.as_str()) {
                names.push(f);
            }
        }
    }
    if names.is_empty() {
        return;
    }
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let noun = if names.len() == 1 { "field" } else { "fields" };
    let scope = if jobs.len() > 1 {
        format!(" (in {affected} of {} jobs)", jobs.len())
    } else {
        String::new()
    };
    eprintln!("queuectl: warning: ignoring unknown {noun} {list}{scope}");
}

/// The whole of stdin (`None` or `-`) or a file, as UTF-8.
fn read_input(path: Option<&Path>) -> anyhow::Result<String> {
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading jobs from stdin")?;
            Ok(text)
        }
    }
}
