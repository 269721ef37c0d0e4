//! The connection pool: pooled sessions that are pinged only when they may be dead.
//!
//! r2d2 can test each connection with a `SELECT 1` whenever it is checked out, which costs
//! one round trip per store call (a claim-and-finish pair paid two of its five). Instead a
//! session is pinged only when it may have died unnoticed: when it was last used more than
//! [`PING_AFTER_IDLE`] ago, or when another session of the same store has lost its
//! connection since (a server restart kills them all at once). A busy worker's sessions are
//! otherwise never pinged. A session whose ping or query failed because the connection is
//! gone is marked broken, so the pool drops it instead of handing it out again (diesel's
//! own `is_broken` only looks at its transaction state, which a dead socket does not
//! change, hence the wrapper). The call that first meets a connection dying under it fails
//! with [`queuectl_store::StoreError::Unavailable`], as it did with pings: a write whose
//! connection broke may or may not have committed, so it is not retried blindly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::migrate;

/// A session idle for longer than this is pinged before use.
pub(crate) const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pooled connection, when it was last used, and whether it must not be reused.
pub(crate) struct Session {
    conn: PgConnection,
    last_used: Instant,
    /// The store's count of lost connections when this one was last known alive.
    losses_seen: u64,
    broken: bool,
}

impl Session {
    /// The connection, pinged first if it sat idle or if `losses` (the store's count of
    /// lost connections) moved since it was last known alive: `Err` when it is dead (the
    /// session is then marked broken, and the caller should take another).
    pub(crate) fn checked(&mut self, losses: &AtomicU64) -> Result<&mut PgConnection, DieselError> {
        let now_lost = losses.load(Ordering::Acquire);
        if self.last_used.elapsed() > PING_AFTER_IDLE || self.losses_seen != now_lost {
            if let Err(e) = self.conn.ping() {
                self.note_error(&e, losses);
                return Err(e);
            }
            self.losses_seen = now_lost;
        }
        self.last_used = Instant::now();
        Ok(&mut self.conn)
    }

    /// Remembers that the connection is dead when `e` says so, and counts it in `losses`
    /// so the store's other sessions check theirs before their next use.
    pub(crate) fn note_error(&mut self, e: &DieselError, losses: &AtomicU64) {
        if is_connection_lost(e) && !self.broken {
            self.broken = true;
            losses.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Whether `e` means the connection itself is gone (not just this statement failed).
pub(crate) fn is_connection_lost(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// Opens [`Session`]s with diesel's manager.
#[derive(Debug)]
pub(crate) struct Manager(ConnectionManager<PgConnection>);

impl Manager {
    pub(crate) fn new(url: String) -> Self {
        Manager(ConnectionManager::new(url))
    }
}

impl ManageConnection for Manager {
    type Connection = Session;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Session, Self::Error> {
        Ok(Session {
            conn: self.0.connect()?,
            last_used: Instant::now(),
            // Unknown: a fresh session is pinged once if the store has ever lost one.
            losses_seen: 0,
            broken: false,
        })
    }

    fn is_valid(&self, session: &mut Session) -> Result<(), Self::Error> {
        self.0.is_valid(&mut session.conn)
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.broken || self.0.has_broken(&mut session.conn)
    }
}

/// Runs once on every new pooled session.
#[derive(Debug)]
pub(crate) struct SessionSetup {
    pub(crate) schema: Option<String>,
}

impl CustomizeConnection<Session, diesel::r2d2::Error> for SessionSetup {
    fn on_acquire(&self, session: &mut Session) -> Result<(), diesel::r2d2::Error> {
        if let Some(schema) = &self.schema {
            migrate::set_search_path(&mut session.conn, schema)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}
