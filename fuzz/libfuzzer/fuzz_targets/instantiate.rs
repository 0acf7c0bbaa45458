//! libFuzzer entry point of the `instantiate` target; its logic is
//! `wazerox_fuzz::run_one(Target::Instantiate, …)`, the same code the seeded smoke run uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wazerox_fuzz::{Target, run_one};

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = run_one(Target::Instantiate, data) {
        panic!("instantiate: {failure}");
    }
});
