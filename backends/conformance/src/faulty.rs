//! [`FaultyStore`]: a decorator that makes a chosen call fail, for fault-injection tests.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use queuectl_store::{Call, Decorator, JobStore, StoreError, StoreResult};

/// Which error an injected fault returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// [`StoreError::Busy`]: transient, the caller may retry.
    Busy,
    /// [`StoreError::Backend`]: a driver failure that is not transient.
    Backend,
    /// The call **takes effect** in the inner store, then the caller gets
    /// [`StoreError::Busy`]: a commit whose acknowledgement was lost (a connection that
    /// dropped after `COMMIT` reached the server). What a caller that retries re-sends.
    LostAck,
}

impl Fault {
    fn to_u8(self) -> u8 {
        match self {
            Fault::Busy => 1,
            Fault::Backend => 2,
            Fault::LostAck => 3,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            2 => Fault::Backend,
            3 => Fault::LostAck,
            _ => Fault::Busy,
        }
    }

    fn error(self, call: u64, method: &str) -> StoreError {
        let message = format!("injected fault on call {call} ({method})");
        match self {
            Fault::Busy => StoreError::Busy(message),
            Fault::LostAck => StoreError::Busy(format!("{message}, after it took effect")),
            Fault::Backend => StoreError::Backend {
                message,
                source: None,
            },
        }
    }
}

/// Wraps a store and fails one chosen call with a [`Fault`], like redb's `FuzzerBackend`;
/// a [`Decorator`], so it forwards every call it does not fail.
///
/// Every fallible trait call is counted (`capabilities` cannot fail and is not). When the
/// armed call comes, the wrapper returns the fault **without calling the inner store**, so a
/// failed call changed nothing, which is what the trait promises for driver failures;
/// except [`Fault::LostAck`], which lets the call take effect and fails it afterwards. A
/// fault is armed by call number ([`FaultyStore::fail_nth_call`]) or for the next call of
/// one method ([`FaultyStore::fail_next_call_to`]). A fault fires once; arm it again for
/// another. Disarmed, the wrapper is transparent (the
/// conformance suite passes through it).
///
/// ```
/// use queuectl_store::prelude::*;
/// use queuectl_store::{JobFilter, StoreError};
/// use queuectl_store_conformance::{Fault, FaultyStore};
/// use queuectl_store_memory::MemoryStore;
///
/// let store = FaultyStore::new(MemoryStore::new());
/// store.fail_nth_call(2, Fault::Busy);
/// assert!(store.counts().is_ok());
/// assert!(matches!(store.list(&JobFilter::default()), Err(StoreError::Busy(_))));
/// assert!(store.counts().is_ok(), "a fault fires once");
/// assert_eq!((store.calls(), store.faults_injected()), (3, 1));
/// ```
pub struct FaultyStore<S> {
    inner: S,
    calls: AtomicU64,
    /// The absolute number of the call to fail; 0 when disarmed.
    fail_at: AtomicU64,
    fault: AtomicU8,
    injected: AtomicU64,
    /// A fault armed for the next call of a method, by name.
    by_method: Mutex<Option<(&'static str, Fault)>>,
}

thread_local! {
    /// The call this thread is making must fail once the inner store returns
    /// ([`Fault::LostAck`]): set by `before`, taken by `after` of the same call.
    static LOST_ACK: Cell<Option<u64>> = const { Cell::new(None) };
}

impl<S: JobStore> FaultyStore<S> {
    /// Wraps `inner`, disarmed.
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            calls: AtomicU64::new(0),
            fail_at: AtomicU64::new(0),
            fault: AtomicU8::new(Fault::Busy.to_u8()),
            injected: AtomicU64::new(0),
            by_method: Mutex::new(None),
        }
    }

    /// Arms a fault for the next call of the trait method `method` (as
    /// [`queuectl_store::Call::name`] spells it: `"finish"`, `"claim"`…), whatever its
    /// number, replacing any fault armed this way.
    pub fn fail_next_call_to(&self, method: &'static str, fault: Fault) {
        *self.by_method.lock().unwrap_or_else(|e| e.into_inner()) = Some((method, fault));
    }

    /// Arms a fault for the `n`-th call from now (1 = the next call), replacing any armed
    /// fault; `n = 0` disarms.
    pub fn fail_nth_call(&self, n: u64, fault: Fault) {
        self.fault.store(fault.to_u8(), Ordering::SeqCst);
        let target = if n == 0 {
            0
        } else {
            self.calls.load(Ordering::SeqCst).saturating_add(n)
        };
        self.fail_at.store(target, Ordering::SeqCst);
    }

    /// Disarms any pending fault.
    pub fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
        *self.by_method.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether a fault is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        self.fail_at.load(Ordering::SeqCst) != 0
            || self
                .by_method
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
    }

    /// How many fallible calls were made so far, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many faults fired so far.
    pub fn faults_injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// The wrapped store, for checking its state behind the wrapper's back.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Counts a call and returns the fault if this is the armed one (a lost
    /// acknowledgement is only noted here, and returned by [`FaultyStore::acknowledge`]).
    fn check(&self, method: &str) -> StoreResult<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        // Only the thread whose call number matches disarms, so a fault fires exactly once
        // even under concurrent calls.
        let mut fault = if self
            .fail_at
            .compare_exchange(call, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            Some(Fault::from_u8(self.fault.load(Ordering::SeqCst)))
        } else {
            None
        };
        if fault.is_none() {
            let mut armed = self.by_method.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((name, f)) = *armed {
                if name == method {
                    *armed = None;
                    fault = Some(f);
                }
            }
        }
        match fault {
            None => Ok(()),
            Some(Fault::LostAck) => {
                LOST_ACK.with(|c| c.set(Some(call)));
                Ok(())
            }
            Some(f) => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                Err(f.error(call, method))
            }
        }
    }

    /// After the inner call succeeded: the lost acknowledgement noted for this thread's
    /// call, if any.
    fn acknowledge(&self, method: &str) -> StoreResult<()> {
        match LOST_ACK.with(Cell::take) {
            Some(call) => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                Err(Fault::LostAck.error(call, method))
            }
            None => Ok(()),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultyStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("calls", &self.calls.load(Ordering::SeqCst))
            .field("fail_at", &self.fail_at.load(Ordering::SeqCst))
            .field("fault", &Fault::from_u8(self.fault.load(Ordering::SeqCst)))
            .finish()
    }
}

impl<S: JobStore> Decorator for FaultyStore<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    fn before(&self, call: &Call<'_>) -> StoreResult<()> {
        // A lost acknowledgement noted for a call whose inner store then failed is void.
        LOST_ACK.with(|c| c.set(None));
        self.check(call.name())
    }

    fn after(&self, call: &Call<'_>) -> StoreResult<()> {
        self.acknowledge(call.name())
    }
}
