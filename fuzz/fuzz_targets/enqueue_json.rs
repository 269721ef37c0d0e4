//! Job JSON parsing (`queuectl enqueue`) never panics and only accepts valid jobs.
#![no_main]

// Each target uses one of the harness functions.
#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::enqueue_json(data));
