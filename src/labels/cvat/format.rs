//! CVAT as a [`LabelFormat`].

use std::collections::BTreeMap;

use crate::labels::format::{DatasetFile, DatasetPlan, LabelFormat};
use crate::labels::tool::{AnnotationTool, Handed};
use crate::labels::{
    AttrValue, Format, FrameLabels, Geometry, LabelError, Object, ParseContext, Units,
};

/// CVAT for images XML: one file for many frames, every CVAT shape kind.
pub struct CvatFormat;

impl LabelFormat for CvatFormat {
    fn format(&self) -> Format {
        Format::Cvat
    }

    fn name(&self) -> &'static str {
        "cvat"
    }

    fn sniff(&self, path: &str, head: &[u8]) -> bool {
        super::sniff(path, head)
    }

    fn extension(&self) -> &'static str {
        "xml"
    }

    fn parse(&self, bytes: &[u8], _ctx: &ParseContext) -> Result<Vec<FrameLabels>, LabelError> {
        super::parse(bytes)
    }

    fn check(&self, bytes: &[u8], _ctx: &ParseContext) -> Result<(), LabelError> {
        super::check(bytes)
    }

    fn parse_each(
        &self,
        bytes: &[u8],
        _ctx: &ParseContext,
        each: &mut dyn FnMut(FrameLabels),
    ) -> Result<(), LabelError> {
        super::parse_each(bytes, each)
    }

    fn streams_frames(&self) -> bool {
        true
    }

    fn write(
        &self,
        frames: &[FrameLabels],
        _names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        super::write(frames)
    }

    /// CVAT track ids follow one object through edits (COCO annotation ids,
    /// by contrast, are renumbered by many exporters: pairing on them would
    /// invent moves).
    fn ids_are_stable(&self) -> bool {
        true
    }

    fn is_multi_frame(&self) -> bool {
        true
    }

    /// `images/<subset>` for `instances_<subset>.json`, and the like.
    fn frames_near(&self, path: &str) -> Vec<String> {
        crate::labels::format::images_near(path)
    }

    /// A project export's `<image>` has a `subset` attribute and a name
    /// within `images/<subset>/`.
    fn frames_within_subset(&self) -> bool {
        true
    }

    /// Every `<image>` has `width` and `height`.
    fn needs_image_size(&self) -> bool {
        true
    }

    /// Exported for annotators: one CVAT for images file.
    fn task_file(&self) -> Option<&'static str> {
        Some(TASK_FILE)
    }

    /// The task file, every frame in it.
    fn write_dataset_files(
        &self,
        plan: &DatasetPlan,
        put: &mut dyn FnMut(DatasetFile) -> bool,
    ) -> Result<(), (String, LabelError)> {
        let written = match plan.frames {
            [one] => super::write(one),
            many => super::write(&many.concat()),
        };
        let bytes = written.map_err(|e| (TASK_FILE.to_string(), e))?;
        put(DatasetFile {
            path: TASK_FILE.to_string(),
            bytes,
            labels: true,
        });
        Ok(())
    }

    fn holds(&self, geometry: &Geometry) -> bool {
        match geometry {
            Geometry::Polygon { .. }
            | Geometry::Polyline(_)
            | Geometry::Points(_)
            | Geometry::Ellipse(_)
            | Geometry::Cuboid(_)
            | Geometry::Keypoints(_) => true,
            // CVAT's RLE runs along rows of the mask's own rectangle.
            Geometry::Mask(m) => !m.column_major,
            Geometry::Box3d(_) => false,
        }
    }
}

/// The file an export for annotators writes its tasks to.
const TASK_FILE: &str = "annotations.xml";

/// CVAT as an [`AnnotationTool`]: its export is the CVAT for images file
/// ([`CvatFormat`]'s task file), read back with its shapes and attributes.
pub struct CvatTool;

impl AnnotationTool for CvatTool {
    fn name(&self) -> &'static str {
        "cvat"
    }

    fn extension(&self) -> &'static str {
        "xml"
    }

    fn conventions(&self) -> Format {
        Format::Cvat
    }

    fn is_label_format(&self) -> bool {
        true
    }

    fn read(&self, bytes: &[u8], _warnings: &mut Vec<String>) -> Result<Vec<Handed>, String> {
        let frames = super::parse(bytes).map_err(|e| e.to_string())?;
        frames
            .into_iter()
            .map(|fl| {
                if fl.units != Units::Pixels {
                    return Err(format!("frame {:?}: boxes not in pixels", fl.frame));
                }
                Ok(Handed {
                    size: fl.width.zip(fl.height),
                    path: fl.frame,
                    objects: fl.objects,
                })
            })
            .collect()
    }

    /// CVAT writes `occluded` and `z_order` on every shape, so `occluded`
    /// false and a zero `z_order`, `group_id` or `rotation` are the same as none.
    fn attributes(&self, o: &Object) -> BTreeMap<String, AttrValue> {
        o.attributes
            .iter()
            .filter(|(k, v)| {
                !matches!(
                    (k.as_str(), v),
                    ("occluded", AttrValue::Bool(false))
                        | ("z_order" | "group_id", AttrValue::Int(0))
                ) && !matches!((k.as_str(), v), ("rotation", AttrValue::Float(r)) if *r == 0.0)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// An `occluded` the annotator cleared is `false` rather than gone.
    fn cleared(&self, key: &str) -> Option<AttrValue> {
        (key == "occluded").then_some(AttrValue::Bool(false))
    }

    fn holds_shapes(&self) -> bool {
        true
    }

    fn task_file(&self) -> &'static str {
        TASK_FILE
    }
}
