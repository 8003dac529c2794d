#![no_main]
//! `cargo fuzz run wire`: see conc_fuzz::wire.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conc_fuzz::wire(data));
