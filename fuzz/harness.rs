//! The fuzz properties as plain functions over bytes.
//!
//! The libFuzzer targets in `fuzz_targets/` call them with arbitrary input; the root
//! crate's integration tests (`tests/fuzz_corpus/`) include this file too and replay the
//! committed corpus through them, so plain `cargo test` checks the same properties.

// The job JSON parser is the binary's (`src/cli/input.rs`), not the library's: compiled
// here by path so the fuzz targets exercise exactly the code `queuectl enqueue` runs. The
// time flag parsers in it are not fuzzed here.
#[allow(dead_code)]
#[path = "../src/cli/input.rs"]
pub(crate) mod input;

use input::{parse_job, parse_jobs, ParsedJob};
use queuectl::{SettingKey, Settings};

/// Parsing job JSON never panics; whatever it accepts obeys the input rules; a single
/// job is also a batch of one.
pub(crate) fn enqueue_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let single = parse_job(text);
    let batch = parse_jobs(text);
    match &single {
        Ok(job) => {
            check_job(job);
            let batch = batch.as_ref().expect("a valid single job is a valid batch");
            assert_eq!(batch.as_slice(), std::slice::from_ref(job));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match &batch {
        Ok(jobs) => {
            assert!(!jobs.is_empty(), "an accepted batch holds a job");
            jobs.iter().for_each(check_job);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn check_job(job: &ParsedJob) {
    let r = &job.request;
    assert!(!r.command.trim().is_empty(), "blank command accepted");
    assert!(r
        .id
        .as_ref()
        .is_none_or(|id| !id.as_str().trim().is_empty()));
    assert!(r.queue.as_ref().is_none_or(|q| !q.trim().is_empty()));
    assert!(r.timeout_secs.is_none_or(|t| t > 0));
    assert!(r.kind.is_none(), "job JSON never sets a kind");
    assert!(r.cwd.as_ref().is_none_or(|d| !d.is_empty()));
    assert!(r.unique_key.as_ref().is_none_or(|k| !k.trim().is_empty()));
    assert!(r
        .limits
        .is_none_or(|l| [l.memory_mb, l.cpu_seconds, l.open_files, l.processes]
            .iter()
            .all(|v| v.is_none_or(|n| n > 0))));
    if let Some(t) = r.run_at {
        // Every accepted instant prints as RFC 3339 and parses back to itself.
        let printed = t.to_rfc3339();
        assert_eq!(
            queuectl::Timestamp::parse_rfc3339(&printed),
            Ok(t),
            "{printed}"
        );
    }
}

/// `KEY=VALUE` (a lone key has an empty value): parsing and validating never panic, and a
/// normalised value is a fixed point that `Settings` stores and prints unchanged.
pub(crate) fn config_kv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (key, value) = text.split_once('=').unwrap_or((&text, ""));
    let Ok(key) = SettingKey::parse(key) else {
        return;
    };
    assert_eq!(SettingKey::parse(key.name()).ok(), Some(key));
    let Ok(normalised) = key.validate(value) else {
        return;
    };
    assert_eq!(
        key.validate(&normalised).ok().as_deref(),
        Some(normalised.as_str())
    );
    let mut settings = Settings::default();
    settings
        .apply(key, &normalised)
        .expect("a validated value applies");
    assert_eq!(settings.get(key), normalised);
}

/// Any op sequence decoded from the bytes runs against the MemoryStore exactly as the
/// reference model says (the same runner as the model proptest).
pub(crate) fn scheduler_ops(data: &[u8]) {
    let ops = queuectl::testing::model::ops_from_bytes(data);
    if let Err(e) =
        queuectl::testing::model::run_ops(queuectl_store_memory::MemoryStore::new(), &ops)
    {
        panic!("model divergence: {e}");
    }
}

/// `cron add SCHEDULE --tz ZONE`: the input is `SCHEDULE\nZONE` (no newline: zone `UTC`).
/// Parsing never panics, an error says something, and an accepted schedule's fire times
/// move strictly forward, and the catch-up time for missed fires is never in the future.
pub(crate) fn cron_schedule(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (schedule, tz) = text.split_once('\n').unwrap_or((&text, "UTC"));
    let added = queuectl::Timestamp::from_millis(1_764_000_000_000);
    let spec = match queuectl::CronSpec::parse(schedule, tz, added) {
        Ok(spec) => spec,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let mut t = added;
    for _ in 0..4 {
        let Some(next) = spec.next_after(t) else {
            break;
        };
        assert!(
            next > t,
            "{schedule:?} in {tz:?}: {next} does not follow {t}"
        );
        t = next;
    }
    if let Some(due) = spec.next_after(added) {
        let now = due.add(std::time::Duration::from_secs(3 * 86_400));
        let latest = spec.latest_at_or_before(now, due);
        assert!(
            latest >= due && latest <= now,
            "{schedule:?} in {tz:?}: {latest}"
        );
    }
}

/// `--db TARGET` / `QUEUECTL_DB`: parsing never panics (it only reads the text; nothing is
/// opened or created), and a refusal says something without echoing a password given as
/// `password=` in a libpq string or a URL's query.
pub(crate) fn store_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = queuectl::StoreTarget::parse(text) {
        let message = e.to_string();
        assert!(!message.is_empty());
        // Every `password=` the message shows is followed by the mask. (The same text may
        // appear elsewhere under another key, `d=hunter2`: that is not a password.)
        let lower = message.to_ascii_lowercase();
        for (at, _) in lower.match_indices("password=") {
            let value = &message[at + "password=".len()..];
            assert!(value.starts_with("***"), "{message}");
        }
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
}

/// Durations of flags and settings (`90s`, `5m`, `1h30m`, `2d`, a bare number of seconds):
/// parsing never panics, and a whole number of seconds parses back from its digits.
pub(crate) fn duration(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match queuectl::parse_whole_seconds(&text) {
        Ok(secs) => assert_eq!(queuectl::parse_whole_seconds(&secs.to_string()), Ok(secs)),
        Err(e) => assert!(!e.is_empty()),
    }
    let _ = queuectl::parse_duration(&text);
}
