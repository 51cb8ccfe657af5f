//! The whole bid path in process (bundled config): see `bullseye::fuzzing::bid_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bullseye::fuzzing::bid_path(data));
