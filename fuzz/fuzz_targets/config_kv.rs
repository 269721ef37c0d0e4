//! `queuectl config set KEY VALUE` validation never panics and normalises to a fixed point.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::config_kv(data));
