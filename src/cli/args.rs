//! The command line as clap sees it: raw flags, no store access.
//!
//! Values clap can check alone (enums, ranges, durations) are checked here, so a bad one
//! is a usage error (exit 2) before anything is opened.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::styling::AnsiColor;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use queuectl::{JobState, Timestamp};

const AFTER_HELP: &str = "\
Storage: --db TARGET, or $QUEUECTL_DB (alias $QUEUECTL_DB_PATH); default ./queuectl.db.
TARGET is a file path or sqlite://PATH, postgres://… / postgresql://…, or memory:.

Exit codes: 0 success; 1 runtime or domain error (bad job JSON, duplicate id, not found,
wrong state, store unreachable); 2 usage error (unknown command or flag, bad value,
bad config key or value).

Examples:
  queuectl enqueue '{\"id\":\"hello\",\"command\":\"echo hello\"}'
  queuectl worker start --count 4
  queuectl status
  queuectl --db postgres://app@db.internal/queue list --state dead";

/// Help colours: headers and flags stand out when colour is on.
const STYLES: clap::builder::Styles = clap::builder::Styles::styled()
    .header(AnsiColor::Green.on_default().bold())
    .usage(AnsiColor::Green.on_default().bold())
    .literal(AnsiColor::Cyan.on_default().bold())
    .placeholder(AnsiColor::Cyan.on_default())
    .error(AnsiColor::Red.on_default().bold())
    .valid(AnsiColor::Green.on_default())
    .invalid(AnsiColor::Yellow.on_default());

/// `--color` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorArg {
    /// Colour when writing to a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always colour, even into a pipe.
    Always,
    /// Never colour.
    Never,
}

/// `worker start --log-format` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// `completions` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

/// A job queue in one SQLite file (or PostgreSQL): enqueue shell commands, run workers.
#[derive(Debug, Parser)]
#[command(
    name = "queuectl",
    version,
    after_help = AFTER_HELP,
    propagate_version = true,
    arg_required_else_help = true,
    styles = STYLES
)]
pub(crate) struct Cli {
    /// Where the queue lives: a SQLite file path, sqlite://PATH, postgres://…, or memory:.
    // hide_env_values: a postgres:// URL in the environment may carry a password.
    #[arg(
        long,
        global = true,
        env = "QUEUECTL_DB",
        hide_env_values = true,
        value_name = "TARGET"
    )]
    pub(crate) db: Option<String>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,

    /// When to colour help and logs: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub(crate) color: ColorArg,

    /// Show times in human tables (list, dlq list) as RFC 3339 UTC instead of relative
    /// ("3 min ago"). JSON output always has RFC 3339.
    #[arg(long, global = true)]
    pub(crate) utc: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or migrate the store (every command also does this on first use).
    #[command(
        after_help = "Examples:\n  queuectl init\n  queuectl --db /var/lib/queuectl/jobs.db init"
    )]
    Init,
    /// Add jobs: a JSON object, `-` for JSON objects / JSON Lines on stdin, or --file.
    #[command(
        after_help = "Examples:\n  queuectl enqueue '{\"command\":\"echo hi\"}'\n  queuectl enqueue --delay 5m --queue mail '{\"id\":\"welcome-42\",\"command\":\"./send.sh 42\"}'\n  queuectl enqueue --timeout 90s --max-retries 5 '{\"command\":\"curl -fsS https://example.com/hook\"}'\n  queuectl enqueue --file jobs.jsonl\n  cat jobs.jsonl | queuectl enqueue -\n  queuectl enqueue -w /srv/app -e RAILS_ENV=production -- bin/rake reports:daily\n  queuectl enqueue --unique-key sync-users -- ./sync-users.sh\n  queuectl enqueue '{\"command\":\"./crunch\",\"limits\":{\"cpu_seconds\":60,\"memory_mb\":512}}'"
    )]
    Enqueue(EnqueueArgs),
    /// Run or stop workers.
    #[command(
        subcommand,
        after_help = "Examples:\n  queuectl worker start --count 4\n  queuectl worker stop --wait"
    )]
    Worker(WorkerCommand),
    /// Job counts per state and live worker slots.
    #[command(after_help = "Examples:\n  queuectl status\n  queuectl status --json")]
    Status(StatusArgs),
    /// Jobs in insertion order, as a table or JSON.
    #[command(
        after_help = "Examples:\n  queuectl list\n  queuectl list --state failed --queue mail\n  queuectl list --limit 20 --json"
    )]
    List(ListArgs),
    /// One job as JSON, with its last output and attempt history.
    #[command(
        after_help = "Examples:\n  queuectl show report-2026-12\n  queuectl show report-2026-12 | jq .history"
    )]
    Show(IdArg),
    /// The stdout and stderr of a job's last attempt, or of the one running so far.
    #[command(
        after_help = "Examples:\n  queuectl logs report-2026-12\n  queuectl logs report-2026-12 --follow\n  queuectl logs report-2026-12 --attempt 1 --stderr"
    )]
    Logs(LogsArgs),
    /// The dead-letter queue: jobs that ran out of attempts.
    #[command(
        subcommand,
        after_help = "Examples:\n  queuectl dlq list\n  queuectl dlq retry --all"
    )]
    Dlq(DlqCommand),
    /// Periodic jobs: add, list, remove, pause and resume schedules that running workers fire.
    #[command(
        subcommand,
        after_help = "Examples:\n  queuectl cron add nightly '0 2 * * *' '{\"command\":\"./backup.sh\"}' --tz Europe/Berlin\n  queuectl cron add tick '@every 5m' '{\"command\":\"./poll.sh\",\"queue\":\"poll\"}'\n  queuectl cron list"
    )]
    Cron(CronCommand),
    /// Cancel a pending or failed job.
    #[command(after_help = "Examples:\n  queuectl cancel report-2026-12")]
    Cancel(IdArg),
    /// Put finished jobs (completed, failed, dead, cancelled) back to pending with a fresh budget.
    #[command(
        after_help = "Each ID is handled on its own: the others still run when one fails (exit 1 then).\nAn ID may be a unique prefix of a job's id.\n\nExamples:\n  queuectl retry report-2026-12\n  queuectl retry 3f2a build-17 build-18"
    )]
    Retry(IdsArg),
    /// Delete jobs that are not running, with their output and history.
    #[command(
        after_help = "Each ID is handled on its own: the others still go when one fails (exit 1 then).\nAn ID may be a unique prefix of a job's id.\n\nExamples:\n  queuectl delete report-2026-12\n  queuectl list --state cancelled --json | jq -r '.[].id' | xargs queuectl delete"
    )]
    Delete(IdsArg),
    /// Delete finished jobs (default: completed and cancelled) older than their retention.
    #[command(
        after_help = "Without --older-than each state's retention setting is the age (retention-completed,\nretention-cancelled, retention-dead; a state kept forever, retention 0, is skipped).\n\nExamples:\n  queuectl prune\n  queuectl prune --older-than 1d --dry-run\n  queuectl prune --state dead --older-than 30d\n  queuectl prune --older-than 0 --state completed --state cancelled"
    )]
    Prune(PruneArgs),
    /// Queues: list them with their counts, pause and resume them, cap their concurrency.
    #[command(
        subcommand,
        after_help = "Examples:\n  queuectl queue list\n  queuectl queue pause mail\n  queuectl queue concurrency reports 2"
    )]
    Queue(QueueCommand),
    /// Read and change persisted settings.
    #[command(
        subcommand,
        after_help = "Examples:\n  queuectl config list\n  queuectl config set max-retries 5"
    )]
    Config(ConfigCommand),
    /// Copy every job (state, output, history) and setting to another, empty store.
    #[command(
        after_help = "Examples:\n  queuectl migrate --to postgres://app@db.internal/queue\n  queuectl --db postgres://app@db.internal/queue migrate --to ./copy.db"
    )]
    Migrate(MigrateArgs),
    /// Copy a live SQLite queue to a new file, consistently, while workers keep running.
    #[command(
        after_help = "Examples:\n  queuectl backup /var/backups/queuectl-$(date +%F).db\n  queuectl --db /srv/jobs.db backup --force /srv/jobs-nightly.db"
    )]
    Backup(BackupArgs),
    /// Measure throughput, pickup latency and memory (default store: a fresh temp file).
    #[command(
        after_help = "Examples:\n  queuectl bench\n  queuectl bench --jobs 5000 --job true --raw-spawn\n  queuectl --db memory: bench --jobs 1000000 --pickup-samples 0"
    )]
    Bench(BenchArgs),
    /// Block until jobs end (completed, dead or cancelled); exit 0 only if all completed.
    #[command(
        after_help = "Examples:\n  queuectl wait report-2026-12\n  queuectl wait build test deploy --timeout 10m && echo shipped"
    )]
    Wait(WaitArgs),
    /// Serve a web dashboard of the queue (counts, jobs, workers, actions) and /metrics.
    #[command(
        after_help = "Safe by default: it listens on 127.0.0.1:8080; an address other machines can reach\nneeds --token (or $QUEUECTL_DASHBOARD_TOKEN), which every request must then carry\n(Authorization: Bearer TOKEN, or the token as the Basic password the browser asks for).\n\nExamples:\n  queuectl dashboard\n  queuectl dashboard --read-only --listen 127.0.0.1:9000\n  QUEUECTL_DASHBOARD_TOKEN=$(head -c 24 /dev/urandom | base64) queuectl dashboard --listen 0.0.0.0:8080"
    )]
    Dashboard(DashboardArgs),
    /// Print the queue's metrics once, in the Prometheus text format.
    #[command(
        after_help = "Examples:\n  queuectl metrics\n  queuectl metrics | grep '^queuectl_jobs'\n  queuectl --db postgres://app@db.internal/queue metrics > /var/lib/node_exporter/queuectl.prom"
    )]
    Metrics,
    /// A live terminal view of the queue: counts per state and queue, rates, workers and
    /// running jobs, refreshed every second; q, Esc or Ctrl-C quits.
    #[command(
        after_help = "Keys: q, Esc or Ctrl-C quit.\n\nExamples:\n  queuectl top\n  queuectl top --interval 5s\n  queuectl --db postgres://app@db.internal/queue top\n  queuectl top --once --width 100"
    )]
    Top(TopArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        after_help = "Examples:\n  queuectl completions bash > /etc/bash_completion.d/queuectl\n  queuectl completions zsh > \"${fpath[1]}/_queuectl\"\n  queuectl completions fish > ~/.config/fish/completions/queuectl.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print the manual page (roff) on stdout.
    #[command(
        after_help = "Examples:\n  queuectl man > /usr/local/share/man/man1/queuectl.1\n  queuectl man | man -l -"
    )]
    Man,
    /// Internal: apply resource limits to this process, then exec PROGRAM (how a worker
    /// starts a job that has `limits`).
    #[command(
        hide = true,
        after_help = "Examples:\n  queuectl exec-limited --cpu-seconds 5 -- sh -c 'make test'"
    )]
    ExecLimited(ExecLimitedArgs),
}

#[derive(Debug, Args)]
pub(crate) struct IdArg {
    /// The job's id.
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct IdsArg {
    /// The jobs' ids (or unique prefixes of them).
    #[arg(required = true, value_name = "ID")]
    pub(crate) ids: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Only jobs that finished more than this long ago: seconds or a duration like 12h, 7d,
    /// 2w; 0 means every one finished before now (default: each state's retention setting).
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub(crate) older_than: Option<Duration>,

    /// Only jobs in this final state (repeatable): completed, cancelled or dead (default:
    /// completed and cancelled).
    #[arg(long = "state", value_name = "STATE", value_enum)]
    pub(crate) states: Vec<FinalStateArg>,

    /// Count the jobs that would go; delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `prune --state` values: the final states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FinalStateArg {
    Completed,
    Cancelled,
    Dead,
}

impl From<FinalStateArg> for JobState {
    fn from(s: FinalStateArg) -> Self {
        match s {
            FinalStateArg::Completed => JobState::Completed,
            FinalStateArg::Cancelled => JobState::Cancelled,
            FinalStateArg::Dead => JobState::Dead,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    /// A job as a JSON object, e.g. '{"command":"echo hi"}'; `-` reads a batch from stdin.
    #[arg(
        value_name = "JSON",
        required_unless_present_any = ["file", "words"],
        conflicts_with_all = ["file", "words"]
    )]
    pub(crate) job: Option<String>,

    /// Read a batch of jobs (JSON Lines) from this file; `-` is stdin.
    #[arg(long, value_name = "FILE", conflicts_with = "words")]
    pub(crate) file: Option<PathBuf>,

    /// After `--`: the command as words, quoted so that `sh -c` runs exactly them, e.g.
    /// `queuectl enqueue -- printf '%s\n' 'a b'` (no JSON needed).
    #[arg(last = true, value_name = "WORD")]
    pub(crate) words: Vec<String>,

    /// Higher runs first (overrides the JSON).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) priority: Option<i32>,

    /// Not before this instant: RFC 3339 or epoch seconds (overrides the JSON).
    #[arg(long, value_name = "TIME", value_parser = parse_run_at, conflicts_with = "delay")]
    pub(crate) run_at: Option<Timestamp>,

    /// Not before now + this delay, e.g. 30s, 5m, 1h30m, 2d (overrides the JSON).
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub(crate) delay: Option<Duration>,

    /// Named queue (overrides the JSON).
    #[arg(long, value_parser = non_blank)]
    pub(crate) queue: Option<String>,

    /// Total attempts allowed (overrides the JSON).
    #[arg(long, value_name = "N")]
    pub(crate) max_retries: Option<u32>,

    /// Per-attempt timeout, > 0: seconds or a duration like 90s, 5m, 1h30m (overrides the JSON).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub(crate) timeout: Option<u64>,

    /// The job's id (overrides the JSON; only for a single job).
    #[arg(long, value_parser = non_blank)]
    pub(crate) id: Option<String>,

    /// Working directory of the command (overrides the JSON); a relative path is taken
    /// from the current directory.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub(crate) cwd: Option<String>,

    /// An environment variable for the command, KEY=VALUE (split at the first `=`);
    /// repeatable; added to and overriding the JSON's `env`.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub(crate) env: Vec<(String, String)>,

    /// Store nothing while a job with this key is pending, failed or processing: print
    /// that job's id instead (overrides the JSON).
    #[arg(long, value_name = "K", value_parser = non_blank)]
    pub(crate) unique_key: Option<String>,

    /// Run only after the job ID completed; repeatable (adds to the JSON's `depends_on`).
    #[arg(long = "after", value_name = "ID", value_parser = non_blank)]
    pub(crate) after: Vec<String>,

    /// Print the stored job as JSON (an array for a batch) instead of its id.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExecLimitedArgs {
    /// RLIMIT_DATA in MiB.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) memory_mb: Option<u64>,
    /// RLIMIT_CPU in seconds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) cpu_seconds: Option<u64>,
    /// RLIMIT_NOFILE.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) open_files: Option<u64>,
    /// RLIMIT_NPROC (counts every process of the user).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) processes: Option<u64>,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

/// `KEY=VALUE`, split at the first `=`; the key must be a valid variable name.
fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some(("", _)) => Err("the variable name before `=` is empty".to_owned()),
        Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
        None => Err("expected KEY=VALUE".to_owned()),
    }
}

#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// The address to serve on, IP:PORT (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR", value_parser = parse_listen)]
    pub(crate) listen: std::net::SocketAddr,

    /// A secret every request must carry (required to listen on a non-loopback address;
    /// at least 16 characters).
    #[arg(
        long,
        env = "QUEUECTL_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,

    /// Show the queue but offer and accept no action.
    #[arg(long)]
    pub(crate) read_only: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// How often to read the store again: seconds or a duration like 500ms, 2s, 1m
    /// (100ms to 1h). Rates are read at most every 5 seconds.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_interval)]
    pub(crate) interval: Duration,

    /// Print one frame as plain text and exit (works without a terminal).
    #[arg(long)]
    pub(crate) once: bool,

    /// The width of the --once frame, in columns (default: the terminal's, else 120).
    #[arg(long, requires = "once", value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(40..=1000))]
    pub(crate) width: Option<u16>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Jobs to enqueue and run.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub(crate) jobs: u64,

    /// Worker slots (default: 2 for noop jobs, 4 for shell jobs: what measures best on a
    /// 2-core machine).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) workers: Option<u32>,

    /// `noop` (an in-process handler: measures the engine) or a shell command such as
    /// 'true' (measures the runtime).
    #[arg(long, default_value = "noop", value_name = "noop|CMD", value_parser = non_blank)]
    pub(crate) job: String,

    /// A fixed number of jobs a slot claims per claim query: a tuning, reported as such
    /// (default: adaptive claims, as `worker start` makes them; see --prefetch).
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) batch: Option<u32>,

    /// Prefetch of the adaptive claims, as `worker start --prefetch` (ignored with --batch).
    #[arg(long, value_name = "N", default_value_t = queuectl::DEFAULT_PREFETCH,
        value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub(crate) prefetch: u32,

    /// Import this many completed jobs of history first.
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub(crate) backlog: u64,

    /// Also measure raw `sh -c true` spawns at the same concurrency, and the ratio.
    #[arg(long)]
    pub(crate) raw_spawn: bool,

    /// SQLite commit durability: WAL synchronous NORMAL or FULL.
    #[arg(long, value_enum, default_value = "normal")]
    pub(crate) durability: DurabilityArg,

    /// Pickup-latency samples per phase (0 skips the pickup phases).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub(crate) pickup_samples: u32,

    /// Idle workers' poll interval (default: the poll-interval-ms setting).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) poll_interval_ms: Option<u64>,

    /// Also measure an idle pool's CPU use for this many seconds.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub(crate) idle_secs: u64,

    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--durability` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum DurabilityArg {
    Normal,
    Full,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkerCommand {
    /// Run workers in the foreground until stopped (SIGTERM/SIGINT: finish running jobs).
    #[command(
        after_help = "Examples:\n  queuectl worker start\n  queuectl worker start --count 4 --queue mail --queue reports\n  queuectl worker start --drain\n  queuectl worker start --log-format json 2>> worker.log\n  queuectl worker start --count 4 --metrics 127.0.0.1:9184"
    )]
    Start(WorkerStartArgs),
    /// Ask every worker on this store to finish its current job and exit.
    #[command(
        after_help = "Examples:\n  queuectl worker stop\n  queuectl worker stop --wait --timeout 2m"
    )]
    Stop(WorkerStopArgs),
}

#[derive(Debug, Args)]
pub(crate) struct WorkerStartArgs {
    /// Number of jobs run at once (slots), from 1 to 4096 (each slot is a thread, and each
    /// running job a process).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) count: u32,

    /// Serve only this queue (repeatable); without it every queue is served.
    #[arg(long = "queue", value_name = "QUEUE", value_parser = non_blank)]
    pub(crate) queues: Vec<String>,

    /// How often an idle worker looks for jobs (default: the poll-interval-ms setting).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..))]
    pub(crate) poll_interval_ms: Option<u64>,

    /// Jobs a slot may claim beyond the one it starts next, while a backlog lasts and the
    /// jobs are short (0: one job per claim).
    #[arg(long, value_name = "N", default_value_t = queuectl::DEFAULT_PREFETCH,
        value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub(crate) prefetch: u32,

    /// Exit 0 once no job of the served queues is pending, failed or processing, on any
    /// worker (paused queues left aside).
    #[arg(long)]
    pub(crate) drain: bool,

    /// This machine's id in the worker registry (default: the hostname).
    #[arg(long, env = "QUEUECTL_HOST_ID", value_name = "H", value_parser = non_blank)]
    pub(crate) host_id: Option<String>,

    /// Log lines as text (default) or one JSON object per line, on stderr.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub(crate) log_format: LogFormat,

    /// Also serve the queue's metrics (Prometheus text) at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9184 (port 0: any free port, logged at start).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub(crate) metrics: Option<std::net::SocketAddr>,

    /// Run jobs from a SQLite store file owned by another user (refused by default: its
    /// jobs would run as you).
    #[arg(long, env = "QUEUECTL_TRUST_STORE_OWNER", value_parser = clap::builder::FalseyValueParser::new())]
    pub(crate) trust_store_owner: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerStopArgs {
    /// Return only once the workers have exited.
    #[arg(long)]
    pub(crate) wait: bool,

    /// With --wait: give up (exit 1) after this long, e.g. 30s or 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_delay, requires = "wait")]
    pub(crate) timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The jobs' ids.
    #[arg(required = true, value_name = "ID")]
    pub(crate) ids: Vec<String>,

    /// Give up (exit 1) after this long: seconds or a duration like 90s, 5m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub(crate) timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print a JSON object instead of lines.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only jobs in this state.
    #[arg(long)]
    pub(crate) state: Option<StateArg>,

    /// Only jobs in this queue.
    #[arg(long)]
    pub(crate) queue: Option<String>,

    /// At most this many jobs.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u32>,

    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The job's id.
    pub(crate) id: String,

    /// Print only the job's stdout, verbatim.
    #[arg(long, conflicts_with = "stderr")]
    pub(crate) stdout: bool,

    /// Print only the job's stderr, verbatim.
    #[arg(long)]
    pub(crate) stderr: bool,

    /// Write the output's bytes as they are, even to a terminal (by default, control
    /// characters other than newline and tab are shown as ^X on a terminal).
    #[arg(long)]
    pub(crate) raw: bool,

    /// Print the running attempt's output as it arrives, until the attempt ends (from any
    /// host); on a job that is not running, print its last attempt's output.
    #[arg(short = 'f', long, conflicts_with = "attempt")]
    pub(crate) follow: bool,

    /// The output of the Nth entry of the job's history (1 = the oldest attempt).
    #[arg(long, value_name = "N")]
    pub(crate) attempt: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// Dead jobs, as a table or JSON.
    #[command(after_help = "Examples:\n  queuectl dlq list\n  queuectl dlq list --json")]
    List(DlqListArgs),
    /// Move a dead job (or every one with --all) back to pending with a fresh budget.
    #[command(
        after_help = "Examples:\n  queuectl dlq retry report-2026-12\n  queuectl dlq retry --all"
    )]
    Retry(DlqRetryArgs),
    /// Delete every dead job, with its output and history.
    #[command(after_help = "Examples:\n  queuectl dlq purge --dry-run\n  queuectl dlq purge")]
    Purge(DlqPurgeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DlqPurgeArgs {
    /// Count the dead jobs; delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DlqListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DlqRetryArgs {
    /// The dead job's id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub(crate) id: Option<String>,

    /// Retry every dead job.
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// Add a schedule (or replace the one of that name); prints its next fire time.
    #[command(
        after_help = "SCHEDULE is a 5-field cron expression (minute hour day-of-month month day-of-week),\n@hourly, @daily, @weekly, @monthly, or @every D (D like 90s, 5m, 1h30m, 2d), counted\nfrom now. Each fire enqueues JOB_JSON (as for enqueue, without an id) as the job\nNAME@<time>. In a zone with DST, a time that does not exist is skipped and one that\noccurs twice fires once.\n\nExamples:\n  queuectl cron add nightly '0 2 * * *' '{\"command\":\"./backup.sh\"}' --tz Europe/Berlin\n  queuectl cron add weekdays '30 8 * * 1-5' '{\"command\":\"./report.sh\",\"queue\":\"reports\"}'\n  queuectl cron add tick '@every 5m' '{\"command\":\"./poll.sh\"}'"
    )]
    Add(CronAddArgs),
    /// Every schedule, as a table or JSON.
    #[command(after_help = "Examples:\n  queuectl cron list\n  queuectl cron list --json")]
    List(CronListArgs),
    /// Remove a schedule (the jobs it fired stay).
    #[command(after_help = "Examples:\n  queuectl cron remove nightly")]
    Remove(CronNameArg),
    /// Pause a schedule: it fires nothing until resumed.
    #[command(after_help = "Examples:\n  queuectl cron pause nightly")]
    Pause(CronNameArg),
    /// Resume a paused schedule from now on (times missed while paused do not fire).
    #[command(after_help = "Examples:\n  queuectl cron resume nightly")]
    Resume(CronNameArg),
}

#[derive(Debug, Args)]
pub(crate) struct CronAddArgs {
    /// The schedule's name; fired jobs get the id NAME@<time>.
    pub(crate) name: String,
    /// A 5-field cron expression, @hourly, @daily, @weekly, @monthly or @every D.
    pub(crate) schedule: String,
    /// The job to enqueue at each fire, as JSON (as for enqueue, without an `id`).
    pub(crate) job: String,
    /// IANA time zone the expression is read in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub(crate) tz: String,
}

#[derive(Debug, Args)]
pub(crate) struct CronListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CronNameArg {
    /// The schedule's name.
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The store to copy into (same forms as --db); it must hold no jobs. The source
    /// (--db) is only read, and must have no running workers.
    #[arg(long, value_name = "TARGET")]
    pub(crate) to: String,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The copy to write: a new SQLite file, complete only once the command succeeds.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// Replace FILE if it exists (never the queue itself).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Every queue that has jobs or settings: paused, concurrency limit, jobs per state.
    #[command(after_help = "Examples:\n  queuectl queue list\n  queuectl queue list --json")]
    List(QueueListArgs),
    /// Stop every worker (on any host) from starting jobs of a queue; running jobs finish,
    /// and enqueueing still works.
    #[command(
        after_help = "Examples:\n  queuectl queue pause mail\n  queuectl queue pause default"
    )]
    Pause(QueueNameArg),
    /// Let workers start jobs of a paused queue again.
    #[command(after_help = "Examples:\n  queuectl queue resume mail")]
    Resume(QueueNameArg),
    /// Run at most N jobs of a queue at once across every worker and host (none: no limit).
    #[command(
        after_help = "Examples:\n  queuectl queue concurrency reports 2\n  queuectl queue concurrency reports none"
    )]
    Concurrency(QueueConcurrencyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct QueueListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct QueueNameArg {
    /// The queue's name.
    #[arg(value_name = "QUEUE", value_parser = non_blank)]
    pub(crate) queue: String,
}

#[derive(Debug, Args)]
pub(crate) struct QueueConcurrencyArgs {
    /// The queue's name.
    #[arg(value_name = "QUEUE", value_parser = non_blank)]
    pub(crate) queue: String,

    /// At most this many of its jobs run at once: an integer of at least 1, or `none`.
    #[arg(value_name = "N|none", value_parser = parse_concurrency)]
    pub(crate) limit: Limit,
}

/// A concurrency limit as given: `None` for `none` (no limit).
pub(crate) type Limit = Option<u32>;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print one setting's value.
    #[command(
        after_help = "Examples:\n  queuectl config get max-retries\n  queuectl config get lease_seconds"
    )]
    Get {
        /// max-retries, backoff-base, backoff-max, job-timeout, lease-seconds,
        /// poll-interval-ms, retention-completed, retention-cancelled or retention-dead
        /// (underscores accepted).
        key: String,
    },
    /// Validate and persist a setting.
    #[command(
        after_help = "Examples:\n  queuectl config set max-retries 5\n  queuectl config set backoff-base 3\n  queuectl config set job-timeout 10m"
    )]
    Set {
        /// The setting's name.
        key: String,
        /// Its new value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print every setting as `key = value`.
    #[command(after_help = "Examples:\n  queuectl config list")]
    List,
}

/// `--state` values: clap lists them when an unknown one is given.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum StateArg {
    Pending,
    Processing,
    Completed,
    Failed,
    Dead,
    Cancelled,
}

impl From<StateArg> for JobState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => JobState::Pending,
            StateArg::Processing => JobState::Processing,
            StateArg::Completed => JobState::Completed,
            StateArg::Failed => JobState::Failed,
            StateArg::Dead => JobState::Dead,
            StateArg::Cancelled => JobState::Cancelled,
        }
    }
}

fn parse_run_at(s: &str) -> Result<Timestamp, String> {
    crate::cli::input::parse_run_at(s)
}

fn parse_delay(s: &str) -> Result<Duration, String> {
    crate::cli::input::parse_delay(s)
}

/// A per-job timeout in whole seconds, at least one.
fn parse_timeout(s: &str) -> Result<u64, String> {
    match queuectl::parse_whole_seconds(s)? {
        0 => Err("must be at least 1 second".to_owned()),
        secs => Ok(secs),
    }
}

/// `top --interval`: whole seconds, or a humantime duration (`500ms`, `2s`), 100 ms to 1 h.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(s.parse().map_err(|_| format!("'{s}' is too large"))?)
    } else {
        humantime::parse_duration(s).map_err(|e| format!("'{s}': {e} (e.g. 1s, 500ms, 2m)"))?
    };
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err("must be between 100ms and 1h".to_owned());
    }
    Ok(d)
}

/// `IP:PORT` (IPv6 in brackets), or `localhost:PORT` for the IPv4 loopback address.
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{port}' is not a port number"))?;
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080".to_owned())
}

/// `none` (no limit) or an integer of at least 1.
fn parse_concurrency(s: &str) -> Result<Limit, String> {
    const EXPECTED: &str = "expected an integer of at least 1, or none";
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(0) => Err(format!("0 would run nothing: {EXPECTED}")),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!("'{s}' is not a limit: {EXPECTED}")),
    }
}

fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be blank".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn concurrency_is_none_or_a_positive_integer() {
        assert_eq!(parse_concurrency("none"), Ok(None));
        assert_eq!(parse_concurrency("NONE"), Ok(None));
        assert_eq!(parse_concurrency("1"), Ok(Some(1)));
        assert_eq!(parse_concurrency("4096"), Ok(Some(4096)));
        for bad in ["0", "-1", "1.5", "", " 2", "two", "99999999999"] {
            assert!(parse_concurrency(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_state_has_a_value() {
        let names: Vec<_> = StateArg::value_variants()
            .iter()
            .map(|v| JobState::from(*v).as_str())
            .collect();
        let all: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, all);
    }
}
