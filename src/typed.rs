//! Typed jobs: Rust structs as jobs, run in-process by a [`WorkerPool`].
//!
//! A job type implements [`TypedJob`]: its fields are the job's arguments (stored as JSON in
//! the job's `command`), [`TypedJob::KIND`] names it (stored as the job's `kind`) and
//! [`TypedJob::run`] does the work. [`enqueue_typed`] stores one, [`enqueue_typed_many`] a
//! batch (all or nothing); the pool runs them once [`WorkerPoolBuilder::typed`] registered
//! the type. Retries, backoff, the dead-letter queue, priorities and queues work exactly as
//! for shell jobs.
//!
//! `run` returns a [`JobResult`]: any error converts into it, so `?` works on I/O errors,
//! your own error types, `anyhow` errors and plain messages (`Err("no such user".into())`).
//! A failure records `exit_code` 1 and the error's message followed by its sources
//! (`sending mail: connection refused`) as the attempt's error, which `last_error` shows.
//! Application state (an SMTP client, a database pool) is given to the pool once with
//! [`WorkerPoolBuilder::state`] and read in `run` with [`JobContext::state`].
//!
//! In-process code cannot be killed, so timeouts and cancellation are cooperative: `run`
//! should check [`JobContext::should_stop`] (or wait with [`JobContext::sleep`]) and return
//! an error when it is true. An error returned after the timeout passed is recorded as a
//! timeout (`exit_code` 124, "timeout after Ns"); a success is a success even if late.
//! A panic is a failure too.
//!
//! ```
//! use std::sync::Arc;
//!
//! use queuectl::prelude::*;
//! use queuectl::{enqueue_typed_many, EnqueueRequest, JobContext, JobResult, JobState};
//! use queuectl::{MemoryStore, Scheduler, TypedJob, WorkerPool};
//! use serde::{Deserialize, Serialize};
//!
//! /// The application's mail client, shared by every job.
//! struct Mailer {
//!     relay: String,
//! }
//!
//! impl Mailer {
//!     fn send(&self, to: &str) -> std::io::Result<()> {
//!         if to.contains('@') {
//!             Ok(())
//!         } else {
//!             Err(std::io::Error::other(format!("{} refused {to}", self.relay)))
//!         }
//!     }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail {
//!     to: String,
//! }
//!
//! impl TypedJob for SendEmail {
//!     const KIND: &'static str = "send-email";
//!
//!     fn run(&self, ctx: &JobContext) -> JobResult {
//!         ctx.state::<Mailer>()?.send(&self.to)?;
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> queuectl::Result<()> {
//! let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
//! let once = EnqueueRequest { max_retries: Some(1), ..EnqueueRequest::default() };
//! let ids = enqueue_typed_many(&scheduler, [
//!     (&SendEmail { to: "a@example.com".into() }, once.clone()),
//!     (&SendEmail { to: "nobody".into() }, once),
//! ])?;
//!
//! // Run everything due now, then return.
//! let report = WorkerPool::builder(scheduler.clone())
//!     .typed::<SendEmail>()
//!     .state(Arc::new(Mailer { relay: "smtp.local".into() }))
//!     .build()
//!     .run_due()?;
//!
//! assert_eq!((report.succeeded, report.failed), (1, 1));
//! assert_eq!(scheduler.store().get(&ids[0])?.state, JobState::Completed);
//! let bad = scheduler.store().get(&ids[1])?;
//! assert_eq!(bad.state, JobState::Dead);
//! assert_eq!(bad.last_error.as_deref(), Some("smtp.local refused nobody"));
//! # Ok(())
//! # }
//! ```
//!
//! [`WorkerPool`]: crate::WorkerPool
//! [`WorkerPoolBuilder::typed`]: crate::WorkerPoolBuilder::typed
//! [`WorkerPoolBuilder::state`]: crate::WorkerPoolBuilder::state
//! [`JobContext::state`]: crate::JobContext::state
//! [`JobContext::should_stop`]: crate::JobContext::should_stop
//! [`JobContext::sleep`]: crate::JobContext::sleep

use std::marker::PhantomData;

use queuectl_store::{BoxError, Execution, Job, JobId, JobStore};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::scheduler::{EnqueueRequest, Outcome, Scheduler};
use crate::worker::{Handler, JobContext, WorkerPoolBuilder};

/// What [`TypedJob::run`] returns. Its error, a [`BoxError`], is what every
/// `std::error::Error + Send + Sync` converts into (so `?` works), and so do `String`,
/// `&str` and `anyhow::Error`.
pub type JobResult = std::result::Result<(), BoxError>;

/// A job type: its arguments, its kind name and what it does. See
/// [typed jobs](crate#typed-jobs) in the crate docs.
pub trait TypedJob: Serialize + DeserializeOwned + 'static {
    /// The job's `kind` in the store; unique among the types a pool runs, and not `"shell"`.
    const KIND: &'static str;

    /// Does the work once. `Err` fails this attempt.
    ///
    /// # Errors
    /// Whatever went wrong; its message and its sources' (see [`error_chain`]) become the
    /// attempt's error and the job's `last_error`.
    fn run(&self, ctx: &JobContext) -> JobResult;
}

/// An error's message followed by its sources', joined by `": "`, as a failed attempt
/// records it (`sending mail: connecting to smtp.local: connection refused`). A source
/// whose message the text already ends with is not repeated, for errors that print their
/// cause themselves.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !message.is_empty() && !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = e.source();
    }
    text
}

/// Enqueues `job` as a [`TypedJob::KIND`] job with its JSON as the command; the other
/// fields of `opts` (id, queue, priority, `run_at`, retries, timeout) apply as for any job,
/// and its `command` and `kind` are replaced.
///
/// # Errors
/// [`Error::InvalidJob`] if `job` cannot be serialized; otherwise as
/// [`Scheduler::enqueue`].
pub fn enqueue_typed<S: JobStore, T: TypedJob>(
    scheduler: &Scheduler<S>,
    job: &T,
    opts: EnqueueRequest,
) -> Result<JobId> {
    let command = serde_json::to_string(job).map_err(|e| Error::InvalidJob {
        field: "command",
        message: format!("cannot serialize a {} job: {e}", T::KIND),
    })?;
    scheduler.enqueue(EnqueueRequest {
        command,
        kind: Some(T::KIND.to_owned()),
        ..opts
    })
}

/// Enqueues a batch of typed jobs, all or nothing, in one store call (one transaction);
/// returns their ids in order. Each job comes with its own options, as for
/// [`enqueue_typed`]; to give all the same ones, pair each job with a clone:
/// `emails.iter().map(|e| (e, EnqueueRequest::default()))`.
///
/// # Errors
/// [`Error::InvalidJob`] if a job cannot be serialized (naming its place in the batch), or
/// as [`Scheduler::enqueue_many`]; on any error nothing is stored.
pub fn enqueue_typed_many<'a, S, T, I>(scheduler: &Scheduler<S>, jobs: I) -> Result<Vec<JobId>>
where
    S: JobStore,
    T: TypedJob,
    I: IntoIterator<Item = (&'a T, EnqueueRequest)>,
{
    let reqs = jobs
        .into_iter()
        .enumerate()
        .map(|(n, (job, opts))| {
            let command = serde_json::to_string(job).map_err(|e| Error::InvalidJob {
                field: "command",
                message: format!(
                    "cannot serialize {} job #{} of the batch: {e}",
                    T::KIND,
                    n + 1
                ),
            })?;
            Ok(EnqueueRequest {
                command,
                kind: Some(T::KIND.to_owned()),
                ..opts
            })
        })
        .collect::<Result<Vec<_>>>()?;
    scheduler.enqueue_many(reqs)
}

impl<S: JobStore + Clone> WorkerPoolBuilder<S> {
    /// Runs jobs of kind `T::KIND` by deserializing them as `T` and calling
    /// [`TypedJob::run`].
    #[must_use]
    pub fn typed<T: TypedJob>(self) -> Self {
        self.handler(T::KIND, TypedHandler::<T>(PhantomData))
    }
}

/// The [`Handler`] behind [`WorkerPoolBuilder::typed`].
struct TypedHandler<T>(PhantomData<fn() -> T>);

impl<T: TypedJob> Handler for TypedHandler<T> {
    fn run(&self, job: &Job, ctx: &JobContext) -> Outcome {
        let args: T = match serde_json::from_str(&job.command) {
            Ok(args) => args,
            Err(e) => {
                return Outcome::Failed {
                    execution: Execution::default(),
                    error: format!("cannot decode the {} job's arguments: {e}", T::KIND),
                }
            }
        };
        match args.run(ctx) {
            Ok(()) => Outcome::Succeeded {
                execution: Execution {
                    exit_code: Some(0),
                    ..Execution::default()
                },
            },
            Err(error) if ctx.timed_out() => {
                tracing::debug!(job = %job.id, error = %error_chain(&*error),
                    "typed job timed out");
                Outcome::Failed {
                    execution: Execution {
                        exit_code: Some(crate::worker::TIMEOUT_EXIT_CODE),
                        ..Execution::default()
                    },
                    error: crate::worker::timeout_error(ctx.timeout().unwrap_or_default()),
                }
            }
            Err(error) => Outcome::Failed {
                execution: Execution {
                    exit_code: Some(1),
                    ..Execution::default()
                },
                error: error_chain(&*error),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;
    use crate::worker::CancelToken;

    #[derive(Serialize, Deserialize)]
    struct Wait {
        ms: u64,
    }

    impl TypedJob for Wait {
        const KIND: &'static str = "wait";
        fn run(&self, ctx: &JobContext) -> JobResult {
            if ctx.sleep(Duration::from_millis(self.ms)) {
                Err("stopped".into())
            } else {
                Ok(())
            }
        }
    }

    fn job(command: &str) -> Job {
        let mut job = crate::worker::test_job(command);
        job.kind = Wait::KIND.to_owned();
        job
    }

    #[test]
    fn a_cooperative_timeout_is_recorded_as_a_timeout() {
        let ctx = JobContext::new(1, Some(Duration::from_millis(1)), CancelToken::new());
        let out = TypedHandler::<Wait>(PhantomData).run(&job(r#"{"ms":60000}"#), &ctx);
        let Outcome::Failed { execution, error } = out else {
            panic!("expected failure");
        };
        assert_eq!(execution.exit_code, Some(124));
        assert_eq!(error, "timeout after 1ms");
    }

    #[derive(Debug)]
    struct Wrapped {
        what: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.what)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn the_error_chain_joins_sources_without_repeating_them() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Wrapped {
            what: "sending mail",
            source: io(),
        };
        assert_eq!(error_chain(&e), "sending mail: refused");
        // An error that prints its cause itself does not get it twice.
        let e = Wrapped {
            what: "sending mail: refused",
            source: io(),
        };
        assert_eq!(error_chain(&e), "sending mail: refused");
        let boxed: BoxError = "plain message".into();
        assert_eq!(error_chain(&*boxed), "plain message");
    }

    #[derive(Serialize, Deserialize)]
    struct ReadFile {
        path: String,
    }

    impl TypedJob for ReadFile {
        const KIND: &'static str = "read-file";
        fn run(&self, _ctx: &JobContext) -> JobResult {
            let text = std::fs::read_to_string(&self.path).map_err(|source| Wrapped {
                what: "reading the input",
                source,
            })?;
            let n: u32 = text.trim().parse()?;
            if n == 0 {
                return Err("the input is zero".into());
            }
            Ok(())
        }
    }

    fn run_read_file(path: &str) -> Outcome {
        let mut job = crate::worker::test_job(&serde_json::json!({ "path": path }).to_string());
        job.kind = ReadFile::KIND.to_owned();
        let ctx = JobContext::new(1, None, CancelToken::new());
        TypedHandler::<ReadFile>(PhantomData).run(&job, &ctx)
    }

    fn failure(outcome: Outcome) -> (Option<i32>, String) {
        match outcome {
            Outcome::Failed { execution, error } => (execution.exit_code, error),
            Outcome::Succeeded { .. } => panic!("expected a failure"),
        }
    }

    #[test]
    fn question_mark_works_on_any_error_and_its_chain_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let (code, error) = failure(run_read_file(missing.to_str().unwrap()));
        assert_eq!(code, Some(1));
        assert!(
            error.starts_with("reading the input: No such file or directory"),
            "{error}"
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "x").unwrap();
        assert_eq!(
            failure(run_read_file(bad.to_str().unwrap())).1,
            "invalid digit found in string"
        );
        std::fs::write(&bad, "0").unwrap();
        assert_eq!(
            failure(run_read_file(bad.to_str().unwrap())).1,
            "the input is zero"
        );
        std::fs::write(&bad, "7").unwrap();
        assert!(matches!(
            run_read_file(bad.to_str().unwrap()),
            Outcome::Succeeded { .. }
        ));
    }

    #[test]
    fn undecodable_arguments_fail_with_the_reason() {
        let ctx = JobContext::new(1, None, CancelToken::new());
        let out = TypedHandler::<Wait>(PhantomData).run(&job("not json"), &ctx);
        let Outcome::Failed { error, .. } = out else {
            panic!("expected failure");
        };
        assert!(
            error.starts_with("cannot decode the wait job's arguments"),
            "{error}"
        );
    }
}
