//! The dashboard's pages and the parts the script refreshes, as HTML strings built with
//! [`super::html`]'s escaping. Each `*_part` function renders a region that its page
//! embeds at first and the script then fetches again from `/part/…`.

use std::fmt::Write as _;

use queuectl::{
    AttemptStats, JobPage, JobRecord, JobState, QueueSettings, QueueStats, Schedule, StateCounts,
    Timestamp, WorkerInfo,
};

use super::action::{BulkAction, JobAction, QueueAction};
use super::html::{
    action_form, esc, job_href, maybe_time, one_line, query, relative, state_badge, time,
};

/// Minutes the throughput chart shows.
pub(crate) const CHART_MINUTES: i64 = 60;

/// What the overview shows.
#[derive(Debug)]
pub(crate) struct Overview {
    /// When it was read.
    pub(crate) now: Timestamp,
    /// Every queue's counts (a queue with settings and no job has a row of zeros).
    pub(crate) queues: Vec<QueueStats>,
    /// The queues whose settings differ from the defaults (paused, limited).
    pub(crate) settings: Vec<QueueSettings>,
    /// Live worker processes and their slots.
    pub(crate) workers: usize,
    /// Their slots.
    pub(crate) slots: u64,
}

impl Overview {
    fn totals(&self) -> StateCounts {
        let mut totals = StateCounts::default();
        for q in &self.queues {
            for state in JobState::ALL {
                *totals.get_mut(state) += q.counts.get(state);
            }
        }
        totals
    }
}

/// A region the script refreshes from `url` every `every_ms` milliseconds.
pub(crate) fn live(url: &str, every_ms: u64, inner: &str) -> String {
    format!(
        r#"<div class="live" data-refresh="{}" data-every="{every_ms}">{inner}</div>"#,
        esc(url)
    )
}

/// The link to a list of jobs.
fn list_href(state: Option<JobState>, queue: Option<&str>) -> String {
    format!(
        "/jobs{}",
        query(&[
            ("state", state.map_or("", JobState::as_str)),
            ("queue", queue.unwrap_or("")),
        ])
    )
}

/// The overview's counts: a card per state, then a row per queue with its controls and,
/// unless `read_only`, a button to pause or resume it.
pub(crate) fn counts_part(o: &Overview, csrf: &str, read_only: bool) -> String {
    let totals = o.totals();
    let mut out = String::from(r#"<div class="cards">"#);
    for state in JobState::ALL {
        let _ = write!(
            out,
            r#"<a class="card s-{s}" href="{href}" data-count="{s}"><span class="n">{n}</span><span class="label">{s}</span></a>"#,
            s = state.as_str(),
            href = esc(&list_href(Some(state), None)),
            n = totals.get(state),
        );
    }
    let _ = write!(
        out,
        r#"<a class="card" href="/workers" data-count="workers"><span class="n">{}</span><span class="label">worker slots ({} process{})</span></a></div>"#,
        o.slots,
        o.workers,
        if o.workers == 1 { "" } else { "es" }
    );
    if o.queues.is_empty() {
        out.push_str(r#"<p class="empty">No jobs yet. Enqueue one with <code>queuectl enqueue '{"command":"echo hello"}'</code>.</p>"#);
        return out;
    }
    out.push_str(r#"<table class="counts"><thead><tr><th>Queue</th>"#);
    for state in JobState::ALL {
        let _ = write!(out, "<th>{}</th>", state.as_str());
    }
    out.push_str(r#"<th title="How long the longest-waiting due pending job has waited">Waiting</th><th title="Paused queues start no job; a limit caps how many run at once">Controls</th></tr></thead><tbody>"#);
    for q in &o.queues {
        let _ = write!(
            out,
            r#"<tr><th scope="row"><a href="{}">{}</a></th>"#,
            esc(&list_href(None, Some(&q.queue))),
            esc(&one_line(&q.queue, 60))
        );
        for state in JobState::ALL {
            let n = q.counts.get(state);
            let class = if n == 0 { " class=\"zero\"" } else { "" };
            let _ = write!(
                out,
                r#"<td{class}><a href="{}">{n}</a></td>"#,
                esc(&list_href(Some(state), Some(&q.queue)))
            );
        }
        let waiting = q.oldest_due.map_or_else(
            || "–".to_owned(),
            |due| relative(due, o.now).replace(" ago", ""),
        );
        let _ = write!(out, "<td>{}</td>", esc(&waiting));
        let settings = o.settings.iter().find(|s| s.queue == q.queue);
        let paused = settings.is_some_and(|s| s.paused);
        let mut controls = Vec::new();
        if paused {
            controls.push(r#"<span class="badge s-cancelled">paused</span>"#.to_owned());
        }
        if let Some(n) = settings.and_then(|s| s.concurrency) {
            controls.push(format!(
                r#"<span title="At most {n} at once">max {n}</span>"#
            ));
        }
        if !read_only {
            let action = QueueAction::offered(paused);
            controls.push(action_form(
                &format!("/queue/{}", action.name()),
                &[("queue", &q.queue)],
                action.label(),
                csrf,
                None,
            ));
        }
        let _ = write!(out, "<td>{}</td></tr>", controls.join(" "));
    }
    out.push_str("</tbody></table>");
    out
}

/// The throughput chart: finished attempts per minute over the last hour, as an SVG bar
/// chart (completed below, failed stacked on top).
pub(crate) fn throughput_part(stats: &AttemptStats, now: Timestamp) -> String {
    const MINUTE: i64 = 60_000;
    let last = now.as_millis().div_euclid(MINUTE);
    let first = last - (CHART_MINUTES - 1);
    let mut bars = vec![(0u64, 0u64); usize::try_from(CHART_MINUTES).unwrap_or(60)];
    for b in &stats.series {
        let minute = b.start.as_millis().div_euclid(MINUTE);
        if let Some(bar) = usize::try_from(minute - first)
            .ok()
            .and_then(|i| bars.get_mut(i))
        {
            bar.0 += b.completed;
            bar.1 += b.failed;
        }
    }
    let (done, failed): (u64, u64) = bars
        .iter()
        .fold((0, 0), |(d, f), (bd, bf)| (d + bd, f + bf));
    let peak = bars.iter().map(|(d, f)| d + f).max().unwrap_or(0).max(1);
    let (width, height, bar_w) = (600u64, 120u64, 10u64);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {width} {h}" role="img" aria-label="Finished attempts per minute, last hour"><title>Finished attempts per minute, last hour</title>"#,
        h = height + 16
    );
    for (i, (d, f)) in bars.iter().enumerate() {
        let x = i as u64 * bar_w;
        let h_done = d * height / peak;
        let h_failed = f * height / peak;
        let start = Timestamp::from_millis((first + i as i64) * MINUTE);
        let label = format!(
            "{}: {d} completed, {f} failed",
            start.to_rfc3339().get(11..16).unwrap_or("")
        );
        let _ = write!(
            svg,
            r#"<g><title>{label} (UTC)</title><rect class="bg" x="{x}" y="0" width="{w}" height="{height}"/><rect class="ok" x="{x}" y="{y1}" width="{w}" height="{h_done}"/><rect class="fail" x="{x}" y="{y2}" width="{w}" height="{h_failed}"/></g>"#,
            label = esc(&label),
            w = bar_w - 1,
            y1 = height - h_done,
            y2 = height - h_done - h_failed,
        );
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="{y}">60 min ago</text><text x="{width}" y="{y}" text-anchor="end">now</text><text x="2" y="12">peak {peak}/min</text></svg>"#,
        y = height + 14
    );
    format!(
        r#"{svg}<p class="legend"><span class="key ok"></span>{done} completed <span class="key fail"></span>{failed} failed in the last hour</p>"#
    )
}

/// The jobs list's filters (a GET form).
pub(crate) struct ListFilter<'a> {
    /// Only this state.
    pub(crate) state: Option<JobState>,
    /// Only this queue.
    pub(crate) queue: Option<&'a str>,
    /// Only jobs whose id or command contains this.
    pub(crate) search: Option<&'a str>,
    /// The page's cursor.
    pub(crate) before: Option<u64>,
}

impl ListFilter<'_> {
    /// The query string of this list, optionally at another cursor.
    pub(crate) fn query(&self, before: Option<u64>) -> String {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        query(&[
            ("state", self.state.map_or("", JobState::as_str)),
            ("queue", self.queue.unwrap_or("")),
            ("q", self.search.unwrap_or("")),
            ("before", &before),
        ])
    }
}

/// The filter form, the bulk actions of the state shown, and how many jobs match.
pub(crate) fn list_header(
    f: &ListFilter<'_>,
    queues: &[QueueStats],
    csrf: &str,
    read_only: bool,
) -> String {
    let mut out = String::from(r#"<form class="filters" method="get" action="/jobs">"#);
    out.push_str(r#"<label>State <select name="state"><option value="">any</option>"#);
    for state in JobState::ALL {
        let selected = if f.state == Some(state) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, r#"<option{selected}>{}</option>"#, state.as_str());
    }
    out.push_str(
        r#"</select></label><label>Queue <select name="queue"><option value="">any</option>"#,
    );
    let mut names: Vec<&str> = queues.iter().map(|q| q.queue.as_str()).collect();
    if let Some(q) = f.queue.filter(|q| !names.contains(q)) {
        names.push(q);
    }
    for name in names {
        let selected = if f.queue == Some(name) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<option value="{v}"{selected}>{label}</option>"#,
            v = esc(name),
            label = esc(&one_line(name, 60))
        );
    }
    let _ = write!(
        out,
        r#"</select></label><label>Search <input type="search" name="q" value="{}" placeholder="id or command contains…"></label><button type="submit">Show</button></form>"#,
        esc(f.search.unwrap_or(""))
    );
    if f.search.is_none() {
        let matching: u64 = queues
            .iter()
            .filter(|q| f.queue.is_none_or(|name| q.queue == name))
            .map(|q| {
                f.state
                    .map_or_else(|| q.counts.total(), |s| q.counts.get(s))
            })
            .sum();
        let _ = write!(
            out,
            r#"<p class="total"><span data-total>{matching}</span> job{} in all, newest first.</p>"#,
            if matching == 1 { "" } else { "s" }
        );
    }
    if !read_only {
        for action in BulkAction::ALL {
            if f.state == Some(action.offered_on()) && f.queue.is_none() && f.search.is_none() {
                out.push_str(&action_form(
                    &format!("/jobs/{}", action.name()),
                    &[],
                    action.label(),
                    csrf,
                    action.confirm(),
                ));
            }
        }
    }
    out
}

/// One page of jobs as a table, with links to the newest and the next older page.
pub(crate) fn jobs_part(page: &JobPage, f: &ListFilter<'_>, now: Timestamp) -> String {
    if page.jobs.is_empty() {
        return r#"<p class="empty">No jobs match.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table class="jobs"><thead><tr><th>ID</th><th>State</th><th>Queue</th><th>Attempts</th><th>Command</th><th>Updated</th></tr></thead><tbody>"#,
    );
    for job in &page.jobs {
        let _ = write!(
            out,
            r#"<tr><td class="id"><a href="{href}">{id}</a></td><td>{state}</td><td>{queue}</td><td>{attempts}/{max}</td><td class="cmd"><code>{cmd}</code></td><td>{updated}</td></tr>"#,
            href = esc(&job_href(job.id.as_str())),
            id = esc(&one_line(job.id.as_str(), 48)),
            state = state_badge(job.state),
            queue = esc(&one_line(&job.queue, 30)),
            attempts = job.attempts,
            max = job.max_retries.max(1),
            cmd = esc(&one_line(&job.command, 100)),
            updated = time(job.updated_at, now),
        );
    }
    out.push_str("</tbody></table><nav class=\"pager\">");
    if f.before.is_some() {
        let _ = write!(
            out,
            r#"<a href="/jobs{}">« Newest</a>"#,
            esc(&f.query(None))
        );
    }
    if let Some(next) = page.next {
        let _ = write!(
            out,
            r#"<a href="/jobs{}" rel="next">Older »</a>"#,
            esc(&f.query(Some(next.0)))
        );
    }
    out.push_str("</nav>");
    out
}

/// A job's fields, actions, output and history. While the job runs, `r.output` is what
/// its running attempt has written so far.
pub(crate) fn job_part(r: &JobRecord, now: Timestamp, csrf: &str, read_only: bool) -> String {
    let job = &r.job;
    let mut out = format!(
        r#"<div class="jobhead">{badge}"#,
        badge = state_badge(job.state)
    );
    if !read_only {
        for action in JobAction::ALL.into_iter().filter(|a| a.offered(job.state)) {
            out.push_str(&action_form(
                &format!("/job/{}", action.name()),
                &[("id", job.id.as_str())],
                action.label(),
                csrf,
                action.confirm(),
            ));
        }
    }
    out.push_str("</div><dl class=\"fields\">");
    let mut field = |name: &str, value: String| {
        let _ = write!(out, "<dt>{name}</dt><dd>{value}</dd>");
    };
    field(
        "Command",
        format!("<pre class=\"cmd\">{}</pre>", esc(&job.command)),
    );
    field("Queue", esc(&job.queue).to_string());
    field(
        "Attempts",
        format!("{} of {}", job.attempts, job.max_retries.max(1)),
    );
    field("Priority", job.priority.to_string());
    field("Kind", esc(&job.kind).to_string());
    field("Created", time(job.created_at, now));
    field("Updated", time(job.updated_at, now));
    field("Run at", time(job.run_at, now));
    field("Next run", maybe_time(job.next_run_at, now));
    field("Started", maybe_time(job.started_at, now));
    field("Finished", maybe_time(job.finished_at, now));
    field(
        "Worker",
        job.worker_id
            .as_deref()
            .map_or_else(|| "–".to_owned(), |w| esc(w).to_string()),
    );
    field(
        "Exit code",
        job.exit_code
            .map_or_else(|| "–".to_owned(), |c| c.to_string()),
    );
    field(
        "Timeout",
        job.timeout_secs
            .filter(|s| *s > 0)
            .map_or_else(|| "none".to_owned(), |s| format!("{s} s")),
    );
    field("Interrupts", job.interrupts.to_string());
    let dash = || "–".to_owned();
    field(
        "Directory",
        job.options
            .cwd
            .as_deref()
            .map_or_else(dash, |d| esc(d).to_string()),
    );
    if !job.options.env.is_empty() {
        // Secret-looking values are masked here as in the CLI's JSON (output.rs).
        let vars: String = crate::cli::output::masked_env(&job.options.env)
            .into_iter()
            .map(|(k, v)| format!("{}={}\n", esc(k), esc(v)))
            .collect();
        field("Environment", format!("<pre class=\"cmd\">{vars}</pre>"));
    }
    field(
        "Unique key",
        job.options
            .unique_key
            .as_deref()
            .map_or_else(dash, |k| esc(k).to_string()),
    );
    field(
        "Limits",
        job.options.limits.as_ref().map_or_else(dash, |l| {
            esc(&serde_json::to_string(l).unwrap_or_default()).to_string()
        }),
    );
    if !job.options.depends_on.is_empty() {
        let parents: Vec<String> = job
            .options
            .depends_on
            .iter()
            .map(|p| {
                format!(
                    r#"<a href="{}">{}</a>"#,
                    esc(&job_href(p.as_str())),
                    esc(p.as_str())
                )
            })
            .collect();
        field("After", parents.join(", "));
    }
    field(
        "Last error",
        job.last_error.as_deref().map_or_else(
            || "–".to_owned(),
            |e| format!("<span class=\"error\">{}</span>", esc(e)),
        ),
    );
    out.push_str("</dl>");
    let running = job.state == JobState::Processing;
    let _ = write!(
        out,
        "<h2>Output{}</h2>",
        if running {
            " <small>(of the running attempt, so far)</small>"
        } else {
            ""
        }
    );
    match &r.output {
        Some(o) => {
            for (name, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                let _ = write!(
                    out,
                    r#"<h3>{name}</h3><pre class="output" data-stream="{name}">{}</pre>"#,
                    esc(text)
                );
            }
        }
        None if running => {
            out.push_str(r#"<p class="empty">No output has arrived yet.</p>"#);
        }
        None => out.push_str(r#"<p class="empty">No output yet.</p>"#),
    }
    out.push_str("<h2>History</h2>");
    if r.history.is_empty() {
        out.push_str(r#"<p class="empty">No finished attempt yet.</p>"#);
    } else {
        out.push_str(r#"<table class="history"><thead><tr><th>Attempt</th><th>Started</th><th>Took</th><th>Exit code</th><th>Error</th></tr></thead><tbody>"#);
        for a in &r.history {
            let took = a.finished_at.since(a.started_at);
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.3} s</td><td>{}</td><td>{}</td></tr>",
                a.attempt,
                time(a.started_at, now),
                took.as_secs_f64(),
                a.exit_code
                    .map_or_else(|| "–".to_owned(), |c| c.to_string()),
                a.error
                    .as_deref()
                    .map_or_else(|| "–".to_owned(), |e| esc(e).to_string()),
            );
        }
        out.push_str("</tbody></table>");
    }
    out
}

/// The worker registry: live ones first, then those that stopped answering.
pub(crate) fn workers_part(all: &[WorkerInfo], live: &[WorkerInfo], now: Timestamp) -> String {
    if all.is_empty() {
        return r#"<p class="empty">No workers registered. Start one with <code>queuectl worker start</code>.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table class="workers"><thead><tr><th>Worker</th><th>Status</th><th>Host</th><th>PID</th><th>Slots</th><th>Queues</th><th>Started</th><th>Heartbeat</th></tr></thead><tbody>"#,
    );
    let is_live = |w: &WorkerInfo| live.iter().any(|l| l.id == w.id);
    let mut sorted: Vec<&WorkerInfo> = all.iter().collect();
    sorted.sort_by_key(|w| !is_live(w));
    for w in sorted {
        let status = match (is_live(w), w.stop_requested) {
            (true, false) => r#"<span class="badge live">live</span>"#,
            (true, true) => r#"<span class="badge stopping">stopping</span>"#,
            (false, _) => {
                r#"<span class="badge gone" title="no heartbeat within its lease, or its process is gone; recovery will remove it">not responding</span>"#
            }
        };
        let queues = if w.queues.is_empty() {
            "all".to_owned()
        } else {
            w.queues.join(", ")
        };
        let _ = write!(
            out,
            "<tr><td class=\"id\">{id}</td><td>{status}</td><td>{host}</td><td>{pid}</td><td>{slots}</td><td>{queues}</td><td>{started}</td><td>{beat}</td></tr>",
            id = esc(&w.id),
            host = esc(&w.host),
            pid = w.pid,
            slots = w.slots,
            queues = esc(&one_line(&queues, 80)),
            started = time(w.started_at, now),
            beat = time(w.heartbeat_at, now),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Periodic jobs (`queuectl cron`), read-only: managed from the command line.
pub(crate) fn schedules_part(all: &[Schedule], now: Timestamp) -> String {
    if all.is_empty() {
        return r#"<p class="empty">No schedules. Add one with <code>queuectl cron add</code>.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table class="schedules"><thead><tr><th>Name</th><th>Schedule</th><th>Zone</th><th>Job</th><th>Next run</th><th>Last run</th><th>Status</th></tr></thead><tbody>"#,
    );
    for s in all {
        let status = if s.paused {
            r#"<span class="badge stopping">paused</span>"#
        } else {
            r#"<span class="badge live">active</span>"#
        };
        let _ = write!(
            out,
            "<tr><td class=\"id\">{name}</td><td><code>{schedule}</code></td><td>{tz}</td><td><code>{job}</code></td><td>{next}</td><td>{last}</td><td>{status}</td></tr>",
            name = esc(&s.name),
            schedule = esc(&one_line(&s.schedule, 80)),
            tz = esc(&s.tz),
            job = esc(&one_line(&s.job, 120)),
            next = time(s.next_run_at, now),
            last = maybe_time(s.last_run_at, now),
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuectl::{AttemptRecord, Job, JobId, JobOutput, ThroughputBucket};

    const XSS: &str = r#"<script>alert(1)</script>"><img src=x onerror=alert(2)>"#;

    fn hostile_record() -> JobRecord {
        let now = Timestamp::from_millis(1_700_000_000_000);
        JobRecord {
            job: Job {
                options: Default::default(),
                id: JobId::new(XSS),
                command: XSS.to_owned(),
                kind: "shell".to_owned(),
                state: JobState::Dead,
                attempts: 1,
                max_retries: 1,
                priority: 0,
                queue: XSS.to_owned(),
                interrupts: 0,
                created_at: now,
                updated_at: now,
                run_at: now,
                next_run_at: None,
                timeout_secs: None,
                exit_code: Some(1),
                last_error: Some(XSS.to_owned()),
                worker_id: Some(XSS.to_owned()),
                started_at: Some(now),
                finished_at: Some(now),
                lease_until: None,
                claim_token: None,
                cancel_requested: false,
            },
            output: Some(JobOutput {
                stdout: XSS.to_owned(),
                stderr: XSS.to_owned(),
            }),
            history: vec![AttemptRecord {
                attempt: 1,
                started_at: now,
                finished_at: now,
                exit_code: Some(1),
                error: Some(XSS.to_owned()),
                output: JobOutput {
                    stdout: XSS.to_owned(),
                    stderr: XSS.to_owned(),
                },
            }],
        }
    }

    fn assert_no_raw_markup(html: &str) {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("\"><img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn every_job_field_is_escaped() {
        let r = hostile_record();
        let now = r.job.updated_at;
        assert_no_raw_markup(&job_part(&r, now, "tok", false));
        let page = JobPage {
            jobs: vec![r.job.clone()],
            next: Some(queuectl::JobCursor(3)),
        };
        let filter = ListFilter {
            state: None,
            queue: Some(XSS),
            search: Some(XSS),
            before: Some(9),
        };
        assert_no_raw_markup(&jobs_part(&page, &filter, now));
        let queues = vec![QueueStats {
            queue: XSS.to_owned(),
            counts: StateCounts::default(),
            oldest_due: None,
            waiting: 0,
        }];
        assert_no_raw_markup(&list_header(&filter, &queues, "tok", false));
        let settings = queues
            .iter()
            .map(|q| QueueSettings {
                queue: q.queue.clone(),
                paused: true,
                concurrency: Some(2),
            })
            .collect();
        let overview = Overview {
            now,
            queues,
            settings,
            workers: 0,
            slots: 0,
        };
        assert_no_raw_markup(&counts_part(&overview, "tok", false));
        let worker = WorkerInfo {
            id: XSS.to_owned(),
            host: XSS.to_owned(),
            pid: 1,
            slots: 1,
            queues: vec![XSS.to_owned()],
            started_at: now,
            heartbeat_at: now,
            stop_requested: false,
        };
        assert_no_raw_markup(&workers_part(&[worker], &[], now));
        let schedule = Schedule {
            name: XSS.into(),
            schedule: XSS.into(),
            tz: XSS.into(),
            job: XSS.into(),
            next_run_at: now,
            last_run_at: Some(now),
            paused: true,
            created_at: now,
        };
        assert_no_raw_markup(&schedules_part(&[schedule], now));
    }

    #[test]
    fn actions_follow_the_state_and_read_only() {
        let mut r = hostile_record();
        let now = r.job.updated_at;
        assert!(job_part(&r, now, "tok", false).contains(r#"action="/job/retry""#));
        assert!(!job_part(&r, now, "tok", true).contains("<form"));
        r.job.state = JobState::Completed;
        let html = job_part(&r, now, "tok", false);
        assert!(html.contains(r#"action="/job/retry""#), "{html}");
        assert!(html.contains(r#"action="/job/delete""#), "{html}");
        assert!(!html.contains(r#"action="/job/cancel""#), "{html}");
        r.job.state = JobState::Processing;
        // A running job can only be cancelled (its worker stops it).
        let html = job_part(&r, now, "tok", false);
        assert!(html.contains(r#"action="/job/cancel""#), "{html}");
        assert!(!html.contains(r#"action="/job/retry""#), "{html}");
        assert!(!html.contains(r#"action="/job/delete""#), "{html}");
        r.job.state = JobState::Pending;
        let html = job_part(&r, now, "tok", false);
        assert!(html.contains(r#"action="/job/cancel""#), "{html}");
        assert!(html.contains(r#"name="csrf" value="tok""#), "{html}");
    }

    #[test]
    fn the_chart_puts_each_minute_in_its_bar() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let minute = now.as_millis() / 60_000 * 60_000;
        let stats = AttemptStats {
            queues: Vec::new(),
            series: vec![
                ThroughputBucket {
                    start: Timestamp::from_millis(minute),
                    completed: 4,
                    failed: 1,
                },
                ThroughputBucket {
                    start: Timestamp::from_millis(minute - 59 * 60_000),
                    completed: 2,
                    failed: 0,
                },
                // Older than the chart: left out.
                ThroughputBucket {
                    start: Timestamp::from_millis(minute - 60 * 60_000),
                    completed: 100,
                    failed: 0,
                },
            ],
        };
        let svg = throughput_part(&stats, now);
        assert!(svg.contains("6 completed"), "{svg}");
        assert!(svg.contains("1 failed in the last hour"), "{svg}");
        assert!(svg.contains("peak 5/min"), "{svg}");
    }
}
