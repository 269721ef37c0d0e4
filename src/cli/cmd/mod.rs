//! One module per subcommand; each `run` opens the store, does one thing and prints.

pub(crate) mod backup;
pub(crate) mod bench;
pub(crate) mod cancel;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod cron;
pub(crate) mod dashboard;
pub(crate) mod delete;
pub(crate) mod dlq;
pub(crate) mod enqueue;
pub(crate) mod init;
pub(crate) mod list;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod migrate;
pub(crate) mod prune;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod show;
pub(crate) mod status;
pub(crate) mod top;
pub(crate) mod wait;
pub(crate) mod worker;
