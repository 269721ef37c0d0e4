//! See `harness::duration`.
#![no_main]

// Each target uses one of the harness functions.
#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::duration(data));
