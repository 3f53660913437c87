//! What `dsv export --format` writes: a label format, or an annotation
//! tool's own tasks ([`crate::labels::TOOLS`]). An export for annotators
//! (a tool's, or a label format with a `task_file`: CVAT) puts every frame
//! under `images/<its path in the dataset>` beside one file of tasks, so that
//! each frame is named by its dataset path in the tool and an edited file
//! comes back with `dsv import` ([`super::import`]).

use crate::labels::TOOLS;
use crate::labels::tool::AnnotationTool;
use crate::labels::{Format, format_of};
use crate::quote::or_list;

/// What `dsv export --format` writes: a label format or a tool's tasks.
#[derive(Clone, Copy)]
pub enum ExportFormat {
    /// A label format dsv reads (coco, yolo, voc, kitti, cvat).
    Labels(Format),
    /// The tasks of an annotation tool that is not a label format.
    Tasks(&'static dyn AnnotationTool),
}

impl std::fmt::Debug for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportFormat::Labels(l) => f.debug_tuple("Labels").field(l).finish(),
            ExportFormat::Tasks(t) => f.debug_tuple("Tasks").field(&t.name()).finish(),
        }
    }
}

/// Formats are the same when their names are (a tool is registered once).
impl PartialEq for ExportFormat {
    fn eq(&self, other: &ExportFormat) -> bool {
        self.name() == other.name()
    }
}

impl Eq for ExportFormat {}

impl ExportFormat {
    /// The formats `--format` takes, by name: the label formats export
    /// writes, then the tools' own tasks.
    pub fn names() -> String {
        or_list(
            Format::ALL
                .into_iter()
                .map(format_of)
                .filter(|f| f.export_layout().is_some())
                .chain(
                    Format::ALL
                        .into_iter()
                        .map(format_of)
                        .filter(|f| f.export_layout().is_none() && f.task_file().is_some()),
                )
                .map(|f| f.name())
                .chain(
                    TOOLS
                        .iter()
                        .filter(|t| !t.is_label_format())
                        .map(|t| t.name()),
                ),
        )
    }

    /// Parses the command-line name.
    pub fn from_name(name: &str) -> Option<ExportFormat> {
        Format::from_name(name)
            .map(ExportFormat::Labels)
            .or_else(|| {
                crate::labels::tool_named(name)
                    .filter(|t| !t.is_label_format())
                    .map(ExportFormat::Tasks)
            })
    }

    /// The name recorded in `dsv-export.json`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Labels(f) => f.name(),
            ExportFormat::Tasks(t) => t.name(),
        }
    }

    /// The label format whose conventions (units, shapes, one file for many
    /// frames) the export follows ([`AnnotationTool::conventions`] for a
    /// tool's tasks).
    pub fn writer(self) -> Format {
        match self {
            ExportFormat::Labels(f) => f,
            ExportFormat::Tasks(t) => t.conventions(),
        }
    }

    /// The tool whose own tasks this export writes, if any.
    pub fn tasks(self) -> Option<&'static dyn AnnotationTool> {
        match self {
            ExportFormat::Labels(_) => None,
            ExportFormat::Tasks(t) => Some(t),
        }
    }

    /// Whether this is an export for annotators (frames named by their
    /// dataset path, one file of tasks, no splits).
    pub fn is_handoff(self) -> bool {
        self.task_file().is_some()
    }

    /// The file of tasks of an export for annotators.
    pub fn task_file(self) -> Option<&'static str> {
        match self {
            ExportFormat::Labels(f) => format_of(f).task_file(),
            ExportFormat::Tasks(t) => Some(t.task_file()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_every_format_it_writes_once() {
        let names = ExportFormat::names();
        for part in names
            .split([',', ' '])
            .filter(|p| !p.is_empty() && *p != "or")
        {
            let f = ExportFormat::from_name(part).expect(part);
            assert_eq!(f.name(), part);
        }
        for f in Format::ALL {
            let writes =
                format_of(f).export_layout().is_some() || format_of(f).task_file().is_some();
            assert!(ExportFormat::from_name(f.name()).is_some());
            assert_eq!(names.contains(f.name()), writes, "{names}");
        }
        for t in TOOLS {
            let f = ExportFormat::from_name(t.name()).expect("a tool exports");
            assert!(f.is_handoff());
            assert_eq!(f.task_file(), Some(t.task_file()));
            assert_eq!(f.tasks().is_some(), !t.is_label_format(), "{}", t.name());
        }
        assert_eq!(
            ExportFormat::from_name("label-studio").map(|f| f.name()),
            Some("labelstudio")
        );
        assert!(ExportFormat::from_name("nope").is_none());
    }
}
