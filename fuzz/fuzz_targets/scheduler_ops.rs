//! Op sequences against the scheduler over a MemoryStore, compared with the reference
//! model of `queuectl::testing::model` (the model proptest's runner).
#![no_main]

// Each target uses one of the harness functions.
#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::scheduler_ops(data));
