//! Periodic jobs: adding, pausing and resuming schedules, and firing the due ones.
//!
//! Firing needs no leader. Every running worker calls [`Scheduler::fire_due_schedules`];
//! for each due schedule it computes the time to fire (the latest one passed, so times
//! missed while no worker ran fire once) and hands the store one guarded
//! [`ScheduleFire`]: advance `next_run_at` from the value read, and insert the job
//! `NAME@<time>` if absent, in one transaction. Of several workers reading the same row,
//! one advances it and the others get [`Fired::Stale`]; and because the job id is the
//! schedule's name and the time, even a fire repeated after a replace cannot make a second
//! job for the same time.

use queuectl_store::{Fired, JobId, JobStore, Schedule, ScheduleFire, Timestamp};

use super::{resolve, EnqueueRequest, Scheduler};
use crate::config::Settings;
use crate::cron::CronSpec;
use crate::{Error, Result};

/// Turns a schedule's job JSON into the request each fire enqueues: the caller's job
/// parser (the CLI passes the one `enqueue` uses, so every field `enqueue` accepts works
/// for periodic jobs too). The request's `id` and `run_at` are set by the fire.
pub type JobTemplate = dyn Fn(&str) -> std::result::Result<EnqueueRequest, String> + Send + Sync;

/// What one [`Scheduler::fire_due_schedules`] pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Jobs enqueued, by id.
    pub enqueued: Vec<JobId>,
    /// Fires that advanced a schedule without a new job (its id, or its unique key, was
    /// taken already).
    pub skipped: u64,
    /// Due schedules that another worker fired first.
    pub stale: u64,
}

/// A new schedule, as `queuectl cron add` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// Unique name; replaces an existing schedule of that name.
    pub name: String,
    /// A 5-field cron expression, `@hourly`, `@daily`, `@weekly`, `@monthly` or `@every D`.
    pub schedule: String,
    /// IANA time zone of the expression.
    pub tz: String,
    /// The job JSON each fire enqueues (without an `id`).
    pub job: String,
}

impl<S: JobStore> Scheduler<S> {
    /// Validates and stores a schedule (replacing one of the same name), due first at its
    /// next time after now; returns it as stored.
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] for a blank name, a bad schedule or zone, job JSON the
    /// template refuses or that has an `id`; nothing is stored then. Store failures.
    pub fn add_schedule(&self, req: ScheduleRequest, template: &JobTemplate) -> Result<Schedule> {
        let invalid = |message: String| Error::InvalidSchedule { message };
        if req.name.trim().is_empty() {
            return Err(invalid("the schedule name must not be blank".into()));
        }
        if req.name.contains('\0') {
            return Err(invalid("the schedule name must not contain NUL".into()));
        }
        let now = self.now();
        let spec = CronSpec::parse(&req.schedule, &req.tz, now).map_err(invalid)?;
        let request = template(&req.job).map_err(|e| invalid(format!("invalid job: {e}")))?;
        if request.id.is_some() {
            return Err(invalid(
                "the job JSON must not have an `id`: each fire's id is NAME@<time>".into(),
            ));
        }
        if !request.depends_on.is_empty() {
            return Err(invalid(
                "the job JSON must not have `depends_on`: every fire would wait on the same \
                 parents, which complete once"
                    .into(),
            ));
        }
        // Resolve once now, so a job the scheduler would refuse is refused at add time.
        resolve(request, &Settings::default(), now)?;
        let next_run_at = spec
            .next_after(now)
            .ok_or_else(|| invalid("the schedule has no next fire time".into()))?;
        let schedule = Schedule {
            name: req.name,
            schedule: req.schedule.trim().to_owned(),
            tz: req.tz.trim().to_owned(),
            job: req.job,
            next_run_at,
            last_run_at: None,
            paused: false,
            created_at: now,
        };
        self.store.put_schedule(&schedule)?;
        Ok(schedule)
    }

    /// Pauses (`true`) or resumes a schedule. Resuming sets its next fire time from now,
    /// so the times missed while it was paused never fire. Returns the schedule as
    /// stored, `None` if no schedule has this name.
    ///
    /// # Errors
    /// Store failures; [`Error::InvalidSchedule`] if the stored schedule no longer parses.
    pub fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Option<Schedule>> {
        let Some(stored) = self.schedule(name)? else {
            return Ok(None);
        };
        let now = self.now();
        let next = if paused {
            stored.next_run_at
        } else {
            let spec = CronSpec::parse(&stored.schedule, &stored.tz, stored.created_at)
                .map_err(|message| Error::InvalidSchedule { message })?;
            spec.next_after(now).unwrap_or(stored.next_run_at)
        };
        if !self.store.set_schedule_paused(name, paused, next)? {
            return Ok(None);
        }
        self.schedule(name)
    }

    /// One schedule by name.
    ///
    /// # Errors
    /// Store failures.
    pub fn schedule(&self, name: &str) -> Result<Option<Schedule>> {
        Ok(self
            .store
            .list_schedules()?
            .into_iter()
            .find(|s| s.name == name))
    }

    /// Fires every schedule that is due by the clock and not paused: one job per schedule,
    /// for the latest of its times that have passed, with id `NAME@<time>`, unless another
    /// worker fired that time first. A schedule whose stored text no longer parses is
    /// logged and left alone.
    ///
    /// # Errors
    /// Store failures (the schedules fired before the failure stay fired).
    pub fn fire_due_schedules(&self, template: &JobTemplate) -> Result<FireReport> {
        let now = self.now();
        let mut report = FireReport::default();
        let due: Vec<Schedule> = self
            .store
            .list_schedules()?
            .into_iter()
            .filter(|s| !s.paused && s.next_run_at <= now)
            .collect();
        if due.is_empty() {
            return Ok(report);
        }
        let settings = self.settings()?;
        for s in due {
            let spec = match CronSpec::parse(&s.schedule, &s.tz, s.created_at) {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %e, "cannot fire schedule");
                    continue;
                }
            };
            let fired_at = spec.latest_at_or_before(now, s.next_run_at);
            let Some(next_run_at) = spec.next_after(fired_at) else {
                tracing::warn!(schedule = %s.name, "schedule has no next fire time");
                continue;
            };
            let id = fire_id(&s.name, fired_at);
            let job = match template(&s.job) {
                Ok(mut request) => {
                    request.id = Some(id.clone());
                    request.run_at = Some(fired_at);
                    match resolve(request, &settings, now) {
                        Ok(job) => Some(job),
                        Err(e) => {
                            tracing::warn!(schedule = %s.name, error = %e,
                                "schedule's job is invalid; skipping this fire");
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %e,
                        "schedule's job JSON is invalid; skipping this fire");
                    None
                }
            };
            let fire = ScheduleFire {
                name: s.name.clone(),
                expected_next_run_at: s.next_run_at,
                fired_at,
                next_run_at,
                job,
            };
            match self.store.fire_schedule(&fire, now)? {
                Fired::Enqueued => {
                    tracing::info!(schedule = %s.name, job = %id, "schedule fired");
                    report.enqueued.push(id);
                }
                Fired::Skipped => report.skipped += 1,
                Fired::Stale => report.stale += 1,
            }
        }
        if !report.enqueued.is_empty() {
            self.notify_work();
        }
        Ok(report)
    }
}

/// The id of the job a schedule fires at `at`: `NAME@<RFC 3339 UTC, milliseconds>`.
#[must_use]
pub fn fire_id(name: &str, at: Timestamp) -> JobId {
    JobId::new(format!("{name}@{}", at.to_rfc3339()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use queuectl_store::{Coordination as _, JobState, Jobs as _};
    use queuectl_store_memory::MemoryStore;

    use super::*;
    use crate::clock::ManualClock;

    fn template(json: &str) -> std::result::Result<EnqueueRequest, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut r = EnqueueRequest::shell(v["command"].as_str().ok_or("no command")?);
        if v.get("id").is_some() {
            r.id = Some(JobId::new("given"));
        }
        if v.get("depends_on").is_some() {
            r.depends_on = vec![JobId::new("parent")];
        }
        Ok(r)
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn setup(start: &str) -> (Scheduler<Arc<MemoryStore>>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(at(start)));
        let sched = Scheduler::with_clock(Arc::new(MemoryStore::new()), clock.clone());
        (sched, clock)
    }

    fn add(sched: &Scheduler<Arc<MemoryStore>>, name: &str, schedule: &str, tz: &str) -> Schedule {
        let req = ScheduleRequest {
            name: name.into(),
            schedule: schedule.into(),
            tz: tz.into(),
            job: r#"{"command":"true"}"#.into(),
        };
        sched.add_schedule(req, &template).unwrap()
    }

    fn ids(sched: &Scheduler<Arc<MemoryStore>>) -> Vec<String> {
        let jobs = sched
            .store()
            .list(&queuectl_store::JobFilter::default())
            .unwrap();
        jobs.into_iter().map(|j| j.id.to_string()).collect()
    }

    #[test]
    fn fires_each_time_once_with_its_id() {
        let (sched, clock) = setup("2026-12-03T01:59:00Z");
        let s = add(&sched, "nightly", "0 2 * * *", "UTC");
        assert_eq!(s.next_run_at, at("2026-12-03T02:00:00Z"));
        assert!(sched
            .fire_due_schedules(&template)
            .unwrap()
            .enqueued
            .is_empty());
        clock.set(at("2026-12-03T02:00:00.500Z"));
        let r = sched.fire_due_schedules(&template).unwrap();
        assert_eq!(r.enqueued, [JobId::new("nightly@2026-12-03T02:00:00.000Z")]);
        // Fired already: nothing more until tomorrow.
        assert_eq!(
            sched.fire_due_schedules(&template).unwrap(),
            FireReport::default()
        );
        let job = sched.store().get(&r.enqueued[0]).unwrap();
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(job.run_at, at("2026-12-03T02:00:00Z"));
        let s = sched.schedule("nightly").unwrap().unwrap();
        assert_eq!(s.last_run_at, Some(at("2026-12-03T02:00:00Z")));
        assert_eq!(s.next_run_at, at("2026-12-04T02:00:00Z"));
    }

    #[test]
    fn times_missed_while_no_worker_ran_fire_once_for_the_latest() {
        let (sched, clock) = setup("2026-12-03T00:30:00Z");
        add(&sched, "hourly", "@hourly", "UTC");
        clock.set(at("2026-12-03T05:10:00Z"));
        sched.fire_due_schedules(&template).unwrap();
        assert_eq!(ids(&sched), ["hourly@2026-12-03T05:00:00.000Z"]);
        assert_eq!(
            sched.schedule("hourly").unwrap().unwrap().next_run_at,
            at("2026-12-03T06:00:00Z")
        );
    }

    #[test]
    fn a_stale_fire_changes_nothing() {
        let (sched, clock) = setup("2026-12-03T00:30:00Z");
        let s = add(&sched, "hourly", "@hourly", "UTC");
        clock.set(at("2026-12-03T01:00:00Z"));
        sched.fire_due_schedules(&template).unwrap();
        // A second worker that read the row before the first fire tries the same fire.
        let fire = ScheduleFire {
            name: "hourly".into(),
            expected_next_run_at: s.next_run_at,
            fired_at: s.next_run_at,
            next_run_at: at("2026-12-03T02:00:00Z"),
            job: None,
        };
        assert_eq!(
            sched.store().fire_schedule(&fire, sched.now()).unwrap(),
            Fired::Stale
        );
        assert_eq!(ids(&sched).len(), 1);
    }

    #[test]
    fn resume_does_not_fire_times_missed_while_paused() {
        let (sched, clock) = setup("2026-12-03T00:30:00Z");
        add(&sched, "hourly", "@hourly", "UTC");
        sched.set_schedule_paused("hourly", true).unwrap().unwrap();
        clock.set(at("2026-12-03T03:30:00Z"));
        assert_eq!(
            sched.fire_due_schedules(&template).unwrap(),
            FireReport::default()
        );
        let s = sched.set_schedule_paused("hourly", false).unwrap().unwrap();
        assert_eq!(s.next_run_at, at("2026-12-03T04:00:00Z"));
        assert!(sched
            .fire_due_schedules(&template)
            .unwrap()
            .enqueued
            .is_empty());
        assert!(sched.set_schedule_paused("nope", false).unwrap().is_none());
    }

    #[test]
    fn every_counts_from_when_added_and_dst_is_skipped_or_fired_once() {
        let (sched, clock) = setup("2026-12-03T10:00:00.250Z");
        add(&sched, "tick", "@every 1s", "UTC");
        for n in 1..=3 {
            clock.advance(std::time::Duration::from_secs(1));
            let r = sched.fire_due_schedules(&template).unwrap();
            assert_eq!(r.enqueued.len(), 1, "tick {n}");
        }
        assert_eq!(
            ids(&sched),
            [
                "tick@2026-12-03T10:00:01.250Z",
                "tick@2026-12-03T10:00:02.250Z",
                "tick@2026-12-03T10:00:03.250Z"
            ]
        );

        // Berlin 2026-10-25: 02:30 occurs twice; the worker fires it once.
        let (sched, clock) = setup("2026-10-24T23:00:00Z");
        add(&sched, "half", "30 2 * * *", "Europe/Berlin");
        for minute in (0..=180).step_by(5) {
            clock.set(at("2026-10-24T23:00:00Z").add(std::time::Duration::from_secs(minute * 60)));
            sched.fire_due_schedules(&template).unwrap();
        }
        assert_eq!(ids(&sched), ["half@2026-10-25T00:30:00.000Z"]);

        // Berlin 2026-03-29: 02:30 does not exist; nothing fires that night.
        let (sched, clock) = setup("2026-03-28T23:00:00Z");
        add(&sched, "half", "30 2 * * *", "Europe/Berlin");
        for minute in (0..=180).step_by(5) {
            clock.set(at("2026-03-28T23:00:00Z").add(std::time::Duration::from_secs(minute * 60)));
            sched.fire_due_schedules(&template).unwrap();
        }
        assert!(ids(&sched).is_empty());
    }

    #[test]
    fn a_pool_fires_due_schedules_only_when_given_a_template() {
        let (sched, clock) = setup("2026-12-03T00:30:00Z");
        add(&sched, "hourly", "@hourly", "UTC");
        clock.set(at("2026-12-03T01:00:00Z"));
        let without = crate::WorkerPool::builder(sched.clone()).build();
        assert_eq!(without.run_due().unwrap().succeeded, 0);
        assert!(ids(&sched).is_empty());
        let with = crate::WorkerPool::builder(sched.clone())
            .schedules(Arc::new(template))
            .build();
        assert_eq!(with.run_due().unwrap().succeeded, 1);
        let id = JobId::new("hourly@2026-12-03T01:00:00.000Z");
        assert_eq!(sched.store().get(&id).unwrap().state, JobState::Completed);
    }

    #[test]
    fn bad_input_stores_nothing() {
        let (sched, _) = setup("2026-12-03T00:00:00Z");
        let mut req = ScheduleRequest {
            name: "x".into(),
            schedule: "@daily".into(),
            tz: "UTC".into(),
            job: r#"{"command":"true","id":"fixed"}"#.into(),
        };
        assert!(sched.add_schedule(req.clone(), &template).is_err());
        req.job = r#"{"command":"true","depends_on":["p"]}"#.into();
        assert!(sched.add_schedule(req.clone(), &template).is_err());
        req.job = r#"{"command":"true"}"#.into();
        req.tz = "Nowhere/Else".into();
        assert!(sched.add_schedule(req.clone(), &template).is_err());
        req.tz = "UTC".into();
        req.schedule = "0 25 * * *".into();
        assert!(sched.add_schedule(req.clone(), &template).is_err());
        req.schedule = "@daily".into();
        req.name = "  ".into();
        assert!(sched.add_schedule(req, &template).is_err());
        assert!(sched.store().list_schedules().unwrap().is_empty());
    }
}
