//! Image headers: which format a frame file is and how large, read from its
//! first bytes only. One reader for the review page (data URIs and the box
//! overlay's coordinate space) and export (YOLO <-> pixel conversion when no
//! label file says the size), so the two cannot disagree about a frame.
//!
//! The header is parsed by the `imagesize` crate; this module limits it to the
//! formats a browser shows and corrects the values it reads as unsigned or
//! unmasked (see [`size`]).

use imagesize::ImageType;

/// Image formats dsv reads sizes of: those a browser shows from a data URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG (baseline, progressive or lossless).
    Jpeg,
    /// GIF 87a or 89a.
    Gif,
    /// WebP (lossy, lossless or extended).
    Webp,
    /// Windows or OS/2 bitmap.
    Bmp,
}

impl ImageFormat {
    /// The MIME type, for a data URI.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Bmp => "image/bmp",
        }
    }
}

/// Recognizes an image by its magic bytes (file extensions in datasets lie).
pub fn format(b: &[u8]) -> Option<ImageFormat> {
    match imagesize::image_type(b).ok()? {
        ImageType::Png => Some(ImageFormat::Png),
        ImageType::Jpeg => Some(ImageFormat::Jpeg),
        ImageType::Gif => Some(ImageFormat::Gif),
        ImageType::Webp => Some(ImageFormat::Webp),
        ImageType::Bmp => Some(ImageFormat::Bmp),
        _ => None,
    }
}

/// Width and height of an image from its header, or `None` when the header is
/// unreadable or says either is 0 (a JPEG whose height a later DNL marker
/// gives): a caller scaling by the size must never get 0.
pub fn size(b: &[u8]) -> Option<(u32, u32)> {
    let format = format(b)?;
    let (w, h) = match imagesize::blob_size(b) {
        Ok(s) => (u32::try_from(s.width).ok()?, u32::try_from(s.height).ok()?),
        Err(_) if format == ImageFormat::Jpeg => jpeg_frame_size(b)?,
        Err(_) => return None,
    };
    let (w, h) = match format {
        ImageFormat::Bmp => {
            if b.get(14..18) == Some(&[12, 0, 0, 0]) {
                // OS/2 1.x BITMAPCOREHEADER: 16-bit sizes where imagesize reads
                // the 32-bit ones of the Windows header.
                (w & 0xFFFF, w >> 16)
            } else {
                // Signed fields, read as unsigned; a negative height means rows are
                // stored top-down.
                ((w as i32).unsigned_abs(), (h as i32).unsigned_abs())
            }
        }
        // Lossy WebP: the top 2 bits of each 16-bit size are an upscaling hint.
        ImageFormat::Webp if b.get(12..16) == Some(b"VP8 ") => (w & 0x3FFF, h & 0x3FFF),
        _ => (w, h),
    };
    (w > 0 && h > 0).then_some((w, h))
}

/// The size in a JPEG's frame header, for the files `imagesize` 0.15 gives up
/// on: fill bytes (`0xFF` repeated) before a marker and markers without a length
/// (RST, TEM) before the frame header are both allowed by the JPEG standard
/// (T.81, B.1.1.2) and found in camera files.
fn jpeg_frame_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2; // after SOI
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let marker = *b.get(i)?;
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD8..=0xDA => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let h = u16::from_be_bytes([*b.get(i + 3)?, *b.get(i + 4)?]);
            let w = u16::from_be_bytes([*b.get(i + 5)?, *b.get(i + 6)?]);
            return Some((u32::from(w), u32::from(h)));
        }
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        std::fs::read(root.join(path)).unwrap()
    }

    /// A JPEG whose markers are preceded by fill bytes, with a restart marker
    /// before the frame header: sized as the old readers did.
    #[test]
    fn jpeg_with_fill_bytes_before_markers_has_its_size() {
        let mut b = vec![0xFF, 0xD8];
        b.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xE0, 0, 4, 0, 0]); // APP0 after fill bytes
        b.extend_from_slice(&[0xFF, 0xD0]); // RST0, no length
        b.extend_from_slice(&[0xFF, 0xFF, 0xC0, 0, 11, 8, 0, 7, 0, 9, 1, 1, 0x11, 0]); // SOF0 9x7
        b.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(format(&b), Some(ImageFormat::Jpeg));
        assert_eq!(size(&b), Some((9, 7)));
        // A frame header giving height 0 still gives no size.
        let mut zero = b.clone();
        let at = zero.len() - 2 - 14 + 6;
        zero[at] = 0;
        zero[at + 1] = 0;
        assert_eq!(size(&zero), None);
    }

    #[test]
    fn reads_jpeg_sizes_of_fixtures() {
        let cases = [
            ("demo/images/frame_000.jpg", (15, 10)),
            ("demo/images/frame_001.jpg", (10, 5)),
            ("demo/images/frame_004.jpg", (20, 10)),
            ("demo-edit/images/frame_006.jpg", (8, 8)),
            (
                "datumaro/coco_dataset/coco_instances/images/val/b.jpg",
                (5, 10),
            ),
        ];
        for (path, want) in cases {
            let bytes = fixture(path);
            assert_eq!(format(&bytes), Some(ImageFormat::Jpeg), "{path}");
            assert_eq!(size(&bytes), Some(want), "{path}");
        }
    }

    #[test]
    fn reads_png_sizes_of_fixtures() {
        let cases = [
            (
                "datumaro/voc_dataset/voc_dataset1/SegmentationClass/2007_000001.png",
                (20, 10),
            ),
            (
                "datumaro/kitti_dataset/kitti_3d/training/image_2/000001.png",
                (10, 10),
            ),
        ];
        for (path, want) in cases {
            let bytes = fixture(path);
            assert_eq!(format(&bytes), Some(ImageFormat::Png), "{path}");
            assert_eq!(size(&bytes), Some(want), "{path}");
        }
    }

    #[test]
    fn reads_progressive_jpeg_gif_webp_and_bmp_headers() {
        // SOI, an APP0, then SOF2 (progressive) 640x480.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend([
            0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x01, 0x01,
        ]);
        assert_eq!(size(&jpeg), Some((640, 480)));
        // Signature and the 7-byte logical screen descriptor.
        assert_eq!(size(b"GIF89a\x03\x00\x02\x00\x00\x00\x00"), Some((3, 2)));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0".to_vec();
        vp8x.extend([99, 0, 0, 49, 0, 0]);
        assert_eq!(size(&vp8x), Some((100, 50)));
        let mut bmp = vec![0u8; 26];
        bmp[..2].copy_from_slice(b"BM");
        bmp[14] = 40;
        bmp[18..22].copy_from_slice(&7i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&(-9i32).to_le_bytes());
        assert_eq!(format(&bmp), Some(ImageFormat::Bmp));
        assert_eq!(size(&bmp), Some((7, 9)));
    }

    #[test]
    fn os2_bitmap_sizes_are_16_bit() {
        let mut bmp = vec![0u8; 26];
        bmp[..2].copy_from_slice(b"BM");
        bmp[14] = 12;
        bmp[18..20].copy_from_slice(&300u16.to_le_bytes());
        bmp[20..22].copy_from_slice(&200u16.to_le_bytes());
        bmp[22..24].copy_from_slice(&1u16.to_le_bytes());
        bmp[24..26].copy_from_slice(&24u16.to_le_bytes());
        assert_eq!(size(&bmp), Some((300, 200)));
    }

    #[test]
    fn lossy_webp_size_leaves_out_the_scaling_bits() {
        // Frame tag, start code, then 14-bit sizes whose top 2 bits ask for upscaling.
        let mut vp8 = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0".to_vec();
        vp8.extend([0, 0, 0, 0x9D, 0x01, 0x2A]);
        vp8.extend((0xC000u16 | 320).to_le_bytes());
        vp8.extend((0x4000u16 | 240).to_le_bytes());
        assert_eq!(size(&vp8), Some((320, 240)));
    }

    #[test]
    fn jpeg_whose_header_gives_height_0_has_no_size() {
        // The frame header's height 0 means "given later by a DNL marker".
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend([
            0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01,
        ]);
        assert_eq!(format(&jpeg), Some(ImageFormat::Jpeg));
        assert_eq!(size(&jpeg), None);
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(16u32.to_be_bytes());
        png.extend(0u32.to_be_bytes());
        assert_eq!(size(&png), None);
    }

    #[test]
    fn size_readers_survive_truncated_and_garbage_input() {
        let jpeg = fixture("demo/images/frame_000.jpg");
        for n in 0..jpeg.len().min(400) {
            let _ = size(&jpeg[..n]);
        }
        let garbage: &[&[u8]] = &[
            b"",
            b"\x89PNG\r\n\x1a\n",
            b"\xFF\xD8\xFF\x00",
            b"\xFF\xD8\xFF\xE0\x00\x00",
            b"\xFF\xD8\xFF\xC0\x00\x11\x08\x00\x00\x00\x10",
            b"\xFF\xD8\xFF\xE0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f",
            b"GIF89a\x01",
            b"BM\0\0",
        ];
        for g in garbage {
            assert_eq!(size(g), None, "{g:?}");
        }
        assert_eq!(format(b"II*\0 a TIFF header"), None);
    }

    #[test]
    fn random_bytes_after_each_magic_never_panic_nor_give_0() {
        let magics: [&[u8]; 7] = [
            b"\x89PNG\r\n\x1a\n",
            b"\xFF\xD8\xFF",
            b"GIF89a",
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"RIFF\0\0\0\0WEBPVP8L",
            b"RIFF\0\0\0\0WEBPVP8X",
            b"BM",
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..20_000 {
            let mut b = magics[i % magics.len()].to_vec();
            for _ in 0..(i % 64) {
                // xorshift: a fixed sequence, so a failure is reproducible.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(if x.is_multiple_of(5) { 0xFF } else { x as u8 });
            }
            if let Some((w, h)) = size(&b) {
                assert!(w > 0 && h > 0, "{b:?}");
            }
        }
    }
}
