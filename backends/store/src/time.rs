//! Wall-clock instants as stored: milliseconds since the Unix epoch, UTC.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant, in whole milliseconds since 1970-01-01T00:00:00Z.
///
/// Every store keeps timestamps at this precision (the contract prints milliseconds), as a
/// 64-bit integer, so they round-trip exactly and compare cheaply in SQL. The store never
/// reads the clock: callers pass `now` in (see `queuectl::Clock`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the epoch.
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The current system time, truncated to milliseconds.
    ///
    /// Stores never call this; it is for clocks and callers.
    #[must_use]
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a [`SystemTime`], truncating to milliseconds (saturating far from the epoch).
    #[must_use]
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// This instant plus `d`, saturating (also available as `t + d`).
    #[must_use]
    #[allow(clippy::should_implement_trait)] // it does, below; the method reads better in chains
    pub fn add(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// This instant minus `d`, saturating (also available as `t - d`).
    #[must_use]
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Timestamp) -> Duration {
        u64::try_from(self.0.saturating_sub(earlier.0))
            .map(Duration::from_millis)
            .unwrap_or(Duration::ZERO)
    }

    /// Parses an RFC 3339 timestamp (any offset), truncating to milliseconds.
    ///
    /// # Errors
    /// Returns a message when `s` is not RFC 3339.
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        let dt = OffsetDateTime::parse(s.trim(), &Rfc3339)
            .map_err(|e| format!("not an RFC 3339 timestamp ({e})"))?;
        let ms = dt.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms)
            .map(Timestamp)
            .map_err(|_| "timestamp out of range".to_owned())
    }

    /// RFC 3339 in UTC with millisecond precision and a `Z` suffix,
    /// e.g. `2026-11-28T17:15:09.123Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(dt) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.millisecond()
            ),
            // Out of time's range (beyond year ±9999): still print something unambiguous.
            Err(_) => format!("@{}ms", self.0),
        }
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp::add(self, d)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp::sub(self, d)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let t = Timestamp::from_millis(1_764_350_109_123);
        assert_eq!(t.to_rfc3339(), "2025-11-28T17:15:09.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
    }

    #[test]
    fn parse_accepts_offsets_and_truncates_sub_millis() {
        let t = Timestamp::parse_rfc3339("2025-11-28T18:15:09.123456+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-11-28T17:15:09.123Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn since_saturates_at_zero() {
        let a = Timestamp::from_millis(10);
        assert_eq!(a.since(Timestamp::from_millis(20)), Duration::ZERO);
        assert_eq!(a.since(Timestamp::from_millis(4)), Duration::from_millis(6));
    }
}
