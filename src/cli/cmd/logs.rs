//! `queuectl logs ID`: the stdout and stderr of the job's last attempt.

use std::borrow::Cow;
use std::io::{self, IsTerminal as _, Write};

use crate::cli::args::LogsArgs;
use crate::cli::open_store::open_to_read;

pub(crate) fn run(db: Option<&str>, a: &LogsArgs) -> anyhow::Result<()> {
    let (sched, _) = open_to_read(db)?;
    let id = crate::cli::job_ref::resolve(&sched, &a.id)?;
    let record = sched.store().get_record(&id)?;
    let Some(output) = record.output else {
        eprintln!("job {id} has no output yet (it has not finished an attempt)");
        return Ok(());
    };
    let mut out = io::stdout().lock();
    // Job output may hold escape sequences that rewrite a terminal's screen or title (or a
    // fake log line after a \r): shown, not obeyed, unless --raw or not a terminal.
    let safe = !a.raw && io::stdout().is_terminal();
    let shown = |text: &str| -> Vec<u8> {
        if safe {
            for_terminal(text).into_owned().into_bytes()
        } else {
            text.as_bytes().to_vec()
        }
    };
    if a.stdout || a.stderr {
        let text = if a.stdout {
            &output.stdout
        } else {
            &output.stderr
        };
        out.write_all(&shown(text))?;
    } else {
        // Both streams go to stdout, labelled, so `logs ID > file` keeps everything.
        for (name, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            writeln!(out, "==> {name} <==")?;
            out.write_all(&shown(text))?;
            if !text.is_empty() && !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
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
