//! COCO label files come from users and tools: parsing must never panic, and
//! the streaming read must agree with the reading into lists on everything
//! it takes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reference = dsv::labels::coco::parse_buffered_only(data);
    let fast = dsv::labels::coco::parse_fast_only(data);
    if let Some(fast) = &fast {
        let Ok(want) = &reference else {
            panic!("the streaming read took a document the reading into lists rejects: {reference:?}");
        };
        // Debug output tells apart floats that `==` does not (-0.0 and 0.0).
        assert_eq!(format!("{fast:?}"), format!("{want:?}"));
    }
    // Fuzz inputs are far below the size from which lists are read in two
    // halves (2 MiB): split them anyway, with a threshold taken from the input
    // so that some lists are split and others not; the result must not change.
    let split_from = data.len() / (usize::from(data.first().copied().unwrap_or(0) % 8) + 1);
    let split = dsv::labels::coco::parse_fast_split_from(data, split_from.max(1));
    assert_eq!(format!("{split:?}"), format!("{fast:?}"));
    if let Ok(frames) = dsv::labels::coco::parse(data) {
        // Whatever parses must also write.
        let _ = dsv::labels::coco::write(&frames);
    }
});
