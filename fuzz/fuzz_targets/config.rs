//! Campaign-file parsing and validation: see `bullseye::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bullseye::fuzzing::config(data));
