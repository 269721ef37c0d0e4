//! The SQL core of queuectl's SQLite and PostgreSQL stores: one schema, one row mapping, and
//! every operation both dialects express alike, written once.
//!
//! `queuectl-store-sqlite` and `queuectl-store-postgres` keep only what their dialects truly
//! differ on: connection set-up and pragmas, the claim, the batched finish, bulk enqueue,
//! lease renewal in one statement (PostgreSQL), change notification and the migrations.
//! Everything else lives here:
//!
//! - [`schema`]: the tables, one `table!` for both dialects (their migrations create the
//!   same columns with the same encodings);
//! - [`row`]: rows ↔ store types, the only place that knows how a field is encoded;
//! - [`sqlite`] and [`pg`]: the shared operations (reads, lists, counts, cancel, requeue,
//!   prune, import, expired leases, settings, queue controls, the worker registry), each a function over a
//!   store's [`Session`], and the pieces the dialects' own statements share (what a claim
//!   writes, the row-by-row guarded transition, the schema check);
//! - [`shared_job_methods!`] and [`coordination_methods!`]: the trait methods that call them,
//!   expanded inside each store's `impl Jobs` and `impl Coordination`.
//!
//! # One body, two connection types
//!
//! The operations are written once, in `src/portable/`, as plain Diesel on a connection type
//! named `Conn`. That directory is compiled twice: as the module [`sqlite`] with
//! `Conn = SqliteConnection` (feature `sqlite`) and as [`pg`] with `Conn = PgConnection`
//! (feature `postgres`). Each copy is ordinary monomorphic code, type-checked against its
//! dialect (an operation one dialect cannot run fails to compile there) and as fast as a
//! hand-written one, with no trait bounds to spell and no runtime dispatch. Why this and not
//! functions generic over the Diesel backend or `#[derive(MultiConnection)]`:
//! `docs/DECISIONS.md`, "One SQL core for SQLite and PostgreSQL".
//!
//! # Features
//!
//! - `sqlite`: builds [`sqlite`] (Diesel's SQLite backend, with `RETURNING`).
//! - `postgres`: builds [`pg`] (Diesel's PostgreSQL backend, which links libpq).
//!
//! Neither is on by default: each store enables its own, so a build without the PostgreSQL
//! store compiles no libpq.
//!
//! This crate is the stores' internals, published only because they depend on it; its API
//! follows theirs and promises nothing to anyone else.
#![warn(missing_docs)]

mod error;
mod outcome;
mod plan;
pub mod row;
pub mod schema;
mod session;
pub mod version;

pub use crate::error::Failure;
pub use crate::outcome::{guarded, reject_repeats, Finished};
pub use crate::plan::{first_in_claim_order, Candidate, ClaimPlan};
pub use crate::session::Session;

/// The crates the macros name, under paths that do not depend on how the calling crate
/// imports them.
#[doc(hidden)]
pub use diesel as __diesel;
#[doc(hidden)]
pub use queuectl_store as __store;

#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Makes a hand-written statement type of one dialect (a `QueryFragment` of its backend)
/// something Diesel loads on `$conn`, with rows of SQL type `$sql_type`, and caches as a
/// prepared statement keyed by its SQL text (the text may vary, e.g. with an optional
/// filter, so there is no static query id). For example the PostgreSQL claim:
/// `queuectl_store_sql::statement!(ClaimQuery<'_>, PgConnection, Untyped);`.
#[macro_export]
macro_rules! statement {
    ($ty:ty, $conn:ty, $sql_type:ty) => {
        impl $crate::__diesel::query_builder::QueryId for $ty {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }

        impl $crate::__diesel::query_builder::Query for $ty {
            type SqlType = $sql_type;
        }

        impl $crate::__diesel::RunQueryDsl<$conn> for $ty {}
    };
}

/// Expands, inside a store's `impl queuectl_store::Jobs`, to the methods the core implements:
/// `expired_leases`, `cancel_requests`, `put_live_output`, `live_output`, `prune_finished`,
/// `cancel`, `counts`, `delete`, `find_ids_by_prefix`, `folded_attempts`, `get`,
/// `get_record`, `import`, `import_folded_attempts`, `list`,
/// `queue_stats`, `requeue_all_dead` and `requeue`, each calling the function of the same name in the
/// module named by `$dialect` ([`sqlite`] or [`pg`]) with the store as its [`Session`], and
/// `capabilities` (both dialects claim exclusively across processes). The store writes the
/// rest (`enqueue_many`, `claim`, `finish`, `finish_and_claim`, `renew_leases`) itself.
#[macro_export]
macro_rules! shared_job_methods {
    ($dialect:ident) => {
        fn expired_leases(
            &self,
            now: $crate::__store::Timestamp,
            limit: u32,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::Job>> {
            $crate::$dialect::expired_leases(self, now, limit)
        }

        fn put_live_output(
            &self,
            lease: &$crate::__store::LeaseRef,
            output: &$crate::__store::LiveOutput,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::Guarded> {
            $crate::$dialect::put_live_output(self, lease, output, now)
        }

        fn live_output(
            &self,
            id: &$crate::__store::JobId,
        ) -> $crate::__store::StoreResult<::std::option::Option<$crate::__store::LiveOutput>> {
            $crate::$dialect::live_output(self, id)
        }

        fn cancel_requests(
            &self,
            leases: &[$crate::__store::LeaseRef],
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::JobId>> {
            $crate::$dialect::cancel_requests(self, leases)
        }

        fn prune_finished(
            &self,
            req: &$crate::__store::PruneRequest,
        ) -> $crate::__store::StoreResult<u64> {
            $crate::$dialect::prune_finished(self, req)
        }

        fn cancel(
            &self,
            id: &$crate::__store::JobId,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::Job> {
            $crate::$dialect::cancel(self, id, now)
        }

        fn counts(&self) -> $crate::__store::StoreResult<$crate::__store::StateCounts> {
            $crate::$dialect::counts(self)
        }

        fn delete(
            &self,
            id: &$crate::__store::JobId,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::Job> {
            $crate::$dialect::delete(self, id, now)
        }

        fn find_ids_by_prefix(
            &self,
            prefix: &str,
            limit: u32,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::JobId>> {
            $crate::$dialect::find_ids_by_prefix(self, prefix, limit)
        }

        fn folded_attempts(
            &self,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::FoldedAttempts>> {
            $crate::$dialect::folded_attempts(self)
        }

        fn get(
            &self,
            id: &$crate::__store::JobId,
        ) -> $crate::__store::StoreResult<$crate::__store::Job> {
            $crate::$dialect::get(self, id)
        }

        fn get_record(
            &self,
            id: &$crate::__store::JobId,
        ) -> $crate::__store::StoreResult<$crate::__store::JobRecord> {
            $crate::$dialect::get_record(self, id)
        }

        fn import(
            &self,
            records: &[$crate::__store::JobRecord],
        ) -> $crate::__store::StoreResult<()> {
            $crate::$dialect::import(self, records)
        }

        fn import_folded_attempts(
            &self,
            folded: &[$crate::__store::FoldedAttempts],
        ) -> $crate::__store::StoreResult<()> {
            $crate::$dialect::import_folded_attempts(self, folded)
        }

        fn list(
            &self,
            filter: &$crate::__store::JobFilter,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::Job>> {
            $crate::$dialect::list(self, filter)
        }

        fn list_after(
            &self,
            filter: &$crate::__store::JobFilter,
            after: ::std::option::Option<$crate::__store::JobCursor>,
            limit: u32,
        ) -> $crate::__store::StoreResult<$crate::__store::JobPage> {
            $crate::$dialect::list_after(self, filter, after, limit)
        }

        fn page(
            &self,
            req: &$crate::__store::JobPageRequest,
        ) -> $crate::__store::StoreResult<$crate::__store::JobPage> {
            $crate::$dialect::page(self, req)
        }

        fn attempt_stats(
            &self,
            req: &$crate::__store::AttemptStatsRequest,
        ) -> $crate::__store::StoreResult<$crate::__store::AttemptStats> {
            $crate::$dialect::attempt_stats(self, req)
        }

        fn queue_stats(
            &self,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::QueueStats>> {
            $crate::$dialect::queue_stats(self, now)
        }

        fn requeue_all_dead(
            &self,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<u64> {
            $crate::$dialect::requeue_all_dead(self, now)
        }

        fn requeue(
            &self,
            id: &$crate::__store::JobId,
            from: &[$crate::__store::JobState],
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::Job> {
            $crate::$dialect::requeue(self, id, from, now)
        }

        fn capabilities(&self) -> $crate::__store::Capabilities {
            $crate::__store::Capabilities::none().with_multi_process(true)
        }
    };
}

/// Expands, inside a store's `impl queuectl_store::Coordination`, to every method of that
/// trait (settings and the worker registry), each calling the function of the same name in
/// the module named by `$dialect` ([`sqlite`] or [`pg`]) with the store as its [`Session`].
#[macro_export]
macro_rules! coordination_methods {
    ($dialect:ident) => {
        fn setting(&self, key: &str) -> $crate::__store::StoreResult<Option<String>> {
            $crate::$dialect::setting(self, key)
        }

        fn set_setting(
            &self,
            key: &str,
            value: &str,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<()> {
            $crate::$dialect::set_setting(self, key, value, now)
        }

        fn settings(&self) -> $crate::__store::StoreResult<::std::vec::Vec<(String, String)>> {
            $crate::$dialect::settings(self)
        }

        fn queue_settings(
            &self,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::QueueSettings>> {
            $crate::$dialect::queue_settings(self)
        }

        fn set_queue_settings(
            &self,
            queue: &str,
            change: $crate::__store::QueueChange,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::QueueSettings> {
            $crate::$dialect::set_queue_settings(self, queue, change, now)
        }

        fn deregister_worker(&self, worker_id: &str) -> $crate::__store::StoreResult<()> {
            $crate::$dialect::deregister_worker(self, worker_id)
        }

        fn heartbeat_worker(
            &self,
            worker_id: &str,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::Heartbeat> {
            $crate::$dialect::heartbeat_worker(self, worker_id, now)
        }

        fn list_workers(
            &self,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::WorkerInfo>> {
            $crate::$dialect::list_workers(self)
        }

        fn register_worker(
            &self,
            worker: &$crate::__store::WorkerInfo,
        ) -> $crate::__store::StoreResult<()> {
            $crate::$dialect::register_worker(self, worker)
        }

        fn request_stop(&self) -> $crate::__store::StoreResult<u64> {
            $crate::$dialect::request_stop(self)
        }

        fn delete_schedule(&self, name: &str) -> $crate::__store::StoreResult<bool> {
            $crate::$dialect::delete_schedule(self, name)
        }

        fn fire_schedule(
            &self,
            fire: &$crate::__store::ScheduleFire,
            now: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<$crate::__store::Fired> {
            $crate::$dialect::fire_schedule(self, fire, now)
        }

        fn list_schedules(
            &self,
        ) -> $crate::__store::StoreResult<::std::vec::Vec<$crate::__store::Schedule>> {
            $crate::$dialect::list_schedules(self)
        }

        fn put_schedule(
            &self,
            schedule: &$crate::__store::Schedule,
        ) -> $crate::__store::StoreResult<()> {
            $crate::$dialect::put_schedule(self, schedule)
        }

        fn set_schedule_paused(
            &self,
            name: &str,
            paused: bool,
            next_run_at: $crate::__store::Timestamp,
        ) -> $crate::__store::StoreResult<bool> {
            $crate::$dialect::set_schedule_paused(self, name, paused, next_run_at)
        }
    };
}
