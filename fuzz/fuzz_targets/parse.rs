#![no_main]
//! `cargo fuzz run parse`: see conc_fuzz::parse.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conc_fuzz::parse(data));
