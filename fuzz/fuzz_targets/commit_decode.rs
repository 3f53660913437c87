//! Commit objects are untrusted JSON: decoding must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::object::Commit::decode(data);
});
