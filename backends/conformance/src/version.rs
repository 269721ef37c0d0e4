//! Cases for the store's schema version (`check_schema_version`). A store this build opened
//! (and migrated) is never "newer" than this build; the refusal of a store migrated by a
//! newer queuectl needs a foreign migration record, which only the CLI tests can plant
//! (tests/cli/version.rs), since each store records migrations its own way.

use queuectl_store::JobStore;

use crate::fixture::{new_job_with_id, T0};
use crate::TestStore;

/// A freshly opened store passes, before and after job and settings writes, and again on
/// every later call (a worker checks every few seconds).
pub fn check_schema_version_passes_on_a_store_this_build_opened<S: JobStore>(store: TestStore<S>) {
    store.check_schema_version().expect("fresh store");
    store.enqueue(&new_job_with_id("v1"), T0).expect("enqueue");
    store.set_setting("max-retries", "5", T0).expect("setting");
    for _ in 0..3 {
        store.check_schema_version().expect("after writes");
    }
}
