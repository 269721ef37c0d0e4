//! The conformance suite every [`JobStore`] must pass, and [`FaultyStore`] for
//! fault-injection tests.
//!
//! Test bodies are ordinary generic functions, grouped by role in modules (`enqueue`,
//! `claim`, `finish`, `rescue`, `admin`, `cancel`, `operate`, `overview`, `queue`, `concurrency`, `schedule`, `options`, `deps`, `version`); the [`store_conformance!`] macro
//! lists every case once and expands one `#[test]` per case, so adding a case here runs it
//! against every store. Each store has exactly one call site,
//! `backends/<store>/tests/conformance.rs`:
//!
//! ```ignore
//! use queuectl_store_conformance::TestStore;
//!
//! fn make() -> TestStore<MyStore> {
//!     TestStore::new(MyStore::new())
//! }
//!
//! queuectl_store_conformance::store_conformance!(make);
//! ```
//!
//! Every case gets a fresh, empty store from the factory, sets up what it needs through the
//! trait (fixtures in any state go in through [`Jobs::import`](queuectl_store::Jobs::import), see [`fixture`]) and
//! pins down one sentence of the trait's contract in `queuectl-store`. A case that needs an
//! optional capability checks [`Jobs::capabilities`](queuectl_store::Jobs::capabilities) (or an `Unsupported` answer such as
//! [`ChangeFeed::change_marker`](queuectl_store::ChangeFeed::change_marker)) and returns early with an `eprintln!` saying why.
//!
//! Cases that race threads retry a call that fails with a transient error
//! ([`queuectl_store::StoreError::is_transient`]), as the scheduler would.
#![warn(missing_docs)]

use std::any::Any;
use std::ops::Deref;

use queuectl_store::JobStore;

pub use crate::faulty::{Fault, FaultyStore};

mod admin;
mod cancel;
mod claim;
mod concurrency;
mod deps;
mod enqueue;
mod faulty;
mod finish;
pub mod fixture;
mod live;
mod operate;
mod options;
mod overview;
mod queue;
mod rescue;
mod schedule;
mod version;

pub mod cases {
    //! Every case, re-exported flat for the macro.
    pub use crate::admin::*;
    pub use crate::cancel::*;
    pub use crate::claim::*;
    pub use crate::concurrency::*;
    pub use crate::deps::*;
    pub use crate::enqueue::*;
    pub use crate::finish::*;
    pub use crate::live::*;
    pub use crate::operate::*;
    pub use crate::options::*;
    pub use crate::overview::*;
    pub use crate::queue::*;
    pub use crate::rescue::*;
    pub use crate::schedule::*;
    pub use crate::version::*;
}

/// The name of every case [`store_conformance!`] runs, in the order it lists them.
pub const CASE_NAMES: &[&str] = store_conformance!(@names);

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
/// `$make` is a path to a `fn() -> TestStore<S>`. For a store that needs an external
/// server, `store_conformance!(optional make)` takes a `fn() -> Option<TestStore<S>>`
/// instead: each case returns early (passing) when it gives `None`, after the factory
/// printed why. The list of cases lives here, once;
/// `store_conformance!(@names)` expands to the same list as `&[&str]` ([`CASE_NAMES`]).
#[macro_export]
macro_rules! store_conformance {
    (@names) => {
        $crate::store_conformance!(@list (@names_of))
    };
    (@list ($($mode:tt)*)) => {
        $crate::store_conformance! { $($mode)*;
            // enqueue.rs
            enqueue_many_stores_every_job_in_order,
            enqueue_many_with_a_duplicate_inside_the_batch_stores_nothing,
            enqueue_many_with_an_existing_id_stores_nothing,
            enqueue_of_a_duplicate_id_is_a_conflict_and_leaves_the_stored_job_untouched,
            enqueue_stores_every_field_of_the_new_job,
            enqueue_then_get_round_trips,
            import_is_all_or_nothing_on_a_duplicate_id,
            import_round_trips_full_records_in_every_state,
            timestamps_round_trip_exactly_at_millisecond_precision,
            unicode_and_very_long_strings_round_trip,
            // claim.rs
            claim_filters_by_queues_and_empty_means_all,
            claim_gives_each_call_a_fresh_token,
            claim_ignores_jobs_in_unclaimable_states,
            claim_orders_by_priority_then_next_run_at_then_insertion,
            claim_respects_limit,
            claim_skips_jobs_due_in_the_future,
            claim_stamps_worker_token_lease_and_start,
            claim_takes_failed_jobs_only_after_retry_at,
            // finish.rs
            finish_abandoned_dead_letters_the_job_without_charging_an_attempt,
            finish_completed_charges_an_attempt_and_clears_last_error,
            finish_dead_charges_an_attempt_and_dead_letters_the_job,
            finish_failed_charges_an_attempt_and_schedules_the_retry,
            finish_is_stale_after_the_lease_was_recovered_and_reclaimed,
            finish_of_a_batch_returns_one_result_per_item_in_order,
            finish_on_a_job_that_is_not_processing_is_stale,
            finish_on_a_missing_job_is_stale,
            finish_recovered_returns_the_job_to_pending_without_charging_an_attempt,
            finish_released_returns_the_job_to_pending_charging_nothing,
            finish_twice_with_the_same_token_is_stale_the_second_time,
            finish_with_a_wrong_token_is_stale_and_changes_nothing,
            // live.rs
            every_attempt_keeps_its_output_in_history,
            live_output_is_capped_keeping_the_tail,
            live_output_is_published_under_the_claim_and_read_back,
            put_live_output_is_guarded_by_the_claim_token,
            // rescue.rs
            expired_lease_can_be_recovered_and_claimed_again_uncharged,
            expired_leases_honours_limit,
            expired_leases_lists_only_processing_jobs_past_their_lease_oldest_first,
            lease_guarded_recovery_applies_to_an_expired_lease,
            lease_guarded_recovery_is_stale_after_a_renewal,
            renew_leases_extends_held_leases_and_reports_stale_ones,
            renew_leases_is_stale_after_the_lease_was_recovered,
            // cancel.rs
            any_reported_execution_of_a_cancel_requested_job_ends_it_cancelled,
            cancel_after_the_finish_landed_names_the_final_state,
            cancel_of_a_processing_job_records_a_request_and_keeps_it_running,
            concurrent_cancel_and_finish_resolve_to_one_outcome,
            recovery_or_release_of_a_cancel_requested_job_ends_it_cancelled,
            // admin.rs
            cancel_moves_pending_and_failed_jobs_to_cancelled,
            cancel_rejects_other_states_and_unknown_ids,
            counts_tally_jobs_by_state,
            get_and_get_record_of_an_unknown_id_are_not_found,
            list_filters_by_state_and_queue_in_insertion_order_up_to_limit,
            prune_deletes_only_terminal_jobs_older_than_before,
            prune_honours_limit,
            requeue_all_dead_requeues_every_dead_job_and_counts_them,
            requeue_dead_rejects_other_states_and_unknown_ids,
            requeue_dead_resets_counters_and_keeps_command_and_history,
            settings_round_trip_and_list_sorted_by_key,
            worker_heartbeat_reports_stop_requests_and_unknown_workers,
            workers_register_list_and_deregister,
            // operate.rs
            delete_refuses_a_processing_job_and_unknown_ids,
            delete_removes_the_job_with_its_output_and_history,
            find_ids_by_prefix_matches_literally_in_byte_order_up_to_limit,
            prune_finished_deletes_only_the_requested_states_older_than_before,
            prune_finished_honours_limit_oldest_first_and_dry_run,
            requeue_from_states_leaves_a_job_that_changed_state_meanwhile,
            requeue_from_states_resets_each_retryable_state_keeping_history,
            // overview.rs
            attempt_stats_of_a_store_without_attempts_is_empty,
            attempt_stats_summarise_finished_attempts_per_queue,
            page_filters_by_state_queue_and_search,
            list_after_pages_through_what_list_returns_in_insertion_order,
            page_returns_newest_first_and_continues_below_the_cursor,
            queue_stats_counts_each_queue_by_state_sorted_by_name,
            queue_stats_oldest_due_is_the_earliest_due_pending_job,
            // queue.rs
            claim_keeps_claim_order_across_limited_and_other_queues,
            claim_of_a_limited_queue_skips_jobs_not_due_and_queues_not_served,
            claim_skips_a_paused_queue_even_with_room_under_its_limit,
            claim_skips_paused_queues_and_takes_other_queues_in_their_place,
            claim_takes_at_most_the_room_a_limited_queue_has_left,
            claim_takes_nothing_from_a_queue_at_or_over_its_limit,
            concurrent_claimers_never_exceed_a_queue_limit,
            queue_settings_change_one_setting_at_a_time_and_keep_only_non_defaults,
            // concurrency.rs
            change_marker_changes_after_job_writes,
            concurrent_claims_never_return_the_same_job,
            concurrent_enqueues_of_one_id_store_it_exactly_once,
            concurrent_finishes_of_one_claim_apply_exactly_once,
            // schedule.rs
            concurrent_fires_of_one_time_enqueue_exactly_once,
            fire_schedule_inserts_its_job_only_if_absent,
            fire_schedule_is_guarded_by_the_next_run_at_it_read,
            schedules_pause_resume_and_delete,
            schedules_round_trip_list_by_name_and_put_replaces,
            // options.rs
            a_unique_key_is_free_again_once_its_holder_completed,
            concurrent_enqueues_of_one_unique_key_store_exactly_one_job,
            enqueue_batch_skips_a_job_whose_unique_key_is_held,
            job_options_round_trip_through_enqueue_get_list_and_claim,
            requeue_dead_refuses_a_job_whose_unique_key_is_held,
            // version.rs
            check_schema_version_passes_on_a_store_this_build_opened,
            // deps.rs
            a_batch_may_name_earlier_jobs_and_a_held_one_stands_for_its_holder,
            a_completed_parent_is_met_for_good,
            a_dependant_is_claimable_only_once_every_parent_completed,
            a_parent_cancelled_while_running_cancels_its_dependants,
            a_parent_that_cannot_complete_cancels_its_dependants_transitively,
            a_released_dependant_is_due_from_its_release,
            a_retried_dependant_waits_again_or_is_refused_naming_the_parent,
            an_enqueue_with_dependencies_of_a_taken_id_is_a_conflict,
            dependants_enqueued_while_the_parent_completes_are_never_stranded,
            enqueue_refuses_parents_it_cannot_wait_for_storing_nothing,
        }
    };
    (@names_of; $($case:ident),* $(,)?) => {
        &[$(stringify!($case)),*]
    };
    (@tests $make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$case($make());
            }
        )*
    };
    (@optional_tests $make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                // The factory prints why it has no store (e.g. no server configured).
                if let Some(store) = $make() {
                    $crate::cases::$case(store);
                }
            }
        )*
    };
    (optional $make:path) => {
        $crate::store_conformance! { @list (@optional_tests $make) }
    };
    ($make:path) => {
        $crate::store_conformance! { @list (@tests $make) }
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// A `pub fn` added to a case module but not to the macro would never run.
    #[test]
    fn the_macro_lists_every_case_exactly_once() {
        let sources = [
            include_str!("admin.rs"),
            include_str!("cancel.rs"),
            include_str!("claim.rs"),
            include_str!("concurrency.rs"),
            include_str!("deps.rs"),
            include_str!("enqueue.rs"),
            include_str!("finish.rs"),
            include_str!("live.rs"),
            include_str!("operate.rs"),
            include_str!("options.rs"),
            include_str!("overview.rs"),
            include_str!("queue.rs"),
            include_str!("rescue.rs"),
            include_str!("schedule.rs"),
            include_str!("version.rs"),
        ];
        let defined: BTreeSet<&str> = sources
            .iter()
            .flat_map(|src| src.lines())
            .filter_map(|line| line.strip_prefix("pub fn "))
            .filter_map(|rest| rest.split('<').next())
            .collect();
        let listed: BTreeSet<&str> = super::CASE_NAMES.iter().copied().collect();
        assert_eq!(
            listed.len(),
            super::CASE_NAMES.len(),
            "a case is listed twice"
        );
        assert_eq!(defined, listed);
    }
}
