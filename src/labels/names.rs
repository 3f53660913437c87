//! Class-names files: the class list, by index, of label formats that store
//! class indices instead of names ([`crate::labels::LabelFormat::uses_class_names`]),
//! and a pose dataset's keypoint shape.
//!
//! A names file is `data.yaml`/`*.yaml` (`names:` as a list or a map of
//! index to name, and `kpt_shape: [K, D]`) or one name per line (`obj.names`,
//! `classes.txt`). Where a label file finds its names file is the layout's
//! business ([`crate::layout::Layout::class_names`]).

use super::LabelError;

/// The most keypoints per object a `kpt_shape` may declare (COCO's
/// whole-body pose has 133; no pose model has thousands).
pub const MAX_KEYPOINTS: usize = 10_000;

/// The shape of a pose dataset's keypoints, from `kpt_shape: [K, D]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KptShape {
    /// K: keypoints per object.
    pub points: usize,
    /// D: numbers per keypoint, 2 (`x y`) or 3 (`x y visibility`).
    pub dims: usize,
}

/// What a names file says: the class names by index and, for a pose
/// dataset, the keypoint shape. Dereferences to the names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassNames {
    /// Class names by index.
    pub names: Vec<String>,
    /// `kpt_shape` of a `data.yaml`: the label files are pose files.
    pub kpt_shape: Option<KptShape>,
}

impl std::ops::Deref for ClassNames {
    type Target = Vec<String>;

    fn deref(&self) -> &Vec<String> {
        &self.names
    }
}

impl From<Vec<String>> for ClassNames {
    fn from(names: Vec<String>) -> ClassNames {
        ClassNames {
            names,
            kpt_shape: None,
        }
    }
}

/// Reads class names from `data.yaml`/`*.yaml` or a one-name-per-line file
/// (`obj.names`, `classes.txt`); a YAML file's `kpt_shape` too.
pub fn parse_class_names(file_name: &str, bytes: &[u8]) -> Result<ClassNames, LabelError> {
    if ends_with_ignore_case(file_name, ".yaml") || ends_with_ignore_case(file_name, ".yml") {
        names_from_yaml(bytes)
    } else {
        names_from_lines(bytes).map(ClassNames::from)
    }
}

fn names_from_yaml(bytes: &[u8]) -> Result<ClassNames, LabelError> {
    let doc: serde_norway::Value = serde_norway::from_slice(bytes).map_err(|e| {
        let message = format!("invalid YAML: {e}");
        match e.location() {
            Some(l) => LabelError {
                line: Some(l.line()),
                column: Some(l.column()),
                message,
            },
            None => LabelError::msg(message),
        }
    })?;
    let kpt_shape = doc.get("kpt_shape").map(kpt_shape).transpose()?;
    let names = class_list(&doc)?;
    Ok(ClassNames { names, kpt_shape })
}

/// `kpt_shape: [K, D]`: K keypoints (1 to [`MAX_KEYPOINTS`]) of D = 2 or 3 numbers.
fn kpt_shape(v: &serde_norway::Value) -> Result<KptShape, LabelError> {
    let bad = || {
        LabelError::msg(format!(
            "kpt_shape is not [K, 2] or [K, 3] with K keypoints from 1 to {MAX_KEYPOINTS}"
        ))
    };
    let serde_norway::Value::Sequence(items) = v else {
        return Err(bad());
    };
    let [points, dims] = items.as_slice() else {
        return Err(bad());
    };
    let (Some(points), Some(dims)) = (points.as_u64(), dims.as_u64()) else {
        return Err(bad());
    };
    let points = usize::try_from(points).map_err(|_| bad())?;
    if !(1..=MAX_KEYPOINTS).contains(&points) || !(2..=3).contains(&dims) {
        return Err(bad());
    }
    Ok(KptShape {
        points,
        dims: dims as usize,
    })
}

/// The `names` of a YAML names file, by index.
fn class_list(doc: &serde_norway::Value) -> Result<Vec<String>, LabelError> {
    let Some(names) = doc.get("names") else {
        return Err(LabelError::msg(
            "no 'names' key: cannot tell the class names",
        ));
    };
    match names {
        serde_norway::Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                scalar_text(v).ok_or_else(|| {
                    LabelError::msg(format!("names[{i}] is not a plain name (text or number)"))
                })
            })
            .collect(),
        serde_norway::Value::Mapping(map) => {
            let mut slots: Vec<Option<String>> = vec![None; map.len()];
            for (k, v) in map {
                let index = k
                    .as_u64()
                    .or_else(|| k.as_str().and_then(|s| s.trim().parse::<u64>().ok()))
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| {
                        LabelError::msg(format!(
                            "names key {} is not a class index",
                            quote(&scalar_text(k).unwrap_or_default())
                        ))
                    })?;
                let Some(slot) = slots.get_mut(index) else {
                    return Err(LabelError::msg(format!(
                        "names has {} entries but a key {index}: indices must be 0 to {}",
                        map.len(),
                        map.len().saturating_sub(1)
                    )));
                };
                let name = scalar_text(v).ok_or_else(|| {
                    LabelError::msg(format!(
                        "names[{index}] is not a plain name (text or number)"
                    ))
                })?;
                *slot = Some(name);
            }
            slots
                .into_iter()
                .enumerate()
                .map(|(i, s)| s.ok_or_else(|| LabelError::msg(format!("names has no entry {i}"))))
                .collect()
        }
        _ => Err(LabelError::msg(
            "'names' is neither a list nor a map of index to name",
        )),
    }
}

fn scalar_text(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn names_from_lines(bytes: &[u8]) -> Result<Vec<String>, LabelError> {
    let text = utf8(bytes)?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    while names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    // An empty line in the middle would shift every later class by one.
    if let Some(i) = names.iter().position(|n| n.is_empty()) {
        return Err(LabelError::at_line(
            i + 1,
            "empty class name: every line up to the last name must hold one",
        ));
    }
    Ok(names)
}

/// Quotes a field for a message, shortened so a huge token cannot flood it.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("'{}...'", s.get(..cut).unwrap_or(s)),
        None => format!("'{s}'"),
    }
}

/// The bytes as text (a UTF-8 byte-order mark skipped); an error at the first bad byte.
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, LabelError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map_err(|e| LabelError::at_offset(bytes, e.valid_up_to(), "not UTF-8 text"))
}

/// Whether `path` ends with `suffix`, ASCII case ignored.
pub(super) fn ends_with_ignore_case(path: &str, suffix: &str) -> bool {
    path.len() >= suffix.len()
        && path
            .as_bytes()
            .get(path.len() - suffix.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix.as_bytes()))
}
