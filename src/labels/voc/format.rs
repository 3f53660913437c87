//! Pascal VOC as a [`LabelFormat`].

use crate::labels::format::{
    DatasetFile, DatasetPlan, ExportLayout, LabelFormat, Place, in_dir, name_stem, one_frame,
};
use crate::labels::{Format, FrameLabels, Geometry, LabelError, ParseContext};

/// Pascal VOC XML: one file per frame, boxes in pixels.
pub struct VocFormat;

impl LabelFormat for VocFormat {
    fn format(&self) -> Format {
        Format::Voc
    }

    fn name(&self) -> &'static str {
        "voc"
    }

    fn sniff(&self, path: &str, head: &[u8]) -> bool {
        super::sniff(path, head)
    }

    fn frame_dirs(&self) -> &'static [(&'static str, &'static str)] {
        &[("Annotations", "JPEGImages")]
    }

    fn extension(&self) -> &'static str {
        "xml"
    }

    /// Segmentation masks: PNG images of class or instance ids per pixel
    /// beside the frames.
    fn not_frame_dirs(&self) -> &'static [&'static str] {
        &["SegmentationClass", "SegmentationObject"]
    }

    /// Under `Annotations/`.
    fn place(&self, path: &str, _blank: bool) -> Place {
        if in_dir(path, &["Annotations"]) {
            Place::Usual
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

    fn holds(&self, _geometry: &Geometry) -> bool {
        false
    }

    fn export_layout(&self) -> Option<ExportLayout> {
        Some(ExportLayout {
            images: "JPEGImages",
            labels: Some("Annotations"),
            ext: "xml",
        })
    }

    /// With `<folder>`: the directory the export copies the image to.
    fn write_exported(
        &self,
        frame: &FrameLabels,
        _names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        let images = self.export_layout().map(|l| l.images);
        super::write_in(frame, images)
    }

    /// VOC's `<filename>` is the image's file name, without directories.
    fn frame_name<'a>(&self, path: &'a str) -> &'a str {
        path.rsplit('/').next().unwrap_or(path)
    }

    /// `<size>` has `width` and `height`.
    fn needs_image_size(&self) -> bool {
        true
    }

    fn refuse_class_name(&self, name: &str) -> Option<&'static str> {
        name.contains([':', '\n', '\r'])
            .then_some("VOC's labelmap.txt (it holds ':' or a line break)")
    }

    /// `ImageSets/Main/<split>.txt` (the stems of the split's frames) and
    /// `labelmap.txt`.
    fn write_dataset_files(
        &self,
        plan: &DatasetPlan,
        put: &mut dyn FnMut(DatasetFile) -> bool,
    ) -> Result<(), (String, LabelError)> {
        for (split, members) in plan.splits.iter().zip(plan.members) {
            let mut text = String::new();
            for name in members {
                text.push_str(name_stem(name));
                text.push('\n');
            }
            let file = DatasetFile {
                path: format!("ImageSets/Main/{split}.txt"),
                bytes: text.into_bytes(),
                labels: false,
            };
            if !put(file) {
                return Ok(());
            }
        }
        // Datumaro's (and CVAT's) class list for VOC: without it a reader
        // assumes the 20 VOC classes.
        let mut map = String::from("# label:color_rgb:parts:actions\n");
        for c in plan.classes {
            map.push_str(c);
            map.push_str(":::\n");
        }
        put(DatasetFile {
            path: "labelmap.txt".into(),
            bytes: map.into_bytes(),
            labels: false,
        });
        Ok(())
    }
}
