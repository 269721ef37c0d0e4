//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz harness,
//! so plain `cargo test` checks the fuzz properties without libFuzzer.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}

#[test]
fn enqueue_json_corpus_keeps_the_parsing_properties() {
    for (path, data) in corpus("enqueue_json") {
        eprintln!("{}", path.display());
        harness::enqueue_json(&data);
    }
}

#[test]
fn config_kv_corpus_keeps_the_setting_properties() {
    for (path, data) in corpus("config_kv") {
        eprintln!("{}", path.display());
        harness::config_kv(&data);
    }
}

#[test]
fn cron_schedule_corpus_keeps_the_schedule_properties() {
    for (path, data) in corpus("cron_schedule") {
        eprintln!("{}", path.display());
        harness::cron_schedule(&data);
    }
}

#[test]
fn store_target_corpus_keeps_the_target_properties() {
    for (path, data) in corpus("store_target") {
        eprintln!("{}", path.display());
        harness::store_target(&data);
    }
}

#[test]
fn duration_corpus_keeps_the_duration_properties() {
    for (path, data) in corpus("duration") {
        eprintln!("{}", path.display());
        harness::duration(&data);
    }
}

#[test]
fn corpus_seeds_cover_accepted_and_rejected_inputs() {
    use harness::input::parse_jobs;
    let results: Vec<bool> = corpus("enqueue_json")
        .iter()
        .map(|(_, d)| parse_jobs(&String::from_utf8_lossy(d)).is_ok())
        .collect();
    assert!(results.contains(&true) && results.contains(&false));
}

#[test]
fn scheduler_ops_corpus_matches_the_model() {
    for (path, data) in corpus("scheduler_ops") {
        eprintln!("{}", path.display());
        harness::scheduler_ops(&data);
    }
}
