//! The shared conformance suite against a fresh SQLite file per case.

use queuectl_store_conformance::TestStore;
use queuectl_store_sqlite::SqliteStore;

fn make() -> TestStore<SqliteStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("queue.db")).expect("open store");
    TestStore::with_guard(store, dir)
}

queuectl_store_conformance::store_conformance!(make);
