//! `queuectl top`: a live terminal view of the queue, drawn by `cli/top.rs`.
//!
//! The loop reads the store every `--interval` (the rates at most every [`RATES_EVERY`]:
//! they cost more), redraws, and between reads waits for keys: `q`, Esc or Ctrl-C quit, `r`
//! reads again at once, a resize redraws. The terminal is put back (raw mode off, the main
//! screen back) on every way out: a key, an error, SIGTERM/SIGHUP/SIGINT, or a panic
//! (ratatui's hook). A failed read keeps the last good frame and says so in its title.
//!
//! Without a terminal on stdout it refuses (exit 1) unless `--once`, which prints one frame
//! as plain text.

use std::io::{self, IsTerminal as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;

use crate::cli::args::TopArgs;
use crate::cli::open_store::{open_to_read, target_text, without_password, Sched};
use crate::cli::output::print_lines;
use crate::cli::top::{render, render_text, Rates, Snapshot, Theme};

/// The rates (finished attempts) are read at most this often, whatever `--interval` says.
const RATES_EVERY: Duration = Duration::from_secs(5);
/// Longest wait for a key before looking at the signal flag again.
const KEY_WAIT: Duration = Duration::from_millis(200);
/// The `--once` frame's width when neither `--width` nor the terminal says.
const DEFAULT_WIDTH: u16 = 120;

pub(crate) fn run(db: Option<&str>, a: &TopArgs, colour: bool) -> anyhow::Result<()> {
    if !a.once && !io::stdout().is_terminal() {
        bail!(
            "queuectl top needs a terminal, and stdout is not one; `queuectl top --once` \
             prints one frame as text (or see `queuectl status` and `queuectl metrics`)"
        );
    }
    let (sched, _) = open_to_read(db)?;
    let target = without_password(&target_text(db));
    if a.once {
        let rates = Rates::read(&sched, sched.now())?;
        let snap = Snapshot::read(&sched, &target, rates, None)?;
        let width = a
            .width
            .or_else(|| {
                ratatui::crossterm::terminal::size()
                    .ok()
                    .map(|(columns, _)| columns)
                    .filter(|c| *c >= 40)
            })
            .unwrap_or(DEFAULT_WIDTH);
        return print_lines(render_text(&snap, width)?);
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            ratatui::restore();
            return Err(e).context("setting up the terminal");
        }
    };
    let view = View {
        sched: &sched,
        target: &target,
        interval: a.interval,
        theme: Theme { colour },
    };
    let result = view.run(&mut terminal, &stop);
    let restored = ratatui::try_restore().context("restoring the terminal");
    result.and(restored)
}

struct View<'a> {
    sched: &'a Sched,
    target: &'a str,
    interval: Duration,
    theme: Theme,
}

impl View<'_> {
    fn run(&self, terminal: &mut DefaultTerminal, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut snap: Option<Snapshot> = None;
        let mut rates = Rates::default();
        let mut rates_read: Option<Instant> = None;
        let mut next_read = Instant::now();
        let mut redraw = true;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_read {
                next_read = Instant::now() + self.interval;
                let mut error = None;
                if rates_read.is_none_or(|t| t.elapsed() >= RATES_EVERY.max(self.interval)) {
                    match Rates::read(self.sched, self.sched.now()) {
                        Ok(r) => {
                            rates = r;
                            rates_read = Some(Instant::now());
                        }
                        Err(e) => error = Some(format!("{e:#}")),
                    }
                }
                match Snapshot::read(self.sched, self.target, rates.clone(), Some(self.interval)) {
                    Ok(mut fresh) => {
                        fresh.error = error;
                        snap = Some(fresh);
                    }
                    Err(e) => {
                        let last = snap.get_or_insert_with(|| Snapshot {
                            target: self.target.to_owned(),
                            now: self.sched.now(),
                            interval: Some(self.interval),
                            ..Snapshot::default()
                        });
                        last.error = Some(format!("{e:#}"));
                    }
                }
                redraw = true;
            }
            if redraw {
                if let Some(snap) = &snap {
                    terminal
                        .draw(|frame| render(frame, snap, self.theme))
                        .context("drawing")?;
                }
                redraw = false;
            }
            let wait = next_read
                .saturating_duration_since(Instant::now())
                .min(KEY_WAIT);
            if event::poll(wait).context("reading the terminal")? {
                match event::read().context("reading the terminal")? {
                    Event::Key(key) if key.kind != KeyEventKind::Release => match action(key) {
                        Some(Action::Quit) => return Ok(()),
                        Some(Action::Refresh) => next_read = Instant::now(),
                        None => {}
                    },
                    Event::Resize(..) => redraw = true,
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Quit,
    Refresh,
}

fn action(key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(Action::Quit),
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(Action::Quit),
        KeyCode::Char('r') => Some(Action::Refresh),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_esc_and_ctrl_c_quit_r_refreshes_other_keys_do_nothing() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        let none = KeyModifiers::NONE;
        assert_eq!(action(key(KeyCode::Char('q'), none)), Some(Action::Quit));
        assert_eq!(action(key(KeyCode::Esc, none)), Some(Action::Quit));
        assert_eq!(
            action(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(action(key(KeyCode::Char('r'), none)), Some(Action::Refresh));
        assert_eq!(action(key(KeyCode::Char('c'), none)), None);
        assert_eq!(action(key(KeyCode::Enter, none)), None);
    }
}
