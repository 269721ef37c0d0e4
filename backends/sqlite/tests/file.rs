//! What only a file-backed, multi-connection store must do, beyond the shared suite:
//! opening (idempotent, racing, clear errors), several handles and processes on one file,
//! the change marker across handles, and waiting out a locked file.

use queuectl_store::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use queuectl_store::{
    ClaimRequest, Execution, JobId, JobState, NewJob, StoreError, Timestamp, Transition,
    TransitionKind,
};
use queuectl_store_sqlite::{SqliteOptions, SqliteStore};

const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.db");
    (dir, path)
}

fn job(id: &str) -> NewJob {
    let mut job = NewJob::shell(format!("echo {id}"), T0);
    job.id = JobId::new(id);
    job
}

fn request(worker: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        limit,
        worker_id: worker.to_owned(),
        now: T0,
        lease_until: T0.add(Duration::from_secs(30)),
        queues: Vec::new(),
    }
}

fn completed(job: &queuectl_store::Job) -> Transition {
    Transition {
        id: job.id.clone(),
        token: job.claim_token.expect("claimed job has a token"),
        kind: TransitionKind::Completed {
            execution: Execution::default(),
        },
    }
}

/// Claims until the queue is empty, retrying transient errors as the scheduler does, and
/// completes each claimed job; returns the ids claimed.
fn drain(store: &SqliteStore, worker: &str) -> Vec<JobId> {
    let mut mine = Vec::new();
    loop {
        let batch = match store.claim(&request(worker, 3)) {
            Ok(batch) => batch,
            Err(e) if e.is_transient() => continue,
            Err(e) => panic!("claim failed: {e}"),
        };
        if batch.is_empty() {
            return mine;
        }
        let transitions: Vec<Transition> = batch.iter().map(completed).collect();
        let applied = store.finish(&transitions, T0).expect("finish");
        assert!(applied.iter().all(|g| g.is_applied()), "{applied:?}");
        mine.extend(batch.into_iter().map(|j| j.id));
    }
}

fn assert_each_claimed_once(claimed: impl IntoIterator<Item = JobId>, expected: usize) {
    let mut seen = HashSet::new();
    for id in claimed {
        assert!(seen.insert(id.clone()), "{id} was claimed twice");
    }
    assert_eq!(seen.len(), expected, "every job is claimed");
}

#[test]
fn opening_twice_is_idempotent_and_keeps_the_data() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("first open");
    store.enqueue(&job("kept"), T0).expect("enqueue");
    drop(store);

    let store = SqliteStore::open(&path).expect("second open");
    let again = SqliteStore::open(&path).expect("third open, concurrently with the second");
    assert_eq!(
        store.get(&JobId::new("kept")).expect("get").state,
        JobState::Pending
    );
    assert_eq!(again.counts().expect("counts").total(), 1);
}

#[test]
fn a_missing_directory_is_unavailable_with_a_message_naming_it() {
    let (dir, _) = temp_db();
    let path = dir.path().join("no-such-dir").join("queue.db");
    let err = SqliteStore::open(&path).expect_err("cannot open");
    let StoreError::Unavailable { message, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("cannot open database at"), "{message}");
    assert!(message.contains("no-such-dir"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(!path.exists());
}

#[test]
fn a_file_that_is_not_a_database_is_unavailable_and_left_alone() {
    let (_dir, path) = temp_db();
    let text = "this is not a database, it is a shopping list\n".repeat(100);
    std::fs::write(&path, &text).expect("write");
    let err = SqliteStore::open(&path).expect_err("cannot open");
    let StoreError::Unavailable { message, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("not a SQLite database"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
}

#[test]
fn a_directory_path_is_unavailable() {
    let (dir, _) = temp_db();
    let err = SqliteStore::open(dir.path()).expect_err("cannot open");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
}

/// Several processes running their first command on a fresh file at once: each opener
/// may find no schema, but exactly one creates it and the others wait and see it.
#[test]
fn racing_first_opens_of_a_fresh_file_all_succeed() {
    const OPENERS: usize = 6;
    let (_dir, path) = temp_db();
    let barrier = Barrier::new(OPENERS);
    let stores: Vec<SqliteStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..OPENERS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    SqliteStore::open(&path).expect("open")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("opener panicked"))
            .collect()
    });
    for (i, store) in stores.iter().enumerate() {
        store.enqueue(&job(&format!("j{i}")), T0).expect("enqueue");
    }
    assert_eq!(
        stores[0].counts().expect("counts").pending,
        u64::try_from(OPENERS).expect("small")
    );
}

#[test]
fn two_handles_on_one_file_see_each_others_writes() {
    let (_dir, path) = temp_db();
    let a = SqliteStore::open(&path).expect("open a");
    let b = SqliteStore::open(&path).expect("open b");

    a.enqueue(&job("from-a"), T0).expect("enqueue");
    let claimed = b.claim(&request("b", 10)).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id.as_str(), "from-a");

    b.finish(&[completed(&claimed[0])], T0).expect("finish");
    assert_eq!(
        a.get(&JobId::new("from-a")).expect("get").state,
        JobState::Completed
    );
    b.set_setting("max-retries", "5", T0).expect("set");
    assert_eq!(a.setting("max-retries").expect("get"), Some("5".to_owned()));
}

#[test]
fn the_change_marker_moves_when_another_handle_commits() {
    let (_dir, path) = temp_db();
    let watcher = SqliteStore::open(&path).expect("open watcher");
    let writer = SqliteStore::open(&path).expect("open writer");

    let m0 = watcher.change_marker().expect("marker");
    assert_eq!(
        watcher.change_marker().expect("marker"),
        m0,
        "no write, no change"
    );

    writer.enqueue(&job("elsewhere"), T0).expect("enqueue");
    let m1 = watcher.change_marker().expect("marker");
    assert_ne!(m1, m0, "a commit by another handle changes the marker");

    // Its own pool's commits count too: the marker's connection never writes.
    watcher.enqueue(&job("here"), T0).expect("enqueue");
    let m2 = watcher.change_marker().expect("marker");
    assert_ne!(m2, m1, "a commit by the same handle changes the marker");

    // Reads and claims that find nothing write nothing: idle workers polling each other's
    // markers must not wake each other up forever.
    watcher.counts().expect("counts");
    let mut nothing_due = request("idle", 5);
    nothing_due.queues = vec!["no-such-queue".to_owned()];
    assert!(writer.claim(&nothing_due).expect("claim").is_empty());
    assert_eq!(watcher.change_marker().expect("marker"), m2);
}

/// Four threads, each with its own store handle (its own pool and connections, as
/// separate processes would have), claiming from one file at once.
#[test]
fn four_handles_claiming_concurrently_never_get_the_same_job() {
    const JOBS: usize = 200;
    let (_dir, path) = temp_db();
    let setup = SqliteStore::open(&path).expect("open");
    let jobs: Vec<NewJob> = (0..JOBS).map(|i| job(&format!("job-{i:03}"))).collect();
    setup.enqueue_many(&jobs, T0).expect("enqueue_many");

    let barrier = Barrier::new(4);
    let claimed: Vec<Vec<JobId>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (path, barrier) = (&path, &barrier);
                scope.spawn(move || {
                    let store = SqliteStore::open(path).expect("open");
                    barrier.wait();
                    drain(&store, &format!("w{t}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("claimer panicked"))
            .collect()
    });
    assert_each_claimed_once(claimed.into_iter().flatten(), JOBS);
    let counts = setup.counts().expect("counts");
    assert_eq!(counts.completed, u64::try_from(JOBS).expect("small"));
}

/// Set by [`processes_claiming_one_file_never_get_the_same_job`] for its children.
const CHILD_DB: &str = "QUEUECTL_SQLITE_TEST_CHILD_DB";

/// The child side of the multi-process test: a no-op unless started by it.
#[test]
fn child_process_claimer() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).expect("child open");
    let worker = format!("pid-{}", std::process::id());
    for id in drain(&store, &worker) {
        println!("claimed {id}");
    }
}

/// Separate OS processes share the file only through SQLite's file locks: the claim must
/// be exclusive there too (`Capabilities::multi_process`).
#[test]
fn processes_claiming_one_file_never_get_the_same_job() {
    const JOBS: usize = 150;
    const CHILDREN: usize = 3;
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    assert!(store.capabilities().multi_process);
    let jobs: Vec<NewJob> = (0..JOBS).map(|i| job(&format!("job-{i:03}"))).collect();
    store.enqueue_many(&jobs, T0).expect("enqueue_many");

    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_process_claimer", "--nocapture"])
                .env(CHILD_DB, &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let mut claimed = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("child ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        claimed.extend(
            stdout
                .lines()
                .filter_map(|l| l.strip_prefix("claimed "))
                .map(JobId::from),
        );
    }
    assert_each_claimed_once(claimed, JOBS);
    assert_eq!(
        store.counts().expect("counts").completed,
        u64::try_from(JOBS).expect("small")
    );
}

/// Another process holding the write lock for a while is waited out, not reported.
#[test]
fn a_write_lock_held_elsewhere_is_waited_out() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions::default().busy_timeout(Duration::from_millis(20)),
    )
    .expect("open");
    let mut holder =
        SqliteConnection::establish(path.to_str().expect("utf-8")).expect("raw connection");
    holder
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            locked_tx.send(()).expect("signal");
            // Far longer than one busy_timeout: only the retry loop gets it through.
            store.enqueue(&job("patient"), T0)
        });
        locked_rx.recv().expect("writer started");
        // Keep the lock until the writer has had to retry at least a few times; this
        // sleep only lengthens the contention, the assertion does not depend on it.
        std::thread::sleep(Duration::from_millis(200));
        holder.batch_execute("COMMIT").expect("release");
        writer
            .join()
            .expect("writer panicked")
            .expect("enqueue waited");
    });
    assert_eq!(store.get(&JobId::new("patient")).expect("get").attempts, 0);
}

/// After the bounded wait, a busy file is `Busy` in the store's words, never SQLite's.
#[test]
fn a_write_lock_held_past_the_bounded_wait_is_busy_without_raw_messages() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions::default()
            .busy_timeout(Duration::from_millis(10))
            .max_busy_wait(Duration::from_millis(50)),
    )
    .expect("open");
    let mut holder =
        SqliteConnection::establish(path.to_str().expect("utf-8")).expect("raw connection");
    holder
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let err = store.enqueue(&job("impatient"), T0).expect_err("busy");
    assert!(err.is_transient(), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("the store is busy"), "{text}");
    assert!(!text.contains("database is locked"), "{text}");

    // Reads are not blocked by a writer in WAL mode.
    assert_eq!(store.counts().expect("counts").total(), 0);
    holder.batch_execute("ROLLBACK").expect("release");
    store
        .enqueue(&job("impatient"), T0)
        .expect("enqueue after release");
}

#[test]
fn large_batches_are_split_below_the_bound_variable_limit() {
    const JOBS: usize = 5_000;
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    let jobs: Vec<NewJob> = (0..JOBS).map(|i| job(&format!("bulk-{i:05}"))).collect();
    store.enqueue_many(&jobs, T0).expect("enqueue_many");
    let listed = store
        .list(&queuectl_store::JobFilter::default())
        .expect("list");
    assert_eq!(listed.len(), JOBS);
    assert!(
        listed.iter().zip(&jobs).all(|(a, b)| a.id == b.id),
        "order kept"
    );

    // A conflict in the last chunk rolls back the earlier chunks too.
    let mut again: Vec<NewJob> = (0..JOBS).map(|i| job(&format!("more-{i:05}"))).collect();
    again.push(job("bulk-00000"));
    let err = store.enqueue_many(&again, T0).expect_err("conflict");
    assert!(
        matches!(&err, StoreError::Conflict(id) if id.as_str() == "bulk-00000"),
        "{err:?}"
    );
    assert_eq!(
        store.counts().expect("counts").total(),
        u64::try_from(JOBS).expect("small")
    );
}

#[test]
fn a_conflict_inside_a_multi_row_chunk_names_the_first_existing_id_and_stores_nothing() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    store
        .enqueue_many(&[job("old-a"), job("old-b")], T0)
        .expect("enqueue the old jobs");

    // Both old ids fall in the first chunk of rows; "old-b" comes first in the batch
    // though it was stored after "old-a".
    let mut batch: Vec<NewJob> = (0..300).map(|i| job(&format!("new-{i:03}"))).collect();
    batch[10] = job("old-b");
    batch[20] = job("old-a");
    let err = store.enqueue_many(&batch, T0).expect_err("conflict");
    assert!(
        matches!(&err, StoreError::Conflict(id) if id.as_str() == "old-b"),
        "{err:?}"
    );
    assert_eq!(store.counts().expect("counts").total(), 2, "nothing stored");

    // A conflict in a later whole chunk rolls back the chunks before it.
    let mut batch: Vec<NewJob> = (0..300).map(|i| job(&format!("new-{i:03}"))).collect();
    batch[200] = job("old-a");
    let err = store.enqueue_many(&batch, T0).expect_err("conflict");
    assert!(
        matches!(&err, StoreError::Conflict(id) if id.as_str() == "old-a"),
        "{err:?}"
    );
    assert_eq!(store.counts().expect("counts").total(), 2, "nothing stored");

    // Without a conflict the whole batch lands, in order.
    let batch: Vec<NewJob> = (0..300).map(|i| job(&format!("new-{i:03}"))).collect();
    store.enqueue_many(&batch, T0).expect("enqueue");
    let listed = store
        .list(&queuectl_store::JobFilter::default())
        .expect("list");
    assert_eq!(listed.len(), 302);
    assert!(
        listed[2..].iter().zip(&batch).all(|(a, b)| a.id == b.id),
        "order kept"
    );
}

/// Commands and output may hold secrets: a new store's files are the owner's alone.
#[cfg(unix)]
#[test]
fn a_new_store_and_its_wal_and_shm_files_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    store.enqueue(&job("secret"), T0).expect("enqueue");
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("queue.db{suffix}"));
        let mode = std::fs::metadata(&file)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} is {:o}",
            file.display(),
            mode & 0o777
        );
    }

    // An existing file keeps the mode its owner gave it.
    let shared = dir.path().join("shared.db");
    std::fs::write(&shared, b"").expect("create");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    SqliteStore::open(&shared).expect("open shared");
    let mode = std::fs::metadata(&shared)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
}
