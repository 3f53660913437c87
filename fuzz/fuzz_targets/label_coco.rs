//! COCO label files come from users and tools: parsing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = dsv::labels::coco::parse(data) {
        // Whatever parses must also write.
        let _ = dsv::labels::coco::write(&frames);
    }
});
