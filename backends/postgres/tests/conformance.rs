//! The shared conformance suite, run against a `PostgresStore` in a fresh schema per case.
//!
//! Needs a server: set `QUEUECTL_TEST_POSTGRES_URL` (e.g.
//! `postgres://root@127.0.0.1:5432/test`). Without it every case prints why and passes.
//! Each case gets its own randomly named schema, dropped when the case ends, so cases run in
//! parallel against one database without seeing each other.

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use queuectl_store::ClaimToken;
use queuectl_store_conformance::TestStore;
use queuectl_store_postgres::{PostgresOptions, PostgresStore};

const URL_VAR: &str = "QUEUECTL_TEST_POSTGRES_URL";

/// Drops its schema, and everything in it, when the case ends.
struct DropSchema {
    url: String,
    name: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        // Best effort: a leftover `qc_…` schema is harmless and says where it came from.
        if let Ok(mut conn) = PgConnection::establish(&self.url) {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
                .execute(&mut conn);
        }
    }
}

fn make() -> Option<TestStore<PostgresStore>> {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            let required = std::env::var_os("QUEUECTL_REQUIRE_POSTGRES").is_some_and(|v| v == "1");
            assert!(
                !required,
                "{URL_VAR} is not set, but QUEUECTL_REQUIRE_POSTGRES=1"
            );
            eprintln!("skipping: {URL_VAR} not set");
            return None;
        }
    };
    // Hex only, so the name needs no quoting care.
    let name = format!("qc_{:016x}", ClaimToken::random().0);
    let guard = DropSchema {
        url: url.clone(),
        name: name.clone(),
    };
    let store = PostgresStore::connect_with(
        &url,
        PostgresOptions {
            pool_size: 8,
            schema: Some(name),
            connect_timeout: Duration::from_secs(5),
        },
    )
    .expect("connect to the test server");
    Some(TestStore::with_guard(store, guard))
}

queuectl_store_conformance::store_conformance!(optional make);
