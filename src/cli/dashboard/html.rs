//! Building HTML safely: every string that did not come from this file's own literals (job
//! ids, commands, output, queue names, errors, worker names) goes through [`esc`] (text and
//! attribute values alike, always in double quotes) or [`query`] (URLs), never around it.
//! The pages carry no inline script or style, so the Content-Security-Policy
//! (`script-src 'self'`) blocks any markup that slipped through from running.

use std::fmt::{self, Write as _};

use queuectl::{JobState, Timestamp};

/// Text escaped for an HTML text node or a double-quoted attribute value.
pub(crate) struct Esc<'a>(pub(crate) &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'', '\0']) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or('\0');
            f.write_str(match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                // The HTML parser turns NUL into U+FFFD anyway; say so explicitly.
                _ => "\u{fffd}",
            })?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Shorthand for [`Esc`].
pub(crate) fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// A query string (`?a=1&b=x%20y`) from pairs, each value percent-encoded; pairs with an
/// empty value are left out. Escape the result with [`esc`] inside an attribute (`&`).
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        percent_encode(value, &mut out);
    }
    out
}

/// Percent-encodes every byte but the unreserved ones of RFC 3986.
fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The link to a job's page.
pub(crate) fn job_href(id: &str) -> String {
    format!("/job{}", query(&[("id", id)]))
}

/// At most `max` characters of `s` on one line (control characters become spaces), with `…`
/// when cut. Escape the result.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// `3 s ago`, `5 min ago`, `in 2 h`, … from `at` relative to `now`.
pub(crate) fn relative(at: Timestamp, now: Timestamp) -> String {
    let (secs, future) = if at <= now {
        (now.since(at).as_secs(), false)
    } else {
        (at.since(now).as_secs(), true)
    };
    let span = match secs {
        0..=59 => format!("{secs} s"),
        60..=3_599 => format!("{} min", secs / 60),
        3_600..=172_799 => format!("{} h", secs / 3_600),
        _ => format!("{} d", secs / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A `<time>` element: the RFC 3339 instant, shown relative to `now`.
pub(crate) fn time(at: Timestamp, now: Timestamp) -> String {
    let exact = at.to_rfc3339();
    format!(
        r#"<time datetime="{0}" title="{0}">{1}</time>"#,
        esc(&exact),
        esc(&relative(at, now))
    )
}

/// An optional instant as [`time`], or a dash.
pub(crate) fn maybe_time(at: Option<Timestamp>, now: Timestamp) -> String {
    at.map_or_else(|| "–".to_owned(), |at| time(at, now))
}

/// A state as a coloured badge.
pub(crate) fn state_badge(state: JobState) -> String {
    let s = state.as_str();
    format!(r#"<span class="badge s-{s}">{s}</span>"#)
}

/// What every page shares: the head, the navigation, the CSRF token for the script and the
/// forms, and `body`.
pub(crate) struct Layout<'a> {
    /// The page's title (escaped here).
    pub(crate) title: &'a str,
    /// Which navigation entry is current (`overview`, `jobs`, `dead`, `workers`).
    pub(crate) nav: &'a str,
    /// The per-process CSRF token.
    pub(crate) csrf: &'a str,
    /// Whether actions are off.
    pub(crate) read_only: bool,
}

impl Layout<'_> {
    /// The whole page around `body` (already safe HTML).
    pub(crate) fn page(&self, body: &str) -> String {
        let nav = [
            ("overview", "/", "Overview"),
            ("jobs", "/jobs", "Jobs"),
            ("dead", "/jobs?state=dead", "Dead letters"),
            ("workers", "/workers", "Workers"),
            ("schedules", "/schedules", "Schedules"),
            ("metrics", "/metrics", "Metrics"),
        ]
        .iter()
        .map(|(key, href, label)| {
            let current = if *key == self.nav {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(r#"<a href="{href}"{current}>{label}</a>"#)
        })
        .collect::<String>();
        let mode = if self.read_only {
            r#"<span class="badge readonly" title="started with --read-only: actions are off">read-only</span>"#
        } else {
            ""
        };
        format!(
            r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>{title} · queuectl</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<header><a class="brand" href="/">queuectl</a><nav>{nav}</nav>{mode}</header>
<main>
{body}
</main>
</body>
</html>
"#,
            csrf = esc(self.csrf),
            title = esc(self.title),
        )
    }
}

/// A POST form with one button: the CSRF token, hidden `fields` and a confirmation
/// question for the script, if any.
pub(crate) fn action_form(
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    csrf: &str,
    confirm: Option<&str>,
) -> String {
    let hidden: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                esc(k),
                esc(v)
            )
        })
        .collect();
    let confirm = confirm.map_or_else(String::new, |q| format!(r#" data-confirm="{}""#, esc(q)));
    format!(
        r#"<form method="post" action="{action}" class="action"{confirm}><input type="hidden" name="csrf" value="{csrf}">{hidden}<button type="submit" name="do" value="{label}">{label}</button></form>"#,
        action = esc(action),
        csrf = esc(csrf),
        label = esc(label),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_nul() {
        let hostile = r#"<script>alert(1)</script>"><img src=x onerror='alert(2)'>&amp;"#;
        let out = esc(hostile).to_string();
        assert_eq!(
            out,
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=&#39;alert(2)&#39;&gt;&amp;amp;"
        );
        assert_eq!(esc("a\0b é").to_string(), "a\u{fffd}b é");
        assert_eq!(esc("").to_string(), "");
    }

    #[test]
    fn queries_encode_everything_but_unreserved_bytes() {
        assert_eq!(
            query(&[("id", "a b/é?&=#\"<"), ("q", ""), ("state", "dead")]),
            "?id=a%20b%2F%C3%A9%3F%26%3D%23%22%3C&state=dead"
        );
        assert_eq!(query(&[("q", "")]), "");
        assert_eq!(job_href(".."), "/job?id=..");
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abcd", 4), "abcd");
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = Timestamp::from_millis(10_000_000);
        let ago = |s: i64| relative(Timestamp::from_millis(10_000_000 - s * 1000), now);
        assert_eq!(ago(3), "3 s ago");
        assert_eq!(ago(300), "5 min ago");
        assert_eq!(ago(7_200), "2 h ago");
        assert_eq!(ago(-90), "in 1 min");
    }
}
