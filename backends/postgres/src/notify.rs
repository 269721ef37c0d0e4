//! `LISTEN`/`NOTIFY`: waking idle workers without polling the jobs table.
//!
//! Every write that makes a job claimable (enqueue, import, `dlq retry`, a finish to
//! `failed`, a recovered or released job) runs `pg_notify('queuectl_jobs', current_schema())`
//! in its own transaction, so the notification is delivered exactly when the write commits
//! and never for a rolled-back one. The payload is the schema, so queues in different
//! schemas of one database do not wake each other.
//!
//! Each [`crate::PostgresStore`] keeps one dedicated connection (outside the pool) that
//! `LISTEN`s on the channel, opened on first use. Diesel exposes only a non-blocking read
//! of pending notifications (`PQconsumeInput` + `PQnotifies`, no socket to wait on without
//! `unsafe`), so [`Listener::wait`] polls that read with a short sleep that grows from 1 ms
//! to 8 ms: a wake-up arrives within a few milliseconds, and an idle wait costs one
//! non-blocking `recv` per poll and no query. Every notification received bumps a counter,
//! which is what `change_marker` returns.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use parking_lot::Mutex;
use queuectl_store::StoreResult;

use crate::error::{connect_error, to_store_error};

/// The channel every store notifies on.
pub(crate) const CHANNEL: &str = "queuectl_jobs";

/// Sends the wake-up; call inside the writing transaction.
pub(crate) fn notify(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify('queuectl_jobs', current_schema())")
        .execute(conn)
        .map(|_| ())
}

const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(8);

/// The listening connection and the count of notifications it has received.
pub(crate) struct Listener {
    url: String,
    target: String,
    schema: String,
    conn: Mutex<Option<PgConnection>>,
    received: AtomicU64,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("schema", &self.schema)
            // try_lock: never wait on a poll in progress just to print.
            .field("listening", &self.conn.try_lock().map(|c| c.is_some()))
            .field("received", &self.received.load(Ordering::Relaxed))
            .finish()
    }
}

impl Listener {
    /// A listener for notifications about `schema`, connecting to `url` on first use.
    pub(crate) fn new(url: String, target: String, schema: String) -> Self {
        Listener {
            url,
            target,
            schema,
            conn: Mutex::new(None),
            received: AtomicU64::new(0),
        }
    }

    /// Reads every notification already delivered, without blocking; returns the counter.
    ///
    /// On a broken connection the counter is bumped anyway (notifications may have been
    /// lost, so waiters should look at the table) and the error returned; the next call
    /// reconnects.
    pub(crate) fn poll(&self) -> StoreResult<u64> {
        let mut slot = self.conn.lock();
        if slot.is_none() {
            *slot = Some(self.listen()?);
        }
        let Some(conn) = slot.as_mut() else {
            return Ok(self.received.load(Ordering::Acquire));
        };
        let mut mine = 0u64;
        let mut failed = None;
        for n in conn.notifications_iter() {
            match n {
                Ok(n) if n.channel == CHANNEL && n.payload == self.schema => mine += 1,
                Ok(_) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            *slot = None;
            self.received.fetch_add(1, Ordering::AcqRel);
            return Err(to_store_error(e));
        }
        Ok(self.received.fetch_add(mine, Ordering::AcqRel) + mine)
    }

    /// Waits up to `timeout` for a notification received after the call began (or
    /// delivered but not yet read); returns whether one came.
    pub(crate) fn wait(&self, timeout: Duration) -> StoreResult<bool> {
        let start = self.received.load(Ordering::Acquire);
        let deadline = Instant::now() + timeout;
        let mut nap = POLL_MIN;
        loop {
            if self.poll()? != start {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(POLL_MAX);
        }
    }

    fn listen(&self) -> StoreResult<PgConnection> {
        let mut conn =
            PgConnection::establish(&self.url).map_err(|e| connect_error(&e, &self.target))?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .map_err(to_store_error)?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use queuectl_store::prelude::*;
    use queuectl_store::{NewJob, Timestamp};

    use crate::testutil::TestSchema;

    #[test]
    fn an_enqueue_through_another_handle_wakes_a_waiting_worker() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let worker = schema.open();
        let producer = schema.open();
        // Start listening; nothing has been written yet.
        assert!(!worker
            .wait_for_notification(Duration::ZERO)
            .expect("listen"));

        std::thread::scope(|s| {
            let waiter = s.spawn(|| worker.wait_for_notification(Duration::from_secs(30)));
            let now = Timestamp::from_millis(1_000);
            producer
                .enqueue(&NewJob::shell("true", now), now)
                .expect("enqueue");
            assert!(waiter.join().expect("waiter").expect("wait"), "no wake-up");
        });
    }

    #[test]
    fn change_marker_moves_after_a_claimable_write_and_not_otherwise() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let worker = schema.open();
        let producer = schema.open();
        let m0 = worker.change_marker().expect("marker");
        // Nothing written: the marker is stable.
        assert_eq!(worker.change_marker().expect("marker"), m0);

        let now = Timestamp::from_millis(1_000);
        producer
            .enqueue(&NewJob::shell("true", now), now)
            .expect("enqueue");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = worker.change_marker().expect("marker");
            if m != m0 {
                break;
            }
            assert!(Instant::now() < deadline, "marker never moved");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn notifications_for_another_schema_do_not_wake() {
        let (Some(a), Some(b)) = (TestSchema::new(), TestSchema::new()) else {
            return;
        };
        let worker = a.open();
        let other = b.open();
        assert!(!worker
            .wait_for_notification(Duration::ZERO)
            .expect("listen"));
        let now = Timestamp::from_millis(1_000);
        other
            .enqueue(&NewJob::shell("true", now), now)
            .expect("enqueue");
        // A notification for `a` after it proves the listener saw the channel, and that the
        // earlier one (for `b`) was not counted: exactly one wake, then silence.
        let same = a.open();
        same.enqueue(&NewJob::shell("true", now), now)
            .expect("enqueue");
        assert!(worker
            .wait_for_notification(Duration::from_secs(30))
            .expect("wait"));
        let marker = worker.change_marker().expect("marker");
        assert_eq!(marker, queuectl_store::Marker::At(1));
    }
}
