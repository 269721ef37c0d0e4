//! A fresh PostgreSQL schema per test, dropped when the test ends.
//!
//! Tests that need PostgreSQL read `QUEUECTL_TEST_POSTGRES_URL`; without it they print why
//! and return (plain `cargo test` on a machine without a server). `.ci/run` always sets it
//! and checks the server answers first, so they never skip in CI. A build without the
//! `postgres` feature has no PostgreSQL store to test: there, no schema can be made and the
//! tests skip the same way.

#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
#[cfg(feature = "postgres")]
use diesel::prelude::*;
#[cfg(feature = "postgres")]
use queuectl_store_postgres::{PostgresOptions, PostgresStore};

/// The variable that names the test server.
#[cfg(feature = "postgres")]
pub(crate) const URL_VAR: &str = "QUEUECTL_TEST_POSTGRES_URL";

/// A schema that exists for one test.
pub(crate) struct PgSchema {
    /// The server URL, as given.
    pub(crate) url: String,
    /// The schema's name (hex, no quoting needed).
    pub(crate) name: String,
    /// Without the `postgres` feature no value of this type exists.
    #[cfg(not(feature = "postgres"))]
    never: std::convert::Infallible,
}

impl PgSchema {
    /// A fresh schema name on the test server, or `None` (with a printed reason) when no
    /// server is configured.
    pub(crate) fn new() -> Option<PgSchema> {
        let required = std::env::var_os("QUEUECTL_REQUIRE_POSTGRES").is_some_and(|v| v == "1");
        #[cfg(not(feature = "postgres"))]
        {
            assert!(
                !required,
                "QUEUECTL_REQUIRE_POSTGRES=1, but this build has no postgres feature"
            );
            eprintln!("skipping: built without the postgres feature");
            None
        }
        #[cfg(feature = "postgres")]
        {
            let url = match std::env::var(URL_VAR) {
                Ok(url) if !url.trim().is_empty() => url,
                _ => {
                    assert!(
                        !required,
                        "{URL_VAR} is not set, but QUEUECTL_REQUIRE_POSTGRES=1"
                    );
                    eprintln!("skipping: {URL_VAR} not set");
                    return None;
                }
            };
            let name = format!("qt_{}", uuid::Uuid::new_v4().simple());
            Some(PgSchema { url, name })
        }
    }

    /// A `--db` URL that puts every connection of the CLI in this schema (libpq's
    /// `options` parameter sets `search_path`). The schema must exist first
    /// ([`PgSchema::create`]): a `search_path` naming no schema leaves nowhere to migrate.
    pub(crate) fn cli_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.url, self.name)
    }
}

#[cfg(not(feature = "postgres"))]
impl PgSchema {
    /// Unreachable: see the field `never`.
    pub(crate) fn create(&self) {
        match self.never {}
    }

    /// Unreachable: see the field `never`.
    pub(crate) fn execute(&self, _sql: &str) {
        match self.never {}
    }
}

#[cfg(feature = "postgres")]
impl PgSchema {
    /// A store in this schema.
    pub(crate) fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(
            &self.url,
            PostgresOptions {
                schema: Some(self.name.clone()),
                pool_size: 2,
                ..PostgresOptions::default()
            },
        )
        .expect("QUEUECTL_TEST_POSTGRES_URL is set but the server cannot be used")
    }

    /// Creates the (empty) schema, so the CLI can migrate into it through [`Self::cli_url`].
    pub(crate) fn create(&self) {
        let mut conn = PgConnection::establish(&self.url)
            .expect("QUEUECTL_TEST_POSTGRES_URL is set but the server cannot be used");
        diesel::sql_query(format!("CREATE SCHEMA {}", self.name))
            .execute(&mut conn)
            .expect("create the test schema");
    }

    /// Runs `sql` (one statement) with this schema first on the `search_path`.
    pub(crate) fn execute(&self, sql: &str) {
        let mut conn = PgConnection::establish(&self.url).expect("connect to the test server");
        diesel::sql_query(format!("SET search_path TO {}", self.name))
            .execute(&mut conn)
            .expect("search_path");
        diesel::sql_query(sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The number of rows in `table` of this schema, or `None` when it has no such table.
    pub(crate) fn count_rows(&self, table: &str) -> Option<i64> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(&self.url).expect("connect to the test server");
        diesel::sql_query(format!("SELECT count(*) AS n FROM {}.{table}", self.name))
            .get_result::<Count>(&mut conn)
            .ok()
            .map(|c| c.n)
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        // Best effort: a leftover `qt_…` schema is harmless and says where it came from.
        if let Ok(mut conn) = PgConnection::establish(&self.url) {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(&mut conn);
        }
    }
}
