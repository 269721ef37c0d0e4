//! Storage selection: `--db`, `$QUEUECTL_DB`, its alias `$QUEUECTL_DB_PATH`, the default
//! `./queuectl.db`, `sqlite://`, `memory:`, and `init`.

use super::{run, Env};

fn count(env: &Env, db: &str) -> usize {
    let mut cmd = env.bare();
    cmd.args(["--db", db, "list", "--json"]);
    run(cmd).json().as_array().map_or(0, Vec::len)
}

#[test]
fn default_is_queuectl_db_in_the_cwd() {
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.args(["enqueue", r#"{"command":"true"}"#]);
    run(cmd).ok();
    assert!(env.dir().join("queuectl.db").exists());
    assert_eq!(count(&env, "queuectl.db"), 1);
}

#[test]
fn env_var_alias_and_flag_precedence() {
    let env = Env::new();
    let enqueue_with = |vars: &[(&str, &str)], flag: Option<&str>| {
        let mut cmd = env.bare();
        for (k, v) in vars {
            cmd.env(k, v);
        }
        if let Some(db) = flag {
            cmd.args(["--db", db]);
        }
        cmd.args(["enqueue", r#"{"command":"true"}"#]);
        run(cmd).ok();
    };
    enqueue_with(&[("QUEUECTL_DB", "env.db")], None);
    enqueue_with(&[("QUEUECTL_DB_PATH", "alias.db")], None);
    // QUEUECTL_DB wins over the alias; --db wins over both.
    enqueue_with(
        &[("QUEUECTL_DB", "env.db"), ("QUEUECTL_DB_PATH", "alias.db")],
        None,
    );
    enqueue_with(
        &[("QUEUECTL_DB", "env.db"), ("QUEUECTL_DB_PATH", "alias.db")],
        Some("flag.db"),
    );
    assert_eq!(count(&env, "env.db"), 2);
    assert_eq!(count(&env, "alias.db"), 1);
    assert_eq!(count(&env, "flag.db"), 1);
    assert!(!env.dir().join("queuectl.db").exists());
}

#[test]
fn sqlite_urls_are_relative_to_the_cwd_unless_absolute() {
    let env = Env::new();
    std::fs::create_dir(env.dir().join("sub")).unwrap();
    let mut cmd = env.bare();
    cmd.args([
        "--db",
        "sqlite://sub/q.db",
        "enqueue",
        r#"{"command":"true"}"#,
    ]);
    run(cmd).ok();
    assert!(env.dir().join("sub/q.db").exists());
    assert_eq!(count(&env, "sub/q.db"), 1);

    let abs = env.dir().join("abs.db");
    let url = format!("sqlite://{}", abs.display());
    let mut cmd = env.bare();
    cmd.current_dir(env.dir().join("sub"))
        .args(["--db", &url, "enqueue", r#"{"command":"true"}"#]);
    run(cmd).ok();
    assert_eq!(count(&env, abs.to_str().unwrap()), 1);
}

#[test]
fn init_creates_the_store_and_is_idempotent() {
    let env = Env::new();
    env.run(&["init"]).ok();
    assert!(env.db().exists());
    env.enqueue(r#"{"id":"kept","command":"true"}"#);
    env.run(&["init"]).ok();
    assert_eq!(env.state("kept"), "pending");
}

#[test]
fn memory_store_works_within_one_process() {
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.args(["--db", "memory:", "enqueue", r#"{"command":"true"}"#]);
    run(cmd).ok();
    let mut cmd = env.bare();
    cmd.args(["--db", "memory:", "status", "--json"]);
    assert_eq!(run(cmd).json()["pending"], 0, "memory: is per process");
    assert!(
        std::fs::read_dir(env.dir()).unwrap().next().is_none(),
        "no file created"
    );
}

#[test]
fn unknown_schemes_are_usage_errors_and_unreachable_stores_exit_1() {
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.args(["--db", "mysql://localhost/q", "status"]);
    let r = run(cmd).code(2);
    assert!(r.stderr.contains("mysql"), "{}", r.stderr);

    let missing_dir = env.dir().join("no/such/dir/q.db");
    let mut cmd = env.bare();
    cmd.args(["--db", missing_dir.to_str().unwrap(), "status"]);
    let r = run(cmd).code(1);
    assert!(r.stderr.starts_with("queuectl: error: "), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);

    let mut cmd = env.bare();
    cmd.args(["--db", "postgres://nobody@127.0.0.1:1/none", "status"]);
    let r = run(cmd).code(1);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn mistyped_targets_exit_2_with_a_hint_and_create_nothing() {
    let env = Env::new();
    for (target, hint) in [
        ("memory", "memory:"),
        ("sqlite:relative.db", "sqlite://relative.db"),
        (" q.db", "spaces"),
        ("q.db ", "spaces"),
        ("file:q.db?mode=ro", "file:"),
        ("host=localhost user=me password=hunter2", "postgres://"),
    ] {
        for command in [&["status"][..], &["enqueue", r#"{"command":"true"}"#][..]] {
            let mut cmd = env.bare();
            cmd.arg("--db").arg(target).args(command);
            let r = run(cmd).code(2);
            assert!(r.stderr.contains(hint), "{target:?}: {}", r.stderr);
            assert!(!r.stderr.contains("hunter2"), "{target:?}: {}", r.stderr);
        }
    }
    let left: Vec<_> = std::fs::read_dir(env.dir()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
    // What looks meant still works: ./memory is a file named memory.
    let mut cmd = env.bare();
    cmd.args(["--db", "./memory", "enqueue", r#"{"command":"true"}"#]);
    run(cmd).ok();
    assert!(env.dir().join("memory").exists());
}

#[test]
fn read_only_commands_say_when_they_had_to_create_the_store() {
    let env = Env::new();
    let read_only: [&[&str]; 7] = [
        &["status"],
        &["list"],
        &["show", "nope"],
        &["logs", "nope"],
        &["dlq", "list"],
        &["config", "get", "max-retries"],
        &["config", "list"],
    ];
    for (i, command) in read_only.iter().enumerate() {
        let db = format!("fresh-{i}.db");
        let mut cmd = env.bare();
        cmd.args(["--db", &db]).args(*command);
        let first = run(cmd);
        let notice = format!("created a new empty queue at {db}");
        assert!(
            first.stderr.contains(&notice),
            "{command:?}: {}",
            first.stderr
        );
        assert!(env.dir().join(&db).exists());
        let mut cmd = env.bare();
        cmd.args(["--db", &db]).args(*command);
        let again = run(cmd);
        assert!(
            !again.stderr.contains("created a new"),
            "{command:?}: {}",
            again.stderr
        );
    }
    // Commands that write create the store as their job, silently.
    let mut cmd = env.bare();
    cmd.args(["--db", "w.db", "enqueue", r#"{"command":"true"}"#]);
    let r = run(cmd);
    assert!(!r.stderr.contains("created a new"), "{}", r.stderr);
}

#[test]
fn store_files_are_the_owners_alone_and_a_readable_one_gets_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new();
    env.enqueue(r#"{"command":"true"}"#);
    // The -wal and -shm files are gone once the last connection closed; the store crate's
    // own test checks them while open.
    let meta = std::fs::metadata(env.db()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let r = env.run(&["status"]);
    assert!(
        !r.stderr.contains("readable by other users"),
        "{}",
        r.stderr
    );
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = env.run(&["status"]).code(0);
    assert!(r.stderr.contains("readable by other users"), "{}", r.stderr);
}

/// As root, a store file handed to another user (`nobody`) is refused by `worker start`
/// unless its owner is trusted; as anyone else the test cannot stage it and says so.
#[test]
fn a_worker_refuses_a_store_owned_by_another_user_unless_told_to_trust_it() {
    use std::os::unix::fs::MetadataExt as _;
    let env = Env::new();
    let marker = env.dir().join("ran");
    env.enqueue(&format!(r#"{{"command":"touch {}"}}"#, marker.display()));
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("skipped: only root can give the store file to another user");
        return;
    }
    for f in std::fs::read_dir(env.dir()).unwrap() {
        let path = f.unwrap().path();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    }
    assert_eq!(std::fs::metadata(env.db()).unwrap().uid(), 65534);
    let r = env.run(&["worker", "start", "--drain"]).code(1);
    assert!(r.stderr.contains("owned by another user"), "{}", r.stderr);
    assert!(r.stderr.contains("--trust-store-owner"), "{}", r.stderr);
    assert!(!marker.exists(), "a job ran");

    let mut cmd = env.cmd(&["worker", "start", "--drain"]);
    cmd.env("QUEUECTL_TRUST_STORE_OWNER", "0");
    run(cmd).code(1);

    env.run(&["worker", "start", "--drain", "--trust-store-owner"])
        .ok();
    assert!(marker.exists(), "the trusted store's job ran");

    let id = env.enqueue(r#"{"command":"true"}"#);
    let mut cmd = env.cmd(&["worker", "start", "--drain"]);
    cmd.env("QUEUECTL_TRUST_STORE_OWNER", "1");
    run(cmd).ok();
    assert_eq!(env.state(&id), "completed");
}

#[test]
fn a_password_in_a_postgres_url_never_reaches_stderr() {
    let env = Env::new();
    for url in [
        "postgres://nobody:hunter2@127.0.0.1:1/none",
        "postgres://nobody@127.0.0.1:1/none?password=hunter2",
        "postgresql://127.0.0.1:1/none?sslmode=disable&password=hunter2",
    ] {
        let mut cmd = env.bare();
        cmd.args(["--db", url, "status"]);
        let r = run(cmd).code(1);
        assert!(!r.stderr.contains("hunter2"), "{url}: {}", r.stderr);
        assert!(
            r.stderr.contains("127.0.0.1"),
            "{url}: says where: {}",
            r.stderr
        );
    }
}

/// Another program's SQLite file, with or without tables named like ours, or stamped with
/// another application id, is refused (exit 1, saying so) and left byte for byte as it was;
/// a store queuectl creates carries queuectl's application id in its header.
#[test]
fn another_programs_sqlite_file_is_refused_and_left_untouched() {
    let env = Env::new();
    let cases: [(&str, &str); 3] = [
        (
            "notes.db",
            "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');",
        ),
        (
            "clash.db",
            "CREATE TABLE jobs (id TEXT); INSERT INTO jobs VALUES ('theirs');",
        ),
        ("stamped.db", "PRAGMA application_id = 1234;"),
    ];
    for (name, sql) in cases {
        let path = env.dir().join(name);
        rusqlite::Connection::open(&path)
            .and_then(|c| c.execute_batch(sql))
            .expect("a foreign database");
        let before = std::fs::read(&path).expect("read");
        for args in [
            &["enqueue", r#"{"command":"true"}"#][..],
            &["status"][..],
            &["init"][..],
        ] {
            let mut cmd = env.bare();
            cmd.arg("--db").arg(&path).args(args);
            let out = run(cmd).code(1);
            assert!(
                out.stderr.contains("queuectl did not create"),
                "{name} {args:?}: {}",
                out.stderr
            );
        }
        assert!(
            std::fs::read(&path).expect("read") == before,
            "{name} changed"
        );
        for suffix in ["-wal", "-shm"] {
            let side = env.dir().join(format!("{name}{suffix}"));
            assert!(
                !side.exists() || std::fs::metadata(&side).map_or(0, |m| m.len()) == 0,
                "{name}{suffix} was written"
            );
        }
    }

    env.run(&["init"]).ok();
    let id: i64 = rusqlite::Connection::open(env.db())
        .and_then(|c| c.query_row("PRAGMA application_id", [], |r| r.get(0)))
        .expect("application_id");
    assert_eq!(id, 0x7163_746c, "a new store is stamped as queuectl's");
}
