//! A store decorator for tests that stage an interleaving: a hook sees every call (with the
//! inner store) before it is forwarded, and can change the inner store's state first, as
//! another worker or process would in between.

use std::fmt;

use queuectl_store::{Call, Decorator, JobStore, StoreResult};

/// Runs before every call, with the inner store; an error fails the call.
pub(crate) type BeforeHook<S> = Box<dyn Fn(&S, &Call<'_>) -> StoreResult<()> + Send + Sync>;

/// The inner store, with a hook run before each call.
pub(crate) struct Intercept<S> {
    inner: S,
    before: BeforeHook<S>,
}

impl<S: JobStore> Intercept<S> {
    /// Wraps `inner`; `before` runs ahead of every call.
    pub(crate) fn new(
        inner: S,
        before: impl Fn(&S, &Call<'_>) -> StoreResult<()> + Send + Sync + 'static,
    ) -> Self {
        Intercept {
            inner,
            before: Box::new(before),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Intercept<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercept")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: JobStore> Decorator for Intercept<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    fn before(&self, call: &Call<'_>) -> StoreResult<()> {
        (self.before)(&self.inner, call)
    }
}
