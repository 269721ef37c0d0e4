//! The embedded schema migrations (`migrations/sqlite` at the repository root).
//!
//! Several processes may open a fresh file at the same moment (e.g. two `queuectl` commands
//! started together), so all pending migrations run inside one `BEGIN IMMEDIATE`
//! transaction: the first opener holds the write lock while it creates the schema, and the
//! others wait (busy handler, then the store's retry loop) and then find nothing pending.
//! Diesel runs each migration in a nested transaction, which SQLite turns into a savepoint.

use std::sync::OnceLock;

use diesel::migration::MigrationSource;
use diesel::result::Error as DieselError;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use queuectl_store::StoreError;

use queuectl_store_sql::Failure;

/// Every migration of the SQLite schema, compiled into the binary.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Applies every pending migration, atomically. A no-op on an up-to-date database.
///
/// An up-to-date database is recognised with a read first, so a read-only file (or one
/// another process holds the write lock on) still opens for `status`, `list` and `show`.
///
/// A store that records a migration this build does not know (a newer queuectl migrated
/// it) is refused with [`StoreError::NewerSchema`] before anything is written.
pub(crate) fn run_pending(conn: &mut SqliteConnection) -> Result<(), Failure> {
    let applied = conn.applied_migrations().map_err(migration_failure)?;
    queuectl_store_sql::version::check_versions(known_versions(), &versions(&applied))
        .map_err(Failure::Store)?;
    if !conn
        .has_pending_migration(MIGRATIONS)
        .map_err(migration_failure)?
    {
        return Ok(());
    }
    conn.immediate_transaction(|conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(drop)
            .map_err(migration_failure)
    })
}

/// The version of every embedded migration (Diesel's: the digits of the directory's
/// timestamp), computed once.
pub(crate) fn known_versions() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
            .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
            // The embedded source reads nothing at run time; it cannot fail.
            .unwrap_or_default()
    })
}

/// Reverts every applied migration, leaving an empty schema (tests and tooling).
#[cfg(test)]
pub(crate) fn revert_all(conn: &mut SqliteConnection) -> Result<(), Failure> {
    conn.immediate_transaction(|conn| {
        conn.revert_all_migrations(MIGRATIONS)
            .map(drop)
            .map_err(migration_failure)
    })
}

/// Keeps driver errors as such (so a busy database is waited out and retried), and turns
/// anything else the harness reports into [`StoreError::Migration`].
fn migration_failure(e: Box<dyn std::error::Error + Send + Sync>) -> Failure {
    match e.downcast::<DieselError>() {
        Ok(e) => Failure::Db(*e),
        Err(e) => {
            let text = e.to_string();
            // A table of ours already exists but our migration record does not: the file
            // belongs to another program (or was edited by hand). Say so in words.
            let message = if text.contains("already exists") {
                "the file is an SQLite database that queuectl did not create (it has tables \
                 of the same names); use another file"
                    .to_owned()
            } else {
                text
            };
            Failure::Store(StoreError::Migration(message))
        }
    }
}

/// Diesel's version records as text.
fn versions(applied: &[diesel::migration::MigrationVersion<'_>]) -> Vec<String> {
    applied.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};

    use super::*;

    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn objects(conn: &mut SqliteConnection) -> Vec<String> {
        diesel::sql_query(
            "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '__diesel%' ORDER BY name",
        )
        .load::<Name>(conn)
        .expect("schema")
        .into_iter()
        .map(|n| n.name)
        .collect()
    }

    fn fresh() -> (tempfile::TempDir, SqliteConnection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("open");
        (dir, conn)
    }

    #[test]
    fn migrations_go_up_down_and_up_again_on_a_fresh_database() {
        let (_dir, mut conn) = fresh();
        run_pending(&mut conn).expect("up");
        let created = objects(&mut conn);
        for t in [
            "jobs",
            "job_output",
            "job_attempts",
            "settings",
            "workers",
            "jobs_claim",
        ] {
            assert!(
                created.iter().any(|n| n == t),
                "{t} missing from {created:?}"
            );
        }

        revert_all(&mut conn).expect("down");
        assert_eq!(objects(&mut conn), Vec::<String>::new());

        run_pending(&mut conn).expect("up again");
        assert_eq!(objects(&mut conn), created);
    }

    #[test]
    fn running_migrations_twice_is_a_no_op() {
        let (_dir, mut conn) = fresh();
        run_pending(&mut conn).expect("first");
        run_pending(&mut conn).expect("second");
        let applied = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .get_result::<Count>(&mut conn)
            .expect("count");
        assert_eq!(
            usize::try_from(applied.n).expect("non-negative"),
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&MIGRATIONS)
                .expect("embedded")
                .len()
        );
    }

    #[test]
    fn the_schema_matches_what_diesel_expects() {
        let (_dir, mut conn) = fresh();
        run_pending(&mut conn).expect("up");
        queuectl_store_sql::sqlite::check_schema(&mut conn).expect("the shared schema");
    }
}
