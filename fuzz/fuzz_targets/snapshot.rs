//! Audience snapshot loading (corrupt files) and lookups: see `bullseye::fuzzing::snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bullseye::fuzzing::snapshot(data));
