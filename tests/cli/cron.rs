//! `queuectl cron`: the "Periodic jobs" rows of the contract through the real binary, on
//! SQLite and PostgreSQL, and the exactly-once firing of one schedule by several worker
//! processes (SQLite) and by two "hosts" (PostgreSQL), with no leader.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;
use queuectl::Timestamp;
use serde_json::Value;

use super::{s, wait_until, Env, Proc};

fn schedules(env: &Env) -> Vec<Value> {
    match env.run(&["cron", "list", "--json"]).json() {
        Value::Array(items) => items,
        other => panic!("cron list --json is not an array: {other}"),
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Ids of the jobs whose id starts with `NAME@`, sorted.
fn fired(env: &Env, name: &str) -> Vec<String> {
    let prefix = format!("{name}@");
    let mut ids: Vec<String> = env
        .list(&[])
        .iter()
        .map(|j| s(j, "id").to_owned())
        .filter(|id| id.starts_with(&prefix))
        .collect();
    ids.sort();
    ids
}

store_test!(
    fn add_prints_the_next_fire_time_and_list_shows_every_column(env) {
        let out = env
            .run(&["cron", "add", "nightly", "0 2 * * *", r#"{"command":"./backup.sh","queue":"ops"}"#, "--tz", "Europe/Berlin"])
            .ok();
        let next = out.trim();
        // RFC 3339 UTC with milliseconds; 02:00 in Berlin is 01:00Z or 00:00Z.
        assert!(next.ends_with(":00:00.000Z") && next.len() == 24, "{out:?}");
        let t = at(next);
        assert!(t > Timestamp::now() && t <= Timestamp::now().add(Duration::from_secs(86_400)));

        let list = schedules(&env);
        assert_eq!(list.len(), 1);
        let keys: Vec<&str> = list[0].as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec!["name", "schedule", "tz", "job", "next_run_at", "last_run_at", "paused"];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(s(&list[0], "name"), "nightly");
        assert_eq!(s(&list[0], "schedule"), "0 2 * * *");
        assert_eq!(s(&list[0], "tz"), "Europe/Berlin");
        assert_eq!(list[0]["job"]["command"], "./backup.sh");
        assert_eq!(s(&list[0], "next_run_at"), next);
        assert!(list[0]["last_run_at"].is_null());
        assert_eq!(list[0]["paused"], false);

        let table = env.run(&["cron", "list"]).ok();
        let header = table.lines().next().unwrap();
        for col in ["NAME", "SCHEDULE", "TZ", "JOB", "NEXT_RUN_AT", "LAST_RUN_AT", "PAUSED"] {
            assert!(header.contains(col), "{table}");
        }
        assert!(table.contains("nightly") && table.contains(next), "{table}");

        // Same name: replaced, default zone UTC.
        let out = env.run(&["cron", "add", "nightly", "@hourly", r#"{"command":"true"}"#]).ok();
        assert!(out.trim().ends_with(":00:00.000Z"), "{out}");
        let list = schedules(&env);
        assert_eq!(list.len(), 1);
        assert_eq!(s(&list[0], "schedule"), "@hourly");
        assert_eq!(s(&list[0], "tz"), "UTC");
        for form in ["@daily", "@weekly", "@monthly", "@every 90s", "*/5 * * * 1-5"] {
            env.run(&["cron", "add", "other", form, r#"{"command":"true"}"#]).ok();
        }
    }
);

store_test!(
    fn add_refuses_an_id_a_bad_schedule_zone_or_job_and_stores_nothing(env) {
        let job = r#"{"command":"true"}"#;
        let cases: [&[&str]; 8] = [
            &["cron", "add", "a", "@daily", r#"{"command":"true","id":"x"}"#],
            &["cron", "add", "a", "61 * * * *", job],
            &["cron", "add", "a", "* * * *", job],
            &["cron", "add", "a", "@every", job],
            &["cron", "add", "a", "@fortnightly", job],
            &["cron", "add", "a", "@daily", job, "--tz", "Mars/Olympus"],
            &["cron", "add", "a", "@daily", r#"{"command":""}"#],
            &["cron", "add", "a", "@daily", "not json"],
        ];
        for args in cases {
            let run = env.run(args).code(1);
            assert!(!run.stderr.is_empty(), "{args:?}: no reason given");
            assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        }
        assert!(schedules(&env).is_empty());
        // A bad replacement leaves the stored schedule as it was.
        env.run(&["cron", "add", "a", "@daily", job]).ok();
        env.run(&["cron", "add", "a", "nonsense", job]).code(1);
        assert_eq!(s(&schedules(&env)[0], "schedule"), "@daily");
    }
);

store_test!(
    fn remove_pause_and_resume_name_a_schedule_or_fail(env) {
        for verb in ["remove", "pause", "resume"] {
            let run = env.run(&["cron", verb, "ghost"]).code(1);
            assert!(run.stderr.contains("ghost"), "{verb}: {}", run.stderr);
        }
        env.run(&["cron", "add", "a", "@hourly", r#"{"command":"true"}"#]).ok();
        env.run(&["cron", "pause", "a"]).ok();
        assert_eq!(schedules(&env)[0]["paused"], true);
        let out = env.run(&["cron", "resume", "a"]).ok();
        assert!(out.contains("next run at"), "{out}");
        assert_eq!(schedules(&env)[0]["paused"], false);
        env.run(&["cron", "remove", "a"]).ok();
        assert!(schedules(&env).is_empty());
        env.run(&["cron", "remove", "a"]).code(1);
    }
);

store_test!(
    fn a_running_worker_fires_due_schedules_as_jobs_named_by_their_time(env) {
        env.run(&["cron", "add", "tick", "@every 1s", r#"{"command":"echo fired","queue":"cronq"}"#]).ok();
        let first = at(s(&schedules(&env)[0], "next_run_at"));
        let _worker = env.spawn_worker(&["--poll-interval-ms", "50"]);
        wait_until(Duration::from_secs(30), "three fires to complete", || {
            env.list(&["--state", "completed"]).len() >= 3
        });
        let ids = fired(&env, "tick");
        assert_eq!(ids[0], format!("tick@{}", first.to_rfc3339()));
        let job = env.show(&ids[0]);
        assert_eq!(s(&job, "queue"), "cronq");
        assert_eq!(s(&job, "run_at"), first.to_rfc3339());
        assert_eq!(s(&job, "command"), "echo fired");
        let list = schedules(&env);
        assert!(!list[0]["last_run_at"].is_null());
    }
);

store_test!(
    fn a_paused_schedule_fires_nothing_and_resume_skips_the_missed_times(env) {
        env.run(&["cron", "add", "tick", "@every 1s", r#"{"command":"true"}"#]).ok();
        env.run(&["cron", "pause", "tick"]).ok();
        let _worker = env.spawn_worker(&["--poll-interval-ms", "50"]);
        env.wait_for_workers(1);
        // Nothing can be seen to happen; wait past a due time (the first was 1s after add).
        std::thread::sleep(Duration::from_millis(1500));
        assert!(fired(&env, "tick").is_empty());
        let resumed = Timestamp::now();
        env.run(&["cron", "resume", "tick"]).ok();
        wait_until(Duration::from_secs(30), "a fire after resume", || {
            !fired(&env, "tick").is_empty()
        });
        for id in fired(&env, "tick") {
            let t = at(id.trim_start_matches("tick@"));
            assert!(t >= resumed, "{id} is a time missed while paused");
        }
    }
);

store_test!(
    fn times_missed_while_no_worker_ran_fire_once_for_the_latest(env) {
        env.run(&["cron", "add", "tick", "@every 1s", r#"{"command":"true"}"#]).ok();
        let first = at(s(&schedules(&env)[0], "next_run_at"));
        // Three times pass with no worker running.
        let latest = first.add(Duration::from_secs(2));
        wait_until(Duration::from_secs(10), "three fire times to pass", || {
            Timestamp::now() > latest.add(Duration::from_millis(300))
        });
        let started = Timestamp::now();
        let _worker = env.spawn_worker(&["--poll-interval-ms", "50"]);
        wait_until(Duration::from_secs(20), "the catch-up fire", || {
            !fired(&env, "tick").is_empty()
        });
        let ids = fired(&env, "tick");
        let missed_latest = at(ids[0].trim_start_matches("tick@"));
        // One job for the latest time missed before the worker started, none for the ones
        // before it; later fires (if the test is slow) follow one a second.
        assert!(missed_latest >= latest && missed_latest <= started, "{ids:?}");
        assert!(ids.iter().all(|id| at(id.trim_start_matches("tick@")) >= missed_latest));
        assert!(!ids.contains(&format!("tick@{}", first.to_rfc3339())), "{ids:?}");
    }
);

store_test!(
    fn a_draining_worker_fires_no_schedules(env) {
        env.run(&["cron", "add", "tick", "@every 1s", r#"{"command":"true"}"#]).ok();
        let due = at(s(&schedules(&env)[0], "next_run_at"));
        wait_until(Duration::from_secs(10), "the schedule to be due", || Timestamp::now() > due);
        env.run(&["worker", "start", "--drain", "--poll-interval-ms", "50"]).ok();
        assert!(fired(&env, "tick").is_empty());
        assert!(schedules(&env)[0]["last_run_at"].is_null());
    }
);

/// Fire times of one `@every 1s` schedule fired by `workers` for at least `fires` times,
/// then stopped; asserts exactly one job per time from the first fire to the last, no
/// gap, no duplicate, and prints the firing record.
fn assert_exactly_once(env: &Env, workers: Vec<Proc>, fires: usize, label: &str) {
    let first = at(s(&schedules(env)[0], "next_run_at"));
    wait_until(Duration::from_secs(90), "enough fire times", || {
        fired(env, "tick").len() >= fires
    });
    for w in &workers {
        w.signal(Signal::SIGTERM);
    }
    for w in workers {
        w.wait(Duration::from_secs(30)).code(0);
    }
    let last = at(s(&schedules(env)[0], "last_run_at"));
    let ids = fired(env, "tick");
    let mut expected = Vec::new();
    let mut t = first;
    while t <= last {
        expected.push(format!("tick@{}", t.to_rfc3339()));
        t = t.add(Duration::from_secs(1));
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "duplicate ids: {ids:?}");
    assert_eq!(ids, expected, "fires from {first:?} to {last:?}");
    assert!(ids.len() >= fires);
    eprintln!(
        "firing record ({label}): {} fire times, one job each",
        ids.len()
    );
    for id in &ids {
        let job = env.show(id);
        eprintln!(
            "  {id}  created_at={} worker={}",
            s(&job, "created_at"),
            job["worker_id"].as_str().unwrap_or("-")
        );
    }
}

#[test]
fn three_worker_processes_on_sqlite_fire_each_time_exactly_once() {
    let env = Env::new();
    env.run(&["cron", "add", "tick", "@every 1s", r#"{"command":"true"}"#])
        .ok();
    let workers: Vec<Proc> = (0..3)
        .map(|_| env.spawn_worker(&["--poll-interval-ms", "50"]))
        .collect();
    assert_exactly_once(&env, workers, 12, "sqlite, 3 worker processes");
}

#[test]
fn two_hosts_on_postgres_fire_each_time_exactly_once() {
    let Some(env) = Env::postgres() else {
        return;
    };
    env.run(&["cron", "add", "tick", "@every 1s", r#"{"command":"true"}"#])
        .ok();
    let workers: Vec<Proc> = ["host-a", "host-a", "host-b", "host-b"]
        .iter()
        .map(|h| env.spawn_worker(&["--poll-interval-ms", "50", "--host-id", h]))
        .collect();
    assert_exactly_once(
        &env,
        workers,
        12,
        "postgres, hosts a and b, 2 processes each",
    );
}
