//! The job JSON that `queuectl enqueue` accepts, parsed into [`EnqueueRequest`]s.
//!
//! Private to the binary: the library takes [`EnqueueRequest`]s, not JSON. The fuzz
//! harness (`fuzz/harness.rs`) compiles this very file by path, so the fuzz targets and the
//! corpus replay in `tests/fuzz_corpus/` exercise exactly the code the CLI runs; it
//! therefore names the library as `queuectl::`, never `crate::`. Nothing here touches a
//! store: parsing either yields complete requests or an [`InputError`] naming the job and
//! the field, so a batch is rejected before anything is stored.
//!
//! | field | type | rules |
//! |---|---|---|
//! | `command` | string | required, non-empty after trim (stored as given) |
//! | `id` | string | non-blank (stored as given) |
//! | `max_retries` | integer ≥ 0 | |
//! | `timeout` (alias `timeout_seconds`) | integer > 0 | seconds |
//! | `priority` | integer | 32-bit |
//! | `run_at` | RFC 3339 string or integer epoch seconds | |
//! | `queue` | string | non-blank |
//! | `cwd` | string | non-empty (made absolute and checked by the scheduler) |
//! | `env` | object of string → string | names checked by the scheduler |
//! | `unique_key` | string | non-blank |
//! | `limits` | object | `memory_mb`, `cpu_seconds`, `open_files`, `processes`: integers > 0 |
//! | `depends_on` | array of strings | non-blank ids |
//!
//! `null` for an optional field means "use the default", so a job printed by
//! `queuectl show` can be fed back in. The fields a client cannot set (`state`,
//! `attempts` and the timestamps `created_at`, `updated_at`, `next_run_at`, `started_at`,
//! `finished_at`) are ignored silently; any other unknown field is reported in
//! [`ParsedJob::unknown_fields`] for the caller to warn about (see the first test below).

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use queuectl::{EnqueueRequest, JobId, Limits, Timestamp};

/// Fields a client may send but never sets: the store owns them.
const IGNORED_FIELDS: [&str; 7] = [
    "attempts",
    "created_at",
    "finished_at",
    "next_run_at",
    "started_at",
    "state",
    "updated_at",
];

/// Epoch seconds of 9999-12-31T23:59:59Z, the last instant RFC 3339 can print.
const MAX_EPOCH_SECS: i64 = 253_402_300_799;
/// Epoch seconds of 0000-01-01T00:00:00Z.
const MIN_EPOCH_SECS: i64 = -62_167_219_200;

/// One job parsed from JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedJob {
    /// The request to hand to [`queuectl::Scheduler::enqueue`].
    pub(crate) request: EnqueueRequest,
    /// Names of fields that were neither understood nor silently ignored, sorted by name
    /// (the JSON object is read into a sorted map); the values were dropped.
    pub(crate) unknown_fields: Vec<String>,
}

/// Where in a batch a job came from: for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// 1-based position of the job in the batch.
    pub(crate) job: usize,
    /// 1-based line on which the job's JSON value starts.
    pub(crate) line: usize,
}

/// Why job JSON was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum InputError {
    /// The text is not valid JSON (or has trailing garbage).
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// A JSON value that should be a job is not an object.
    NotAnObject {
        /// Where in a batch; `None` for a single job.
        location: Option<Location>,
        /// What it is instead, e.g. "an array".
        found: &'static str,
    },
    /// A field has the wrong type or value, or a required field is missing.
    Field {
        /// Where in a batch; `None` for a single job.
        location: Option<Location>,
        /// The field as the client named it (e.g. `timeout_seconds`).
        field: &'static str,
        /// What is wrong, for people.
        message: String,
    },
    /// The input holds no job at all.
    Empty,
}

impl InputError {
    /// The offending field's name, if the error is about one field (the tests check that
    /// each rule names its field; the message says it to users).
    #[cfg(test)]
    #[must_use]
    pub(crate) fn field(&self) -> Option<&'static str> {
        match self {
            InputError::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    fn field_error(field: &'static str, message: impl Into<String>) -> Self {
        InputError::Field {
            location: None,
            field,
            message: message.into(),
        }
    }

    fn at(mut self, loc: Location) -> Self {
        match &mut self {
            InputError::NotAnObject { location, .. } | InputError::Field { location, .. } => {
                *location = Some(loc);
            }
            InputError::Syntax { .. } | InputError::Empty => {}
        }
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = |f: &mut fmt::Formatter<'_>, loc: &Option<Location>| match loc {
            Some(l) => write!(f, "job {} (line {}): ", l.job, l.line),
            None => Ok(()),
        };
        match self {
            InputError::Syntax {
                line,
                column,
                message,
            } => write!(f, "invalid JSON at line {line}, column {column}: {message}"),
            InputError::NotAnObject { location, found } => {
                prefix(f, location)?;
                write!(f, "expected a JSON object, found {found}")
            }
            InputError::Field {
                location,
                field,
                message,
            } => {
                prefix(f, location)?;
                write!(f, "field `{field}` {message}")
            }
            InputError::Empty => f.write_str("no job in the input"),
        }
    }
}

impl std::error::Error for InputError {}

/// Parses exactly one JSON object (surrounding whitespace allowed).
///
/// # Errors
/// [`InputError::Syntax`] for invalid JSON or more than one value,
/// [`InputError::NotAnObject`], or [`InputError::Field`] naming the first bad field.
pub(crate) fn parse_job(text: &str) -> Result<ParsedJob, InputError> {
    let value: Value = serde_json::from_str(text).map_err(syntax_error)?;
    job_from_value(&value)
}

/// Parses a batch: JSON objects one after another (JSON Lines, or any whitespace between
/// them), where a top-level array stands for its elements in order.
///
/// All or nothing: the first bad job fails the whole batch, naming its position.
///
/// # Errors
/// As [`parse_job`], with a [`Location`]; [`InputError::Empty`] when there is no job.
pub(crate) fn parse_jobs(text: &str) -> Result<Vec<ParsedJob>, InputError> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut lines = LineCounter::new(text);
    let mut jobs = Vec::new();
    loop {
        let start = stream.byte_offset();
        let value = match stream.next() {
            None => break,
            Some(Err(e)) => return Err(syntax_error(e)),
            Some(Ok(v)) => v,
        };
        let line = lines.line_of_value_after(start);
        let elements = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for element in &elements {
            let loc = Location {
                job: jobs.len() + 1,
                line,
            };
            jobs.push(job_from_value(element).map_err(|e| e.at(loc))?);
        }
    }
    if jobs.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(jobs)
}

/// Validates one already-parsed JSON value as a job.
///
/// # Errors
/// [`InputError::NotAnObject`] or [`InputError::Field`], without a location.
pub(crate) fn job_from_value(value: &Value) -> Result<ParsedJob, InputError> {
    let Value::Object(map) = value else {
        return Err(InputError::NotAnObject {
            location: None,
            found: type_name(value),
        });
    };
    let mut request = EnqueueRequest {
        command: command(map)?,
        ..EnqueueRequest::default()
    };
    if let Some(v) = present(map, "id") {
        let id = non_blank_string("id", v)?;
        request.id = Some(JobId::new(id));
    }
    if let Some(v) = present(map, "max_retries") {
        let n = integer("max_retries", v, "an integer ≥ 0")?;
        let n = u32::try_from(n).map_err(|_| {
            let why = if n < 0 {
                "must be ≥ 0"
            } else {
                "is too large"
            };
            InputError::field_error("max_retries", format!("{why}, got {n}"))
        })?;
        request.max_retries = Some(n);
    }
    request.timeout_secs = timeout(map)?;
    if let Some(v) = present(map, "priority") {
        let n = integer("priority", v, "an integer")?;
        request.priority = i32::try_from(n).map_err(|_| {
            InputError::field_error("priority", format!("is out of range (32-bit), got {n}"))
        })?;
    }
    if let Some(v) = present(map, "run_at") {
        request.run_at = Some(run_at_value(v)?);
    }
    if let Some(v) = present(map, "queue") {
        request.queue = Some(non_blank_string("queue", v)?.to_owned());
    }
    if let Some(v) = present(map, "cwd") {
        let Value::String(dir) = v else {
            return Err(wrong_type("cwd", "a string", v));
        };
        if dir.is_empty() {
            return Err(InputError::field_error("cwd", "must not be empty"));
        }
        request.cwd = Some(dir.clone());
    }
    if let Some(v) = present(map, "env") {
        let Value::Object(vars) = v else {
            return Err(wrong_type("env", "an object of strings", v));
        };
        for (name, value) in vars {
            let Value::String(value) = value else {
                return Err(InputError::field_error(
                    "env",
                    format!(
                        "value of {name:?} must be a string, found {}",
                        type_name(value)
                    ),
                ));
            };
            request.env.insert(name.clone(), value.clone());
        }
    }
    if let Some(v) = present(map, "unique_key") {
        request.unique_key = Some(non_blank_string("unique_key", v)?.to_owned());
    }
    if let Some(v) = present(map, "limits") {
        request.limits = Some(limits(v)?);
    }
    if let Some(v) = present(map, "depends_on") {
        let Value::Array(ids) = v else {
            return Err(wrong_type("depends_on", "an array of job ids", v));
        };
        for id in ids {
            request
                .depends_on
                .push(JobId::new(non_blank_string("depends_on", id)?));
        }
    }
    let unknown_fields = map
        .keys()
        .filter(|k| !is_known(k))
        .cloned()
        .collect::<Vec<_>>();
    Ok(ParsedJob {
        request,
        unknown_fields,
    })
}

/// Parses a `run_at` given as text (the `--run-at` flag): RFC 3339, or an integer number
/// of seconds since the Unix epoch.
///
/// # Errors
/// A message for people when it is neither.
pub(crate) fn parse_run_at(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return epoch_secs(secs);
    }
    Timestamp::parse_rfc3339(t)
        .map_err(|e| format!("expected an RFC 3339 timestamp or integer epoch seconds: {e}"))
}

/// Parses a delay such as `30s`, `5m`, `1h30m` or `2d` (units may be combined, with or
/// without spaces; a bare number is seconds); see [`queuectl::parse_duration`].
///
/// # Errors
/// A message for people when it is not a duration.
pub(crate) fn parse_delay(text: &str) -> Result<Duration, String> {
    queuectl::parse_duration(text)
}

fn syntax_error(e: serde_json::Error) -> InputError {
    let message = e.to_string();
    // serde_json appends " at line L column C"; the position is reported separately.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    InputError::Syntax {
        line: e.line(),
        column: e.column(),
        message,
    }
}

fn is_known(key: &str) -> bool {
    matches!(
        key,
        "command"
            | "id"
            | "max_retries"
            | "timeout"
            | "timeout_seconds"
            | "priority"
            | "run_at"
            | "queue"
            | "cwd"
            | "env"
            | "unique_key"
            | "limits"
            | "depends_on"
    ) || IGNORED_FIELDS.contains(&key)
}

/// The field's value, treating `null` as absent.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn command(map: &Map<String, Value>) -> Result<String, InputError> {
    let Some(v) = present(map, "command") else {
        return Err(InputError::field_error("command", "is required"));
    };
    let Value::String(s) = v else {
        return Err(wrong_type("command", "a string", v));
    };
    if s.trim().is_empty() {
        return Err(InputError::field_error("command", "must not be empty"));
    }
    Ok(s.clone())
}

fn timeout(map: &Map<String, Value>) -> Result<Option<u64>, InputError> {
    let mut result = None;
    for field in ["timeout", "timeout_seconds"] {
        let Some(v) = present(map, field) else {
            continue;
        };
        let n = integer(field, v, "an integer > 0")?;
        let secs = u64::try_from(n)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| InputError::field_error(field, format!("must be > 0, got {n}")))?;
        if result.is_some_and(|prev| prev != secs) {
            return Err(InputError::field_error(
                field,
                "disagrees with `timeout` (they are aliases; give one)",
            ));
        }
        result = Some(secs);
    }
    Ok(result)
}

/// `limits`: an object of the four known limits, each an integer > 0; anything else in it
/// is an error (a misspelt limit must not be dropped silently).
fn limits(v: &Value) -> Result<Limits, InputError> {
    let Value::Object(map) = v else {
        return Err(wrong_type("limits", "an object", v));
    };
    let mut limits = Limits::default();
    for (name, value) in map {
        let slot = match name.as_str() {
            "memory_mb" => &mut limits.memory_mb,
            "cpu_seconds" => &mut limits.cpu_seconds,
            "open_files" => &mut limits.open_files,
            "processes" => &mut limits.processes,
            other => {
                return Err(InputError::field_error(
                    "limits",
                    format!(
                        "has an unknown limit {other:?} (known: memory_mb, cpu_seconds, \
                         open_files, processes)"
                    ),
                ))
            }
        };
        if value.is_null() {
            continue;
        }
        let n = integer("limits", value, "an integer > 0")?;
        let n = u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            InputError::field_error("limits", format!("{name} must be > 0, got {n}"))
        })?;
        *slot = Some(n);
    }
    Ok(limits)
}

fn run_at_value(v: &Value) -> Result<Timestamp, InputError> {
    match v {
        Value::String(s) => Timestamp::parse_rfc3339(s)
            .map_err(|e| InputError::field_error("run_at", format!("must be RFC 3339: {e}"))),
        Value::Number(_) => {
            let secs = integer("run_at", v, "an RFC 3339 string or integer epoch seconds")?;
            epoch_secs(secs).map_err(|e| InputError::field_error("run_at", e))
        }
        other => Err(wrong_type(
            "run_at",
            "an RFC 3339 string or integer epoch seconds",
            other,
        )),
    }
}

fn epoch_secs(secs: i64) -> Result<Timestamp, String> {
    if !(MIN_EPOCH_SECS..=MAX_EPOCH_SECS).contains(&secs) {
        return Err(format!(
            "epoch seconds {secs} are outside years 0000 to 9999"
        ));
    }
    Ok(Timestamp::from_millis(secs * 1000))
}

fn non_blank_string<'a>(field: &'static str, v: &'a Value) -> Result<&'a str, InputError> {
    let Value::String(s) = v else {
        return Err(wrong_type(field, "a string", v));
    };
    if s.trim().is_empty() {
        return Err(InputError::field_error(field, "must not be blank"));
    }
    Ok(s)
}

/// An integer value as i64; floats, strings and out-of-range numbers are errors.
fn integer(field: &'static str, v: &Value, expected: &str) -> Result<i64, InputError> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None if n.is_u64() => Err(InputError::field_error(
                field,
                format!("is out of range, got {n}"),
            )),
            None => Err(InputError::field_error(
                field,
                format!("must be {expected}, got {n}"),
            )),
        },
        other => Err(wrong_type(field, expected, other)),
    }
}

fn wrong_type(field: &'static str, expected: &str, v: &Value) -> InputError {
    InputError::field_error(field, format!("must be {expected}, found {}", type_name(v)))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Maps byte offsets to line numbers, scanning the text once across a batch.
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the first non-whitespace byte at or after `start` (where the value
    /// the stream just parsed begins). Offsets must not decrease between calls.
    fn line_of_value_after(&mut self, start: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut pos = start.max(self.offset).min(bytes.len());
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let from = self.offset.min(pos);
        self.line += bytes[from..pos].iter().filter(|b| **b == b'\n').count();
        self.offset = pos;
        self.line
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> &'static str {
        parse_job(text).unwrap_err().field().unwrap()
    }

    #[test]
    fn unknown_fields_are_reported_and_bad_fields_named() {
        let job = parse_job(r#"{"command": "echo hi", "priority": 5, "colour": "red"}"#).unwrap();
        assert_eq!(job.request.command, "echo hi");
        assert_eq!(job.request.priority, 5);
        assert_eq!(job.unknown_fields, ["colour"]);

        let err = parse_job(r#"{"command": "echo hi", "priority": "high"}"#).unwrap_err();
        assert_eq!(err.field(), Some("priority"));
    }

    #[test]
    fn minimal_job_takes_every_default() {
        let job = parse_job(r#"{"command":"echo hi"}"#).unwrap();
        assert_eq!(
            job.request,
            EnqueueRequest {
                command: "echo hi".into(),
                ..EnqueueRequest::default()
            }
        );
        assert!(job.unknown_fields.is_empty());
    }

    #[test]
    fn every_field_is_read() {
        let job = parse_job(
            r#"{"id":"job-1","command":" ls ","max_retries":0,"timeout":30,
                "priority":-7,"run_at":"2030-01-02T03:04:05.678+01:00","queue":"mail"}"#,
        )
        .unwrap();
        let r = job.request;
        assert_eq!(r.id, Some(JobId::new("job-1")));
        assert_eq!(r.command, " ls ");
        assert_eq!(r.max_retries, Some(0));
        assert_eq!(r.timeout_secs, Some(30));
        assert_eq!(r.priority, -7);
        assert_eq!(
            r.run_at.map(Timestamp::to_rfc3339).as_deref(),
            Some("2030-01-02T02:04:05.678Z")
        );
        assert_eq!(r.queue.as_deref(), Some("mail"));
    }

    #[test]
    fn every_v2_field_is_read_and_bad_ones_named() {
        let job = parse_job(
            r#"{"command":"x","cwd":"rel/dir","env":{"A":"1=2"},"unique_key":"k",
                "limits":{"cpu_seconds":5,"open_files":null},"depends_on":["p"]}"#,
        )
        .unwrap();
        let r = job.request;
        assert_eq!(r.cwd.as_deref(), Some("rel/dir"));
        assert_eq!(r.env.get("A").map(String::as_str), Some("1=2"));
        assert_eq!(r.unique_key.as_deref(), Some("k"));
        assert_eq!(
            r.limits,
            Some(Limits {
                cpu_seconds: Some(5),
                ..Limits::default()
            })
        );
        assert_eq!(r.depends_on, [JobId::new("p")]);
        assert!(job.unknown_fields.is_empty());

        assert_eq!(field_of(r#"{"command":"x","env":{"A":true}}"#), "env");
        assert_eq!(
            field_of(r#"{"command":"x","limits":{"nproc":3}}"#),
            "limits"
        );
        assert_eq!(
            field_of(r#"{"command":"x","limits":{"cpu_seconds":0}}"#),
            "limits"
        );
        assert_eq!(
            field_of(r#"{"command":"x","depends_on":"p"}"#),
            "depends_on"
        );
        assert_eq!(
            field_of(r#"{"command":"x","depends_on":[""]}"#),
            "depends_on"
        );
    }

    #[test]
    fn command_must_be_a_non_blank_string() {
        assert_eq!(field_of(r#"{}"#), "command");
        assert_eq!(field_of(r#"{"command":null}"#), "command");
        assert_eq!(field_of(r#"{"command":""}"#), "command");
        assert_eq!(field_of(r#"{"command":" \t\n"}"#), "command");
        assert_eq!(field_of(r#"{"command":["ls"]}"#), "command");
    }

    #[test]
    fn id_and_queue_must_be_non_blank_strings() {
        assert_eq!(field_of(r#"{"command":"x","id":""}"#), "id");
        assert_eq!(field_of(r#"{"command":"x","id":"  "}"#), "id");
        assert_eq!(field_of(r#"{"command":"x","id":7}"#), "id");
        assert_eq!(field_of(r#"{"command":"x","queue":""}"#), "queue");
        assert_eq!(field_of(r#"{"command":"x","queue":false}"#), "queue");
        let odd = parse_job(r#"{"command":"x","id":"a b/ü\"c"}"#).unwrap();
        assert_eq!(odd.request.id, Some(JobId::new("a b/ü\"c")));
    }

    #[test]
    fn integers_are_checked_for_type_and_range() {
        for bad in ["-1", "1.5", "\"3\"", "4294967296", "true"] {
            let text = format!(r#"{{"command":"x","max_retries":{bad}}}"#);
            assert_eq!(field_of(&text), "max_retries", "{bad}");
        }
        for bad in ["0", "-5", "2.0", "\"10\"", "18446744073709551615"] {
            let text = format!(r#"{{"command":"x","timeout":{bad}}}"#);
            assert_eq!(field_of(&text), "timeout", "{bad}");
            let text = format!(r#"{{"command":"x","timeout_seconds":{bad}}}"#);
            assert_eq!(field_of(&text), "timeout_seconds", "{bad}");
        }
        for bad in ["2147483648", "-2147483649", "0.5", "\"1\""] {
            let text = format!(r#"{{"command":"x","priority":{bad}}}"#);
            assert_eq!(field_of(&text), "priority", "{bad}");
        }
        let max = parse_job(r#"{"command":"x","max_retries":4294967295}"#).unwrap();
        assert_eq!(max.request.max_retries, Some(u32::MAX));
    }

    #[test]
    fn timeout_seconds_is_an_alias_of_timeout() {
        let a = parse_job(r#"{"command":"x","timeout_seconds":9}"#).unwrap();
        assert_eq!(a.request.timeout_secs, Some(9));
        let both = parse_job(r#"{"command":"x","timeout":9,"timeout_seconds":9}"#).unwrap();
        assert_eq!(both.request.timeout_secs, Some(9));
        assert_eq!(
            field_of(r#"{"command":"x","timeout":9,"timeout_seconds":10}"#),
            "timeout_seconds"
        );
    }

    #[test]
    fn run_at_accepts_rfc3339_or_epoch_seconds() {
        let a = parse_job(r#"{"command":"x","run_at":1700000000}"#).unwrap();
        assert_eq!(
            a.request.run_at,
            Some(Timestamp::from_millis(1_700_000_000_000))
        );
        for bad in [
            r#""tomorrow""#,
            r#""1700000000""#,
            "1.5",
            "true",
            "99999999999999",
            "{}",
        ] {
            let text = format!(r#"{{"command":"x","run_at":{bad}}}"#);
            assert_eq!(field_of(&text), "run_at", "{bad}");
        }
    }

    #[test]
    fn nulls_mean_default() {
        let job = parse_job(
            r#"{"command":"x","id":null,"max_retries":null,"timeout":null,"priority":null,
                "run_at":null,"queue":null}"#,
        )
        .unwrap();
        assert_eq!(
            job.request,
            EnqueueRequest {
                command: "x".into(),
                ..EnqueueRequest::default()
            }
        );
    }

    #[test]
    fn store_owned_fields_are_ignored_silently_and_others_reported() {
        let job = parse_job(
            r#"{"command":"x","state":"completed","attempts":9,"created_at":"x",
                "updated_at":1,"zeta":1,"next_run_at":null,"started_at":0,
                "finished_at":0,"alpha":[1]}"#,
        )
        .unwrap();
        assert_eq!(job.unknown_fields, ["alpha", "zeta"]);
        assert_eq!(job.request.command, "x");
    }

    #[test]
    fn single_job_rejects_non_objects_and_trailing_values() {
        assert!(matches!(
            parse_job("[]"),
            Err(InputError::NotAnObject {
                found: "an array",
                ..
            })
        ));
        assert!(matches!(
            parse_job(r#"{"command":"a"} {"command":"b"}"#),
            Err(InputError::Syntax { .. })
        ));
        assert!(matches!(parse_job(""), Err(InputError::Syntax { .. })));
        assert!(matches!(parse_job("{"), Err(InputError::Syntax { .. })));
    }

    #[test]
    fn batch_reads_json_lines_concatenated_objects_and_arrays() {
        let jobs = parse_jobs(
            "{\"command\":\"a\"}\n\n{\"command\":\"b\"}{\"command\":\"c\"}\n[{\"command\":\"d\"}]\n",
        )
        .unwrap();
        let commands: Vec<_> = jobs.iter().map(|j| j.request.command.as_str()).collect();
        assert_eq!(commands, ["a", "b", "c", "d"]);
    }

    #[test]
    fn batch_errors_name_the_job_and_its_line() {
        let err = parse_jobs("{\"command\":\"a\"}\n\n  {\"command\":\"b\",\"priority\":\"x\"}\n")
            .unwrap_err();
        assert_eq!(
            err,
            InputError::Field {
                location: Some(Location { job: 2, line: 3 }),
                field: "priority",
                message: "must be an integer, found a string".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "job 2 (line 3): field `priority` must be an integer, found a string"
        );
        let err = parse_jobs("{\"command\":\"a\"}\n{\"command\":\n").unwrap_err();
        assert!(
            matches!(
                err,
                InputError::Syntax { line: 3, .. } | InputError::Syntax { line: 2, .. }
            ),
            "{err:?}"
        );
        assert!(
            matches!(&err, InputError::Syntax { message, .. } if !message.contains(" at line ")),
            "{err:?}"
        );
        assert_eq!(parse_jobs(" \n\t"), Err(InputError::Empty));
        assert_eq!(parse_jobs("[]"), Err(InputError::Empty));
        assert!(matches!(
            parse_jobs("{\"command\":\"a\"}\n7"),
            Err(InputError::NotAnObject {
                location: Some(Location { job: 2, line: 2 }),
                found: "a number"
            })
        ));
    }

    #[test]
    fn delay_accepts_the_contract_spellings() {
        assert_eq!(parse_delay("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_delay("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_delay("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_delay("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_delay("45"), Ok(Duration::from_secs(45)));
        assert!(parse_delay("soon").is_err());
        assert!(parse_delay("-5s").is_err());
    }

    #[test]
    fn run_at_flag_accepts_rfc3339_or_epoch_seconds() {
        assert_eq!(parse_run_at("0"), Ok(Timestamp::EPOCH));
        assert_eq!(
            parse_run_at("2030-01-01T00:00:00Z").map(Timestamp::to_rfc3339),
            Ok("2030-01-01T00:00:00.000Z".to_owned())
        );
        assert!(parse_run_at("noon").is_err());
        assert!(parse_run_at("9223372036854775807").is_err());
    }
}
