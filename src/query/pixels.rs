//! `dsv query --json --units pixels`: the records' boxes scaled by the size in
//! each frame's image header (read from the store).

use crate::error::Result;
use crate::labels::Units;
use crate::labels::units::{scale_box, scale_object};
use crate::ops::pixels::header_size;
use crate::query::FrameRecord;

/// The frames of `dsv query --json` in pixels (objects and predictions,
/// which are in their frame's units): each image is read from the store.
pub fn records_to_pixels(repo: &crate::Repository, frames: &mut [FrameRecord]) -> Result<()> {
    for f in frames.iter_mut() {
        let boxed = f
            .objects
            .iter()
            .any(|o| o.bbox.is_some() || o.geometry.is_some())
            || f.predictions.iter().any(|p| p.bbox.is_some());
        if f.units != Units::Normalized || !boxed {
            continue;
        }
        let (w, h) = header_size(&repo.store.get(&f.id)?, &f.path)?;
        let (sx, sy) = (f64::from(w), f64::from(h));
        for o in &mut f.objects {
            scale_object(o, sx, sy);
        }
        for p in &mut f.predictions {
            if let Some(b) = p.bbox.as_mut() {
                scale_box(b, sx, sy);
            }
        }
        f.width = Some(w);
        f.height = Some(h);
        f.units = Units::Pixels;
    }
    Ok(())
}
