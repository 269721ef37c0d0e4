//! The conformance suite every [`JobStore`] must pass.
//!
//! Test bodies are ordinary generic functions, grouped by role in modules; the
//! [`store_conformance!`] macro lists every case once and expands one `#[test]` per case,
//! so adding a case here runs it against every store. Each store has exactly one call
//! site, `backends/<store>/tests/conformance.rs`:
//!
//! ```ignore
//! fn make() -> queuectl_store_conformance::TestStore<MyStore> { TestStore::new(MyStore::new()) }
//! queuectl_store_conformance::store_conformance!(make);
//! ```
//!
//! A case that needs an optional capability checks [`JobStore::capabilities`] and returns
//! early with an `eprintln!` saying why.
#![warn(missing_docs)]

use std::any::Any;
use std::ops::Deref;

use queuectl_store::JobStore;

pub mod fixture;

/// A store under test plus whatever must outlive it (a temp dir, a schema guard).
pub struct TestStore<S> {
    store: S,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl<S: JobStore> TestStore<S> {
    /// A store that needs nothing kept alive.
    pub fn new(store: S) -> Self {
        TestStore {
            store,
            _guard: None,
        }
    }

    /// A store with a guard dropped after it (e.g. `tempfile::TempDir`).
    pub fn with_guard(store: S, guard: impl Any + Send + Sync) -> Self {
        TestStore {
            store,
            _guard: Some(Box::new(guard)),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S> Deref for TestStore<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

/// Expands one `#[test]` per conformance case, each calling `$make()` for a fresh store.
///
/// `$make` is a path to a `fn() -> TestStore<S>`.
#[macro_export]
macro_rules! store_conformance {
    ($make:path) => {
        $crate::store_conformance!(@cases $make;
            // enqueue
            enqueue_then_get_round_trips,
            // claim
            claim_filters_by_queues_and_empty_means_all,
            claim_gives_each_call_a_fresh_token,
            claim_ignores_jobs_in_unclaimable_states,
            claim_orders_by_priority_then_next_run_at_then_insertion,
            claim_respects_limit,
            claim_skips_jobs_due_in_the_future,
            claim_stamps_worker_token_lease_and_start,
            claim_takes_failed_jobs_only_after_retry_at,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$case($make());
            }
        )*
    };
}

pub mod cases {
    //! Every case, re-exported flat for the macro.
    pub use crate::claim::*;
    pub use crate::enqueue::*;
}

mod claim;
mod enqueue;
