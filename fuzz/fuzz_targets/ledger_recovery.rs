//! Ledger recovery over corrupt and torn tails: see `bullseye::fuzzing::ledger_recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bullseye::fuzzing::ledger_recovery(data));
