//! Exports for annotators (`--format cvat` and `--format labelstudio`): every
//! frame under `images/<its path in the dataset>` and one file of tasks, so
//! that each frame is named by its dataset path in the tool and an edited file
//! comes back with `dsv import` ([`super::import`]).

use serde_json::{Value, json};

use crate::labels::{Format, FrameLabels, Units};
use crate::query::FrameRecord;

/// What `dsv export --format` writes: a label format or Label Studio's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A label format dsv reads (coco, yolo, voc, kitti, cvat).
    Labels(Format),
    /// Label Studio JSON tasks (`tasks.json`).
    LabelStudio,
}

impl ExportFormat {
    /// The formats `--format` takes, by name.
    pub const NAMES: &'static str = "coco, yolo, voc, kitti, cvat or labelstudio";

    /// Parses the command-line name.
    pub fn from_name(name: &str) -> Option<ExportFormat> {
        match name {
            "labelstudio" | "label-studio" => Some(ExportFormat::LabelStudio),
            _ => Format::from_name(name).map(ExportFormat::Labels),
        }
    }

    /// The name recorded in `dsv-export.json`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Labels(f) => f.name(),
            ExportFormat::LabelStudio => "labelstudio",
        }
    }

    /// The label format whose conventions (units, shapes, one file for many
    /// frames) the export follows: Label Studio's tasks are built like CVAT's
    /// file, from pixel boxes, then turned into percents.
    pub fn writer(self) -> Format {
        match self {
            ExportFormat::Labels(f) => f,
            ExportFormat::LabelStudio => Format::Cvat,
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
            ExportFormat::Labels(f) => crate::labels::format_of(f).task_file(),
            ExportFormat::LabelStudio => Some(LS_TASKS),
        }
    }
}

/// Label Studio's task file in an export.
pub const LS_TASKS: &str = "tasks.json";
/// The labeling configuration written beside it.
pub const LS_CONFIG: &str = "label_config.xml";
/// The `from_name` of every region (the `RectangleLabels` control).
pub const LS_FROM: &str = "label";
/// The `to_name` of every region (the `Image` object).
pub const LS_TO: &str = "image";

/// A box in pixels as Label Studio's `value` (percent of the image).
fn ls_value(b: &crate::labels::BBox, w: f64, h: f64, class: &str) -> Value {
    json!({
        "x": b.x / w * 100.0,
        "y": b.y / h * 100.0,
        "width": b.w / w * 100.0,
        "height": b.h / h * 100.0,
        "rotation": 0,
        "rectanglelabels": [class],
    })
}

fn ls_region(id: String, value: Value, w: u32, h: u32) -> Value {
    json!({
        "id": id,
        "from_name": LS_FROM,
        "to_name": LS_TO,
        "type": "rectanglelabels",
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "value": value,
    })
}

/// Label Studio's tasks for frames (labels already in pixels, with their
/// image size): `data.image` is `url_prefix` + the image's place in the
/// export, `data.dsv_path` the frame's dataset path (what `dsv import` reads
/// back), the labels as one annotation and the sidecar's predictions as one
/// prediction. Regions are numbered `dsv<n>` (labels) and `p<n>`.
pub fn label_studio_tasks(
    frames: &[(FrameLabels, &FrameRecord)],
    url_prefix: &str,
    commit: &str,
) -> Result<Vec<u8>, String> {
    let mut tasks = Vec::with_capacity(frames.len());
    for (k, (fl, rec)) in frames.iter().enumerate() {
        let (Some(w), Some(h)) = (fl.width, fl.height) else {
            return Err(format!(
                "frame {:?}: image size unknown (Label Studio boxes are percents of the image)",
                rec.path
            ));
        };
        let (wf, hf) = (f64::from(w), f64::from(h));
        let result: Vec<Value> = fl
            .objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let b = o.bbox.as_ref()?;
                Some(ls_region(
                    format!("dsv{i}"),
                    ls_value(b, wf, hf, &o.class),
                    w,
                    h,
                ))
            })
            .collect();
        // Sidecar predictions are in the labels' units.
        let (px, py) = match rec.units {
            Units::Pixels => (1.0, 1.0),
            Units::Normalized => (wf, hf),
        };
        let preds: Vec<Value> = rec
            .predictions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let b = p.bbox.as_ref()?;
                let b = crate::labels::BBox {
                    x: b.x * px,
                    y: b.y * py,
                    w: b.w * px,
                    h: b.h * py,
                };
                let mut r = ls_region(format!("p{i}"), ls_value(&b, wf, hf, &p.class), w, h);
                if let Some(s) = p.score {
                    r["score"] = json!(s);
                }
                Some(r)
            })
            .collect();
        let mut task = json!({
            "id": k + 1,
            "data": {
                "image": format!("{url_prefix}images/{}", rec.path),
                "dsv_path": rec.path,
                "dsv_id": rec.id.to_hex(),
                "dsv_commit": commit,
            },
            "annotations": [{ "result": result, "ground_truth": false }],
        });
        if !preds.is_empty() {
            let scores: Vec<f64> = rec.predictions.iter().filter_map(|p| p.score).collect();
            let mut pred = json!({ "model_version": "dsv sidecar", "result": preds });
            if !scores.is_empty() {
                pred["score"] = json!(scores.iter().sum::<f64>() / scores.len() as f64);
            }
            task["predictions"] = json!([pred]);
        }
        tasks.push(task);
    }
    serde_json::to_vec_pretty(&tasks).map_err(|e| e.to_string())
}

/// Label Studio's labeling configuration for the classes: one `Image` and
/// one `RectangleLabels` naming every class.
pub fn label_studio_config(classes: &[String]) -> String {
    let mut x = String::from(
        "<View>\n  <Image name=\"image\" value=\"$image\"/>\n  <RectangleLabels name=\"label\" toName=\"image\">\n",
    );
    for c in classes {
        x.push_str("    <Label value=\"");
        for ch in c.chars() {
            match ch {
                '&' => x.push_str("&amp;"),
                '<' => x.push_str("&lt;"),
                '>' => x.push_str("&gt;"),
                '"' => x.push_str("&quot;"),
                c => x.push(c),
            }
        }
        x.push_str("\"/>\n");
    }
    x.push_str("  </RectangleLabels>\n</View>\n");
    x
}
