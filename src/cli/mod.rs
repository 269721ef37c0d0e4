//! The `queuectl` command line: private to the binary.
//!
//! `args` holds the clap structs; `open_store` turns `--db` into a store; each file in
//! `cmd/` runs one subcommand; `output` prints; `dashboard` and `metrics` are the web
//! dashboard and the Prometheus text. Errors travel as `anyhow::Error` and are
//! mapped to exit codes in one place, [`exit_code`]: a [`UsageError`] or an invalid
//! setting is 2, anything else 1.

pub(crate) mod args;
mod bench;
mod cmd;
mod dashboard;
pub(crate) mod input;
mod job_ref;
mod metrics;
mod open_store;
mod output;
mod top;

use std::fmt;
use std::io::{self, IsTerminal as _};

use tracing_subscriber::EnvFilter;

use clap::{CommandFactory as _, FromArgMatches as _, ValueEnum as _};

use self::args::{Cli, ColorArg, Command, LogFormat};

/// A mistake in how the command was called that clap cannot see (exit 2).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the command line with help coloured as `--color` and `NO_COLOR` say. clap must
/// know the choice before it parses (it may print help or an error while parsing), so the
/// arguments are scanned for `--color` first; a bad value is then reported by the parse.
pub(crate) fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let choice = match color_flag(&args) {
        Some(ColorArg::Always) => clap::ColorChoice::Always,
        Some(ColorArg::Never) => clap::ColorChoice::Never,
        Some(ColorArg::Auto) | None if no_color() => clap::ColorChoice::Never,
        Some(ColorArg::Auto) | None => clap::ColorChoice::Auto,
    };
    let mut command = Cli::command().color(choice);
    if args.len() <= 1 {
        // Bare `queuectl`: help on stderr, exit 2, even when $QUEUECTL_DB is set (which
        // clap would count as an argument given).
        let mut no_env = command.mut_arg("db", |a| a.env(None));
        let help = no_env.try_get_matches_from_mut(args).err();
        return Err(help.unwrap_or_else(|| {
            no_env.error(
                clap::error::ErrorKind::MissingSubcommand,
                "a command is required",
            )
        }));
    }
    let matches = command.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&matches)
}

/// The last `--color WHEN` / `--color=WHEN` before a `--`, if it parses.
fn color_flag(args: &[std::ffi::OsString]) -> Option<ColorArg> {
    let mut found = None;
    let mut iter = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        let value = if arg == "--color" {
            iter.next().map(|v| v.into_owned())
        } else {
            arg.strip_prefix("--color=").map(str::to_owned)
        };
        if let Some(v) = value {
            found = ColorArg::from_str(&v, true).ok().or(found);
        }
    }
    found
}

/// `NO_COLOR` set to anything but the empty string (see no-color.org's rule).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether a terminal view (`top`) gets colour: `--color`, else `NO_COLOR`.
fn colour_view(color: ColorArg) -> bool {
    match color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => !no_color(),
    }
}

/// Whether logs on stderr get colour.
fn colour_logs(cli: &Cli) -> bool {
    match cli.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => !no_color() && io::stderr().is_terminal(),
    }
}

/// Logs go to stderr: `RUST_LOG` if set, else warnings (a foreground worker also shows
/// what it does, at info), more with each `-v`. `worker start --log-format json` writes
/// one JSON object per line instead of text.
pub(crate) fn init_logging(cli: &Cli) {
    let start = match &cli.command {
        Command::Worker(args::WorkerCommand::Start(a)) => Some(a.log_format),
        _ => None,
    };
    let default = match cli.verbose.saturating_add(u8::from(start.is_some())) {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
        .with_env_filter(filter);
    // A second init (only possible in tests) keeps the first subscriber; nothing to do.
    let _ = if start == Some(LogFormat::Json) {
        builder.json().with_ansi(false).try_init()
    } else {
        builder.with_ansi(colour_logs(cli)).try_init()
    };
}

/// Standard error for logs, dropping what cannot be written.
///
/// A closed or full stderr (`worker start 2>&1 | head -1`, `2>/dev/full`) must not stop a
/// worker: tracing's fallback on a failed write is `eprintln!`, which panics, and a panic
/// in a slot or signal thread would leave the pool unable to shut down. Logs are
/// best-effort; the store holds the truth.
struct LossyStderr;

impl io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let db = cli.db.as_deref();
    match cli.command {
        Command::Init => cmd::init::run(db),
        Command::Enqueue(a) => cmd::enqueue::run(db, a),
        Command::Worker(c) => cmd::worker::run(db, c),
        Command::Status(a) => cmd::status::run(db, &a),
        Command::List(a) => cmd::list::run(db, &a, cli.utc),
        Command::Show(a) => cmd::show::run(db, &a.id),
        Command::Logs(a) => cmd::logs::run(db, &a),
        Command::Dlq(c) => cmd::dlq::run(db, c, cli.utc),
        Command::Cron(c) => cmd::cron::run(db, c),
        Command::Cancel(a) => cmd::cancel::run(db, &a.id),
        Command::Retry(a) => cmd::retry::run(db, &a.ids),
        Command::Delete(a) => cmd::delete::run(db, &a.ids),
        Command::Prune(a) => cmd::prune::run(db, &a),
        Command::Queue(c) => cmd::queue::run(db, c),
        Command::Config(c) => cmd::config::run(db, c),
        Command::Migrate(a) => cmd::migrate::run(db, &a),
        Command::Backup(a) => cmd::backup::run(db, &a),
        Command::Bench(a) => cmd::bench::run(db, &a),
        Command::Wait(a) => cmd::wait::run(db, &a),
        Command::Dashboard(a) => cmd::dashboard::run(db, a),
        Command::Metrics => cmd::metrics::run(db),
        Command::Top(a) => cmd::top::run(db, &a, colour_view(cli.color)),
        Command::Completions { shell } => cmd::completions::run(shell),
        Command::Man => cmd::completions::man(),
        Command::ExecLimited(a) => exec_limited(&a),
    }
}

/// `queuectl exec-limited`: only returns on failure (exit 126, as a shell does for a
/// command it cannot execute).
fn exec_limited(a: &args::ExecLimitedArgs) -> anyhow::Result<()> {
    let limits = queuectl::Limits {
        memory_mb: a.memory_mb,
        cpu_seconds: a.cpu_seconds,
        open_files: a.open_files,
        processes: a.processes,
    };
    let Some((program, rest)) = a.command.split_first() else {
        return Err(UsageError("give the program to run after --".into()).into());
    };
    let err = queuectl::exec_with_limits(&limits, program, rest);
    eprintln!("queuectl: cannot start the job: {err}");
    std::process::exit(126);
}

/// The exit code for an error: 2 for usage errors (including a bad config key or value and
/// a `--db` target naming no known store), 1 for everything else.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|e| {
        e.is::<UsageError>()
            || matches!(
                e.downcast_ref::<queuectl::Error>(),
                Some(
                    queuectl::Error::InvalidSetting { .. } | queuectl::Error::InvalidTarget { .. }
                )
            )
    });
    if usage {
        2
    } else {
        1
    }
}

/// Whether the error is a closed stdout (`queuectl list | head`): not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// The error as users see it: each cause, outermost first, stopping at the store's own
/// words. A store error's sources are driver text ("unable to open database file",
/// libpq's messages) which the contract keeps from users; they are logged at debug level
/// (`-vv`) for whoever needs them.
pub(crate) fn render_error(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // anyhow contexts often end where the next cause begins; skip exact repeats.
        if parts.last().is_none_or(|p| !p.ends_with(&text)) {
            parts.push(text);
        }
        if cause.is::<queuectl::StoreError>()
            || matches!(
                cause.downcast_ref::<queuectl::Error>(),
                Some(queuectl::Error::Store(_))
            )
        {
            let hidden: Vec<String> = cause
                .source()
                .into_iter()
                .flat_map(|s| std::iter::successors(Some(s), |e| e.source()))
                .map(ToString::to_string)
                .collect();
            if !hidden.is_empty() {
                tracing::debug!(driver = %hidden.join(": "), "store error detail");
            }
            break;
        }
    }
    parts.join(": ")
}
