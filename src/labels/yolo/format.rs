//! YOLO as a [`LabelFormat`].

use crate::labels::format::{
    DatasetFile, DatasetPlan, ExportLayout, LabelFormat, Place, in_dir, one_frame,
};
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

    fn frame_dirs(&self) -> &'static [(&'static str, &'static str)] {
        &[("labels", "images")]
    }

    fn extension(&self) -> &'static str {
        "txt"
    }

    /// Ultralytics' dataset file, Darknet's names and the tools' class lists.
    fn names_files(&self) -> &'static [&'static str] {
        &[
            "data.yaml",
            "dataset.yaml",
            "obj.names",
            "classes.txt",
            "classes.names",
        ]
    }

    /// Under `labels/`; an empty file also in a top-level `obj_*` directory
    /// (Darknet's `obj_train_data`), where it is a frame with no objects.
    fn place(&self, path: &str, blank: bool) -> Place {
        let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
        if in_dir(path, &["labels"]) || (blank && parent.starts_with("obj_")) {
            Place::Usual
        } else {
            Place::Elsewhere
        }
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

    /// Ultralytics' `data.yaml`.
    fn write_dataset_files(
        &self,
        plan: &DatasetPlan,
        put: &mut dyn FnMut(DatasetFile) -> bool,
    ) -> Result<(), (String, LabelError)> {
        put(DatasetFile {
            path: "data.yaml".into(),
            bytes: data_yaml(plan).into_bytes(),
            labels: false,
        });
        Ok(())
    }
}

/// A YAML string (JSON's quoting is YAML's double-quoted style).
fn yaml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Ultralytics' `data.yaml`: `path` (the export's absolute path: Ultralytics
/// resolves a relative one against its own datasets directory), `train`, `val`
/// (the train images when there is no `val` split: no held-out set),
/// `test` and any other split, `names`, and the lineage as `dsv_*` keys.
fn data_yaml(plan: &DatasetPlan) -> String {
    let (splits, classes, lin) = (plan.splits, plan.classes, &plan.lineage);
    let mut y = format!(
        "# written by dsv export\npath: {}\n",
        yaml_str(&plan.root.to_string_lossy())
    );
    let train = if splits.contains(&"train") {
        "train"
    } else {
        splits.first().copied().unwrap_or("train")
    };
    let val = if splits.contains(&"val") {
        "val"
    } else {
        train
    };
    y.push_str(&format!("train: images/{train}\nval: images/{val}\n"));
    for s in splits {
        if *s != train && *s != val {
            y.push_str(&format!("{s}: images/{s}\n"));
        }
    }
    y.push_str(&format!("nc: {}\nnames:\n", classes.len()));
    for (i, n) in classes.iter().enumerate() {
        y.push_str(&format!("  {i}: {}\n", yaml_str(n)));
    }
    y.push_str(&format!("dsv_commit: {}\n", yaml_str(lin.commit)));
    y.push_str(&format!("dsv_rev: {}\n", yaml_str(lin.rev)));
    if let Some(q) = lin.query {
        y.push_str(&format!("dsv_where: {}\n", yaml_str(q)));
    }
    y.push_str(&format!("dsv_version: {}\n", yaml_str(lin.dsv_version)));
    y.push_str(&format!("dsv_date: {}\n", yaml_str(lin.date)));
    y
}
