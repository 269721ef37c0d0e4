//! Test-only helpers: a store in a fresh, randomly named schema that is dropped afterwards.
//!
//! Tests that need a server read `QUEUECTL_TEST_POSTGRES_URL`; without it they print why
//! and return early.

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use queuectl_store::ClaimToken;

use crate::migrate::quote_ident;
use crate::{PostgresOptions, PostgresStore};

/// The variable naming the test server.
pub(crate) const URL_VAR: &str = "QUEUECTL_TEST_POSTGRES_URL";

/// A schema name unique to one test; dropped (with everything in it) on drop.
pub(crate) struct TestSchema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl TestSchema {
    /// A fresh schema name, or `None` (after saying so) when no server is configured.
    pub(crate) fn new() -> Option<Self> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(TestSchema {
                url,
                name: format!("qt_{:016x}", ClaimToken::random().0),
            }),
            _ => {
                let required =
                    std::env::var_os("QUEUECTL_REQUIRE_POSTGRES").is_some_and(|v| v == "1");
                assert!(
                    !required,
                    "{URL_VAR} is not set, but QUEUECTL_REQUIRE_POSTGRES=1"
                );
                eprintln!("skipping: {URL_VAR} not set");
                None
            }
        }
    }

    /// A new store handle on this schema (creating and migrating it on first use).
    pub(crate) fn open(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.url, self.options()).expect("connect to the test server")
    }

    /// Options selecting this schema, with a small pool.
    pub(crate) fn options(&self) -> PostgresOptions {
        PostgresOptions {
            pool_size: 4,
            schema: Some(self.name.clone()),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// A plain connection with `search_path` on this schema.
    pub(crate) fn raw_connection(&self) -> PgConnection {
        let mut conn = PgConnection::establish(&self.url).expect("connect to the test server");
        crate::migrate::set_search_path(&mut conn, &self.name).expect("set search_path");
        conn
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Best effort: a leftover schema is harmless and names itself as a test's.
        if let Ok(mut conn) = PgConnection::establish(&self.url) {
            let _ = diesel::sql_query(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(&self.name)
            ))
            .execute(&mut conn);
        }
    }
}
