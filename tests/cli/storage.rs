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
