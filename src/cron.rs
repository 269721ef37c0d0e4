//! [`CronSpec`]: when a periodic job fires. Pure time arithmetic, no store.
//!
//! A schedule is a 5-field cron expression (minute, hour, day of month, month, day of week;
//! Vixie semantics: a restricted day of month OR a restricted day of week), one of
//! `@hourly`, `@daily`, `@weekly`, `@monthly`, or `@every D` with D a duration as
//! elsewhere (`90s`, `5m`, `1h30m`, `2d`). Expressions are read in an IANA time zone
//! (default `UTC`); `@every D` is a fixed period of real time, counted from when the
//! schedule was added, in no zone.
//!
//! Daylight saving time, for expressions: the expression picks wall-clock times (found by
//! `croner` on naive local times), and each is mapped to an instant in the zone (by
//! `chrono-tz`, whose IANA database is compiled in):
//! - a wall-clock time that does not exist (the hour skipped when clocks go forward) is
//!   **skipped**: it does not fire, not even later;
//! - a wall-clock time that occurs twice (the hour repeated when clocks go back) fires
//!   **once**, at its first occurrence.
//!
//! (croner's own zoned search runs a fixed time in the gap just after it and repeats
//! interval patterns in the repeated hour; queuectl's contract says otherwise, hence the
//! mapping here.)

use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use queuectl_store::Timestamp;

use crate::config::parse_duration;

/// How many consecutive candidates a search may skip (in a DST gap, or in the repeated
/// hour) before it gives up: a per-minute expression skips at most 60 per transition.
const MAX_SKIPPED: usize = 10_000;

/// A parsed schedule and its zone: computes fire times.
#[derive(Clone, Debug)]
pub struct CronSpec {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// A cron expression in a zone.
    Cron { cron: Box<Cron>, tz: Tz },
    /// Every `period`, starting `period` after `anchor`.
    Every { period_ms: i64, anchor: Timestamp },
}

impl CronSpec {
    /// Parses a schedule (see the module docs) in zone `tz` (an IANA name such as
    /// `Europe/Berlin` or `UTC`); `added_at` anchors `@every D`.
    ///
    /// # Errors
    /// A message for people naming what is wrong with the schedule or the zone.
    pub fn parse(schedule: &str, tz: &str, added_at: Timestamp) -> Result<Self, String> {
        let zone = Tz::from_str(tz.trim()).map_err(|_| {
            format!("unknown time zone '{tz}': give an IANA name such as UTC or Europe/Berlin")
        })?;
        let text = schedule.trim();
        if let Some(rest) = text.strip_prefix("@every") {
            if !rest.starts_with(char::is_whitespace) {
                return Err(bad_schedule(
                    schedule,
                    "write @every followed by a duration",
                ));
            }
            let period = parse_duration(rest).map_err(|e| bad_schedule(schedule, &e))?;
            let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
            if period < Duration::from_secs(1) {
                return Err(bad_schedule(schedule, "the period must be at least 1s"));
            }
            return Ok(CronSpec {
                kind: Kind::Every {
                    period_ms,
                    anchor: added_at,
                },
            });
        }
        let expression = match text {
            "@hourly" => "0 * * * *",
            "@daily" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            t if t.starts_with('@') => {
                return Err(bad_schedule(
                    schedule,
                    "known forms are @hourly, @daily, @weekly, @monthly and @every D",
                ))
            }
            t => t,
        };
        if expression.split_whitespace().count() != 5 {
            return Err(bad_schedule(
                schedule,
                "a cron expression has 5 fields: minute hour day-of-month month day-of-week",
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| bad_schedule(schedule, &e.to_string()))?;
        let spec = CronSpec {
            kind: Kind::Cron {
                cron: Box::new(cron),
                tz: zone,
            },
        };
        // An expression that matches no date (`0 0 30 2 *`) would never fire.
        if spec.next_after(added_at).is_none() {
            return Err(bad_schedule(schedule, "it matches no date"));
        }
        Ok(spec)
    }

    /// The first fire time strictly after `t`; `None` if there is none (an expression that
    /// matches no date, or beyond the representable range).
    #[must_use]
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            Kind::Every { period_ms, anchor } => {
                let elapsed = t.as_millis().saturating_sub(anchor.as_millis());
                let k = if elapsed < 0 {
                    1
                } else {
                    elapsed / period_ms + 1
                };
                let at = anchor.as_millis().checked_add(k.checked_mul(*period_ms)?)?;
                Some(Timestamp::from_millis(at))
            }
            Kind::Cron { cron, tz } => {
                let mut cursor = local(t, *tz)?;
                for _ in 0..MAX_SKIPPED {
                    let candidate = cron.find_next_occurrence(&cursor, false).ok()?;
                    if let Some(at) = instant(candidate, *tz) {
                        if at > t {
                            return Some(at);
                        }
                    }
                    cursor = candidate;
                }
                None
            }
        }
    }

    /// The latest fire time at or before `now`, given one such time `due` (a schedule's
    /// stored `next_run_at`): what to fire when times were missed while no worker ran, so
    /// they fire once, for the latest. `due` itself when no later time has passed.
    #[must_use]
    pub fn latest_at_or_before(&self, now: Timestamp, due: Timestamp) -> Timestamp {
        let mut latest = due;
        if let Some(previous) = self.previous_at_or_before(now) {
            latest = latest.max(previous);
        }
        // The backward search may land on an earlier time of a repeated hour; step forward.
        for _ in 0..MAX_SKIPPED {
            match self.next_after(latest) {
                Some(next) if next <= now => latest = next,
                _ => break,
            }
        }
        latest
    }

    fn previous_at_or_before(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            Kind::Every { period_ms, anchor } => {
                let elapsed = now.as_millis().checked_sub(anchor.as_millis())?;
                let k = elapsed / period_ms;
                (k >= 1).then(|| Timestamp::from_millis(anchor.as_millis() + k * period_ms))
            }
            Kind::Cron { cron, tz } => {
                let mut cursor = local(now, *tz)?;
                let mut inclusive = true;
                for _ in 0..MAX_SKIPPED {
                    let candidate = cron.find_previous_occurrence(&cursor, inclusive).ok()?;
                    if let Some(at) = instant(candidate, *tz) {
                        if at <= now {
                            return Some(at);
                        }
                    }
                    cursor = candidate;
                    inclusive = false;
                }
                None
            }
        }
    }
}

fn bad_schedule(schedule: &str, why: &str) -> String {
    format!("invalid schedule '{schedule}': {why}")
}

/// The wall-clock time of `t` in `tz`.
fn local(t: Timestamp, tz: Tz) -> Option<NaiveDateTime> {
    let utc = DateTime::<Utc>::from_timestamp_millis(t.as_millis())?;
    Some(utc.with_timezone(&tz).naive_local())
}

/// The instant a wall-clock time names in `tz`: `None` in a gap (skipped), the first of two
/// in a repeated hour (fires once).
fn instant(wall: NaiveDateTime, tz: Tz) -> Option<Timestamp> {
    let at = match tz.from_local_datetime(&wall) {
        LocalResult::None => return None,
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at,
    };
    Some(Timestamp::from_millis(at.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn fires(spec: &CronSpec, from: &str, n: usize) -> Vec<String> {
        let mut t = at(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = spec.next_after(t).unwrap();
            out.push(t.to_rfc3339());
        }
        out
    }

    fn spec(s: &str, tz: &str) -> CronSpec {
        CronSpec::parse(s, tz, at("2026-01-01T00:00:00Z")).unwrap()
    }

    #[test]
    fn nicknames_and_expressions_in_utc() {
        let from = "2026-12-03T01:59:59.500Z";
        assert_eq!(
            fires(&spec("@hourly", "UTC"), from, 2),
            ["2026-12-03T02:00:00.000Z", "2026-12-03T03:00:00.000Z"]
        );
        assert_eq!(
            fires(&spec("@daily", "UTC"), from, 1),
            ["2026-12-04T00:00:00.000Z"]
        );
        // 2026-12-03 is a Thursday: the next Sunday is the 6th.
        assert_eq!(
            fires(&spec("@weekly", "UTC"), from, 1),
            ["2026-12-06T00:00:00.000Z"]
        );
        assert_eq!(
            fires(&spec("@monthly", "UTC"), from, 1),
            ["2027-01-01T00:00:00.000Z"]
        );
        assert_eq!(
            fires(&spec("*/15 2 * * 1-5", "UTC"), from, 3),
            [
                "2026-12-03T02:00:00.000Z",
                "2026-12-03T02:15:00.000Z",
                "2026-12-03T02:30:00.000Z"
            ]
        );
    }

    #[test]
    fn expressions_are_read_in_their_zone() {
        // Berlin is UTC+1 in December.
        assert_eq!(
            fires(
                &spec("0 2 * * *", "Europe/Berlin"),
                "2026-12-03T00:00:00Z",
                1
            ),
            ["2026-12-03T01:00:00.000Z"]
        );
    }

    #[test]
    fn a_time_skipped_by_dst_does_not_fire() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
        assert_eq!(
            fires(
                &spec("30 2 * * *", "Europe/Berlin"),
                "2026-03-28T00:00:00Z",
                2
            ),
            // the 28th at 02:30 CET, then the 30th at 02:30 CEST: the 29th is skipped.
            ["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]
        );
        // Every 30 minutes: 02:00 and 02:30 are skipped, 03:00 CEST follows 01:30 CET.
        assert_eq!(
            fires(
                &spec("*/30 * * * *", "Europe/Berlin"),
                "2026-03-29T00:15:00Z",
                2
            ),
            ["2026-03-29T00:30:00.000Z", "2026-03-29T01:00:00.000Z"]
        );
    }

    #[test]
    fn a_time_repeated_by_dst_fires_once_at_its_first_occurrence() {
        // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        assert_eq!(
            fires(
                &spec("30 2 * * *", "Europe/Berlin"),
                "2026-10-24T12:00:00Z",
                2
            ),
            // 02:30 CEST = 00:30Z (the first); the 26th at 02:30 CET = 01:30Z.
            ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]
        );
        // Every 30 minutes through the repeated hour: 02:00 and 02:30 once each (CEST),
        // then 03:00 CET, with nothing in the second pass.
        assert_eq!(
            fires(
                &spec("*/30 * * * *", "Europe/Berlin"),
                "2026-10-24T23:45:00Z",
                4
            ),
            [
                "2026-10-25T00:00:00.000Z",
                "2026-10-25T00:30:00.000Z",
                "2026-10-25T02:00:00.000Z",
                "2026-10-25T02:30:00.000Z"
            ]
        );
        // Searching from inside the second pass finds no repeat either.
        assert_eq!(
            fires(
                &spec("*/30 * * * *", "Europe/Berlin"),
                "2026-10-25T01:10:00Z",
                1
            ),
            ["2026-10-25T02:00:00.000Z"]
        );
    }

    #[test]
    fn missed_times_collapse_to_the_latest() {
        let s = spec("0 * * * *", "UTC");
        let due = at("2026-12-03T02:00:00Z");
        assert_eq!(
            s.latest_at_or_before(at("2026-12-03T07:30:00Z"), due),
            at("2026-12-03T07:00:00Z")
        );
        assert_eq!(s.latest_at_or_before(at("2026-12-03T02:59:59Z"), due), due);
        // In the repeated hour: the latest fire before 01:10Z (02:10 CET, second pass) is
        // 02:30 CEST (00:30Z), the last of the first pass.
        let berlin = spec("*/30 * * * *", "Europe/Berlin");
        assert_eq!(
            berlin.latest_at_or_before(at("2026-10-25T01:10:00Z"), at("2026-10-25T00:00:00Z")),
            at("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn every_counts_from_when_it_was_added() {
        let added = at("2026-12-03T10:00:00.250Z");
        let s = CronSpec::parse("@every 90s", "UTC", added).unwrap();
        assert_eq!(s.next_after(added), Some(at("2026-12-03T10:01:30.250Z")));
        assert_eq!(
            s.next_after(at("2026-12-03T10:01:30.250Z")),
            Some(at("2026-12-03T10:03:00.250Z"))
        );
        assert_eq!(
            s.latest_at_or_before(at("2026-12-03T10:10:00Z"), at("2026-12-03T10:01:30.250Z")),
            at("2026-12-03T10:09:00.250Z")
        );
        // The zone does not matter to a period of real time.
        let b = CronSpec::parse("@every 1h", "Europe/Berlin", added).unwrap();
        assert_eq!(b.next_after(added), Some(at("2026-12-03T11:00:00.250Z")));
    }

    #[test]
    fn bad_schedules_and_zones_are_refused() {
        let now = at("2026-12-03T00:00:00Z");
        for bad in [
            "",
            "* * * *",
            "0 * * * * *",
            "61 * * * *",
            "@yearly-ish",
            "@every",
            "@every 0s",
            "@every 500ms",
            "@every soon",
            "@everyday",
            "0 0 30 2 *",
        ] {
            assert!(
                CronSpec::parse(bad, "UTC", now).is_err(),
                "{bad:?} accepted"
            );
        }
        let e = CronSpec::parse("@daily", "Mars/Olympus", now).unwrap_err();
        assert!(e.contains("unknown time zone"), "{e}");
        assert!(CronSpec::parse("@daily", "America/New_York", now).is_ok());
    }
}
