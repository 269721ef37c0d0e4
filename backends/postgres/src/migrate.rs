//! Embedded migrations from `migrations/postgres`, run on connect.
//!
//! Several processes may connect to a fresh database at once, so the migrations run under a
//! session-level `pg_advisory_lock` keyed on the schema: the first process creates the
//! schema and the tables, the others wait and then find nothing pending. The lock wait is
//! bounded by `lock_timeout`, so a process stuck holding it turns into an error instead of
//! a hang.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use queuectl_store::{StoreError, StoreResult};

use crate::error::to_store_error;

/// Every migration of this crate, compiled in.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Upper bound on waiting for another process's migrations.
const LOCK_TIMEOUT: &str = "60s";

/// `"name"`, with embedded quotes doubled: safe to splice into SQL as an identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `schema` if given and missing, points this session's `search_path` at it, and
/// runs pending migrations, all under the migration lock.
pub(crate) fn run(conn: &mut PgConnection, schema: Option<&str>) -> StoreResult<()> {
    with_lock(conn, schema, |conn| {
        if let Some(schema) = schema {
            // Look first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
            // database even when the schema exists, which a locked-down role lacks.
            let exists: bool = diesel::select(
                diesel::dsl::sql::<Bool>("EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ")
                    .bind::<Text, _>(schema)
                    .sql(")"),
            )
            .get_result(conn)
            .map_err(|e| migration_error("looking up the schema", e))?;
            if !exists {
                diesel::sql_query(format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    quote_ident(schema)
                ))
                .execute(conn)
                .map_err(|e| migration_error("creating the schema", e))?;
            }
            set_search_path(conn, schema)
                .map_err(|e| migration_error("selecting the schema", e))?;
        }
        conn.run_pending_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Migration(e.to_string()))
    })
}

/// Reverts every applied migration (tests only: it drops all data).
#[cfg(test)]
pub(crate) fn revert_all(conn: &mut PgConnection, schema: Option<&str>) -> StoreResult<()> {
    with_lock(conn, schema, |conn| {
        if let Some(schema) = schema {
            set_search_path(conn, schema)
                .map_err(|e| migration_error("selecting the schema", e))?;
        }
        conn.revert_all_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Migration(e.to_string()))
    })
}

/// `SET search_path TO <schema>` on this session.
pub(crate) fn set_search_path(conn: &mut PgConnection, schema: &str) -> QueryResult<()> {
    diesel::sql_query(format!("SET search_path TO {}", quote_ident(schema)))
        .execute(conn)
        .map(|_| ())
}

fn with_lock<T>(
    conn: &mut PgConnection,
    schema: Option<&str>,
    f: impl FnOnce(&mut PgConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    let key = format!("queuectl-migrations:{}", schema.unwrap_or(""));
    diesel::sql_query(format!("SET lock_timeout = '{LOCK_TIMEOUT}'"))
        .execute(conn)
        .map_err(to_store_error)?;
    diesel::sql_query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(&key)
        .execute(conn)
        .map_err(|e| migration_error("waiting for another process's migrations", e))?;
    let result = f(conn);
    // Closing the session would release the lock too; unlocking keeps it short when the
    // caller goes on using this connection.
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind::<Text, _>(&key)
        .execute(conn)
        .map_err(to_store_error);
    let value = result?;
    unlocked?;
    diesel::sql_query("RESET lock_timeout")
        .execute(conn)
        .map_err(to_store_error)?;
    Ok(value)
}

fn migration_error(doing: &str, e: diesel::result::Error) -> StoreError {
    match to_store_error(e) {
        StoreError::Backend { source, .. } => StoreError::Migration(match source {
            Some(source) => format!("{doing}: {source}"),
            None => doing.to_owned(),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::testutil::TestSchema;

    fn table_count(conn: &mut PgConnection, schema: &str) -> i64 {
        diesel::select(sql::<BigInt>(&format!(
            "(SELECT count(*) FROM information_schema.tables \
              WHERE table_schema = '{schema}' AND table_name IN \
              ('jobs', 'job_output', 'job_attempts', 'settings', 'workers'))"
        )))
        .get_result(conn)
        .expect("count tables")
    }

    #[test]
    fn migrations_go_up_down_and_up_again_in_a_fresh_schema() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let store = schema.open();
        drop(store);
        let mut conn = schema.raw_connection();
        assert_eq!(table_count(&mut conn, &schema.name), 5);

        revert_all(&mut conn, Some(&schema.name)).expect("down");
        assert_eq!(table_count(&mut conn, &schema.name), 0);

        run(&mut conn, Some(&schema.name)).expect("up again");
        assert_eq!(table_count(&mut conn, &schema.name), 5);
        assert!(!conn.has_pending_migration(MIGRATIONS).expect("pending?"));
        // Connecting again finds nothing to do.
        drop(schema.open());
    }

    #[test]
    fn concurrent_connects_to_a_fresh_schema_all_succeed() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| schema.open())).collect();
            for h in handles {
                drop(h.join().expect("connect thread"));
            }
        });
        let mut conn = schema.raw_connection();
        assert_eq!(table_count(&mut conn, &schema.name), 5);
    }

    #[test]
    fn the_schema_matches_what_diesel_expects() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        drop(schema.open());
        let mut conn = schema.raw_connection();
        queuectl_store_sql::pg::check_schema(&mut conn).expect("the shared schema");
    }

    /// A store created before worker queues became JSON text (`TEXT[]` then) upgrades on
    /// connect and keeps its registry; reverting gives the arrays back.
    #[test]
    fn worker_queues_upgrade_from_text_arrays_to_json_and_back() {
        use diesel::sql_types::{Array, Text};
        use queuectl_store::prelude::*;

        #[derive(QueryableByName)]
        struct Queues {
            #[diesel(sql_type = Array<Text>)]
            queues: Vec<String>,
        }

        let Some(schema) = TestSchema::new() else {
            return;
        };
        let expected: Vec<Vec<String>> = vec![
            vec![],
            vec!["a,b".into(), "\"q\"".into(), String::new(), "é\\n".into()],
        ];
        {
            // The schema as the first release left it.
            let mut conn = PgConnection::establish(&schema.url).expect("connect");
            diesel::sql_query(format!("CREATE SCHEMA {}", quote_ident(&schema.name)))
                .execute(&mut conn)
                .expect("create schema");
            set_search_path(&mut conn, &schema.name).expect("search_path");
            conn.run_next_migration(MIGRATIONS)
                .expect("first migration");
            for (i, queues) in expected.iter().enumerate() {
                diesel::sql_query(
                    "INSERT INTO workers (id, host, pid, slots, queues, started_at, \
                     heartbeat_at, stop_requested) VALUES ($1, 'h', 7, 2, $2, 1, 2, false)",
                )
                .bind::<Text, _>(format!("w{i}"))
                .bind::<Array<Text>, _>(queues)
                .execute(&mut conn)
                .expect("old worker row");
            }
        }

        let store = schema.open();
        let listed: Vec<Vec<String>> = store
            .list_workers()
            .expect("list after the upgrade")
            .into_iter()
            .map(|w| w.queues)
            .collect();
        assert_eq!(listed, expected);

        let mut conn = schema.raw_connection();
        // Back to the first release's schema: every later migration down, newest first.
        while conn.applied_migrations().expect("applied").len() > 1 {
            conn.revert_last_migration(MIGRATIONS).expect("down");
        }
        let reverted: Vec<Vec<String>> =
            diesel::sql_query("SELECT queues FROM workers ORDER BY seq")
                .load::<Queues>(&mut conn)
                .expect("arrays again")
                .into_iter()
                .map(|q| q.queues)
                .collect();
        assert_eq!(reverted, expected);
        run(&mut conn, Some(&schema.name)).expect("up again");
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
