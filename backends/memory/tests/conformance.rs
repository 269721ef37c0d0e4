//! The shared conformance suite, run against a fresh `MemoryStore` per case.

use queuectl_store_conformance::TestStore;
use queuectl_store_memory::MemoryStore;

fn make() -> TestStore<MemoryStore> {
    TestStore::new(MemoryStore::new())
}

queuectl_store_conformance::store_conformance!(make);
