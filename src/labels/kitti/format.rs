//! KITTI as a [`LabelFormat`].

use crate::labels::format::{
    DatasetFile, DatasetPlan, ExportLayout, LabelFormat, Place, in_dir, one_frame,
};
use crate::labels::{Format, FrameLabels, Geometry, LabelError, ParseContext};

/// KITTI `label_2` txt: one file per frame, boxes in pixels (and the 3D box,
/// which the [`Geometry::Box3d`] of an object holds).
pub struct KittiFormat;

impl LabelFormat for KittiFormat {
    fn format(&self) -> Format {
        Format::Kitti
    }

    fn name(&self) -> &'static str {
        "kitti"
    }

    fn sniff(&self, path: &str, head: &[u8]) -> bool {
        super::sniff(path, head)
    }

    fn frame_dirs(&self) -> &'static [(&'static str, &'static str)] {
        &[("label_2", "image_2"), ("label_02", "image_02")]
    }

    fn extension(&self) -> &'static str {
        "txt"
    }

    /// Under `label_2/` (`label_02/` in the tracking set), whatever the content.
    fn place(&self, path: &str, _blank: bool) -> Place {
        if in_dir(path, &["label_2", "label_02"]) {
            Place::Decides
        } else {
            Place::Elsewhere
        }
    }

    fn parse(&self, bytes: &[u8], ctx: &ParseContext) -> Result<Vec<FrameLabels>, LabelError> {
        super::parse(bytes, ctx).map(|f| vec![f])
    }

    fn write(
        &self,
        frames: &[FrameLabels],
        _names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        super::write(one_frame(frames)?)
    }

    fn is_multi_frame(&self) -> bool {
        false
    }

    fn needs_boxes(&self) -> bool {
        true
    }

    fn holds(&self, geometry: &Geometry) -> bool {
        matches!(geometry, Geometry::Box3d(_))
    }

    fn export_layout(&self) -> Option<ExportLayout> {
        Some(ExportLayout {
            images: "{split}/image_2",
            labels: Some("{split}/label_2"),
            ext: "txt",
        })
    }

    /// `dataset_meta.json`: KITTI has no class list of its own; Datumaro's
    /// meta file gives one, so that every split numbers the classes alike.
    fn write_dataset_files(
        &self,
        plan: &DatasetPlan,
        put: &mut dyn FnMut(DatasetFile) -> bool,
    ) -> Result<(), (String, LabelError)> {
        let meta = serde_json::json!({ "labels": plan.classes }).to_string();
        put(DatasetFile {
            path: "dataset_meta.json".into(),
            bytes: meta.into_bytes(),
            labels: false,
        });
        Ok(())
    }
}
