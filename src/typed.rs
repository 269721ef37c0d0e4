//! Typed jobs: Rust structs as jobs, run in-process by a [`WorkerPool`].
//!
//! A job type implements [`TypedJob`]: its fields are the job's arguments (stored as JSON in
//! the job's `command`), [`TypedJob::KIND`] names it (stored as the job's `kind`) and
//! [`TypedJob::run`] does the work. [`enqueue_typed`] stores one; the pool runs it once
//! [`WorkerPoolBuilder::typed`] registered the type. Retries, backoff, the dead-letter
//! queue, priorities and queues work exactly as for shell jobs.
//!
//! In-process code cannot be killed, so timeouts and cancellation are cooperative: `run`
//! should check [`JobContext::should_stop`] (or wait with [`JobContext::sleep`]) and return
//! an error when it is true. An error returned after the timeout passed is recorded as a
//! timeout (`exit_code` 124, "timeout after Ns"); a success is a success even if late.
//! Otherwise a typed job records `exit_code` 0 on success and 1 on failure, with the
//! returned message as its error; a panic is a failure too.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use queuectl::typed::{enqueue_typed, TypedJob};
//! use queuectl::worker::{JobContext, Shutdown, WorkerPool};
//! use queuectl::prelude::*;
//! use queuectl::{EnqueueRequest, JobState, Scheduler};
//! use queuectl_store_memory::MemoryStore;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail {
//!     to: String,
//! }
//!
//! impl TypedJob for SendEmail {
//!     const KIND: &'static str = "send-email";
//!
//!     fn run(&self, ctx: &JobContext) -> Result<(), String> {
//!         if self.to.contains('@') {
//!             Ok(())
//!         } else {
//!             Err(format!("attempt {}: bad address {}", ctx.attempt(), self.to))
//!         }
//!     }
//! }
//!
//! # fn main() -> queuectl::Result<()> {
//! let scheduler = Scheduler::new(Arc::new(MemoryStore::new()));
//! let good = enqueue_typed(&scheduler, &SendEmail { to: "a@example.com".into() },
//!     EnqueueRequest::default())?;
//! let bad = enqueue_typed(&scheduler, &SendEmail { to: "nobody".into() },
//!     EnqueueRequest { max_retries: Some(1), ..EnqueueRequest::default() })?;
//!
//! // Drain mode: run until nothing is left to do, then return.
//! let report = WorkerPool::builder(scheduler.clone())
//!     .typed::<SendEmail>()
//!     .drain(true)
//!     .poll_interval(Duration::from_millis(10))
//!     .build()
//!     .run(&Shutdown::new())?;
//!
//! assert_eq!((report.succeeded, report.failed), (1, 1));
//! assert_eq!(scheduler.store().get(&good)?.state, JobState::Completed);
//! let bad = scheduler.store().get(&bad)?;
//! assert_eq!(bad.state, JobState::Dead);
//! assert_eq!(bad.last_error.as_deref(), Some("attempt 1: bad address nobody"));
//! # Ok(())
//! # }
//! ```
//!
//! [`WorkerPool`]: crate::worker::WorkerPool
//! [`WorkerPoolBuilder::typed`]: crate::worker::WorkerPoolBuilder::typed
//! [`JobContext::should_stop`]: crate::worker::JobContext::should_stop
//! [`JobContext::sleep`]: crate::worker::JobContext::sleep

use std::marker::PhantomData;

use queuectl_store::{Execution, Job, JobId, JobStore};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::scheduler::{EnqueueRequest, Outcome, Scheduler};
use crate::worker::{Handler, JobContext, WorkerPoolBuilder};

/// A job type: its arguments, its kind name and what it does. See the [module docs](self).
pub trait TypedJob: Serialize + DeserializeOwned + 'static {
    /// The job's `kind` in the store; unique among the types a pool runs, and not `"shell"`.
    const KIND: &'static str;

    /// Does the work once. `Err` fails this attempt with the message as its error.
    ///
    /// # Errors
    /// Whatever went wrong, for people; it becomes the job's `last_error`.
    fn run(&self, ctx: &JobContext) -> std::result::Result<(), String>;
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
            Err(message) if ctx.timed_out() => {
                tracing::debug!(job = %job.id, %message, "typed job timed out");
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
                error,
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
        fn run(&self, ctx: &JobContext) -> std::result::Result<(), String> {
            if ctx.sleep(Duration::from_millis(self.ms)) {
                Err("stopped".to_owned())
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
