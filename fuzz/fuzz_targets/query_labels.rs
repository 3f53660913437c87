//! Entries of `.dsv/cache/query-labels.redb` (parsed label files) are read
//! back from disk: whatever their bytes, reading them must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::query::build::read_cache_entry(data);
});
