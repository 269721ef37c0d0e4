//! Per-job resource limits ([`Limits`]): set with `setrlimit` in the process that then
//! execs the job's shell, and named in `last_error` when the cause is knowable.
//!
//! The limits must be in place before the job's first instruction runs, and the worker
//! cannot set them between fork and exec: that needs `pre_exec`, which is `unsafe` (this
//! crate forbids it), and the executor spawns with `posix_spawn` anyway. So a job with
//! limits is started through a small helper, normally the `queuectl` binary itself
//! (`queuectl exec-limited`, hidden), which calls [`exec_with_limits`]: it sets the limits
//! on itself and `exec`s `sh -c COMMAND` in the same process, the same pid and process group
//! the worker already tracks. Nothing of the job runs before the limits hold, so there is
//! no race. A library user's binary calls [`exec_with_limits`] from its own `main` the same
//! way and names itself with [`crate::ShellHandler::limit_helper`].
//!
//! | limit | resource | what the job sees | named in `last_error` |
//! |---|---|---|---|
//! | `memory_mb` | `RLIMIT_DATA` (heap and private writable mappings) | allocations fail (`ENOMEM`) | no: the program decides how it fails |
//! | `cpu_seconds` | `RLIMIT_CPU`, soft N, hard N+1 | `SIGXCPU` at N s of CPU, `SIGKILL` at N+1 | yes, from `SIGXCPU` (or a shell's exit code 152) |
//! | `open_files` | `RLIMIT_NOFILE` | `open` fails with `EMFILE` | no |
//! | `processes` | `RLIMIT_NPROC`: every process of the worker's **user**, not only the job's | `fork` fails with `EAGAIN` | no |

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt as _;

use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use queuectl_store::Limits;

/// The helper's command-line flags for `limits`, in the order [`exec_with_limits`]'s
/// caller (the CLI) parses them: `--memory-mb N --cpu-seconds N --open-files N
/// --processes N`, each only when set.
#[must_use]
pub fn limit_args(limits: &Limits) -> Vec<OsString> {
    let mut args = Vec::new();
    for (flag, value) in [
        ("--memory-mb", limits.memory_mb),
        ("--cpu-seconds", limits.cpu_seconds),
        ("--open-files", limits.open_files),
        ("--processes", limits.processes),
    ] {
        if let Some(v) = value {
            args.push(flag.into());
            args.push(v.to_string().into());
        }
    }
    args
}

/// Sets `limits` on the calling process (inherited by everything it execs or forks).
///
/// # Errors
/// The `setrlimit` failure, naming the limit (e.g. raising a hard limit without privilege).
pub fn apply_limits(limits: &Limits) -> io::Result<()> {
    let set = |name: &str, resource: Resource, soft: u64, hard: u64| {
        setrlimit(resource, soft, hard)
            .map_err(|e| io::Error::other(format!("setting the {name} limit to {soft}: {e}")))
    };
    if let Some(mb) = limits.memory_mb {
        let bytes = mb.saturating_mul(1024 * 1024);
        set("memory_mb", Resource::RLIMIT_DATA, bytes, bytes)?;
    }
    if let Some(secs) = limits.cpu_seconds {
        // The soft limit sends SIGXCPU, which names the cause; the hard one a second later
        // is SIGKILL for a job that ignores it.
        set(
            "cpu_seconds",
            Resource::RLIMIT_CPU,
            secs,
            secs.saturating_add(1),
        )?;
    }
    if let Some(n) = limits.open_files {
        set("open_files", Resource::RLIMIT_NOFILE, n, n)?;
    }
    if let Some(n) = limits.processes {
        set("processes", Resource::RLIMIT_NPROC, n, n)?;
    }
    Ok(())
}

/// Sets `limits` on this process, then replaces it with `program args…`. Returns only on
/// failure, with the error; the caller should print it and exit non-zero.
pub fn exec_with_limits(limits: &Limits, program: &OsString, args: &[OsString]) -> io::Error {
    if let Err(e) = apply_limits(limits) {
        return e;
    }
    std::process::Command::new(program).args(args).exec()
}

/// `last_error` for an attempt that ended with `signal` (or, for a shell reporting its
/// child's death, exit code `code`), when the job's limits explain it.
pub(crate) fn limit_error(
    limits: &Limits,
    code: Option<i32>,
    signal: Option<i32>,
) -> Option<String> {
    let xcpu = Signal::SIGXCPU as i32;
    let by_xcpu = signal == Some(xcpu) || code == Some(128 + xcpu);
    match limits.cpu_seconds {
        Some(secs) if by_xcpu => Some(format!("cpu time limit {secs}s exceeded")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_only_the_limits_that_are_set() {
        let l = Limits {
            cpu_seconds: Some(5),
            processes: Some(9),
            ..Limits::default()
        };
        assert_eq!(
            limit_args(&l),
            ["--cpu-seconds", "5", "--processes", "9"].map(OsString::from)
        );
    }

    #[test]
    fn sigxcpu_is_named_only_with_a_cpu_limit() {
        let cpu = Limits {
            cpu_seconds: Some(5),
            ..Limits::default()
        };
        let xcpu = Signal::SIGXCPU as i32;
        assert_eq!(
            limit_error(&cpu, None, Some(xcpu)).as_deref(),
            Some("cpu time limit 5s exceeded")
        );
        assert_eq!(
            limit_error(&cpu, Some(128 + xcpu), None).as_deref(),
            Some("cpu time limit 5s exceeded")
        );
        assert_eq!(limit_error(&cpu, None, Some(9)), None);
        assert_eq!(limit_error(&Limits::default(), None, Some(xcpu)), None);
    }
}
