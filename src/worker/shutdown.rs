//! The stop signals of the worker runtime: [`CancelToken`] and [`Shutdown`].
//!
//! A token is a sticky flag under a mutex + condvar rather than a channel because every
//! waiter here waits *with a timeout* (a heartbeat period, a lease third) and many threads
//! may wait on one event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A sticky "stop now" flag that threads can check, wait on, and chain.
///
/// Cloning gives another handle to the same flag. [`CancelToken::child`] makes a token that
/// is cancelled whenever its parent is (but not the other way round): the pool gives every
/// running job a child of the shutdown's immediate token, so a second signal reaches every
/// job while a lost lease cancels only its own job.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<TokenInner>,
}

#[derive(Debug, Default)]
struct TokenInner {
    cancelled: AtomicBool,
    state: Mutex<TokenState>,
    cond: Condvar,
}

#[derive(Default)]
struct TokenState {
    children: Vec<Weak<TokenInner>>,
    callbacks: Vec<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for TokenState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenState")
            .field("children", &self.children.len())
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}

impl CancelToken {
    /// A fresh, not cancelled token.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A new token that is cancelled when this one is (immediately, if it already is).
    #[must_use]
    pub fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        let mut state = self.inner.state.lock();
        // Read the flag under the lock: `cancel` sets it before taking the lock, so either we
        // see it here or `cancel` sees the child in the list.
        if self.is_cancelled() {
            drop(state);
            child.cancel();
        } else {
            // Drop the finished children only when the list is full: pruning on every call
            // would scan every running job's token for each new one (the pool makes one
            // per job). This way the list stays within twice the live children, amortised.
            if state.children.len() == state.children.capacity() {
                state.children.retain(|w| w.strong_count() > 0);
            }
            state.children.push(Arc::downgrade(&child.inner));
        }
        child
    }

    /// Calls `f` once when this token is cancelled (at once, if it already is), on the
    /// cancelling thread. Keep it short: it runs inside [`CancelToken::cancel`].
    pub fn on_cancel(&self, f: impl FnOnce() + Send + 'static) {
        let mut state = self.inner.state.lock();
        if self.is_cancelled() {
            drop(state);
            f();
        } else {
            state.callbacks.push(Box::new(f));
        }
    }

    /// Cancels this token and all its children; wakes every waiter. Idempotent.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let (children, callbacks) = {
            let mut state = self.inner.state.lock();
            self.inner.cond.notify_all();
            (
                std::mem::take(&mut state.children),
                std::mem::take(&mut state.callbacks),
            )
        };
        for child in children.iter().filter_map(Weak::upgrade) {
            CancelToken { inner: child }.cancel();
        }
        for f in callbacks {
            f();
        }
    }

    /// Whether the token was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Sleeps up to `timeout`, returning early when the token is cancelled; returns whether
    /// it is cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            // An "infinite" timeout: wait in long slices, re-checking.
            loop {
                if self.wait_timeout(Duration::from_secs(3600)) {
                    return true;
                }
            }
        };
        let mut state = self.inner.state.lock();
        while !self.is_cancelled() {
            if self.inner.cond.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        self.is_cancelled()
    }
}

/// How a worker pool should stop: shared between the pool and whoever stops it (signal
/// handlers, a test, an embedding program).
///
/// - [`Shutdown::request_graceful`]: finish the running jobs, claim nothing new, exit.
/// - [`Shutdown::request_immediate`]: kill the running jobs' process groups, give their
///   jobs back to `pending` without charging an attempt, exit.
///
/// One `Shutdown` may drive several pools; clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    graceful: CancelToken,
    immediate: CancelToken,
}

impl Shutdown {
    /// A shutdown handle nothing has been requested on yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Finish running jobs, claim nothing new, exit.
    pub fn request_graceful(&self) {
        self.graceful.cancel();
    }

    /// Stop at once: running jobs are killed and released back to `pending` uncharged.
    pub fn request_immediate(&self) {
        // An immediate stop is also a graceful one: claim nothing new.
        self.graceful.cancel();
        self.immediate.cancel();
    }

    /// Whether any stop (graceful or immediate) was requested.
    #[must_use]
    pub fn is_requested(&self) -> bool {
        self.graceful.is_cancelled()
    }

    /// Whether an immediate stop was requested.
    #[must_use]
    pub fn is_immediate(&self) -> bool {
        self.immediate.is_cancelled()
    }

    /// The token cancelled by any stop request.
    #[must_use]
    pub fn graceful_token(&self) -> &CancelToken {
        &self.graceful
    }

    /// The token cancelled by an immediate stop request.
    #[must_use]
    pub fn immediate_token(&self) -> &CancelToken {
        &self.immediate
    }

    /// Routes SIGTERM and SIGINT to this handle: the first one requests a graceful stop,
    /// any later one an immediate stop. SIGHUP is left alone, so `nohup` keeps working.
    ///
    /// The signals no longer terminate the process once this is installed. A background
    /// thread named `queuectl-signals` handles them for the rest of the process's life.
    /// Install once per process: two handlers would turn the first signal into an
    /// immediate stop.
    ///
    /// # Errors
    /// If handlers were already installed in this process, or they cannot be registered,
    /// or the thread cannot be spawned.
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        static INSTALLED: AtomicBool = AtomicBool::new(false);
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "stop-signal handlers are already installed in this process",
            ));
        }
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let shutdown = self.clone();
        std::thread::Builder::new()
            .name("queuectl-signals".to_owned())
            .spawn(move || {
                for signal in signals.forever() {
                    if shutdown.is_requested() {
                        tracing::warn!(signal, "second stop signal: stopping at once");
                        shutdown.request_immediate();
                    } else {
                        tracing::info!(
                            signal,
                            "stop signal: finishing running jobs (signal again to stop at once)"
                        );
                        shutdown.request_graceful();
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_a_parent_cancels_children_but_not_the_reverse() {
        let parent = CancelToken::new();
        let a = parent.child();
        let b = parent.child();
        b.cancel();
        assert!(!parent.is_cancelled());
        assert!(!a.is_cancelled());
        parent.cancel();
        assert!(a.is_cancelled());
        let late = parent.child();
        assert!(late.is_cancelled());
    }

    #[test]
    fn wait_timeout_wakes_on_cancel_from_another_thread() {
        let token = CancelToken::new();
        let t2 = token.clone();
        let h = std::thread::spawn(move || t2.wait_timeout(Duration::from_secs(60)));
        token.cancel();
        assert!(h.join().unwrap());
        assert!(!CancelToken::new().wait_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn callbacks_run_once_on_cancel() {
        use std::sync::atomic::AtomicU32;
        let token = CancelToken::new();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        token.child().cancel();
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        token.cancel();
        token.cancel();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let c = calls.clone();
        token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "runs at once when already cancelled"
        );
    }

    #[test]
    fn immediate_implies_graceful() {
        let s = Shutdown::new();
        assert!(!s.is_requested());
        s.request_immediate();
        assert!(s.is_requested() && s.is_immediate());
        let g = Shutdown::new();
        g.request_graceful();
        assert!(g.is_requested() && !g.is_immediate());
    }
}
