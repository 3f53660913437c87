//! Boxes and shapes from normalized units to pixels: a YOLO frame's boxes,
//! which its file gives as fractions of the image size, in pixels of that
//! image (what `--units pixels` prints, and what an export to a pixel
//! format writes).

use super::{BBox, FrameLabels, Geometry, Object, Units};

/// Scales a box by `sx` along x and `sy` along y.
pub fn scale_box(b: &mut BBox, sx: f64, sy: f64) {
    b.x *= sx;
    b.w *= sx;
    b.y *= sy;
    b.h *= sy;
}

/// Scales every image-plane coordinate of a shape. A 3D box (metres) and a
/// mask (runs of pixels) have none that a unit change moves.
pub fn scale_geometry(g: &mut Geometry, sx: f64, sy: f64) {
    let xy = |p: &mut [f64]| {
        p[0] *= sx;
        p[1] *= sy;
    };
    match g {
        Geometry::Polygon { rings } => rings.iter_mut().flatten().for_each(|p| xy(p)),
        Geometry::Polyline(l) | Geometry::Points(l) => l.points.iter_mut().for_each(|p| xy(p)),
        Geometry::Ellipse(e) => {
            e.cx *= sx;
            e.rx *= sx;
            e.cy *= sy;
            e.ry *= sy;
        }
        Geometry::Cuboid(c) => c.corners.iter_mut().for_each(|p| xy(p)),
        Geometry::Keypoints(k) => {
            k.points.iter_mut().for_each(|p| xy(p));
            if let Some(outline) = k.outline.as_mut() {
                outline.iter_mut().flatten().for_each(|p| xy(p));
            }
        }
        Geometry::Box3d(_) | Geometry::Mask(_) => {}
    }
}

/// Scales an object's box and shape.
pub fn scale_object(o: &mut Object, sx: f64, sy: f64) {
    if let Some(b) = o.bbox.as_mut() {
        scale_box(b, sx, sy);
    }
    if let Some(g) = o.geometry.as_mut() {
        scale_geometry(g, sx, sy);
    }
}

/// Whether a frame's boxes and shapes need its image size to be in pixels.
pub fn needs_image_size(frame: &FrameLabels) -> bool {
    frame.units == Units::Normalized
        && frame
            .objects
            .iter()
            .any(|o| o.bbox.is_some() || o.geometry.is_some())
}

/// A frame's boxes and shapes in pixels of an image `size` (width, height),
/// which becomes its size; a frame in pixels already is left as it is.
pub fn to_pixels(frame: &mut FrameLabels, (w, h): (u32, u32)) {
    if frame.units == Units::Pixels {
        return;
    }
    let (sx, sy) = (f64::from(w), f64::from(h));
    for o in &mut frame.objects {
        scale_object(o, sx, sy);
    }
    frame.width = Some(w);
    frame.height = Some(h);
    frame.units = Units::Pixels;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Keypoints;

    #[test]
    fn normalized_frame_in_pixels_scales_boxes_and_shapes() {
        let mut f = FrameLabels::new("a", Units::Normalized);
        let mut o = Object::new("person", Some(BBox::from_center(0.5, 0.5, 0.2, 0.4)));
        o.geometry = Some(Geometry::Keypoints(Box::new(Keypoints {
            points: vec![[0.25, 0.5, 2.0]],
            outline: None,
            labels: None,
        })));
        f.objects.push(o);
        to_pixels(&mut f, (200, 100));
        assert_eq!(f.units, Units::Pixels);
        assert_eq!((f.width, f.height), (Some(200), Some(100)));
        let b = f.objects[0].bbox.expect("box");
        assert!((b.x - 80.0).abs() < 1e-9 && (b.y - 30.0).abs() < 1e-9);
        assert!((b.w - 40.0).abs() < 1e-9 && (b.h - 40.0).abs() < 1e-9);
        let Some(Geometry::Keypoints(k)) = &f.objects[0].geometry else {
            panic!("keypoints");
        };
        assert_eq!(k.points, [[50.0, 50.0, 2.0]]);
        // In pixels already: unchanged.
        let before = f.clone();
        to_pixels(&mut f, (1, 1));
        assert_eq!(f, before);
    }
}
