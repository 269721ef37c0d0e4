//! Persisted settings: the keys of `queuectl config`, their defaults and their rules.
//!
//! Values live in the store (so every worker and every terminal sees the same ones) as
//! normalised strings; [`Settings::load`] merges them with the defaults of docs/CLI.md
//! ("Settings").

use std::fmt;
use std::time::Duration;

use queuectl_store::JobStore;

use crate::{Error, Result};

/// A configuration key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SettingKey {
    /// `max-retries`: total attempts a new job gets (integer ≥ 0; 0 behaves as 1).
    MaxRetries,
    /// `backoff-base`: the retry delay after `k` attempts is `base^k` seconds (number ≥ 1).
    BackoffBase,
    /// `backoff-max`: cap on a retry delay in seconds (integer ≥ 1).
    BackoffMax,
    /// `job-timeout`: default per-attempt timeout of new jobs in seconds (0 = none).
    JobTimeout,
    /// `lease-seconds`: how long a claim holds without renewal (integer ≥ 2).
    LeaseSeconds,
    /// `poll-interval-ms`: how often idle workers look for work (integer ≥ 10).
    PollIntervalMs,
    /// `retention-completed`: running workers delete `completed` jobs this long after they
    /// finished, in seconds (0 = keep forever).
    RetentionCompleted,
    /// `retention-cancelled`: the same for `cancelled` jobs.
    RetentionCancelled,
    /// `retention-dead`: the same for `dead` jobs (default 0: the dead-letter queue is kept).
    RetentionDead,
}

impl SettingKey {
    /// Every key, in the order `config list` prints them.
    pub const ALL: [SettingKey; 9] = [
        SettingKey::MaxRetries,
        SettingKey::BackoffBase,
        SettingKey::BackoffMax,
        SettingKey::JobTimeout,
        SettingKey::LeaseSeconds,
        SettingKey::PollIntervalMs,
        SettingKey::RetentionCompleted,
        SettingKey::RetentionCancelled,
        SettingKey::RetentionDead,
    ];

    /// The canonical (dashed) name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            SettingKey::MaxRetries => "max-retries",
            SettingKey::BackoffBase => "backoff-base",
            SettingKey::BackoffMax => "backoff-max",
            SettingKey::JobTimeout => "job-timeout",
            SettingKey::LeaseSeconds => "lease-seconds",
            SettingKey::PollIntervalMs => "poll-interval-ms",
            SettingKey::RetentionCompleted => "retention-completed",
            SettingKey::RetentionCancelled => "retention-cancelled",
            SettingKey::RetentionDead => "retention-dead",
        }
    }

    /// The value used when none was set.
    #[must_use]
    pub const fn default_value(self) -> &'static str {
        match self {
            SettingKey::MaxRetries => "3",
            SettingKey::BackoffBase => "2",
            SettingKey::BackoffMax => "3600",
            SettingKey::JobTimeout => "0",
            SettingKey::LeaseSeconds => "15",
            SettingKey::PollIntervalMs => "200",
            SettingKey::RetentionCompleted | SettingKey::RetentionCancelled => "604800",
            SettingKey::RetentionDead => "0",
        }
    }

    /// What a valid value looks like, for error messages.
    #[must_use]
    pub const fn rule(self) -> &'static str {
        match self {
            SettingKey::MaxRetries => "a whole number from 0 to 4294967295",
            SettingKey::BackoffBase => "a number from 1 to 1000000",
            SettingKey::BackoffMax => {
                "a duration of whole seconds (3600, 90s, 5m, 1h30m, 2d) from 1s to 10 years"
            }
            SettingKey::JobTimeout => {
                "a duration of whole seconds (300, 90s, 5m, 1h30m, 2d) from 0 (no timeout) to 10 years"
            }
            SettingKey::LeaseSeconds => {
                "a duration of whole seconds (15, 90s, 5m, 1h30m, 2d) from 2s to 10 years"
            }
            SettingKey::PollIntervalMs => {
                "a whole number of milliseconds from 10 to 315360000000 (10 years)"
            }
            SettingKey::RetentionCompleted
            | SettingKey::RetentionCancelled
            | SettingKey::RetentionDead => {
                "a duration of whole seconds (604800, 90s, 12h, 7d, 2w) from 0 (keep forever) to 10 years"
            }
        }
    }

    /// Whether the key is a duration in seconds, which `config set` also takes in a human
    /// form (`90s`, `5m`, `1h30m`, `2d`, `1w`; see [`parse_duration`]) and `config get`
    /// prints as a bare number of seconds.
    #[must_use]
    pub const fn is_duration(self) -> bool {
        matches!(
            self,
            SettingKey::BackoffMax
                | SettingKey::JobTimeout
                | SettingKey::LeaseSeconds
                | SettingKey::RetentionCompleted
                | SettingKey::RetentionCancelled
                | SettingKey::RetentionDead
        )
    }

    /// Parses a key; underscore spellings (`max_retries`) are accepted.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] listing the valid keys.
    pub fn parse(s: &str) -> Result<SettingKey> {
        let canonical = s.trim().to_ascii_lowercase().replace('_', "-");
        SettingKey::ALL
            .into_iter()
            .find(|k| k.name() == canonical)
            .ok_or_else(|| {
                let valid: Vec<&str> = SettingKey::ALL.iter().map(|k| k.name()).collect();
                Error::InvalidSetting {
                    key: s.to_owned(),
                    message: format!(
                        "unknown config key '{s}' (valid keys: {})",
                        valid.join(", ")
                    ),
                }
            })
    }

    /// Checks a value and returns it normalised (`"007"` → `"7"`, `"2.50"` → `"2.5"`).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the key and the rule.
    pub fn validate(self, raw: &str) -> Result<String> {
        let v = raw.trim();
        let bad = || Error::InvalidSetting {
            key: self.name().to_owned(),
            message: format!(
                "invalid value '{raw}' for {}: expected {}",
                self.name(),
                self.rule()
            ),
        };
        let min = match self {
            SettingKey::BackoffBase => {
                let x: f64 = v.parse().map_err(|_| bad())?;
                if !x.is_finite() || !(1.0..=1e6).contains(&x) {
                    return Err(bad());
                }
                return Ok(format!("{x}"));
            }
            SettingKey::MaxRetries
            | SettingKey::JobTimeout
            | SettingKey::RetentionCompleted
            | SettingKey::RetentionCancelled
            | SettingKey::RetentionDead => 0,
            SettingKey::BackoffMax => 1,
            SettingKey::LeaseSeconds => 2,
            SettingKey::PollIntervalMs => 10,
        };
        // Whole numbers only, bounded so every derived Duration and Timestamp stays sane:
        // u32 for counts and 10 years for durations.
        let max: u64 = match self {
            SettingKey::MaxRetries => u64::from(u32::MAX),
            SettingKey::PollIntervalMs => 315_360_000_000,
            _ => 315_360_000,
        };
        let n: u64 = if self.is_duration() {
            parse_whole_seconds(v).map_err(|_| bad())?
        } else {
            v.parse().map_err(|_| bad())?
        };
        if n < min || n > max {
            return Err(bad());
        }
        Ok(n.to_string())
    }
}

impl fmt::Display for SettingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a duration as every duration flag and config key takes it: a bare integer of
/// seconds (`90`), or a human form with units that may be combined (`90s`, `5m`, `1h30m`,
/// `2d`, `1w`, `500ms`).
///
/// # Errors
/// A message for people naming the accepted forms.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!(
            "expected a whole number of seconds or a duration like 90s, 5m, 1h30m, 2d or 1w: {e}"
        )
    })
}

/// [`parse_duration`] for what is counted in whole seconds (timeouts, duration settings).
///
/// # Errors
/// As [`parse_duration`], and for a duration with a fraction of a second.
pub fn parse_whole_seconds(text: &str) -> std::result::Result<u64, String> {
    let d = parse_duration(text)?;
    if d.subsec_nanos() == 0 {
        Ok(d.as_secs())
    } else {
        Err(format!(
            "'{}' is not a whole number of seconds",
            text.trim()
        ))
    }
}

/// Every setting, resolved: stored values over defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// See [`SettingKey::BackoffBase`].
    pub backoff_base: f64,
    /// See [`SettingKey::BackoffMax`].
    pub backoff_max_secs: u64,
    /// See [`SettingKey::JobTimeout`].
    pub job_timeout_secs: u64,
    /// See [`SettingKey::LeaseSeconds`].
    pub lease_secs: u64,
    /// See [`SettingKey::MaxRetries`].
    pub max_retries: u32,
    /// See [`SettingKey::PollIntervalMs`].
    pub poll_interval_ms: u64,
    /// See [`SettingKey::RetentionCancelled`].
    pub retention_cancelled_secs: u64,
    /// See [`SettingKey::RetentionCompleted`].
    pub retention_completed_secs: u64,
    /// See [`SettingKey::RetentionDead`].
    pub retention_dead_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backoff_base: 2.0,
            backoff_max_secs: 3600,
            job_timeout_secs: 0,
            lease_secs: 15,
            max_retries: 3,
            poll_interval_ms: 200,
            retention_cancelled_secs: 604_800,
            retention_completed_secs: 604_800,
            retention_dead_secs: 0,
        }
    }
}

impl Settings {
    /// Reads every stored setting over the defaults.
    ///
    /// A stored value that no longer validates (written by a newer version, or by hand)
    /// is reported rather than silently replaced by the default.
    ///
    /// # Errors
    /// Store failures; [`Error::InvalidSetting`] for an undecodable stored value.
    pub fn load<S: JobStore + ?Sized>(store: &S) -> Result<Settings> {
        let mut s = Settings::default();
        for (key, value) in store.settings()? {
            // Keys this version does not know are kept but ignored (forward compatibility).
            let Ok(k) = SettingKey::parse(&key) else {
                continue;
            };
            s.apply(k, &value)?;
        }
        Ok(s)
    }

    /// Sets one field from a raw value.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] if the value breaks the key's rule.
    pub fn apply(&mut self, key: SettingKey, raw: &str) -> Result<()> {
        let v = key.validate(raw)?;
        let int = |v: &str| v.parse::<u64>().unwrap_or(0);
        match key {
            SettingKey::BackoffBase => self.backoff_base = v.parse().unwrap_or(2.0),
            SettingKey::BackoffMax => self.backoff_max_secs = int(&v),
            SettingKey::JobTimeout => self.job_timeout_secs = int(&v),
            SettingKey::LeaseSeconds => self.lease_secs = int(&v),
            SettingKey::MaxRetries => {
                self.max_retries = u32::try_from(int(&v)).unwrap_or(u32::MAX);
            }
            SettingKey::PollIntervalMs => self.poll_interval_ms = int(&v),
            SettingKey::RetentionCompleted => self.retention_completed_secs = int(&v),
            SettingKey::RetentionCancelled => self.retention_cancelled_secs = int(&v),
            SettingKey::RetentionDead => self.retention_dead_secs = int(&v),
        }
        Ok(())
    }

    /// One setting's value as `config get` prints it.
    #[must_use]
    pub fn get(&self, key: SettingKey) -> String {
        match key {
            SettingKey::BackoffBase => format!("{}", self.backoff_base),
            SettingKey::BackoffMax => self.backoff_max_secs.to_string(),
            SettingKey::JobTimeout => self.job_timeout_secs.to_string(),
            SettingKey::LeaseSeconds => self.lease_secs.to_string(),
            SettingKey::MaxRetries => self.max_retries.to_string(),
            SettingKey::PollIntervalMs => self.poll_interval_ms.to_string(),
            SettingKey::RetentionCompleted => self.retention_completed_secs.to_string(),
            SettingKey::RetentionCancelled => self.retention_cancelled_secs.to_string(),
            SettingKey::RetentionDead => self.retention_dead_secs.to_string(),
        }
    }

    /// How long finished jobs of `state` are kept before running workers delete them:
    /// `None` for a state that is not final or is kept forever (retention 0).
    #[must_use]
    pub fn retention(&self, state: queuectl_store::JobState) -> Option<Duration> {
        use queuectl_store::JobState;
        let secs = match state {
            JobState::Completed => self.retention_completed_secs,
            JobState::Cancelled => self.retention_cancelled_secs,
            JobState::Dead => self.retention_dead_secs,
            _ => 0,
        };
        (secs > 0).then(|| Duration::from_secs(secs))
    }

    /// The lease a claim holds.
    #[must_use]
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// The idle poll interval.
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn durations_take_bare_seconds_and_human_forms() {
        assert_eq!(parse_whole_seconds("90"), Ok(90));
        assert_eq!(parse_whole_seconds(" 90s "), Ok(90));
        assert_eq!(parse_whole_seconds("5m"), Ok(300));
        assert_eq!(parse_whole_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_whole_seconds("2d"), Ok(172_800));
        assert_eq!(parse_whole_seconds("1w"), Ok(604_800));
        assert!(parse_whole_seconds("1500ms").is_err());
        assert!(parse_whole_seconds("soon").is_err());
        assert!(parse_whole_seconds("-5").is_err());
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn duration_settings_store_seconds_whatever_the_spelling() {
        use SettingKey::*;
        assert_eq!(JobTimeout.validate("5m").unwrap(), "300");
        assert_eq!(BackoffMax.validate("1h").unwrap(), "3600");
        assert_eq!(LeaseSeconds.validate("2d").unwrap(), "172800");
        assert_eq!(RetentionCompleted.validate("7d").unwrap(), "604800");
        assert_eq!(RetentionDead.validate("0").unwrap(), "0");
        assert_eq!(RetentionCancelled.validate("1w").unwrap(), "604800");
        assert!(RetentionCompleted.validate("-1").is_err());
        assert!(LeaseSeconds.validate("1s").is_err(), "below the minimum");
        assert!(JobTimeout.validate("1.5s").is_err());
        assert!(MaxRetries.validate("5m").is_err(), "not a duration key");
        assert!(
            PollIntervalMs.validate("1s").is_err(),
            "milliseconds stay integers"
        );
    }
    use super::*;

    #[test]
    fn keys_parse_with_dashes_or_underscores() {
        for k in SettingKey::ALL {
            assert_eq!(SettingKey::parse(k.name()).ok(), Some(k));
            assert_eq!(SettingKey::parse(&k.name().replace('-', "_")).ok(), Some(k));
        }
        let err = SettingKey::parse("retries").err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("unknown config key 'retries'")));
    }

    #[test]
    fn defaults_validate_and_match_settings_default() {
        let d = Settings::default();
        for k in SettingKey::ALL {
            assert_eq!(
                k.validate(k.default_value()).ok().as_deref(),
                Some(k.default_value())
            );
            assert_eq!(d.get(k), k.default_value());
        }
    }

    #[test]
    fn values_are_checked_against_each_rule() {
        use SettingKey::*;
        let ok = |k: SettingKey, v: &str| k.validate(v).ok();
        assert_eq!(ok(MaxRetries, "0"), Some("0".into()));
        assert_eq!(ok(MaxRetries, "-1"), None);
        assert_eq!(ok(MaxRetries, "1.5"), None);
        assert_eq!(ok(BackoffBase, "1"), Some("1".into()));
        assert_eq!(ok(BackoffBase, "2.50"), Some("2.5".into()));
        assert_eq!(ok(BackoffBase, "0.5"), None);
        assert_eq!(ok(BackoffBase, "NaN"), None);
        assert_eq!(ok(BackoffBase, "inf"), None);
        assert_eq!(ok(BackoffMax, "0"), None);
        assert_eq!(ok(JobTimeout, "0"), Some("0".into()));
        assert_eq!(ok(LeaseSeconds, "1"), None);
        assert_eq!(ok(LeaseSeconds, "2"), Some("2".into()));
        assert_eq!(ok(PollIntervalMs, "9"), None);
        assert_eq!(ok(PollIntervalMs, " 010 "), Some("10".into()));
        assert_eq!(ok(PollIntervalMs, "abc"), None);
        assert_eq!(ok(PollIntervalMs, ""), None);
    }

    #[test]
    fn invalid_value_message_names_key_and_rule() {
        let msg = SettingKey::LeaseSeconds
            .validate("1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            msg,
            "invalid value '1' for lease-seconds: expected a duration of whole seconds (15, 90s, \
             5m, 1h30m, 2d) from 2s to 10 years"
        );
    }
}
