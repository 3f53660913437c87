//! Annotation tools: where `dsv export --format NAME` hands frames to
//! annotators and `dsv import` reads their edited file back.
//!
//! A tool is an [`AnnotationTool`]: its name, how its edited file reads, and
//! what of an object it round-trips. A tool whose file is a label format's
//! (CVAT) is exported as that [`super::LabelFormat`] (its `task_file`); one
//! that is not (Label Studio) writes its own tasks ([`AnnotationTool::write_tasks`]).
//! Each tool implements it in its own folder; [`super::TOOLS`] (in the
//! module above both, so this trait names no tool) is where a tool is
//! registered. `export` and `import` ask the registry instead of naming tools.

use std::collections::BTreeMap;

use super::format::DatasetFile;
use super::{AttrValue, BBox, Format, FrameLabels, Object, Units};

/// What an annotation tool is to `dsv export` and `dsv import`.
pub trait AnnotationTool: Sync {
    /// The name `--format` takes.
    fn name(&self) -> &'static str;

    /// Other names `--format` takes for it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// The extension of its edited file (lower case, without the dot): what
    /// `dsv import` tells the tool by when `--format` is not given.
    fn extension(&self) -> &'static str;

    /// The label format whose conventions (units, shapes, one file for many
    /// frames) its export follows: the tool's own format, or the one its
    /// tasks are built like.
    fn conventions(&self) -> Format;

    /// Whether its export is a label format's own file (that format's
    /// `task_file`), rather than tasks it writes itself.
    fn is_label_format(&self) -> bool {
        false
    }

    /// Reads an edited file: its frames, named by dataset path, with boxes
    /// in pixels. The error says what is wrong and where; `warnings` gets
    /// what was left out, said once each.
    fn read(&self, bytes: &[u8], warnings: &mut Vec<String>) -> Result<Vec<Handed>, String>;

    /// An object's attributes as the tool round-trips them (what an import
    /// compares and sets); none for a tool that holds none.
    fn attributes(&self, _o: &Object) -> BTreeMap<String, AttrValue> {
        BTreeMap::new()
    }

    /// An attribute an annotator cleared: `Some(value)` when the tool means
    /// a value by its absence (CVAT's `occluded` false), `None` when the
    /// attribute is gone.
    fn cleared(&self, _key: &str) -> Option<AttrValue> {
        None
    }

    /// Whether it holds shapes beyond the box (an import then compares and
    /// takes over shapes; an export of its own tasks holds boxes only otherwise).
    fn holds_shapes(&self) -> bool {
        false
    }

    /// Writes the files of an export of its own tasks (a tool that is not a
    /// label format); the error names the file and says why. A tool that is
    /// a label format writes nothing here.
    fn write_tasks(&self, _plan: &TaskPlan) -> Result<Vec<DatasetFile>, (String, String)> {
        Ok(Vec::new())
    }

    /// The file of tasks of its export.
    fn task_file(&self) -> &'static str;
}

/// One frame of an edited file ([`AnnotationTool::read`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Handed {
    /// The frame's dataset path.
    pub path: String,
    /// The image size the file gives, if any.
    pub size: Option<(u32, u32)>,
    /// Its objects, boxes in pixels.
    pub objects: Vec<Object>,
}

/// What an export of a tool's own tasks is written from
/// ([`AnnotationTool::write_tasks`]).
#[derive(Debug, Clone, Copy)]
pub struct TaskPlan<'a> {
    /// The frames, in order.
    pub frames: &'a [TaskFrame<'a>],
    /// What a frame's image address starts with, before `images/<path>`.
    pub url_prefix: &'a str,
    /// The exported commit (full id).
    pub commit: &'a str,
    /// The classes, in id order.
    pub classes: &'a [String],
}

/// One frame of an export of a tool's own tasks.
#[derive(Debug, Clone)]
pub struct TaskFrame<'a> {
    /// Its labels, in pixels, with the image size when known.
    pub labels: FrameLabels,
    /// Its dataset path.
    pub path: &'a str,
    /// Its content id (hex).
    pub id: String,
    /// The units of its predictions (the dataset labels' units).
    pub units: Units,
    /// Its predictions: class, box, score.
    pub predictions: Vec<(&'a str, Option<BBox>, Option<f64>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{TOOLS, tool_named, tool_names, tool_of_file};

    #[test]
    fn tools_are_found_by_name_alias_and_extension() {
        for t in TOOLS {
            assert_eq!(tool_named(t.name()).map(|f| f.name()), Some(t.name()));
            for a in t.aliases() {
                assert_eq!(tool_named(a).map(|f| f.name()), Some(t.name()));
            }
            let file = format!("x/edited.{}", t.extension().to_ascii_uppercase());
            assert_eq!(tool_of_file(&file).map(|f| f.name()), Some(t.name()));
        }
        assert_eq!(
            tool_named("label-studio").map(|t| t.name()),
            Some("labelstudio")
        );
        assert!(tool_named("coco").is_none());
        assert!(tool_of_file("a.txt").is_none());
        assert!(tool_of_file("xml").is_none());
        assert_eq!(tool_names(), "cvat or labelstudio");
    }

    #[test]
    fn a_tool_that_is_a_label_format_is_exported_as_that_format() {
        for t in TOOLS {
            let f = super::super::format_of(t.conventions());
            if t.is_label_format() {
                assert_eq!(f.name(), t.name());
                assert_eq!(f.task_file(), Some(t.task_file()));
                assert_eq!(f.extension(), t.extension());
            } else {
                assert!(
                    super::super::Format::from_name(t.name()).is_none(),
                    "{}",
                    t.name()
                );
            }
        }
        // Every extension tells one tool.
        let mut ext: Vec<&str> = TOOLS.iter().map(|t| t.extension()).collect();
        ext.sort_unstable();
        ext.dedup();
        assert_eq!(ext.len(), TOOLS.len());
    }

    #[test]
    fn each_tool_reads_back_what_it_holds() {
        let mut o = Object::new("car", Some(BBox::from_corners(1.0, 2.0, 5.0, 6.0)));
        o.attributes
            .insert("occluded".into(), AttrValue::Bool(false));
        o.attributes.insert("z_order".into(), AttrValue::Int(0));
        o.attributes
            .insert("color".into(), AttrValue::Str("red".into()));
        let held = |name: &str| {
            let t = tool_named(name).expect("registered");
            (
                t.attributes(&o).into_keys().collect::<Vec<_>>(),
                t.holds_shapes(),
                t.cleared("occluded"),
            )
        };
        assert_eq!(
            held("cvat"),
            (
                vec!["color".to_string()],
                true,
                Some(AttrValue::Bool(false))
            )
        );
        assert_eq!(held("labelstudio"), (vec![], false, None));
        // Garbage is an error, not a panic, for every tool.
        for t in TOOLS {
            let mut w = Vec::new();
            assert!(t.read(b"\x00not a file", &mut w).is_err(), "{}", t.name());
        }
    }

    #[test]
    fn what_each_tool_hands_out_it_reads_back() {
        let mut fl = FrameLabels::new("d/a.jpg", Units::Pixels);
        fl.width = Some(200);
        fl.height = Some(100);
        fl.objects.push(Object::new(
            "car",
            Some(BBox {
                x: 10.0,
                y: 20.0,
                w: 50.0,
                h: 40.0,
            }),
        ));
        let classes = vec!["car".to_string()];
        for t in TOOLS {
            let name = t.name();
            let (file, bytes) = if t.is_label_format() {
                let f = super::super::format_of(t.conventions());
                let bytes = f.write(std::slice::from_ref(&fl), Some(&classes)).unwrap();
                (t.task_file().to_string(), bytes)
            } else {
                let frames = [TaskFrame {
                    labels: fl.clone(),
                    path: "d/a.jpg",
                    id: "00".into(),
                    units: Units::Pixels,
                    predictions: vec![(
                        "car",
                        Some(BBox::from_corners(0.0, 0.0, 2.0, 2.0)),
                        Some(0.5),
                    )],
                }];
                let plan = TaskPlan {
                    frames: &frames,
                    url_prefix: "/x/",
                    commit: "c0ffee",
                    classes: &classes,
                };
                let files = t.write_tasks(&plan).expect("written");
                assert_eq!(files.iter().filter(|f| f.labels).count(), 1, "{name}");
                let tasks = files.into_iter().find(|f| f.labels).unwrap();
                // A frame without its image size cannot be placed in percents.
                let mut sizeless = frames[0].clone();
                sizeless.labels.width = None;
                let refused = t.write_tasks(&TaskPlan {
                    frames: &[sizeless],
                    ..plan
                });
                assert_eq!(
                    refused.err().map(|e| e.0),
                    Some(tasks.path.clone()),
                    "{name}"
                );
                (tasks.path, tasks.bytes)
            };
            assert_eq!(file, t.task_file(), "{name}");
            assert!(file.ends_with(&format!(".{}", t.extension())), "{name}");
            let mut warnings = Vec::new();
            let back = t.read(&bytes, &mut warnings).expect("reads back");
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(back.len(), 1, "{name}");
            assert_eq!(back[0].path, "d/a.jpg", "{name}");
            assert_eq!(back[0].size, Some((200, 100)), "{name}");
            assert_eq!(back[0].objects.len(), 1, "{name}");
            let o = &back[0].objects[0];
            assert_eq!(o.class, "car", "{name}");
            let b = o.bbox.expect("a box");
            let near = |a: f64, e: f64| (a - e).abs() < 1e-9;
            assert!(
                near(b.x, 10.0) && near(b.y, 20.0) && near(b.w, 50.0) && near(b.h, 40.0),
                "{name}: {b:?}"
            );
        }
    }
}
