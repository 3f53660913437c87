//! Metadata sidecars (meta.jsonl / meta.csv) are tracked user files: parsing
//! must give a value or an error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::meta::Sidecar::parse("meta.jsonl", data);
    let _ = dsv::meta::Sidecar::parse("meta.csv", data);
});
