//! The parse cache of query builds (`.dsv/cache/query-labels/*.pack`) is read
//! back from disk: whatever its bytes, reading a pack, its groups and the
//! parses in them must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::query::build::read_cache_entry(data);
    if let Some(groups) = dsv::query::parse_cache::read_pack(data) {
        for g in groups {
            let _ = dsv::query::build::read_cache_entry(g);
        }
    }
});
