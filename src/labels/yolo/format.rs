//! YOLO as a [`LabelFormat`].

use crate::labels::format::{ExportLayout, LabelFormat, one_frame};
use crate::labels::{
    ClassNames, Counts, Format, FrameLabels, Geometry, LabelError, ParseContext, PlainBox, Units,
};

/// YOLO txt: one file per frame, class indices into a names list,
/// normalized boxes (and polygons, YOLO's segmentation lines).
pub struct YoloFormat;

impl LabelFormat for YoloFormat {
    fn format(&self) -> Format {
        Format::Yolo
    }

    fn name(&self) -> &'static str {
        "yolo"
    }

    fn sniff(&self, path: &str, head: &[u8]) -> bool {
        super::sniff(path, head)
    }

    fn parse(&self, bytes: &[u8], ctx: &ParseContext) -> Result<Vec<FrameLabels>, LabelError> {
        super::parse(bytes, ctx).map(|f| vec![f])
    }

    /// With `names`, classes are written as their index in it; without,
    /// classes must be indices already.
    fn write(
        &self,
        frames: &[FrameLabels],
        names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        let frame = one_frame(frames)?;
        match names {
            Some(n) => super::write_with_names(frame, n),
            None => super::write(frame),
        }
    }

    /// Pose lines keep the keypoint width (`kpt_shape`'s D) of `like`.
    fn write_like(
        &self,
        like: (&[u8], &[FrameLabels]),
        _others: &[&[u8]],
        frames: &[FrameLabels],
        names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        let dims = super::pose_dims(like.0, like.1).unwrap_or(3);
        super::write_pose(one_frame(frames)?, names, dims)
    }

    fn is_multi_frame(&self) -> bool {
        false
    }

    fn uses_class_names(&self) -> bool {
        true
    }

    /// A file is the frame of its stem, with objects only.
    fn one_named_frame(&self) -> bool {
        true
    }

    /// Box lines only; a pose dataset's files (a names file with
    /// `kpt_shape`) are left to the parser.
    fn plain_boxes(
        &self,
        bytes: &[u8],
        names: Option<&ClassNames>,
        out: &mut Vec<PlainBox>,
    ) -> bool {
        names.is_none_or(|n| n.kpt_shape.is_none())
            && super::plain_boxes(bytes, names.map(|n| n.names.as_slice()), out)
    }

    /// Box and polygon lines; a pose dataset's files are left to the parser.
    fn count(&self, bytes: &[u8], names: Option<&ClassNames>) -> Option<Counts> {
        if names.is_some_and(|n| n.kpt_shape.is_some()) {
            return None;
        }
        super::count(bytes, names.map(|n| n.names.as_slice()))
    }

    fn units(&self) -> Units {
        Units::Normalized
    }

    fn needs_boxes(&self) -> bool {
        true
    }

    fn holds(&self, geometry: &Geometry) -> bool {
        matches!(geometry, Geometry::Polygon { .. })
    }

    fn export_layout(&self) -> Option<ExportLayout> {
        Some(ExportLayout {
            images: "images/{split}",
            labels: Some("labels/{split}"),
            ext: "txt",
        })
    }

    /// `data.yaml`, naming the classes in index order.
    fn names_file(&self, names: &[String]) -> Option<(&'static str, Vec<u8>)> {
        let mut y = String::from("# written by dsv export\npath: .\ntrain: images\nnames:\n");
        for (i, n) in names.iter().enumerate() {
            y.push_str(&format!("  {i}: {}\n", serde_json::Value::from(n.as_str())));
        }
        Some(("data.yaml", y.into_bytes()))
    }
}
