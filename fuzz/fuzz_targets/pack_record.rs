//! Pack records: header, payload decompression and concatenation lists must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use dsv::store::pack::{RecordHeader, RECORD_HEADER, decode_concat, decode_payload};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = RecordHeader::decode(data) {
        let payload = data[RECORD_HEADER.min(data.len())..].to_vec();
        if let Ok(bytes) = decode_payload(&h, payload) {
            let _ = decode_concat(&bytes);
        }
    }
    let _ = decode_concat(data);
});
