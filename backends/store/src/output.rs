//! Captured output: the caps every store and the executor share, the truncation marker, and
//! [`LiveOutput`], the output of an attempt that is still running.

use crate::JobOutput;

/// Bytes kept of each of an attempt's stdout and stderr: the tail, where errors usually
/// are. The truncation marker line comes on top (it is outside the cap).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The marker line put before a stream of which `cut` bytes were dropped, keeping the
/// last `kept` bytes: `[queuectl: output truncated: 1234 bytes cut, kept the last 65536]`.
#[must_use]
pub fn truncation_marker(cut: u64, kept: usize) -> String {
    format!("[queuectl: output truncated: {cut} bytes cut, kept the last {kept}]\n")
}

/// Splits a stream as stored (see [`truncation_marker`]) into the number of bytes cut
/// before it and the text kept. A stream without the marker was not cut.
#[must_use]
pub fn split_marker(text: &str) -> (u64, &str) {
    let parsed = text
        .strip_prefix("[queuectl: output truncated: ")
        .and_then(|rest| {
            let (line, kept) = rest.split_once('\n')?;
            let (cut, tail) = line.split_once(" bytes cut, kept the last ")?;
            let cut: u64 = cut.parse().ok()?;
            tail.strip_suffix(']')?.parse::<u64>().ok()?;
            Some((cut, kept))
        });
    parsed.unwrap_or((0, text))
}

/// Keeps at most the last `limit` bytes of `text` (starting on a character boundary, so
/// possibly a little fewer); returns how many bytes it dropped.
pub fn keep_tail(text: &mut String, limit: usize) -> u64 {
    if text.len() <= limit {
        return 0;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text.drain(..start);
    u64::try_from(start).unwrap_or(u64::MAX)
}

/// The output an attempt has written so far, as its worker publishes it while it runs
/// ([`crate::Jobs::put_live_output`]): the tail of each stream (at most
/// [`OUTPUT_LIMIT`] bytes) and how many bytes before it were cut.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveOutput {
    /// The tail of standard output.
    pub stdout: String,
    /// The tail of standard error.
    pub stderr: String,
    /// Bytes of standard output written before `stdout` and not kept.
    pub stdout_cut: u64,
    /// Bytes of standard error written before `stderr` and not kept.
    pub stderr_cut: u64,
}

impl LiveOutput {
    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty()
            && self.stderr.is_empty()
            && self.stdout_cut == 0
            && self.stderr_cut == 0
    }

    /// This output within the caps: each stream cut to its last [`OUTPUT_LIMIT`] bytes,
    /// the bytes dropped added to its cut count. What every store stores.
    #[must_use]
    pub fn capped(mut self) -> Self {
        self.stdout_cut = self
            .stdout_cut
            .saturating_add(keep_tail(&mut self.stdout, OUTPUT_LIMIT));
        self.stderr_cut = self
            .stderr_cut
            .saturating_add(keep_tail(&mut self.stderr, OUTPUT_LIMIT));
        self
    }

    /// The output as `logs` and `show` print it: each cut stream preceded by its
    /// [`truncation_marker`].
    #[must_use]
    pub fn to_output(&self) -> JobOutput {
        let stream = |cut: u64, text: &str| {
            if cut == 0 {
                text.to_owned()
            } else {
                truncation_marker(cut, text.len()) + text
            }
        };
        JobOutput {
            stdout: stream(self.stdout_cut, &self.stdout),
            stderr: stream(self.stderr_cut, &self.stderr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips() {
        let text = truncation_marker(1234, 3) + "abc";
        assert_eq!(split_marker(&text), (1234, "abc"));
        assert_eq!(split_marker("plain\n"), (0, "plain\n"));
        assert_eq!(
            split_marker("[queuectl: output truncated: x bytes cut]\nz"),
            (0, "[queuectl: output truncated: x bytes cut]\nz")
        );
    }

    #[test]
    fn keep_tail_cuts_on_a_character_boundary() {
        let mut s = "aé€".to_owned(); // 1 + 2 + 3 bytes
        assert_eq!(keep_tail(&mut s, 4), 3);
        assert_eq!(s, "€");
        let mut s = "abc".to_owned();
        assert_eq!(keep_tail(&mut s, 3), 0);
        assert_eq!(s, "abc");
    }

    #[test]
    fn capped_keeps_the_tail_and_counts_the_rest() {
        let live = LiveOutput {
            stdout: "x".repeat(OUTPUT_LIMIT + 10),
            stdout_cut: 5,
            ..LiveOutput::default()
        }
        .capped();
        assert_eq!(live.stdout.len(), OUTPUT_LIMIT);
        assert_eq!(live.stdout_cut, 15);
        let shown = live.to_output();
        assert!(shown
            .stdout
            .starts_with("[queuectl: output truncated: 15 bytes cut, kept the last 65536]\n"));
        assert_eq!(shown.stderr, "");
    }
}
