//! PostgreSQL targets: the schema a `postgres://` URL selects, and how a bad one fails.

use super::{run, Env};

/// The CLI tests select their schema through libpq's `options=-csearch_path%3D…`; this
/// checks that every command really reads and writes that schema and nothing else.
#[test]
fn a_search_path_in_the_url_selects_the_schema_for_every_command() {
    let (Some(a), Some(b)) = (Env::postgres(), Env::postgres()) else {
        return;
    };
    let (sa, sb) = (a.pg().unwrap(), b.pg().unwrap());
    assert_eq!(sa.count_rows("jobs"), None, "a fresh schema has no tables");
    a.enqueue(r#"{"id":"in-a","command":"true"}"#);
    a.run(&["config", "set", "max-retries", "7"]).ok();
    assert_eq!(sa.count_rows("jobs"), Some(1));
    assert_eq!(sa.count_rows("settings"), Some(1));
    assert_eq!(sb.count_rows("jobs"), None, "b was never touched");

    b.enqueue(r#"{"id":"in-b","command":"true"}"#);
    let ids = |env: &Env| -> Vec<String> {
        env.list(&[])
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&a), ["in-a"]);
    assert_eq!(ids(&b), ["in-b"]);
    assert_eq!(b.run(&["config", "get", "max-retries"]).ok(), "3\n");
    // The same schema opened by the store API (SET search_path) sees the CLI's job.
    let store = sa.store();
    let listed = queuectl_store::Jobs::list(&store, &Default::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id.as_str(), "in-a");
    assert_eq!(store.schema(), sa.name);
}

#[test]
fn a_search_path_naming_no_schema_exits_1_saying_so() {
    let Some(env) = Env::postgres() else {
        return;
    };
    let url = env
        .target()
        .to_str()
        .unwrap()
        .replace("search_path%3Dqt_", "search_path%3Dmissing_");
    let mut cmd = env.bare();
    cmd.args(["--db", &url, "status"]);
    let r = run(cmd).code(1);
    assert!(r.stderr.starts_with("queuectl: error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("names no existing schema"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}
