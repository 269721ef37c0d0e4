//! queuectl's integration tests: one binary (ripgrep's layout), one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The real `queuectl` binary against docs/CLI.md, in temp dirs.
mod cli;

// The committed fuzz corpus replayed through the fuzz harness (fuzz/harness.rs).
mod fuzz_corpus;

// The scheduler end to end against every store: the model-based proptest, the
// forked-process exclusivity proptest, and recovery racing a lease renewal.
mod scheduler;

// Shared helpers (a fresh PostgreSQL schema per test).
mod support;

// The worker runtime: the shell executor against real processes, the pool against a
// MemoryStore and SQLite worker processes, typed jobs.
mod worker;
