//! The root crate's error type.

use queuectl_store::StoreError;

/// What went wrong in a scheduler or configuration call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed or refused (not found, wrong state, conflict, busy, unreachable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A job's field has a wrong type or value; nothing was stored.
    #[error("invalid job: {field}: {message}")]
    InvalidJob {
        /// The offending field, as spelled in the job JSON.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A schedule (`cron add`) with a bad name, expression, zone or job; nothing was stored.
    #[error("{message}")]
    InvalidSchedule {
        /// What is wrong, for people.
        message: String,
    },
    /// An unknown configuration key or a bad value; the stored value is unchanged.
    #[error("{message}")]
    InvalidSetting {
        /// The key as given.
        key: String,
        /// What is wrong, naming the key and the accepted values.
        message: String,
    },
    /// The operating system refused something the runtime needs (a thread, a signal
    /// handler, a pipe).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A `--db` target that names no store queuectl knows.
    #[error("invalid store target '{target}': {message}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// Why it is not accepted.
        message: String,
    },
}

impl Error {
    /// The store error inside, if this is one.
    #[must_use]
    pub fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The result type of the root crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
