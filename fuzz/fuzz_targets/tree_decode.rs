//! Tree objects come from packs (and later from remotes): decoding must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::object::tree::TreeObject::decode(data);
});
