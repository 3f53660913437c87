//! VOC XML comes from users' trees: parsing must never panic, and whatever parses
//! and writes must parse again.
#![no_main]
use dsv::labels::{ParseContext, voc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = voc::sniff("Annotations/a.xml", data);
    let ctx = ParseContext {
        class_names: None,
        stem: "a".to_owned(),
    };
    if let Ok(frame) = voc::parse(data, &ctx) {
        // Writing may refuse (e.g. a character XML cannot hold); it must not produce junk.
        if let Ok(out) = voc::write(&frame) {
            assert!(voc::parse(&out, &ctx).is_ok(), "written VOC parses again");
        }
    }
});
