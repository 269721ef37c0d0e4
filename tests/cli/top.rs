//! `queuectl top` (docs/CLI.md): the live terminal view, through the real binary.
//!
//! - Without a terminal it refuses (exit 1, saying why); `--once` prints one frame as text.
//! - In a real terminal (a tmux session of its own, detached, with a fixed size) it shows
//!   the counts, follows a change in the store, and quits on `q` and on Ctrl-C with exit 0,
//!   leaving the terminal as it found it (main screen back, canonical mode on).
//!
//! The tmux tests need `tmux` on PATH: without it they print why and pass, unless
//! `QUEUECTL_REQUIRE_TMUX=1` (set by `.ci/run`, which installs tmux) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{display_width, Env, BIN};

store_test!(
    fn top_without_a_terminal_exits_1_saying_so(env) {
        let run = env.run(&["top"]).code(1);
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(run.stderr.contains("needs a terminal"), "{}", run.stderr);
        assert!(run.stderr.contains("--once"), "{}", run.stderr);
    }
);

store_test!(
    fn top_once_prints_one_frame_with_wide_characters_aligned(env) {
        env.enqueue(r#"{"id":"📊-月次","command":"true","queue":"レポート"}"#);
        env.enqueue(r#"{"command":"true","queue":"mail"}"#);
        env.enqueue(r#"{"command":"true","queue":"mail"}"#);
        let out = env.run(&["top", "--once", "--width", "100"]).ok();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("queuectl top  "), "{out}");
        assert!(
            lines[1].starts_with("pending 3  processing 0  completed 0"),
            "{out}"
        );
        let row = |queue: &str| -> Vec<String> {
            let line = lines
                .iter()
                .find(|l| l.starts_with(&format!("│{queue} ")))
                .unwrap_or_else(|| panic!("no row for {queue}:\n{out}"));
            line.trim_matches('│')
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(row("mail")[..3], ["mail", "2", "0"]);
        assert_eq!(row("レポート")[..3], ["レポート", "1", "0"]);
        // Every bordered line is 100 columns wide, whatever its characters.
        for line in lines.iter().filter(|l| l.starts_with(['│', '┌', '└'])) {
            assert_eq!(display_width(line), 100, "{line}");
        }
        // No terminal control sequence in the text frame.
        assert!(!out.contains('\u{1b}'), "{out:?}");
        env.run(&["top", "--interval", "10ms"]).code(2);
        env.run(&["top", "--width", "80"]).code(2);
    }
);

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    /// `None` (after printing why) when tmux is not installed and not required.
    fn start(env: &Env, shell_command: &str) -> Option<Tmux> {
        let found = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            let required = std::env::var_os("QUEUECTL_REQUIRE_TMUX").is_some_and(|v| v == "1");
            assert!(!required, "QUEUECTL_REQUIRE_TMUX=1 but tmux is not on PATH");
            eprintln!(
                "skipping the terminal test: tmux not found on PATH \
                 (apt-get install tmux; QUEUECTL_REQUIRE_TMUX=1 makes this a failure)"
            );
            return None;
        }
        let tmux = Tmux {
            socket: format!("queuectl-test-{}", uuid::Uuid::new_v4().simple()),
            dir: env.dir().to_path_buf(),
        };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-s", "top", "-x", "120", "-y", "40"])
            .arg(shell_command)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Some(tmux)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"])
            .current_dir(&self.dir)
            .env_remove("TMUX")
            .env_remove("QUEUECTL_DB")
            .env_remove("QUEUECTL_DB_PATH")
            .env_remove("NO_COLOR");
        cmd
    }

    /// The pane's visible text.
    fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "top", keys])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    #[track_caller]
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let last = self.screen();
            if cond(&last) {
                return last;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// `'text'` for sh, quotes inside escaped.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quoted_path(p: &Path) -> String {
    sh_quote(p.to_str().expect("utf-8 path"))
}

store_test!(
    fn top_in_a_real_terminal_follows_the_store_and_quits_on_q_and_ctrl_c(env) {
        env.enqueue(r#"{"id":"first-job","command":"true","queue":"mail"}"#);
        let target = env.target().to_str().expect("utf-8 target").to_owned();
        let top = format!(
            "{} --db {} top --interval 200ms",
            quoted_path(Path::new(BIN)),
            sh_quote(&target)
        );
        // Runs top twice; after each, says how it exited and whether the terminal is
        // back in canonical mode (raw mode turns icanon off). The second run starts once
        // the test has read that line and pressed Enter; then the pane stays open.
        let mode = "$(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon)";
        let script = format!(
            "{top}; echo \"first=$? {mode}\"; read next; \
             {top}; echo \"second=$? {mode}\"; sleep 60"
        );
        let Some(tmux) = Tmux::start(&env, &script) else {
            return;
        };
        let screen = tmux.wait_for("the view", |s| {
            s.contains("queuectl top") && s.contains("pending 1 ")
        });
        assert!(screen.contains("Queues (1)") && screen.contains("mail"), "{screen}");

        // A change in the store shows up without a key press.
        env.enqueue(r#"{"command":"true","queue":"ジョブ"}"#);
        tmux.wait_for("the new job to show", |s| {
            s.contains("pending 2 ") && s.contains("ジョブ")
        });

        tmux.keys("q");
        let screen = tmux.wait_for("top to exit on q", |s| s.contains("first="));
        assert!(screen.contains("first=0 icanon"), "{screen}");
        assert!(!screen.contains("Queues ("), "the main screen is back:\n{screen}");

        tmux.keys("Enter");
        tmux.wait_for("the second view", |s| s.contains("Queues (2)"));
        tmux.keys("C-c");
        let screen = tmux.wait_for("top to exit on Ctrl-C", |s| s.contains("second="));
        assert!(screen.contains("second=0 icanon"), "{screen}");
    }
);
