//! COCO label files come from users and tools: parsing must never panic, and
//! the fast path must agree with the serde parser on everything it takes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reference = dsv::labels::coco::parse_serde_only(data);
    if let Some(fast) = dsv::labels::coco::parse_fast_only(data) {
        let Ok(want) = &reference else {
            panic!("the fast path took a document the serde parser rejects: {reference:?}");
        };
        // Debug output tells apart floats that `==` does not (-0.0 and 0.0).
        assert_eq!(format!("{fast:?}"), format!("{want:?}"));
    }
    if let Ok(frames) = dsv::labels::coco::parse(data) {
        // Whatever parses must also write.
        let _ = dsv::labels::coco::write(&frames);
    }
});
