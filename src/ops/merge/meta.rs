//! Three-way merge of the frame-metadata sidecar (`meta.jsonl` or `meta.csv`),
//! row by row and attribute by attribute.
//!
//! Rows are keyed by frame path. A row added, removed or changed by one side only
//! takes that side; inside a row both sides changed, each attribute (and the
//! predictions list, as one value) is merged the same way, so one side setting
//! `weather` and the other `reviewed` on the same frame is no conflict. A row
//! with no attribute and no prediction counts as no row. Only the same attribute
//! changed differently on both sides, or a row removed on one side and changed on
//! the other, conflicts; each conflict is decided both ways, as for label files.
//!
//! The result keeps our file's lines: an unchanged row stays byte for byte where
//! it was, a changed row is rewritten in place, a removed row is dropped, and new
//! rows are appended in path order. A CSV file whose header lacks a merged
//! attribute is rewritten whole (`Sidecar::write`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::meta::{FrameMeta, Sidecar, SidecarFormat, csv_cell, split_csv};

/// One conflict inside the sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaConflict {
    /// The frame path of the row.
    pub frame: String,
    /// The attribute (`predictions` for the predictions list); `None` for the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What each side did.
    pub reason: String,
    /// The value in the merge base (`null`: absent).
    #[serde(default)]
    pub base: Option<serde_json::Value>,
    /// Our value (`null`: absent or removed).
    #[serde(default)]
    pub ours: Option<serde_json::Value>,
    /// Their value (`null`: absent or removed).
    #[serde(default)]
    pub theirs: Option<serde_json::Value>,
}

/// One resolution of a sidecar merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly our file.
    Ours,
    /// Exactly their file.
    Theirs,
    /// A new file.
    Written(Vec<u8>),
}

/// The outcome of merging a sidecar.
#[derive(Debug, Clone)]
pub struct SidecarMerge {
    /// The merge with every conflict decided for ours.
    pub ours: Resolution,
    /// The merge with every conflict decided for theirs.
    pub theirs: Resolution,
    /// The conflicts (empty: a clean merge, and `ours == theirs`).
    pub conflicts: Vec<MetaConflict>,
}

type Rows = BTreeMap<String, FrameMeta>;

/// Rows with something in them.
fn rows(sc: Sidecar) -> Rows {
    sc.rows
        .into_iter()
        .filter(|(_, m)| !(m.attrs.is_empty() && m.predictions.is_empty()))
        .collect()
}

fn json<T: Serialize>(v: Option<&T>) -> Option<serde_json::Value> {
    v.and_then(|v| serde_json::to_value(v).ok())
}

/// Merges the three versions of the sidecar `name`; `None` when one of them does
/// not parse (the caller then treats the file whole).
pub fn merge_sidecar(
    name: &str,
    base: Option<&[u8]>,
    ours: &[u8],
    theirs: &[u8],
) -> Option<SidecarMerge> {
    let parse = |b: &[u8]| Sidecar::parse(name, b).ok().map(rows);
    let b = match base {
        Some(bytes) => parse(bytes)?,
        None => Rows::new(),
    };
    let (o, t) = (parse(ours)?, parse(theirs)?);
    let mut conflicts = Vec::new();
    let (mo, mt) = merge_rows(&b, &o, &t, &mut conflicts);
    let format = SidecarFormat::of(name);
    let settle = |m: &Rows| -> Option<Resolution> {
        Some(if *m == o {
            Resolution::Ours
        } else if *m == t {
            Resolution::Theirs
        } else {
            Resolution::Written(write_like(name, format, ours, &o, m)?)
        })
    };
    Some(SidecarMerge {
        ours: settle(&mo)?,
        theirs: settle(&mt)?,
        conflicts,
    })
}

/// Three-way choice of one value: `Err` when both sides changed it differently.
fn pick<T: PartialEq + Clone>(b: T, o: T, t: T) -> Result<T, ()> {
    if o == t || b == t {
        Ok(o)
    } else if b == o {
        Ok(t)
    } else {
        Err(())
    }
}

/// Merges rows; returns the our-side and their-side resolutions.
fn merge_rows(b: &Rows, o: &Rows, t: &Rows, conflicts: &mut Vec<MetaConflict>) -> (Rows, Rows) {
    let paths: BTreeSet<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
    let (mut mo, mut mt) = (Rows::new(), Rows::new());
    let empty = FrameMeta::default();
    for path in paths {
        let (rb, ro, rt) = (b.get(path), o.get(path), t.get(path));
        let (xo, xt) = match pick(rb, ro, rt) {
            Ok(r) => (r, r),
            Err(()) => match (ro, rt) {
                (Some(ro), Some(rt)) => {
                    let (so, st) = merge_row(path, rb.unwrap_or(&empty), ro, rt, conflicts);
                    mo.insert(path.clone(), so);
                    mt.insert(path.clone(), st);
                    continue;
                }
                _ => {
                    conflicts.push(MetaConflict {
                        frame: path.clone(),
                        field: None,
                        reason: if ro.is_none() {
                            "we removed the row, they changed it".into()
                        } else {
                            "we changed the row, they removed it".into()
                        },
                        base: json(rb),
                        ours: json(ro),
                        theirs: json(rt),
                    });
                    (ro, rt)
                }
            },
        };
        if let Some(r) = xo {
            mo.insert(path.clone(), r.clone());
        }
        if let Some(r) = xt {
            mt.insert(path.clone(), r.clone());
        }
    }
    (mo, mt)
}

/// Merges one row both sides changed, attribute by attribute.
fn merge_row(
    path: &str,
    b: &FrameMeta,
    o: &FrameMeta,
    t: &FrameMeta,
    conflicts: &mut Vec<MetaConflict>,
) -> (FrameMeta, FrameMeta) {
    let (mut mo, mut mt) = (FrameMeta::default(), FrameMeta::default());
    let keys: BTreeSet<&String> = b
        .attrs
        .keys()
        .chain(o.attrs.keys())
        .chain(t.attrs.keys())
        .collect();
    for k in keys {
        let (vb, vo, vt) = (b.attrs.get(k), o.attrs.get(k), t.attrs.get(k));
        let (xo, xt) = match pick(vb, vo, vt) {
            Ok(v) => (v, v),
            Err(()) => {
                conflicts.push(MetaConflict {
                    frame: path.to_string(),
                    field: Some(k.clone()),
                    reason: "both sides changed the attribute differently".into(),
                    base: json(vb),
                    ours: json(vo),
                    theirs: json(vt),
                });
                (vo, vt)
            }
        };
        if let Some(v) = xo {
            mo.attrs.insert(k.clone(), v.clone());
        }
        if let Some(v) = xt {
            mt.attrs.insert(k.clone(), v.clone());
        }
    }
    match pick(&b.predictions, &o.predictions, &t.predictions) {
        Ok(p) => {
            mo.predictions = p.clone();
            mt.predictions = p.clone();
        }
        Err(()) => {
            conflicts.push(MetaConflict {
                frame: path.to_string(),
                field: Some(crate::meta::PREDICTIONS.into()),
                reason: "both sides changed the predictions differently".into(),
                base: json(Some(&b.predictions)),
                ours: json(Some(&o.predictions)),
                theirs: json(Some(&t.predictions)),
            });
            mo.predictions = o.predictions.clone();
            mt.predictions = t.predictions.clone();
        }
    }
    (mo, mt)
}

/// Writes `merged` keeping the lines of `ours` (whose rows are `ours_rows`) for
/// the rows it does not change. `None` when even a whole rewrite fails (CSV
/// cannot hold predictions).
fn write_like(
    name: &str,
    format: SidecarFormat,
    ours: &[u8],
    ours_rows: &Rows,
    merged: &Rows,
) -> Option<Vec<u8>> {
    let whole = || {
        Sidecar {
            rows: merged.clone(),
        }
        .write(format)
        .ok()
    };
    let spliced = match format {
        SidecarFormat::Jsonl => splice_jsonl(name, ours, ours_rows, merged),
        SidecarFormat::Csv => splice_csv(ours, ours_rows, merged),
    };
    match spliced {
        // The splice must read back as the merged rows; otherwise write it whole.
        Some(out) if Sidecar::parse(name, &out).ok().map(rows).as_ref() == Some(merged) => {
            Some(out)
        }
        _ => whole(),
    }
}

/// One row as a JSONL line, the way `dsv meta` writes it.
fn jsonl_row(path: &str, m: &FrameMeta) -> Option<Vec<u8>> {
    let mut rows = BTreeMap::new();
    rows.insert(path.to_string(), m.clone());
    Sidecar { rows }.write(SidecarFormat::Jsonl).ok()
}

fn splice_jsonl(name: &str, ours: &[u8], ours_rows: &Rows, merged: &Rows) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(ours).ok()?;
    let mut out = Vec::with_capacity(ours.len() + 256);
    let mut seen = BTreeSet::new();
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.extend_from_slice(line.as_bytes());
            continue;
        }
        let row = Sidecar::parse(name, line.as_bytes()).ok()?;
        let path = row.rows.keys().next()?.clone();
        let (old, new) = (ours_rows.get(&path), merged.get(&path));
        if old == new {
            out.extend_from_slice(line.as_bytes());
        } else if let Some(m) = new {
            out.extend_from_slice(&jsonl_row(&path, m)?);
        }
        seen.insert(path);
    }
    for (path, m) in merged {
        if !seen.contains(path) {
            if out.last().is_some_and(|c| *c != b'\n') {
                out.push(b'\n');
            }
            out.extend_from_slice(&jsonl_row(path, m)?);
        }
    }
    Some(out)
}

fn splice_csv(ours: &[u8], ours_rows: &Rows, merged: &Rows) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(ours).ok()?;
    let mut lines = text.split_inclusive('\n');
    let mut out = String::with_capacity(ours.len() + 256);
    let header = loop {
        let line = lines.next()?;
        out.push_str(line);
        if !line.trim().is_empty() {
            break split_csv(line.trim_end_matches(['\r', '\n'])).ok()?;
        }
    };
    let path_col = header.iter().position(|c| c == "path")?;
    let columns: BTreeSet<&String> = header.iter().collect();
    // Every merged attribute needs a column; predictions have none.
    if merged.values().any(|m| {
        !m.predictions.is_empty() || m.attrs.keys().any(|k| k == "path" || !columns.contains(k))
    }) {
        return None;
    }
    let row_line = |path: &str, m: &FrameMeta| -> String {
        let cells: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if i == path_col {
                    csv_cell(path)
                } else {
                    m.attrs
                        .get(k)
                        .map(|v| csv_cell(&v.to_string()))
                        .unwrap_or_default()
                }
            })
            .collect();
        format!("{}\n", cells.join(","))
    };
    let mut seen = BTreeSet::new();
    for line in lines {
        if line.trim().is_empty() {
            out.push_str(line);
            continue;
        }
        let cells = split_csv(line.trim_end_matches(['\r', '\n'])).ok()?;
        let path = cells.get(path_col)?.trim_matches('/').to_string();
        let (old, new) = (ours_rows.get(&path), merged.get(&path));
        if old == new {
            out.push_str(line);
        } else if let Some(m) = new {
            out.push_str(&row_line(&path, m));
        }
        seen.insert(path);
    }
    for (path, m) in merged {
        if !seen.contains(path) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&row_line(path, m));
        }
    }
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(name: &str, b: &str, o: &str, t: &str) -> SidecarMerge {
        merge_sidecar(name, Some(b.as_bytes()), o.as_bytes(), t.as_bytes()).expect("parses")
    }

    fn text(r: &Resolution) -> String {
        match r {
            Resolution::Written(b) => String::from_utf8(b.clone()).expect("utf-8"),
            other => panic!("not written: {other:?}"),
        }
    }

    #[test]
    fn subset_base_keeps_our_other_rows_in_place() {
        // The base is a selection: only b and d. We hold every row (our own
        // layout, keys unsorted); they changed d and removed b.
        let base = "{\"path\":\"b\",\"q\":1}\n{\"path\":\"d\",\"q\":1}\n";
        let ours = "{\"q\": 0, \"path\": \"a\"}\n{\"path\":\"b\",\"q\":1}\n{\"path\":\"c\",\"w\":\"sun\"}\n{\"path\":\"d\",\"q\":1}\n";
        let theirs = "{\"path\":\"d\",\"q\":2,\"ok\":true}\n";
        let m = merge("meta.jsonl", base, ours, theirs);
        assert!(m.conflicts.is_empty());
        assert_eq!(
            text(&m.ours),
            "{\"q\": 0, \"path\": \"a\"}\n{\"path\":\"c\",\"w\":\"sun\"}\n{\"ok\":true,\"path\":\"d\",\"q\":2}\n"
        );
        assert_eq!(m.ours, m.theirs);
    }

    #[test]
    fn different_attributes_of_one_row_merge_and_the_same_one_conflicts() {
        let base = "{\"path\":\"a\",\"q\":1}\n";
        let m = merge(
            "meta.jsonl",
            base,
            "{\"path\":\"a\",\"q\":1,\"w\":\"rain\"}\n",
            "{\"path\":\"a\",\"q\":2}\n{\"path\":\"z\",\"n\":3}\n",
        );
        assert!(m.conflicts.is_empty());
        assert_eq!(
            text(&m.ours),
            "{\"path\":\"a\",\"q\":2,\"w\":\"rain\"}\n{\"n\":3,\"path\":\"z\"}\n"
        );
        let m = merge(
            "meta.jsonl",
            base,
            "{\"path\":\"a\",\"q\":3}\n",
            "{\"path\":\"a\",\"q\":2}\n",
        );
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].field.as_deref(), Some("q"));
        assert_eq!(m.conflicts[0].ours, Some(serde_json::json!(3)));
        // Decided for ours: our file; for theirs: their file, byte for byte.
        assert_eq!(m.ours, Resolution::Ours);
        assert_eq!(m.theirs, Resolution::Theirs);
        // Removed on one side, changed on the other.
        let m = merge("meta.jsonl", base, "", "{\"path\":\"a\",\"q\":2}\n");
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].field, None);
    }

    #[test]
    fn csv_rows_are_spliced_and_a_new_column_rewrites_the_file() {
        let base = "path,q\nb,1\n";
        let ours = "path,q,w\na,0,\nb,1,sun\n";
        let m = merge("meta.csv", base, ours, "path,q\nb,2\n");
        assert!(m.conflicts.is_empty());
        assert_eq!(text(&m.ours), "path,q,w\na,0,\nb,2,sun\n");
        let m = merge("meta.csv", base, ours, "path,q,x\nb,1,new\n");
        assert_eq!(text(&m.ours), "path,q,w,x\na,0,,\nb,1,sun,new\n");
    }

    #[test]
    fn a_version_that_does_not_parse_gives_none() {
        assert!(merge_sidecar("meta.jsonl", None, b"{\"path\":\"a\"}\n", b"not json\n").is_none());
    }
}
