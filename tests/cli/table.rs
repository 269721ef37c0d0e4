//! The human tables of `list` and `dlq list` (docs/CLI.md, "list"): columns aligned by
//! display width (CJK and emoji take two columns), fitted to `$COLUMNS` one line per job,
//! relative times unless `--utc`; `--json` unchanged.

use super::{display_width as width, s};

/// The display column where `word` starts in `line`.
fn column_of(line: &str, word: &str) -> usize {
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("{word} not in {line}"));
    width(&line[..at])
}

store_test!(
    fn tables_align_wide_characters_fit_columns_and_show_relative_times(env) {
        env.enqueue(
            r#"{"id":"📊-月次レポート-2026","command":"make report && mail -s 完了 ops","queue":"レポート"}"#,
        );
        env.enqueue(r#"{"id":"plain","command":"true"}"#);

        let out = env.run(&["list"]).ok();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let state = column_of(lines[0], "STATE");
        for line in &lines[1..] {
            assert_eq!(column_of(line, "pending"), state, "{out}");
            assert!(line.ends_with(" s ago"), "relative times: {out}");
        }
        assert!(lines[1].starts_with("📊-月次レポート-2026  "), "{out}");

        // Fitted to $COLUMNS: one line per job, none wider; the id gives way.
        let narrow = env.cmd(&["list"]).env("COLUMNS", "60").output().expect("run");
        assert!(narrow.status.success());
        let narrow = String::from_utf8(narrow.stdout).expect("utf-8");
        let lines: Vec<&str> = narrow.lines().collect();
        assert_eq!(lines.len(), 3, "{narrow}");
        for line in &lines {
            assert!(width(line) <= 60, "{} > 60: {line}", width(line));
        }
        assert!(lines[1].starts_with("📊") && lines[1].contains('…'), "{narrow}");
        let state = column_of(lines[0], "STATE");
        assert_eq!(column_of(lines[1], "pending"), state, "{narrow}");
        assert_eq!(column_of(lines[2], "pending"), state, "{narrow}");

        // --utc (global, before or after the command): RFC 3339 instead.
        for args in [&["--utc", "list"][..], &["list", "--utc"]] {
            let out = env.run(args).ok();
            assert!(!out.contains(" ago"), "{out}");
            let line = out.lines().nth(2).expect("row");
            let stamp = line.split_whitespace().last().expect("updated");
            assert!(stamp.ends_with('Z') && stamp.len() == 24, "{line}");
        }

        // JSON is unchanged by either.
        let json = env.cmd(&["list", "--json"]).env("COLUMNS", "20").output().expect("run");
        let jobs: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
        assert_eq!(s(&jobs[0], "id"), "📊-月次レポート-2026");
        assert!(s(&jobs[0], "updated_at").ends_with('Z'));
    }
);

store_test!(
    fn the_dlq_table_is_fitted_the_same_way(env) {
        env.enqueue(r#"{"id":"死んだ-💀","command":"exit 1","max_retries":1}"#);
        env.run(&["worker", "start", "--drain"]).ok();
        let out = env.cmd(&["dlq", "list"]).env("COLUMNS", "50").output().expect("run");
        let out = String::from_utf8(out.stdout).expect("utf-8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[1].contains("dead"), "{out}");
        for line in &lines {
            assert!(width(line) <= 50, "{} > 50: {line}", width(line));
        }
        let out = env.run(&["dlq", "list", "--utc"]).ok();
        assert!(out.contains("死んだ-💀") && !out.contains(" ago"), "{out}");
    }
);
