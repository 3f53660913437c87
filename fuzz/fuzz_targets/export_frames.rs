//! An export's `dsv-export.frames` is read back by the next `dsv export
//! --out` of the same directory: whatever its bytes, decoding them must never
//! panic (nor reserve memory its bytes could not hold).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As read from the file: its magic and hash first.
    let _ = dsv::export::decode_frames_file(data);
    // The body alone, behind a valid-looking header.
    let mut file = b"dsvxfrm\x01".to_vec();
    file.extend_from_slice(&[0; 32]);
    file.extend_from_slice(data);
    let _ = dsv::export::decode_frames_file(&file);
});
