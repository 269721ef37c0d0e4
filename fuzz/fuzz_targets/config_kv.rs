//! `queuectl config set KEY VALUE` validation never panics and normalises to a fixed point.
#![no_main]

// Each target uses one of the harness functions.
#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::config_kv(data));
