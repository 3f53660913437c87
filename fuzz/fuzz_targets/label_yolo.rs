//! YOLO label files and names files come from users' trees: parsing must never panic,
//! whatever parses must write and parse again, and the counting and box-collecting
//! readings must accept exactly what the parser accepts.
#![no_main]
use dsv::labels::{ClassNames, ParseContext, parse_class_names, yolo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = yolo::sniff("labels/a.txt", data);
    let _ = parse_class_names("data.yaml", data);
    let _ = parse_class_names("obj.names", data);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
    for ctx in [
        ParseContext {
            class_names: None,
            stem: "a".to_owned(),
        },
        ParseContext {
            class_names: Some(std::sync::Arc::new(ClassNames::from(names.clone()))),
            stem: "a".to_owned(),
        },
    ] {
        // One reader drives the parser, the counter and the box collector:
        // they accept the same files and see the same objects.
        let names = ctx.class_names.as_deref().map(|n| n.names.as_slice());
        let parsed = yolo::parse(data, &ctx);
        let counts = yolo::count(data, names);
        let mut boxes = Vec::new();
        let plain = yolo::plain_boxes(data, names, &mut boxes);
        assert_eq!(parsed.is_ok(), counts.is_some(), "count and parse disagree");
        if let (Ok(frame), Some(counts)) = (&parsed, &counts) {
            assert_eq!(counts.objects, frame.objects.len() as u64);
            let polygons = frame.objects.iter().any(|o| o.geometry.is_some());
            assert_eq!(plain, !polygons, "plain_boxes and parse disagree");
        } else {
            assert!(!plain, "plain_boxes accepts what parse refuses");
        }
        if plain {
            let frame = parsed.as_ref().expect("the parser accepts a plain box file");
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
