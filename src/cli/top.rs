//! `queuectl top`'s view: what one refresh reads from the store ([`Snapshot::read`]) and how
//! it is drawn ([`render`]) with ratatui.
//!
//! Drawing is a pure function of a snapshot, so unit tests render a known state on
//! ratatui's `TestBackend` and `top --once` prints a frame without a terminal
//! ([`render_text`]); the live loop (raw mode, keys, refresh) is in `cmd/top.rs`.
//!
//! What it reads, per refresh: the counts per state ([`Jobs::counts`]), per queue
//! ([`Jobs::queue_stats`]), the live workers, and up to [`RUNNING_ROWS`] `processing` jobs;
//! and, at most every few seconds (see `cmd/top.rs`), the finished attempts of the last
//! [`SERIES_MINUTES`] minutes ([`Jobs::attempt_stats`]) for the rates: completions and
//! failures in the last minute, per queue and in all, and completions per minute as a
//! sparkline.
//!
//! [`Jobs::counts`]: queuectl::Jobs::counts
//! [`Jobs::queue_stats`]: queuectl::Jobs::queue_stats
//! [`Jobs::attempt_stats`]: queuectl::Jobs::attempt_stats

use std::time::Duration;

use queuectl::{
    live_workers, AttemptStatsRequest, Job, JobFilter, JobState, QueueStats, StateCounts,
    Timestamp, WorkerInfo,
};
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::{Frame, Terminal};

use crate::cli::open_store::Sched;

/// At most this many running jobs are read and shown.
pub(crate) const RUNNING_ROWS: u32 = 50;
/// The sparkline's span: completions per minute over this many minutes.
pub(crate) const SERIES_MINUTES: u64 = 30;

/// Finished attempts, read less often than the counts (they cost more).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rates {
    /// Per queue: (queue, completed, failed) in the last minute, sorted by queue.
    pub(crate) last_minute: Vec<(String, u64, u64)>,
    /// Completed attempts per minute, oldest first, [`SERIES_MINUTES`] entries ending with
    /// the current minute.
    pub(crate) completed_per_minute: Vec<u64>,
}

impl Rates {
    /// Reads the attempts of the last [`SERIES_MINUTES`] minutes as of `now`.
    pub(crate) fn read(sched: &Sched, now: Timestamp) -> anyhow::Result<Self> {
        let store = sched.store();
        let minute = store.attempt_stats(&AttemptStatsRequest {
            since: Some(now.sub(Duration::from_secs(60))),
            ..AttemptStatsRequest::default()
        })?;
        let step_ms: u64 = 60_000;
        let series = store.attempt_stats(&AttemptStatsRequest {
            since: Some(now.sub(Duration::from_secs(60 * SERIES_MINUTES))),
            step_ms,
            ..AttemptStatsRequest::default()
        })?;
        // Buckets start at multiples of the step; the last one is the current minute.
        let step = i64::try_from(step_ms).unwrap_or(i64::MAX);
        let current = now.as_millis().div_euclid(step);
        let mut completed_per_minute = vec![0; usize::try_from(SERIES_MINUTES).unwrap_or(30)];
        let len = i64::try_from(completed_per_minute.len()).unwrap_or(0);
        for bucket in &series.series {
            let age = current - bucket.start.as_millis().div_euclid(step);
            if (0..len).contains(&age) {
                if let Some(slot) = usize::try_from(len - 1 - age)
                    .ok()
                    .and_then(|i| completed_per_minute.get_mut(i))
                {
                    *slot += bucket.completed;
                }
            }
        }
        Ok(Rates {
            last_minute: minute
                .queues
                .into_iter()
                .map(|q| (q.queue, q.completed, q.failed))
                .collect(),
            completed_per_minute,
        })
    }

    /// Completed and failed attempts of the last minute, every queue together.
    fn totals(&self) -> (u64, u64) {
        self.last_minute
            .iter()
            .fold((0, 0), |(c, f), (_, qc, qf)| (c + qc, f + qf))
    }

    fn of(&self, queue: &str) -> (u64, u64) {
        self.last_minute
            .iter()
            .find(|(q, _, _)| q == queue)
            .map_or((0, 0), |(_, c, f)| (*c, *f))
    }
}

/// Everything one frame shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The store, as the title names it (no password).
    pub(crate) target: String,
    /// When it was read.
    pub(crate) now: Timestamp,
    pub(crate) counts: StateCounts,
    pub(crate) queues: Vec<QueueStats>,
    pub(crate) rates: Rates,
    pub(crate) workers: Vec<WorkerInfo>,
    /// `processing` jobs, oldest first, at most [`RUNNING_ROWS`].
    pub(crate) running: Vec<Job>,
    /// The refresh interval, shown in the title; `None` for a one-off frame.
    pub(crate) interval: Option<Duration>,
    /// The last refresh failed with this (the rest is the last good reading).
    pub(crate) error: Option<String>,
}

impl Snapshot {
    /// Reads the counts, queues, live workers and running jobs (not the rates).
    pub(crate) fn read(
        sched: &Sched,
        target: &str,
        rates: Rates,
        interval: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let now = sched.now();
        let store = sched.store();
        let counts = store.counts()?;
        let queues = store.queue_stats(now)?;
        let workers = live_workers(sched)?;
        let running = store.list(&JobFilter {
            state: Some(JobState::Processing),
            queue: None,
            limit: Some(RUNNING_ROWS),
        })?;
        Ok(Snapshot {
            target: target.to_owned(),
            now,
            counts,
            queues,
            rates,
            workers,
            running,
            interval,
            error: None,
        })
    }
}

/// Colours on or off (`--color`, `NO_COLOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Theme {
    pub(crate) colour: bool,
}

impl Theme {
    fn state(self, state: JobState) -> Style {
        if !self.colour {
            return Style::default();
        }
        let colour = match state {
            JobState::Pending => Color::Cyan,
            JobState::Processing => Color::Yellow,
            JobState::Completed => Color::Green,
            JobState::Failed => Color::Magenta,
            JobState::Dead => Color::Red,
            JobState::Cancelled => Color::Gray,
        };
        Style::default().fg(colour)
    }

    fn header(self) -> Style {
        if self.colour {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }

    fn error(self) -> Style {
        if self.colour {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }
}

/// Draws `snap` over the whole frame.
pub(crate) fn render(frame: &mut Frame<'_>, snap: &Snapshot, theme: Theme) {
    let area = frame.area();
    let [title, states, rates, spark, queues, workers, running] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(table_height(snap.queues.len().max(1))),
        Constraint::Length(table_height(snap.workers.len().max(1))),
        Constraint::Min(3),
    ])
    .areas(area);

    frame.render_widget(Paragraph::new(title_line(snap, theme)), title);
    frame.render_widget(Paragraph::new(states_line(snap, theme)), states);
    frame.render_widget(Paragraph::new(rates_line(snap)), rates);
    render_sparkline(frame, spark, snap);
    frame.render_widget(queues_table(snap, theme), queues);
    frame.render_widget(workers_table(snap, theme), workers);
    frame.render_widget(running_table(snap, theme), running);
}

/// The height a frame needs to show every row of `snap` (for `--once`).
pub(crate) fn full_height(snap: &Snapshot) -> u16 {
    4 + table_height(snap.queues.len().max(1))
        + table_height(snap.workers.len().max(1))
        + table_height(snap.running.len().max(1))
}

/// A bordered table of `rows` rows: two borders and a header.
fn table_height(rows: usize) -> u16 {
    u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(3)
}

/// One frame as plain text, `width` columns wide and as tall as it needs.
pub(crate) fn render_text(snap: &Snapshot, width: u16) -> anyhow::Result<Vec<String>> {
    let height = full_height(snap);
    let mut terminal = Terminal::new(TestBackend::new(width.max(20), height))?;
    terminal.draw(|frame| render(frame, snap, Theme { colour: false }))?;
    Ok(buffer_lines(terminal.backend().buffer()))
}

/// The buffer's rows as text, trailing blanks cut. A wide character (CJK, emoji) fills two
/// cells; the cell it covers is skipped, as a terminal would.
pub(crate) fn buffer_lines(buffer: &ratatui::buffer::Buffer) -> Vec<String> {
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| {
            let mut line = String::new();
            let mut skip = 0usize;
            for x in area.left()..area.right() {
                let symbol = buffer[(x, y)].symbol();
                if skip == 0 {
                    line.push_str(symbol);
                }
                skip = skip
                    .max(unicode_width::UnicodeWidthStr::width(symbol))
                    .saturating_sub(1);
            }
            line.trim_end().to_owned()
        })
        .collect()
}

fn title_line(snap: &Snapshot, theme: Theme) -> Line<'static> {
    let clock = snap.now.to_rfc3339();
    let mut spans = vec![
        Span::styled("queuectl top", theme.header()),
        Span::raw(format!("  {}  {}", one_line(&snap.target), clock)),
    ];
    if let Some(every) = snap.interval {
        spans.push(Span::raw(format!(
            "  every {}  q quits",
            humantime::format_duration(every)
        )));
    }
    if let Some(error) = &snap.error {
        spans.push(Span::styled(
            format!("  refresh failed: {}", one_line(error)),
            theme.error(),
        ));
    }
    Line::from(spans)
}

fn states_line(snap: &Snapshot, theme: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    for state in JobState::ALL {
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            format!("{state} {}", snap.counts.get(state)),
            theme.state(state),
        ));
    }
    let slots: u64 = snap.workers.iter().map(|w| u64::from(w.slots)).sum();
    spans.push(Span::raw(format!(
        "   workers {} ({slots} slots)",
        snap.workers.len()
    )));
    Line::from(spans)
}

fn rates_line(snap: &Snapshot) -> Line<'static> {
    let (completed, failed) = snap.rates.totals();
    Line::from(format!(
        "last minute: {completed} completed, {failed} failed"
    ))
}

fn render_sparkline(frame: &mut Frame<'_>, area: Rect, snap: &Snapshot) {
    let label = format!("completed/min, last {SERIES_MINUTES} min: ");
    let width = u16::try_from(label.chars().count()).unwrap_or(u16::MAX);
    let [text, chart] =
        Layout::horizontal([Constraint::Length(width), Constraint::Min(1)]).areas(area);
    frame.render_widget(Paragraph::new(label), text);
    let data = &snap.rates.completed_per_minute;
    let peak = data.iter().copied().max().unwrap_or(0);
    let shown = usize::from(chart.width).min(data.len());
    frame.render_widget(
        Sparkline::default()
            .data(&data[data.len() - shown..])
            .max(peak.max(1)),
        Rect {
            width: u16::try_from(shown).unwrap_or(chart.width),
            ..chart
        },
    );
    let after = format!(" peak {peak}");
    let used = u16::try_from(shown).unwrap_or(0);
    if chart.width > used {
        frame.render_widget(
            Paragraph::new(after),
            Rect {
                x: chart.x + used,
                width: chart.width - used,
                ..chart
            },
        );
    }
}

fn header_row(names: &[&'static str], theme: Theme) -> Row<'static> {
    Row::new(names.iter().map(|n| Cell::from(*n))).style(theme.header())
}

fn queues_table(snap: &Snapshot, theme: Theme) -> Table<'static> {
    let states = [
        JobState::Pending,
        JobState::Processing,
        JobState::Failed,
        JobState::Dead,
        JobState::Completed,
        JobState::Cancelled,
    ];
    let rows = snap.queues.iter().map(|q| {
        let (done, failed) = snap.rates.of(&q.queue);
        let mut cells = vec![Cell::from(one_line(&q.queue))];
        cells.extend(
            states
                .iter()
                .map(|s| Cell::from(q.counts.get(*s).to_string()).style(theme.state(*s))),
        );
        cells.push(Cell::from(done.to_string()));
        cells.push(Cell::from(failed.to_string()));
        cells.push(Cell::from(
            q.oldest_due
                .map_or_else(|| "-".to_owned(), |at| ago(snap.now.since(at))),
        ));
        Row::new(cells)
    });
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(11),
    ];
    Table::new(rows, widths)
        .header(header_row(
            &[
                "QUEUE",
                "PENDING",
                "PROCESSING",
                "FAILED",
                "DEAD",
                "COMPLETED",
                "CANCELLED",
                "DONE/MIN",
                "FAILED/MIN",
                "OLDEST DUE",
            ],
            theme,
        ))
        .block(Block::bordered().title(format!(" Queues ({}) ", snap.queues.len())))
}

fn workers_table(snap: &Snapshot, theme: Theme) -> Table<'static> {
    let rows = snap.workers.iter().map(|w| {
        let queues = if w.queues.is_empty() {
            "all".to_owned()
        } else {
            one_line(&w.queues.join(","))
        };
        Row::new([
            Cell::from(one_line(&w.id)),
            Cell::from(one_line(&w.host)),
            Cell::from(w.pid.to_string()),
            Cell::from(w.slots.to_string()),
            Cell::from(queues),
            Cell::from(ago(snap.now.since(w.started_at))),
            Cell::from(format!("{} ago", ago(snap.now.since(w.heartbeat_at)))),
        ])
    });
    let widths = [
        Constraint::Fill(2),
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(10),
    ];
    Table::new(rows, widths)
        .header(header_row(
            &[
                "WORKER",
                "HOST",
                "PID",
                "SLOTS",
                "QUEUES",
                "UP",
                "HEARTBEAT",
            ],
            theme,
        ))
        .block(Block::bordered().title(format!(" Workers ({}) ", snap.workers.len())))
}

fn running_table(snap: &Snapshot, theme: Theme) -> Table<'static> {
    let rows = snap.running.iter().map(|j| {
        Row::new([
            Cell::from(one_line(j.id.as_str())),
            Cell::from(one_line(&j.queue)),
            Cell::from(j.worker_id.as_deref().map(one_line).unwrap_or_default()),
            Cell::from(
                j.started_at
                    .map_or_else(|| "-".to_owned(), |at| ago(snap.now.since(at))),
            ),
            Cell::from(format!("{}/{}", j.attempts + 1, j.max_retries.max(1))),
            Cell::from(one_line(&j.command)),
        ])
    });
    let widths = [
        Constraint::Fill(2),
        Constraint::Fill(1),
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Fill(3),
    ];
    let more = snap.counts.processing > u64::try_from(snap.running.len()).unwrap_or(0);
    let title = if more {
        format!(
            " Running jobs ({}, oldest {} shown) ",
            snap.counts.processing,
            snap.running.len()
        )
    } else {
        format!(" Running jobs ({}) ", snap.running.len())
    };
    Table::new(rows, widths)
        .header(header_row(
            &["JOB", "QUEUE", "WORKER", "RUNNING", "ATTEMPT", "COMMAND"],
            theme,
        ))
        .block(Block::bordered().title(title))
}

/// `s` on one line: control characters (newlines, escapes) become spaces, so nothing a
/// job wrote can move the cursor or change the terminal.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A span of time for people: `42 s`, `3 min`, `5 h`, `2 d`.
fn ago(d: Duration) -> String {
    crate::cli::output::span(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use queuectl::{JobId, NewJob};

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_764_000_000_000);

    fn job(id: &str, queue: &str, command: &str, started_secs_ago: u64) -> Job {
        let t = NOW.sub(Duration::from_secs(600));
        let n = NewJob::shell(command, t);
        Job {
            id: JobId::new(id),
            command: n.command,
            kind: n.kind,
            state: JobState::Processing,
            attempts: 0,
            max_retries: 3,
            priority: 0,
            queue: queue.to_owned(),
            interrupts: 0,
            created_at: t,
            updated_at: t,
            run_at: t,
            next_run_at: None,
            timeout_secs: None,
            exit_code: None,
            last_error: None,
            worker_id: Some("host:42:abcd".to_owned()),
            started_at: Some(NOW.sub(Duration::from_secs(started_secs_ago))),
            finished_at: None,
            lease_until: None,
            claim_token: None,
            cancel_requested: false,
            options: n.options,
        }
    }

    fn known() -> Snapshot {
        let counts = StateCounts {
            pending: 12,
            processing: 2,
            completed: 1_204,
            failed: 3,
            dead: 1,
            ..StateCounts::default()
        };
        let mail = StateCounts {
            pending: 10,
            processing: 1,
            completed: 1_000,
            ..StateCounts::default()
        };
        let reports = StateCounts {
            pending: 2,
            processing: 1,
            completed: 204,
            failed: 3,
            dead: 1,
            ..StateCounts::default()
        };
        let mut per_minute = vec![0; 30];
        per_minute[29] = 40;
        per_minute[28] = 20;
        Snapshot {
            target: "queue.db".to_owned(),
            now: NOW,
            counts,
            queues: vec![
                QueueStats {
                    queue: "mail".to_owned(),
                    counts: mail,
                    oldest_due: Some(NOW.sub(Duration::from_secs(90))),
                    waiting: 0,
                },
                QueueStats {
                    queue: "レポート".to_owned(),
                    counts: reports,
                    oldest_due: None,
                    waiting: 0,
                },
            ],
            rates: Rates {
                last_minute: vec![("mail".to_owned(), 38, 0), ("レポート".to_owned(), 2, 1)],
                completed_per_minute: per_minute,
            },
            workers: vec![WorkerInfo {
                id: "host:42:abcd".to_owned(),
                host: "host".to_owned(),
                pid: 42,
                slots: 2,
                queues: Vec::new(),
                started_at: NOW.sub(Duration::from_secs(7_200)),
                heartbeat_at: NOW.sub(Duration::from_secs(1)),
                stop_requested: false,
            }],
            running: vec![
                job("send-1", "mail", "sendmail --to x", 5),
                job("📊-月次", "レポート", "make report\n\u{1b}[2J", 125),
            ],
            interval: Some(Duration::from_secs(1)),
            error: None,
        }
    }

    fn screen(snap: &Snapshot, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| render(frame, snap, Theme { colour: true }))
            .unwrap();
        buffer_lines(terminal.backend().buffer())
    }

    fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
    }

    #[test]
    fn a_known_state_renders_counts_rates_queues_workers_and_running_jobs() {
        let lines = screen(&known(), 120, 30);
        let all = lines.join("\n");
        assert!(
            lines[0].starts_with("queuectl top  queue.db  2025-11-24T"),
            "{all}"
        );
        assert!(lines[0].contains("every 1s  q quits"), "{all}");
        assert_eq!(
            lines[1],
            "pending 12  processing 2  completed 1204  failed 3  dead 1  cancelled 0   \
             workers 1 (2 slots)"
        );
        assert_eq!(lines[2], "last minute: 40 completed, 1 failed");
        assert!(lines[3].contains("peak 40"), "{all}");

        let mail = line_with(&lines, "│mail");
        let cells: Vec<&str> = mail.trim_matches('│').split_whitespace().collect();
        assert_eq!(
            cells,
            ["mail", "10", "1", "0", "0", "1000", "0", "38", "0", "1", "min"]
        );
        let reports = line_with(&lines, "│レポート");
        let cells: Vec<&str> = reports.trim_matches('│').split_whitespace().collect();
        assert_eq!(
            cells,
            ["レポート", "2", "1", "3", "1", "204", "0", "2", "1", "-"]
        );
        assert!(all.contains(" Workers (1) "), "{all}");
        let worker = line_with(&lines, "│host:42:abcd");
        assert!(worker.contains("all") && worker.contains("2 h") && worker.contains("1 s ago"));
        assert!(all.contains(" Running jobs (2) "), "{all}");
        let report = line_with(&lines, "│📊-月次");
        assert!(
            report.contains("2 min") && report.contains("1/3"),
            "{report}"
        );
        assert!(report.contains("make report"), "{report}");
        // The escape sequence the job wrote is not on the screen.
        assert!(!all.contains('\u{1b}'), "{all}");
    }

    /// Wide characters take two cells each, so every bordered row is exactly as wide as
    /// the frame (the right border stays in place).
    #[test]
    fn wide_characters_keep_the_borders_aligned() {
        let lines = screen(&known(), 100, 30);
        for line in lines.iter().filter(|l| l.starts_with('│')) {
            assert_eq!(
                unicode_width::UnicodeWidthStr::width(line.as_str()),
                100,
                "{line}"
            );
            assert!(line.ends_with('│'), "{line}");
        }
    }

    #[test]
    fn an_empty_store_and_a_failed_refresh_render_without_panicking() {
        let mut snap = Snapshot {
            target: "memory:".to_owned(),
            now: NOW,
            rates: Rates {
                last_minute: Vec::new(),
                completed_per_minute: vec![0; 30],
            },
            ..Snapshot::default()
        };
        snap.error = Some("cannot reach the server".to_owned());
        for (w, h) in [(120, 30), (20, 5), (1, 1), (300, 3)] {
            let lines = screen(&snap, w, h);
            assert_eq!(lines.len(), usize::from(h));
        }
        let lines = screen(&snap, 120, 30);
        assert!(lines[0].contains("refresh failed: cannot reach the server"));
        assert!(lines.join("\n").contains(" Queues (0) "));
    }

    #[test]
    fn the_text_frame_is_as_tall_as_its_rows() {
        let snap = known();
        let lines = render_text(&snap, 100).unwrap();
        assert_eq!(lines.len(), usize::from(full_height(&snap)));
        assert!(lines.last().unwrap().starts_with('└'));
    }

    #[test]
    fn spans_of_time_read_naturally() {
        assert_eq!(ago(Duration::from_secs(0)), "0 s");
        assert_eq!(ago(Duration::from_secs(59)), "59 s");
        assert_eq!(ago(Duration::from_secs(60)), "1 min");
        assert_eq!(ago(Duration::from_secs(7_200)), "2 h");
        assert_eq!(ago(Duration::from_secs(200_000)), "2 d");
    }
}
