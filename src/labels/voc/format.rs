//! Pascal VOC as a [`LabelFormat`].

use crate::labels::format::{ExportLayout, LabelFormat, one_frame};
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
}
