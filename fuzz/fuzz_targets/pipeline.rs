#![no_main]
//! `cargo fuzz run pipeline`: see conc_fuzz::pipeline.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conc_fuzz::pipeline(data));
