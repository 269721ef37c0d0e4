//! Regression: a stalled store must not run a job twice at once.
//!
//! Scenario (found in review): worker A runs a long job; something else holds the SQLite
//! write lock (a huge `enqueue --file` batch is one transaction) for longer than the lease,
//! so A cannot renew; worker B, on the same host, saw the lease expire and recovered the job
//! while A's process was still running it, then ran it again: two executions at once.
//! Recovery now leaves alone the jobs of live workers on its own host.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::{wait_until, Env};

#[test]
fn a_stalled_store_does_not_hand_a_live_workers_job_to_another_worker() {
    let env = Env::new();
    env.run(&["config", "set", "lease-seconds", "2"]).ok();
    let marker = env.dir().join("runs");
    env.enqueue(&format!(
        r#"{{"id":"long","command":"echo run >> '{}'; sleep 5"}}"#,
        marker.display()
    ));
    let _a = env.spawn_worker(&["--count", "1"]);
    wait_until(Duration::from_secs(20), "the job to start", || {
        env.state("long") == "processing"
    });
    let _b = env.spawn_worker(&["--count", "1"]);
    env.wait_for_workers(2);

    // Hold the write lock for two leases: A's renewals cannot land meanwhile.
    let mut conn = SqliteConnection::establish(env.db().to_str().unwrap()).unwrap();
    diesel::sql_query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // The race was staged only if A's lease really expired while the lock was held (so B
    // saw an expired lease of a job that A was still running): check, still holding it.
    #[derive(QueryableByName)]
    struct Lease {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        lease_until: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
    }
    let lease = diesel::sql_query("SELECT lease_until, state FROM jobs WHERE id = 'long'")
        .get_result::<Lease>(&mut conn)
        .unwrap();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert_eq!(lease.state, "processing");
    assert!(
        lease.lease_until.is_some_and(|until| until < now_ms),
        "the lease did not expire during the stall ({:?} vs now {now_ms}): nothing was staged",
        lease.lease_until
    );
    diesel::sql_query("COMMIT").execute(&mut conn).unwrap();

    wait_until(Duration::from_secs(30), "the job to complete", || {
        env.state("long") == "completed"
    });
    let runs = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(
        runs.lines().count(),
        1,
        "the job ran more than once: {runs:?}"
    );
    let job = env.show("long");
    assert_eq!(job["attempts"], 1);
}
