//! `queuectl logs ID`: the stdout and stderr of the job's last attempt, of the attempt
//! running now (what has arrived so far), or of any attempt of its history (`--attempt N`);
//! `--follow` prints a running attempt's output as it arrives until the attempt ends.

use std::borrow::Cow;
use std::io::{self, IsTerminal as _, Write};
use std::thread;
use std::time::Duration;

use anyhow::bail;
use queuectl::{JobId, JobOutput, JobState, JobStore};
use queuectl_store::split_marker;

use crate::cli::args::LogsArgs;
use crate::cli::open_store::open_to_read;

/// How often `--follow` reads the store. Workers publish at most once a second, so this
/// only bounds the extra delay on top of theirs; it is a cheap primary-key read.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub(crate) fn run(db: Option<&str>, a: &LogsArgs) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    let store = sched.store();
    let id = crate::cli::job_ref::resolve(&sched, &a.id)?;
    let record = store.get_record(&id)?;
    let printer = Printer::new(a);

    if let Some(n) = a.attempt {
        let entry = n
            .checked_sub(1)
            .and_then(|i| record.history.get(usize::try_from(i).ok()?));
        let Some(entry) = entry else {
            bail!(
                "job {} has no attempt {n} in its history (it has {} finished attempt{})",
                a.id,
                record.history.len(),
                if record.history.len() == 1 { "" } else { "s" }
            );
        };
        return printer.print_whole(&entry.output);
    }

    let running = record.job.state == JobState::Processing;
    if running && a.follow {
        return follow(store, &id, &record.job, &printer);
    }
    if running {
        match store.live_output(&id)? {
            Some(live) => return printer.print_whole(&live.to_output()),
            None => {
                eprintln!("job {} is running; no output has arrived yet", a.id);
                return Ok(());
            }
        }
    }
    match record.output {
        Some(output) => printer.print_whole(&output),
        None => {
            eprintln!(
                "job {} has no output yet (it has not finished an attempt)",
                a.id
            );
            Ok(())
        }
    }
}

/// Prints the attempt `job` is running as its output arrives, then what it wrote after the
/// last publication once it ended (from its history entry), and returns.
fn follow(
    store: &impl JobStore,
    id: &JobId,
    job: &queuectl::Job,
    printer: &Printer,
) -> anyhow::Result<()> {
    let token = job.claim_token;
    let started_at = job.started_at;
    let mut shown = Shown::default();
    loop {
        // The job first, then its output: output read after the attempt was seen running
        // belongs to it (the store deletes it when the attempt ends).
        let now = store.get(id)?;
        let still_running = now.state == JobState::Processing && now.claim_token == token;
        if !still_running {
            break;
        }
        if let Some(live) = store.live_output(id)? {
            let out = live.to_output();
            printer.print_new(&mut shown, &out)?;
        }
        thread::sleep(FOLLOW_POLL);
    }
    // The attempt's history entry, if it finished (a recovered run has none): what it wrote
    // after its last publication.
    let record = store.get_record(id)?;
    if let Some(entry) = record
        .history
        .last()
        .filter(|h| Some(h.started_at) == started_at)
    {
        printer.print_new(&mut shown, &entry.output)?;
    }
    printer.finish(&shown)
}

/// How far each stream has been printed, in bytes of the stream (cut ones included), and
/// which stream printed last.
#[derive(Debug, Default)]
struct Shown {
    stdout: u64,
    stderr: u64,
    last: Option<&'static str>,
    ends_in_newline: bool,
}

/// Writes output to stdout the way `logs` shows it.
struct Printer {
    /// Control characters shown as ^X (a terminal, no --raw).
    safe: bool,
    /// Only this stream, without headers (`--stdout`, `--stderr`).
    only: Option<&'static str>,
}

impl Printer {
    fn new(a: &LogsArgs) -> Self {
        Printer {
            // Job output may hold escape sequences that rewrite a terminal's screen or
            // title (or a fake log line after a \r): shown, not obeyed, unless --raw or
            // not a terminal.
            safe: !a.raw && io::stdout().is_terminal(),
            only: if a.stdout {
                Some("stdout")
            } else if a.stderr {
                Some("stderr")
            } else {
                None
            },
        }
    }

    fn shown<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.safe {
            for_terminal(text)
        } else {
            Cow::Borrowed(text)
        }
    }

    /// The whole output: one stream verbatim, or both labelled (so `logs ID > file` keeps
    /// everything).
    fn print_whole(&self, output: &JobOutput) -> anyhow::Result<()> {
        let mut out = io::stdout().lock();
        match self.only {
            Some(name) => {
                let text = if name == "stdout" {
                    &output.stdout
                } else {
                    &output.stderr
                };
                out.write_all(self.shown(text).as_bytes())?;
            }
            None => {
                for (name, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                    writeln!(out, "==> {name} <==")?;
                    out.write_all(self.shown(text).as_bytes())?;
                    if !text.is_empty() && !text.ends_with('\n') {
                        writeln!(out)?;
                    }
                }
            }
        }
        out.flush()?;
        Ok(())
    }

    /// What `output` holds beyond what `shown` says was printed; a stream's header when
    /// the other one printed last, as `tail -f` does with several files.
    fn print_new(&self, shown: &mut Shown, output: &JobOutput) -> anyhow::Result<()> {
        let mut out = io::stdout().lock();
        for (name, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            if self.only.is_some_and(|only| only != name) {
                continue;
            }
            let position = if name == "stdout" {
                &mut shown.stdout
            } else {
                &mut shown.stderr
            };
            let Some(new) = unseen(text, *position) else {
                continue;
            };
            *position = stream_length(text);
            if self.only.is_none() && shown.last != Some(name) {
                if shown.last.is_some() && !shown.ends_in_newline {
                    writeln!(out)?;
                }
                writeln!(out, "==> {name} <==")?;
                shown.last = Some(name);
            }
            out.write_all(self.shown(&new).as_bytes())?;
            shown.ends_in_newline = new.ends_with('\n');
        }
        out.flush()?;
        Ok(())
    }

    /// Ends a followed output on a newline.
    fn finish(&self, shown: &Shown) -> anyhow::Result<()> {
        if self.only.is_none() && shown.last.is_some() && !shown.ends_in_newline {
            let mut out = io::stdout().lock();
            writeln!(out)?;
            out.flush()?;
        }
        Ok(())
    }
}

/// The length of a stream as stored (marker line and all): bytes cut plus bytes kept.
fn stream_length(text: &str) -> u64 {
    let (cut, kept) = split_marker(text);
    cut.saturating_add(kept.len() as u64)
}

/// The part of a stored stream past `position` (bytes of the stream so far), if any; when
/// some of it was cut before it could be shown, a marker line says how much.
fn unseen(text: &str, position: u64) -> Option<Cow<'_, str>> {
    let (cut, kept) = split_marker(text);
    let total = cut.saturating_add(kept.len() as u64);
    let new = total.checked_sub(position).filter(|n| *n > 0)?;
    match usize::try_from(new).ok().filter(|n| *n <= kept.len()) {
        Some(n) => {
            let mut start = kept.len() - n;
            while !kept.is_char_boundary(start) {
                start += 1;
            }
            Some(Cow::Borrowed(&kept[start..]))
        }
        None => Some(Cow::Owned(
            queuectl_store::truncation_marker(cut.saturating_sub(position), kept.len()) + kept,
        )),
    }
}

/// `text` with every control character but newline and tab in caret notation (`^[` for
/// ESC, `^M` for CR, `^?` for DEL) and C1 controls as `\u{9b}`, so that it cannot steer a
/// terminal.
fn for_terminal(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => shown.push(c),
            '\u{7f}' => shown.push_str("^?"),
            c if (c as u32) < 0x20 => {
                shown.push('^');
                shown.push(char::from(b'@' + c as u8));
            }
            c => shown.extend(c.escape_unicode()),
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_is_what_follows_the_position() {
        assert_eq!(unseen("abc", 0).as_deref(), Some("abc"));
        assert_eq!(unseen("abc", 1).as_deref(), Some("bc"));
        assert_eq!(unseen("abc", 3), None);
        assert_eq!(unseen("abc", 9), None);
        let cut = queuectl_store::truncation_marker(10, 3) + "xyz";
        assert_eq!(unseen(&cut, 12).as_deref(), Some("z"));
        assert_eq!(stream_length(&cut), 13);
        assert_eq!(
            unseen(&cut, 4).as_deref(),
            Some("[queuectl: output truncated: 6 bytes cut, kept the last 3]\nxyz")
        );
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(for_terminal("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            for_terminal("\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "^[]0;pwned^G^[[2J"
        );
        assert_eq!(for_terminal("ok\rFAKE\u{7f}\u{9b}"), "ok^MFAKE^?\\u{9b}");
        assert_eq!(for_terminal("日本語 ✓"), "日本語 ✓");
    }
}
