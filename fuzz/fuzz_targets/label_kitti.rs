//! KITTI label files come from users' trees: parsing must never panic, and whatever
//! parses must write and parse again.
#![no_main]
use dsv::labels::{ParseContext, kitti};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kitti::sniff("label_2/000001.txt", data);
    let ctx = ParseContext {
        class_names: None,
        stem: "000001".to_owned(),
    };
    if let Ok(frame) = kitti::parse(data, &ctx) {
        let out = kitti::write(&frame).expect("a parsed KITTI frame writes back");
        assert!(
            kitti::parse(&out, &ctx).is_ok(),
            "written KITTI parses again"
        );
    }
});
