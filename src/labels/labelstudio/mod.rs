//! Label Studio as an [`AnnotationTool`]: JSON tasks (`tasks.json`, with
//! `label_config.xml` beside it) written for annotators, and the tasks they
//! edited read back. Regions are rectangles (`rectanglelabels`) in percents
//! of the image; a task names its frame by `data.dsv_path`.

use serde_json::{Value, json};

use super::format::DatasetFile;
use super::tool::{AnnotationTool, Handed, TaskFrame, TaskPlan};
use super::{BBox, Format, Object, Units};

/// Label Studio: JSON tasks of rectangles, exported and imported.
pub struct LabelStudioTool;

impl AnnotationTool for LabelStudioTool {
    fn name(&self) -> &'static str {
        "labelstudio"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["label-studio"]
    }

    fn extension(&self) -> &'static str {
        "json"
    }

    /// Tasks are built as CVAT's file is, from pixel boxes, then turned
    /// into percents.
    fn conventions(&self) -> Format {
        Format::Cvat
    }

    /// Each task's last annotation that was not cancelled.
    fn read(&self, bytes: &[u8], warnings: &mut Vec<String>) -> Result<Vec<Handed>, String> {
        read_tasks(bytes, &|m| m, warnings)
    }

    /// The tasks, then the labeling configuration for the classes.
    fn write_tasks(&self, plan: &TaskPlan) -> Result<Vec<DatasetFile>, (String, String)> {
        let bytes = tasks(plan.frames, plan.url_prefix, plan.commit)
            .map_err(|m| (LS_TASKS.to_string(), m))?;
        Ok(vec![
            DatasetFile {
                path: LS_TASKS.into(),
                bytes,
                labels: true,
            },
            DatasetFile {
                path: LS_CONFIG.into(),
                bytes: config(plan.classes).into_bytes(),
                labels: false,
            },
        ])
    }

    fn task_file(&self) -> &'static str {
        LS_TASKS
    }
}

/// A number of a Label Studio region.
fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// Label Studio tasks: each task's last annotation that was not cancelled.
fn read_tasks(
    bytes: &[u8],
    bad: &dyn Fn(String) -> String,
    warnings: &mut Vec<String>,
) -> Result<Vec<Handed>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let tasks = v
        .as_array()
        .ok_or_else(|| bad("not a list of Label Studio tasks".into()))?;
    let mut out = Vec::with_capacity(tasks.len());
    let mut unannotated = 0usize;
    let mut several = 0usize;
    for (k, t) in tasks.iter().enumerate() {
        let tid = t
            .get("id")
            .map(|i| i.to_string())
            .unwrap_or_else(|| format!("#{}", k + 1));
        let path = t
            .pointer("/data/dsv_path")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(format!(
                    "task {tid} has no data.dsv_path (was it exported by dsv export --format labelstudio?)"
                ))
            })?
            .to_string();
        let anns: Vec<&Value> = t
            .get("annotations")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|a| a.get("was_cancelled").and_then(Value::as_bool) != Some(true))
                    .collect()
            })
            .unwrap_or_default();
        let Some(ann) = anns.last() else {
            unannotated += 1;
            continue;
        };
        if anns.len() > 1 {
            several += 1;
        }
        let result = ann.get("result").and_then(Value::as_array).ok_or_else(|| {
            bad(format!(
                "task {tid} ({path}): annotation without a result list"
            ))
        })?;
        let mut size: Option<(u32, u32)> = None;
        let mut objects = Vec::with_capacity(result.len());
        for (i, r) in result.iter().enumerate() {
            let what = || format!("task {tid} ({path}), region {}", i + 1);
            let ty = r.get("type").and_then(Value::as_str).unwrap_or("");
            if ty != "rectanglelabels" {
                return Err(bad(format!(
                    "{}: region type {ty:?} (only rectanglelabels is imported)",
                    what()
                )));
            }
            let (Some(w), Some(h)) = (num(r, "original_width"), num(r, "original_height")) else {
                return Err(bad(format!(
                    "{}: no original_width/original_height (the image size)",
                    what()
                )));
            };
            if w < 1.0 || h < 1.0 || w > f64::from(u32::MAX) || h > f64::from(u32::MAX) {
                return Err(bad(format!("{}: image size {w} x {h}", what())));
            }
            let s = (w as u32, h as u32);
            if size.is_some_and(|x| x != s) {
                return Err(bad(format!(
                    "{}: image size differs from its other regions",
                    what()
                )));
            }
            size = Some(s);
            let val = r.get("value").unwrap_or(&Value::Null);
            let (Some(x), Some(y), Some(bw), Some(bh)) = (
                num(val, "x"),
                num(val, "y"),
                num(val, "width"),
                num(val, "height"),
            ) else {
                return Err(bad(format!(
                    "{}: value lacks x, y, width or height",
                    what()
                )));
            };
            if num(val, "rotation").is_some_and(|a| a != 0.0) {
                return Err(bad(format!(
                    "{}: a rotated box (dsv boxes are upright)",
                    what()
                )));
            }
            let class = match val
                .get("rectanglelabels")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([c]) => c
                    .as_str()
                    .ok_or_else(|| bad(format!("{}: a class that is not text", what())))?
                    .to_string(),
                _ => {
                    return Err(bad(format!(
                        "{}: rectanglelabels must name exactly one class",
                        what()
                    )));
                }
            };
            let (wf, hf) = (f64::from(s.0), f64::from(s.1));
            objects.push(Object::new(
                class,
                Some(BBox {
                    x: x / 100.0 * wf,
                    y: y / 100.0 * hf,
                    w: bw / 100.0 * wf,
                    h: bh / 100.0 * hf,
                }),
            ));
        }
        out.push(Handed {
            path,
            size,
            objects,
        });
    }
    if unannotated > 0 {
        warnings.push(format!(
            "{} without an annotation left as they are",
            crate::quote::count(unannotated, "task")
        ));
    }
    if several > 0 {
        warnings.push(format!(
            "{} with several annotations: the last one imported",
            crate::quote::count(several, "task")
        ));
    }
    Ok(out)
}

/// Label Studio's task file in an export.
const LS_TASKS: &str = "tasks.json";
/// The labeling configuration written beside it.
const LS_CONFIG: &str = "label_config.xml";
/// The `from_name` of every region (the `RectangleLabels` control).
const LS_FROM: &str = "label";
/// The `to_name` of every region (the `Image` object).
const LS_TO: &str = "image";

/// A box in pixels as Label Studio's `value` (percent of the image).
fn ls_value(b: &BBox, w: f64, h: f64, class: &str) -> Value {
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
fn tasks(frames: &[TaskFrame], url_prefix: &str, commit: &str) -> Result<Vec<u8>, String> {
    let mut tasks = Vec::with_capacity(frames.len());
    for (k, rec) in frames.iter().enumerate() {
        let fl = &rec.labels;
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
            .filter_map(|(i, (class, bbox, score))| {
                let b = bbox.as_ref()?;
                let b = BBox {
                    x: b.x * px,
                    y: b.y * py,
                    w: b.w * px,
                    h: b.h * py,
                };
                let mut r = ls_region(format!("p{i}"), ls_value(&b, wf, hf, class), w, h);
                if let Some(s) = score {
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
                "dsv_id": rec.id,
                "dsv_commit": commit,
            },
            "annotations": [{ "result": result, "ground_truth": false }],
        });
        if !preds.is_empty() {
            let scores: Vec<f64> = rec.predictions.iter().filter_map(|p| p.2).collect();
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
fn config(classes: &[String]) -> String {
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
