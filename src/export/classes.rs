//! Class ids of an export, stable across exports and versions.
//!
//! In order of precedence: the list given (`--classes FILE`), in which every
//! class of the exported frames must be; else the dataset's own lists — the
//! YOLO names file (`data.yaml`, `classes.txt`, `obj.names`) of each exported
//! YOLO label file and the categories of each COCO file (by id), merged in
//! path order, then a names file at the root of the version — with any class
//! they lack appended in name order; else every class of the exported frames in
//! name order. An update of an earlier export keeps that export's list and
//! appends new classes ([`extend`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Result;
use crate::id::ObjectId;
use crate::labels::format::names_files;
use crate::labels::{ClassNames, Format, format_of, parse_class_names};
use crate::layout::{FileSource, Layout};
use crate::query::FrameRecord;
use crate::store::ObjectStore;

use super::ExportError;

/// The class list of an export and where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Classes {
    /// Class names; a class's id is its position (YOLO, VOC's labelmap) or
    /// position + 1 (COCO category ids).
    pub names: Vec<String>,
    /// `classes-file`, `dataset`, `earlier-export` or `sorted`.
    pub from: String,
}

/// The classes of the frames, each with the first frame that has it.
fn used<'a>(frames: &[&'a FrameRecord]) -> Vec<(&'a str, &'a str)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for f in frames {
        for o in &f.objects {
            if seen.insert(o.class.as_str()) {
                out.push((o.class.as_str(), f.path.as_str()));
            }
        }
    }
    out.sort();
    out
}

/// The list given on the command line: every class of the frames must be in it.
pub fn given(names: Vec<String>, frames: &[&FrameRecord], file: &str) -> Result<Classes> {
    let listed: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    for (class, frame) in used(frames) {
        if !listed.contains(class) {
            return Err(ExportError::UnknownClass {
                class: class.to_string(),
                frame: frame.to_string(),
                file: file.to_string(),
            }
            .into());
        }
    }
    Ok(Classes {
        names,
        from: "classes-file".into(),
    })
}

/// `names` with every class of the frames it lacks appended, in name order.
pub fn extend(mut names: Vec<String>, frames: &[&FrameRecord], from: &str) -> Classes {
    let have: BTreeSet<String> = names.iter().cloned().collect();
    for (class, _) in used(frames) {
        if !have.contains(class) {
            names.push(class.to_string());
        }
    }
    Classes {
        names,
        from: from.into(),
    }
}

/// The dataset's own lists for the frames of version `tree`, merged; then
/// the frames' other classes in name order. `sorted` when there is none.
pub fn of_dataset(
    store: &ObjectStore,
    tree: Option<ObjectId>,
    frames: &[&FrameRecord],
) -> Result<Classes> {
    let src = crate::worktree::sources::TreeSource::new(store, tree);
    let layout = Layout::load(&src)?.unwrap_or_else(|_| Layout::new(Default::default()));
    let files: BTreeSet<(&str, Format)> = frames
        .iter()
        .flat_map(|f| f.labels.iter().map(|(p, fmt)| (p.as_str(), *fmt)))
        .collect();
    let mut lists: Vec<Arc<ClassNames>> = Vec::new();
    for (path, fmt) in files {
        let imp = format_of(fmt);
        let list = if imp.uses_class_names() {
            match layout.class_names(&src, path)? {
                Ok(Some(n)) => n,
                _ => continue,
            }
        } else if let Some(read) = imp.class_list() {
            let Some(bytes) = src.read(path)? else {
                continue;
            };
            let Some(names) = read(&bytes) else {
                continue;
            };
            Arc::new(ClassNames::from(names))
        } else {
            continue;
        };
        // Many label files share one names file: each list once.
        if !lists.iter().any(|l| Arc::ptr_eq(l, &list) || *l == list) {
            lists.push(list);
        }
    }
    if lists.is_empty() {
        for n in names_files() {
            if let Some(bytes) = src.read(n)?
                && let Ok(list) = parse_class_names(n, &bytes)
            {
                lists.push(Arc::new(list));
                break;
            }
        }
    }
    if lists.is_empty() {
        return Ok(extend(Vec::new(), frames, "sorted"));
    }
    let mut names: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for l in lists {
        for n in l.iter() {
            if seen.insert(n.clone()) {
                names.push(n.clone());
            }
        }
    }
    Ok(extend(names, frames, "dataset"))
}
