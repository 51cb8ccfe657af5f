//! Request decoding and validation: see `bullseye::fuzzing::decode_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bullseye::fuzzing::decode_request(data));
