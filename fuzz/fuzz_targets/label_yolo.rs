//! YOLO label files and names files come from users' trees: parsing must never panic,
//! and whatever parses must write and parse again.
#![no_main]
use dsv::labels::{ParseContext, yolo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = yolo::sniff("labels/a.txt", data);
    let _ = yolo::parse_class_names("data.yaml", data);
    let _ = yolo::parse_class_names("obj.names", data);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
    for ctx in [
        ParseContext {
            class_names: None,
            stem: "a".to_owned(),
        },
        ParseContext {
            class_names: Some(std::sync::Arc::new(names.clone())),
            stem: "a".to_owned(),
        },
    ] {
        // The direct reading of plain box files agrees with the parser.
        let mut boxes = Vec::new();
        if yolo::plain_boxes(data, ctx.class_names.as_deref().map(Vec::as_slice), &mut boxes) {
            let frame = yolo::parse(data, &ctx).expect("the parser accepts a plain box file");
            assert_eq!(frame.objects.len(), boxes.len());
            for (o, (_, b, _)) in frame.objects.iter().zip(&boxes) {
                assert_eq!(o.bbox.as_ref(), Some(b));
            }
        }
        if let Ok(frame) = yolo::parse(data, &ctx) {
            let out = match &ctx.class_names {
                Some(n) => yolo::write_with_names(&frame, n),
                None => yolo::write(&frame),
            };
            let out = out.expect("a parsed YOLO frame writes back");
            assert!(yolo::parse(&out, &ctx).is_ok(), "written YOLO parses again");
        }
    }
});
