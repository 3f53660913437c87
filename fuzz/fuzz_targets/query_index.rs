//! Query index files are read back from `.dsv/cache/query/` (and sidecar rows
//! from `.dsv/cache/query-sidecar/`): whatever their bytes, judging, decoding
//! and locating their parts must never panic.
#![no_main]
use dsv::query::FrameAccess;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsv::query::codec::decode(data);
    // What deriving a new version's index reads of an old one.
    let _ = dsv::query::codec::read_record_parts(data);
    // And how it finds them: through each chunk's record table.
    let _ = dsv::query::codec::read_record_tables(data);
    // The sidecar rows kept in `.dsv/cache/query-sidecar/`.
    let _ = dsv::query::read_cached_sidecar_rows(data);
    let _ = dsv::query::codec::decode_filtered(data, || {
        |f: &dyn FrameAccess| {
            let mut key = Vec::new();
            f.attr_key("weather", &mut key);
            f.attrs_key(&mut key);
            f.classes_key(&mut key);
            let _ = f.size_px();
            Ok::<bool, std::convert::Infallible>(key.len() % 2 == 0 && f.record().is_some())
        }
    });
});
