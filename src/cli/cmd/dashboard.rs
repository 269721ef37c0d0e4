//! `queuectl dashboard`: serves the web dashboard until SIGINT or SIGTERM (then exits 0).
//!
//! Safe by default: it listens on 127.0.0.1:8080, and an address other hosts can reach
//! needs a token (`--token` or `$QUEUECTL_DASHBOARD_TOKEN`), else exit 2 before anything is
//! opened. The URL it serves is printed on stdout once it listens (with `--listen
//! 127.0.0.1:0`, the port the system chose).

use std::net::SocketAddr;

use anyhow::Context as _;

use crate::cli::args::DashboardArgs;
use crate::cli::dashboard::{self, App, Options};
use crate::cli::open_store::open_to_read;
use crate::cli::output::print_lines;
use crate::cli::UsageError;

/// The shortest token accepted: guessing it must be hopeless.
const MIN_TOKEN_CHARS: usize = 16;

pub(crate) fn run(db: Option<&str>, a: DashboardArgs) -> anyhow::Result<()> {
    let token = a.token.filter(|t| !t.is_empty());
    check_exposure(a.listen, token.as_deref())?;
    let (sched, target) = open_to_read(db)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the dashboard's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        tracing::info!(store = %target, %addr, read_only = a.read_only, "dashboard started");
        print_lines([dashboard::url(addr)])?;
        let app = App::new(
            sched,
            Options {
                token,
                read_only: a.read_only,
            },
        );
        dashboard::serve(listener, app, shutdown_signal())
            .await
            .context("serving the dashboard")
    })
}

/// Refuses (exit 2) a non-loopback address without a token, and a token too short to
/// protect anything.
fn check_exposure(listen: SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    match token {
        None if !listen.ip().is_loopback() => Err(UsageError(format!(
            "refusing to serve the dashboard on {listen} without a token: that address is \
             reachable from other machines, and anyone reaching it could see every job and \
             act on the queue; pass --token T (or set QUEUECTL_DASHBOARD_TOKEN), or listen on \
             127.0.0.1"
        ))
        .into()),
        Some(t) if t.chars().count() < MIN_TOKEN_CHARS => Err(UsageError(format!(
            "the dashboard token must be at least {MIN_TOKEN_CHARS} characters long \
             (e.g. the output of: head -c 24 /dev/urandom | base64)"
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("dashboard stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_rules() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let token = "0123456789abcdef";
        assert!(check_exposure(addr("127.0.0.1:8080"), None).is_ok());
        assert!(check_exposure(addr("[::1]:8080"), None).is_ok());
        assert!(check_exposure(addr("0.0.0.0:8080"), None).is_err());
        assert!(check_exposure(addr("[::]:8080"), None).is_err());
        assert!(check_exposure(addr("0.0.0.0:8080"), Some(token)).is_ok());
        assert!(check_exposure(addr("127.0.0.1:8080"), Some("short")).is_err());
    }
}
