//! `queuectl`: the command-line tool. Everything but parsing and exit codes is in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os()) {
        Ok(args) => args,
        Err(err) => {
            // clap prints usage errors to stderr (exit 2) and --help/--version to stdout (0).
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    cli::init_logging(&args);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("queuectl: error: {}", cli::render_error(&err));
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
