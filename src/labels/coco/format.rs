//! COCO as a [`LabelFormat`].

use crate::labels::format::{
    ClassList, DatasetFile, DatasetPlan, ExportLayout, LabelFormat, Place, in_dir,
};
use crate::labels::{ClassNames, Counts, Format, FrameLabels, Geometry, LabelError, ParseContext};

/// COCO detection JSON: one file for many frames; polygons, COCO RLE masks
/// and keypoints beside boxes.
pub struct CocoFormat;

impl LabelFormat for CocoFormat {
    fn format(&self) -> Format {
        Format::Coco
    }

    fn name(&self) -> &'static str {
        "coco"
    }

    fn sniff(&self, path: &str, head: &[u8]) -> bool {
        super::sniff(path, head)
    }

    fn extension(&self) -> &'static str {
        "json"
    }

    /// Under `annotations/`.
    fn place(&self, path: &str, _blank: bool) -> Place {
        if in_dir(path, &["annotations"]) {
            Place::Usual
        } else {
            Place::Elsewhere
        }
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

    fn parse_each_owned(
        &self,
        bytes: Vec<u8>,
        _ctx: &ParseContext,
        each: &mut dyn FnMut(FrameLabels),
    ) -> Result<(), LabelError> {
        super::parse_each_owned(bytes, each)
    }

    /// Counted without building frames or objects (see [`super::count`]).
    fn count(&self, bytes: &[u8], _names: Option<&ClassNames>) -> Option<Counts> {
        super::count(bytes)
    }

    /// A frame's objects are built only as it is handed over (see
    /// [`super::parse_each`]).
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

    /// `info`, `licenses`, categories and ids of `like` stay
    /// ([`super::layout::write_like`]); the plain writer's output when that
    /// layout cannot be kept.
    fn write_like(
        &self,
        (like, like_frames): (&[u8], &[FrameLabels]),
        others: &[&[u8]],
        frames: &[FrameLabels],
        _names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        match super::layout::write_like(like, like_frames, others, frames) {
            Some(out) => Ok(out),
            None => super::write(frames),
        }
    }

    fn is_multi_frame(&self) -> bool {
        true
    }

    /// `images/<subset>` for `instances_<subset>.json`, and the like.
    fn frames_near(&self, path: &str) -> Vec<String> {
        crate::labels::format::images_near(path)
    }

    /// An `images` entry's extra fields are frame attributes, so one may be
    /// a `subset` as CVAT's is: looked up as for CVAT, as it always was.
    fn frames_within_subset(&self) -> bool {
        true
    }

    /// Every `images` entry has `width` and `height`.
    fn needs_image_size(&self) -> bool {
        true
    }

    /// `annotations/instances_<split>.json` per split, with the export's
    /// classes as categories (ids from 1 in class order) and its lineage in
    /// `info`.
    fn write_dataset_files(
        &self,
        plan: &DatasetPlan,
        put: &mut dyn FnMut(DatasetFile) -> bool,
    ) -> Result<(), (String, LabelError)> {
        let lin = &plan.lineage;
        for (split, frames) in plan.splits.iter().zip(plan.frames) {
            let info = serde_json::json!({
                "description": format!("dsv export of {} ({}), split {split}", lin.rev, lin.commit),
                "version": lin.commit,
                "date_created": lin.date,
                "dsv_commit": lin.commit,
                "dsv_rev": lin.rev,
                "dsv_where": lin.query,
                "dsv_version": lin.dsv_version,
                "dsv_split": split,
            })
            .to_string();
            let bytes = super::write_with(frames, Some(plan.classes), Some(&info))
                .map_err(|e| (format!("split {split}"), e))?;
            let file = DatasetFile {
                path: format!("annotations/instances_{split}.json"),
                bytes,
                labels: true,
            };
            if !put(file) {
                break;
            }
        }
        Ok(())
    }

    fn holds(&self, geometry: &Geometry) -> bool {
        match geometry {
            Geometry::Polygon { .. } | Geometry::Keypoints(_) | Geometry::Points(_) => true,
            // COCO's RLE runs down columns over the whole image.
            Geometry::Mask(m) => m.column_major,
            _ => false,
        }
    }

    fn export_layout(&self) -> Option<ExportLayout> {
        Some(ExportLayout {
            images: "images/{split}",
            labels: None,
            ext: "json",
        })
    }

    /// The `categories` sorted by id.
    fn class_list(&self) -> Option<ClassList> {
        Some(category_names)
    }
}

/// The names of a file's `categories` in id order; `None` when the file is
/// not JSON or its categories lack an integer id or a name.
fn category_names(bytes: &[u8]) -> Option<Vec<String>> {
    let mut list = super::category_list(bytes)?;
    list.sort_by_key(|c| c.0);
    Some(list.into_iter().map(|c| c.1).collect())
}
