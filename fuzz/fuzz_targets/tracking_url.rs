//! Tracking-URL verification, payload parsing, clearing prices, click ids: see `bullseye::fuzzing::tracking_url`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bullseye::fuzzing::tracking_url(data));
