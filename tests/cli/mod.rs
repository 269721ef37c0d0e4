//! The real `queuectl` binary against docs/CLI.md, each test in its own temp dir (never
//! the cwd's database). Spawned workers are killed on drop; waits poll with deadlines.
//!
//! Tests of the contract (not of SQLite file handling) are written once with
//! [`store_test!`] and run against a SQLite file and against PostgreSQL (a fresh schema per
//! test, selected through the URL as a user would), so the CLI is held to the same contract
//! on both stores.

/// Defines a CLI test that runs once per store, as `NAME::sqlite` and `NAME::postgres`.
/// The body gets an [`Env`] whose `--db` names that store; the PostgreSQL case prints why
/// and passes when `QUEUECTL_TEST_POSTGRES_URL` is unset (never in CI).
macro_rules! store_test {
    ($(#[$attr:meta])* fn $name:ident($env:ident) $body:block) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($env: $crate::cli::Env) $body

            #[test]
            fn sqlite() {
                case($crate::cli::Env::new());
            }

            #[test]
            fn postgres() {
                if let Some(env) = $crate::cli::Env::postgres() {
                    case(env);
                }
            }
        }
    };
}

mod admin;
mod backup;
mod bench;
mod browser;
mod cancel;
mod chaos;
mod cron;
mod dashboard;
mod deps;
mod enqueue;
mod full_disk;
mod inspect;
mod job_options;
mod live;
mod migrate;
mod multihost;
mod operate;
mod queues;
// Needs the PostgreSQL store (its schema checks go through the store API).
#[cfg(feature = "postgres")]
mod postgres;
mod stall;
mod storage;
mod table;
mod top;
mod usage;
mod version;
mod worker;
mod worker_log;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::pg::PgSchema;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_queuectl");

/// Env vars that would leak the developer's setup into a test.
const SCRUBBED_ENV: [&str; 4] = [
    "QUEUECTL_DB",
    "QUEUECTL_DB_PATH",
    "QUEUECTL_HOST_ID",
    "RUST_LOG",
];

/// A temp dir for one test, and the queue its commands use: a SQLite file in the dir, or
/// a PostgreSQL schema of its own.
pub(crate) struct Env {
    dir: TempDir,
    db: PathBuf,
    /// The `--db` value.
    target: OsString,
    /// The schema, for a PostgreSQL env (dropped with the env).
    pg: Option<PgSchema>,
    spawned: AtomicUsize,
}

/// A finished run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing everything when it differs.
    #[track_caller]
    pub(crate) fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(self) -> String {
        self.code(0).stdout
    }

    /// Asserts success and parses stdout as exactly one JSON value.
    #[track_caller]
    pub(crate) fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("stdout is not pure JSON ({e}):\n{out}"))
    }
}

impl Env {
    /// A SQLite queue (`queue.db` in a fresh temp dir).
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("queue.db");
        Env {
            target: db.clone().into_os_string(),
            dir,
            db,
            pg: None,
            spawned: AtomicUsize::new(0),
        }
    }

    /// A PostgreSQL queue in a fresh schema, named by a `postgres://…?options=…` URL; `None`
    /// (with a printed reason) when `QUEUECTL_TEST_POSTGRES_URL` is unset.
    pub(crate) fn postgres() -> Option<Self> {
        let schema = PgSchema::new()?;
        schema.create();
        let mut env = Env::new();
        env.target = OsString::from(schema.cli_url());
        env.pg = Some(schema);
        Some(env)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file of a SQLite env (a PostgreSQL env never creates it).
    pub(crate) fn db(&self) -> &Path {
        &self.db
    }

    /// The `--db` / `QUEUECTL_DB` value naming this env's queue.
    pub(crate) fn target(&self) -> &OsStr {
        &self.target
    }

    /// The schema of a PostgreSQL env.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg(&self) -> Option<&PgSchema> {
        self.pg.as_ref()
    }

    /// Runs one SQL statement on this env's store, behind the CLI's back (SQLite file or
    /// PostgreSQL schema), e.g. to make it look migrated by another build.
    pub(crate) fn execute_sql(&self, sql: &str) {
        if let Some(pg) = &self.pg {
            pg.execute(sql);
            return;
        }
        use diesel::prelude::*;
        let mut conn = diesel::SqliteConnection::establish(self.db.to_str().expect("utf-8 path"))
            .expect("open the SQLite store");
        diesel::sql_query("PRAGMA busy_timeout = 10000")
            .execute(&mut conn)
            .expect("busy_timeout");
        diesel::sql_query(sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The binary with a clean environment, cwd = the temp dir, no `--db` yet.
    pub(crate) fn bare(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// The binary pointed at this env's database.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--db").arg(&self.target).args(args);
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(self.cmd(args))
    }

    pub(crate) fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_with_stdin(self.cmd(args), stdin)
    }

    /// Enqueues one job from JSON; returns its id.
    pub(crate) fn enqueue(&self, json: &str) -> String {
        self.run(&["enqueue", json]).ok().trim().to_owned()
    }

    /// `show ID` as JSON.
    pub(crate) fn show(&self, id: &str) -> Value {
        self.run(&["show", id]).json()
    }

    /// The job's state.
    pub(crate) fn state(&self, id: &str) -> String {
        self.show(id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// `list --json`.
    pub(crate) fn list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["list", "--json"];
        args.extend_from_slice(extra);
        match self.run(&args).json() {
            Value::Array(items) => items,
            other => panic!("list --json is not an array: {other}"),
        }
    }

    /// `status --json`.
    pub(crate) fn status(&self) -> Value {
        self.run(&["status", "--json"]).json()
    }

    /// Starts `worker start ARGS` in the background; killed when the guard drops.
    pub(crate) fn spawn_worker(&self, args: &[&str]) -> Proc {
        let mut all = vec!["worker", "start"];
        all.extend_from_slice(args);
        self.spawn(self.cmd(&all))
    }

    /// Starts a command in the background with its output in files (a pipe nobody reads
    /// could fill up and block it); killed when the guard drops.
    pub(crate) fn spawn(&self, mut cmd: Command) -> Proc {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let out = self.dir.path().join(format!("proc-{n}.stdout"));
        let err = self.dir.path().join(format!("proc-{n}.stderr"));
        let child = cmd
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn queuectl");
        Proc {
            child: Some(child),
            out,
            err,
        }
    }

    /// Waits until `status` reports `slots` live worker slots.
    pub(crate) fn wait_for_workers(&self, slots: u64) {
        wait_until(Duration::from_secs(20), "workers to register", || {
            self.status()["workers"].as_u64() == Some(slots)
        });
    }
}

pub(crate) fn run(mut cmd: Command) -> Run {
    Run::from_output(cmd.output().expect("run queuectl"))
}

pub(crate) fn run_with_stdin(mut cmd: Command, stdin: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn queuectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    Run::from_output(child.wait_with_output().expect("wait queuectl"))
}

/// A spawned process that is killed (SIGKILL) and reaped on drop, so no test leaks one.
pub(crate) struct Proc {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("send signal");
    }

    /// What it wrote to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// What it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Whether it is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    /// Waits for the process to exit by itself; returns its exit code and output.
    #[track_caller]
    pub(crate) fn wait(mut self, timeout: Duration) -> Run {
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "process did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }

    /// SIGKILL now and reap.
    pub(crate) fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `cond` every 25 ms until it holds; panics naming `what` after `timeout`.
#[track_caller]
pub(crate) fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(25));
    }
}

/// A JSON string field.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// Columns a line takes in a terminal: 2 for CJK and emoji, 1 for the rest (enough here).
pub(crate) fn display_width(line: &str) -> usize {
    line.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1FAFF => 2,
            _ => 1,
        })
        .sum()
}
