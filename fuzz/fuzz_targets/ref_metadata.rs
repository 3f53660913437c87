//! Ref files and a remote's metadata: `.dsv/HEAD` and ref file contents, ref
//! names, the remote marker, ref objects, the remote `HEAD` object, pack indexes
//! and the sorting out of a branch listing must never panic, and what they
//! accept must hold up.
#![no_main]
use dsv::ObjectId;
use dsv::remote::format::{PackIndex, check_marker};
use dsv::remote::refs::{check_remote_branch, names_conflict, parse_ref_object, sort_out};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::refs::parse_head(data);
    let _ = dsv::refs::parse_ref(data);
    assert!(dsv::quote::bytes(data).chars().count() < 80);
    let _ = check_marker(data);
    let _ = dsv::remote::parse_head_object(data);
    let _ = parse_ref_object(data);
    if let Ok(idx) = PackIndex::decode(data) {
        assert_eq!(PackIndex::decode(&idx.encode()).as_ref(), Ok(&idx));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if dsv::refs::check_full_name(text).is_ok() {
        // A valid full name never climbs out of the ref store.
        assert!(
            !text
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
        );
    }
    // A listing: one branch per line; a line starting with '#' has a bad value.
    let values: Vec<(String, Result<ObjectId, String>)> = text
        .lines()
        .map(|l| {
            let v = if l.starts_with('#') {
                Err("bad".to_string())
            } else {
                Ok(ObjectId::hash(l.as_bytes()))
            };
            (l.to_string(), v)
        })
        .collect();
    let prefer: Vec<String> = text.lines().step_by(3).map(str::to_string).collect();
    let n = values.len();
    let listing = sort_out(values, &prefer);
    assert_eq!(listing.branches.len() + listing.skipped.len(), n);
    for (i, (a, _)) in listing.branches.iter().enumerate() {
        assert!(check_remote_branch(a).is_ok());
        for (b, _) in &listing.branches[i + 1..] {
            assert!(!names_conflict(a, b), "{a} and {b} both kept");
        }
    }
});
