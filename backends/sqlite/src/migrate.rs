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
use diesel::{QueryableByName, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use queuectl_store::StoreError;

use queuectl_store_sql::Failure;

/// Every migration of the SQLite schema, compiled into the binary.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// `PRAGMA application_id` of a queuectl store: `qctl` in ASCII. It marks the file as ours
/// in its header, so `file(1)` and queuectl itself can tell a store from another program's
/// SQLite database.
pub(crate) const APPLICATION_ID: i32 = 0x7163_746c;

/// Applies every pending migration, atomically. A no-op on an up-to-date database.
///
/// An up-to-date database is recognised with a read first, so a read-only file (or one
/// another process holds the write lock on) still opens for `status`, `list` and `show`.
///
/// A file that is neither empty nor a queuectl store (another program's database) is
/// refused before anything is written to it: no table, no migration record, no header
/// change. A new store is stamped with [`APPLICATION_ID`] in the transaction that creates
/// its schema; a store of an older queuectl (unstamped, recognised by its migration record)
/// is stamped by its next upgrade.
///
/// A store that records a migration this build does not know (a newer queuectl migrated
/// it) is refused with [`StoreError::NewerSchema`] before anything is written.
pub(crate) fn run_pending(conn: &mut SqliteConnection) -> Result<(), Failure> {
    // Diesel's harness creates its bookkeeping table when asked what is applied or
    // pending, so it is asked only once the file is known to be ours.
    let owner = identify(conn)?;
    if owner != Owner::Empty {
        let applied = conn.applied_migrations().map_err(migration_failure)?;
        queuectl_store_sql::version::check_versions(known_versions(), &versions(&applied))
            .map_err(Failure::Store)?;
    }
    if owner == Owner::Ours
        && !conn
            .has_pending_migration(MIGRATIONS)
            .map_err(migration_failure)?
    {
        return Ok(());
    }
    conn.immediate_transaction(|conn| {
        // Again under the write lock: another process may have created the schema since.
        if identify(conn)? != Owner::Ours {
            diesel::sql_query(format!("PRAGMA application_id = {APPLICATION_ID}"))
                .execute(conn)
                .map_err(Failure::Db)?;
        }
        conn.run_pending_migrations(MIGRATIONS)
            .map(drop)
            .map_err(migration_failure)
    })
}

/// Whose file this is, from its header and schema.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// Stamped with our application id.
    Ours,
    /// No schema objects at all: a new (or empty) file we may make a store of.
    Empty,
    /// Made by an older queuectl, before stores were stamped.
    OursUnstamped,
}

#[derive(QueryableByName)]
struct Header {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    application_id: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    objects: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ours: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    names: String,
}

/// Refuses a file of another application before anything (not even `journal_mode = WAL`,
/// which rewrites the header) is written to it.
pub(crate) fn refuse_foreign(conn: &mut SqliteConnection) -> Result<(), Failure> {
    identify(conn).map(drop)
}

/// Reads the header and schema; a file of another application is an error.
fn identify(conn: &mut SqliteConnection) -> Result<Owner, Failure> {
    // The first migration's version: only a queuectl store has this record.
    const FIRST_VERSION: &str = "20261128000000";
    let header = diesel::sql_query(
        "SELECT (SELECT application_id FROM pragma_application_id) AS application_id, \
                (SELECT count(*) FROM sqlite_schema) AS objects, \
                (SELECT count(*) FROM sqlite_schema \
                  WHERE type = 'table' AND name = '__diesel_schema_migrations') AS ours, \
                (SELECT coalesce(group_concat(name, ', '), '') FROM \
                  (SELECT name FROM sqlite_schema WHERE type = 'table' \
                    AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 5)) AS names",
    )
    .get_result::<Header>(conn)
    .map_err(Failure::Db)?;
    let foreign = |what: String| {
        Err(Failure::Store(StoreError::Migration(format!(
            "the file is an SQLite database that queuectl did not create ({what}); queuectl \
             leaves it untouched: use another file"
        ))))
    };
    match header.application_id {
        APPLICATION_ID => return Ok(Owner::Ours),
        0 => {}
        other => return foreign(format!("its application id is {other:#010x}")),
    }
    // Diesel's bookkeeping table alone (an interrupted first open) holds nothing of anyone's.
    if header.objects == 0 || (header.objects == 1 && header.ours == 1) {
        return Ok(Owner::Empty);
    }
    if header.ours == 1 {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let found = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM __diesel_schema_migrations WHERE version = '{FIRST_VERSION}'"
        ))
        .get_result::<Found>(conn)
        .map_err(Failure::Db)?;
        if found.n == 1 {
            return Ok(Owner::OursUnstamped);
        }
    }
    foreign(format!("it has tables: {}", header.names))
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
            "live_output",
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

    /// A file from before each attempt kept its output: the last attempt's output (the
    /// only one kept then) moves to the job's last history entry, empty streams as `NULL`.
    #[test]
    fn output_of_the_last_attempt_survives_the_upgrade_to_output_per_attempt() {
        let (_dir, mut conn) = fresh();
        while conn
            .pending_migrations(MIGRATIONS)
            .expect("pending")
            .first()
            .is_some_and(|m| !m.name().to_string().starts_with("2026-12-07-040000"))
        {
            conn.run_next_migration(MIGRATIONS)
                .expect("older migration");
        }
        diesel::sql_query(
            "INSERT INTO jobs (seq, id, command, kind, state, attempts, max_retries, priority, \
             queue, interrupts, created_at, updated_at, run_at) VALUES \
             (1, 'a', 'x', 'shell', 'completed', 2, 3, 0, 'default', 0, 1, 1, 1), \
             (2, 'b', 'x', 'shell', 'dead', 1, 1, 0, 'default', 0, 1, 1, 1)",
        )
        .execute(&mut conn)
        .expect("old jobs");
        diesel::sql_query(
            "INSERT INTO job_attempts (seq, job_seq, attempt, started_at, finished_at) VALUES \
             (1, 1, 1, 1, 1), (2, 2, 1, 1, 1), (3, 1, 2, 1, 1)",
        )
        .execute(&mut conn)
        .expect("old history");
        diesel::sql_query(
            "INSERT INTO job_output (job_seq, stdout, stderr) VALUES (1, 'second run', ''), \
             (2, '', 'boom')",
        )
        .execute(&mut conn)
        .expect("old output");
        run_pending(&mut conn).expect("upgrade");

        #[derive(QueryableByName, Debug, PartialEq)]
        struct Attempt {
            #[diesel(sql_type = BigInt)]
            seq: i64,
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            stdout: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            stderr: Option<String>,
        }
        let rows = diesel::sql_query("SELECT seq, stdout, stderr FROM job_attempts ORDER BY seq")
            .load::<Attempt>(&mut conn)
            .expect("history");
        let got: Vec<(i64, Option<&str>, Option<&str>)> = rows
            .iter()
            .map(|r| (r.seq, r.stdout.as_deref(), r.stderr.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (1, None, None),
                (2, None, Some("boom")),
                (3, Some("second run"), None)
            ]
        );
        assert!(!objects(&mut conn).iter().any(|n| n == "job_output"));
        queuectl_store_sql::sqlite::check_schema(&mut conn).expect("the shared schema");
    }

    #[test]
    fn the_schema_matches_what_diesel_expects() {
        let (_dir, mut conn) = fresh();
        run_pending(&mut conn).expect("up");
        queuectl_store_sql::sqlite::check_schema(&mut conn).expect("the shared schema");
    }

    #[test]
    fn a_store_of_an_older_queuectl_without_the_stamp_is_still_ours() {
        let (_dir, mut conn) = fresh();
        run_pending(&mut conn).expect("up");
        diesel::sql_query("PRAGMA application_id = 0")
            .execute(&mut conn)
            .expect("unstamp");
        assert_eq!(identify(&mut conn).expect("ours"), Owner::OursUnstamped);
        run_pending(&mut conn).expect("opens");
    }

    #[test]
    fn a_new_store_is_stamped_and_a_foreign_one_is_refused_untouched() {
        let (_dir, mut conn) = fresh();
        run_pending(&mut conn).expect("up");
        assert_eq!(identify(&mut conn).expect("ours"), Owner::Ours);

        let (_dir, mut other) = fresh();
        diesel::sql_query("CREATE TABLE notes (body TEXT)")
            .execute(&mut other)
            .expect("foreign table");
        let err = run_pending(&mut other).expect_err("foreign");
        assert!(format!("{err:?}").contains("notes"), "{err:?}");
        assert_eq!(objects(&mut other), vec!["notes".to_owned()]);
    }
}
