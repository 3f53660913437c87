//! Writing a COCO file that keeps the layout of the file it replaces.
//!
//! [`coco::write`] writes frames in dsv's own COCO layout: images and categories
//! renumbered, categories reduced to the classes in use, `info` and `licenses`
//! replaced, image bookkeeping (`license`, `coco_url`, ...) dropped. That is right
//! for an export, but a merge or a selection rewrites a file people keep using, so
//! [`write_like`] writes the same frames "like" the original file instead:
//!
//! - top-level fields other than `images`, `annotations` and `categories` (`info`,
//!   `licenses`, anything else) are copied as they are, in the original order;
//! - every original category is kept with its id (also categories no annotation
//!   uses); a class the original lacks gets a new category (its fields from one of
//!   the `others` files when one has it) with an id above the original's;
//! - an image keeps its original id; an image whose frame fields (size,
//!   attributes) are unchanged is copied as it was, any other keeps its
//!   bookkeeping fields; a new image gets a new id;
//! - an annotation whose object is unchanged (same annotation id, same frame,
//!   equal object) is copied as it was (so fields dsv does not read, like
//!   `area`, stay); the others are written by `coco::write`.
//!
//! Values copied are minified (whitespace outside strings removed), one image,
//! annotation or category per line as `coco::write` does. The result must parse
//! to exactly the frames given (or to what `coco::write`'s output parses to),
//! else `None` (the caller then uses `coco::write`'s output).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::lex::{Lexer, NO_LIMIT};
use crate::labels::{FrameLabels, coco};

/// Image fields that are COCO bookkeeping (not frame attributes) and are kept.
const IMAGE_BOOKKEEPING: [&str; 4] = ["license", "flickr_url", "coco_url", "date_captured"];

/// The three lists `write_like` rebuilds, in the order they are added when the
/// original lacks them.
const LISTS: [&str; 3] = ["images", "annotations", "categories"];

/// Writes `frames` as a COCO file laid out like `original`, whose parsed frames
/// are `original_frames` (see the module doc). `others` (for instance the other
/// side of a merge) only lend the fields of categories and images the original
/// lacks. `None` when `original` is not a COCO object, the frames cannot be
/// written, or the result would not parse back to `frames` or to what
/// `coco::write` gives.
pub fn write_like(
    original: &[u8],
    original_frames: &[FrameLabels],
    others: &[&[u8]],
    frames: &[FrameLabels],
) -> Option<Vec<u8>> {
    let written = coco::write(frames).ok()?;
    let out = rewrite(original, original_frames, others, frames, &written)?;
    // Never trade correctness for looks: the result must mean what the writer's does.
    let back = coco::parse(&out).ok()?;
    if back.as_slice() == frames {
        return Some(out);
    }
    match coco::parse(&written) {
        Ok(w) if w == back => Some(out),
        _ => None,
    }
}

/// The fields of an original category, image or annotation that `rewrite` reads
/// (the others are skipped without being built).
#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    file_name: Option<Value>,
    #[serde(default)]
    image_id: Option<Value>,
}

/// What another file can lend: its categories and images' bookkeeping fields.
#[derive(Deserialize, Default)]
struct OtherDoc {
    #[serde(default)]
    categories: Vec<Value>,
    #[serde(default)]
    images: Vec<OtherImage>,
}

#[derive(Deserialize)]
struct OtherImage {
    #[serde(default)]
    file_name: Option<Value>,
    #[serde(default)]
    license: Option<Value>,
    #[serde(default)]
    flickr_url: Option<Value>,
    #[serde(default)]
    coco_url: Option<Value>,
    #[serde(default)]
    date_captured: Option<Value>,
}

impl OtherImage {
    /// Its bookkeeping fields as a JSON object.
    fn bookkeeping(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in IMAGE_BOOKKEEPING.iter().zip([
            &self.license,
            &self.flickr_url,
            &self.coco_url,
            &self.date_captured,
        ]) {
            if let Some(v) = v {
                m.insert((*k).to_string(), v.clone());
            }
        }
        Value::Object(m)
    }
}

fn rewrite(
    original: &[u8],
    original_frames: &[FrameLabels],
    others: &[&[u8]],
    frames: &[FrameLabels],
    written: &[u8],
) -> Option<Vec<u8>> {
    let original = original.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(original);
    let text = std::str::from_utf8(original).ok()?;
    // The scanner never panics; on text that is not valid JSON it gives up or
    // produces something the final parse in `write_like` rejects.
    let top = split_object(text)?;
    let orig_frame: HashMap<&str, &FrameLabels> = original_frames
        .iter()
        .map(|f| (f.frame.as_str(), f))
        .rev()
        .collect();
    let wtext = std::str::from_utf8(written).ok()?;
    let wtop = split_object(wtext)?;
    let wlist = |key: &str| -> Option<Vec<&str>> {
        let raw = wtop.iter().find(|(k, _)| k == key)?.1;
        split_array(raw)
    };
    let (w_images, w_annotations, w_categories) = (
        wlist("images")?,
        wlist("annotations")?,
        wlist("categories")?,
    );
    let olist = |key: &str| -> Option<Vec<&str>> {
        match top.iter().find(|(k, _)| k == key) {
            Some((_, raw)) => split_array(raw),
            None => Some(Vec::new()),
        }
    };
    let (o_images, o_annotations, o_categories) = (
        olist("images")?,
        olist("annotations")?,
        olist("categories")?,
    );
    let entries = |raws: &[&str]| -> Option<Vec<Entry>> {
        raws.iter().map(|r| serde_json::from_str(r).ok()).collect()
    };
    let (o_img, o_ann, o_cat, w_cat) = (
        entries(&o_images)?,
        entries(&o_annotations)?,
        entries(&o_categories)?,
        entries(&w_categories)?,
    );
    let str_of = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);

    let mut cat_ids: HashSet<String> = HashSet::new();
    let mut cat_by_name: HashMap<String, Value> = HashMap::new();
    for c in &o_cat {
        let id = c.id.as_ref()?;
        cat_ids.insert(id.to_string());
        if let Some(name) = str_of(&c.name) {
            cat_by_name.entry(name).or_insert_with(|| id.clone());
        }
    }
    let mut img_ids: HashSet<String> = HashSet::new();
    let mut img_by_name: HashMap<String, usize> = HashMap::new();
    for (k, e) in o_img.iter().enumerate() {
        img_ids.insert(e.id.as_ref()?.to_string());
        if let Some(name) = str_of(&e.file_name) {
            img_by_name.entry(name).or_insert(k);
        }
    }
    // The other files are read only when something new needs their fields.
    let new_cats = w_cat
        .iter()
        .any(|c| str_of(&c.name).is_none_or(|n| !cat_by_name.contains_key(&n)));
    let new_imgs = frames.iter().any(|f| !img_by_name.contains_key(&f.frame));
    let other_docs: Vec<OtherDoc> = if new_cats || new_imgs {
        others
            .iter()
            .filter_map(|b| {
                serde_json::from_slice(b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)).ok()
            })
            .collect()
    } else {
        Vec::new()
    };
    // Entries of the other files by name (the first file, then the first entry, wins).
    let mut other_categories: HashMap<&str, &Value> = HashMap::new();
    let mut other_images: HashMap<&str, &OtherImage> = HashMap::new();
    for d in &other_docs {
        for c in &d.categories {
            if let Some(name) = c.get("name").and_then(Value::as_str) {
                other_categories.entry(name).or_insert(c);
            }
        }
        for i in &d.images {
            if let Some(name) = i.file_name.as_ref().and_then(Value::as_str) {
                other_images.entry(name).or_insert(i);
            }
        }
    }

    // Categories: all of the original's, then new classes.
    let mut categories: Vec<String> = o_categories.iter().map(|r| minify(r)).collect();
    let mut cat_map: HashMap<String, Value> = HashMap::new();
    let mut next_cat = fresh_start(&cat_ids);
    for (raw, c) in w_categories.iter().zip(&w_cat) {
        let wid = c.id.as_ref()?.to_string();
        let name = str_of(&c.name)?;
        let id = match cat_by_name.get(&name) {
            Some(id) => id.clone(),
            None => {
                let id = fresh(&mut next_cat, &mut cat_ids);
                let mut entry = match other_categories.get(name.as_str()) {
                    Some(v) => (*v).clone(),
                    None => serde_json::from_str(raw).ok()?,
                };
                entry.as_object_mut()?.insert("id".into(), id.clone());
                categories.push(serde_json::to_string(&entry).ok()?);
                id
            }
        };
        cat_map.insert(wid, id);
    }

    // Images: original ids, original entries when the frame's fields are unchanged.
    if frames.len() != w_images.len() {
        return None;
    }
    let mut next_img = fresh_start(&img_ids);
    let mut images: Vec<String> = Vec::with_capacity(w_images.len());
    let mut img_map: HashMap<String, Value> = HashMap::new();
    // The original image id of each frame whose image kept its entry, by frame index.
    let mut same_image: Vec<Option<&Value>> = Vec::with_capacity(frames.len());
    for (frame, raw) in frames.iter().zip(&w_images) {
        let fields = split_object(raw)?;
        let wid = fields.iter().find(|(k, _)| k == "id")?.1.to_string();
        match img_by_name.get(&frame.frame).copied() {
            Some(k) => {
                let id = o_img.get(k)?.id.as_ref()?;
                img_map.insert(wid, id.clone());
                let unchanged = orig_frame.get(frame.frame.as_str()).is_some_and(|f| {
                    f.width == frame.width
                        && f.height == frame.height
                        && f.units == frame.units
                        && f.attributes == frame.attributes
                });
                if unchanged {
                    images.push(minify(o_images.get(k)?));
                    same_image.push(Some(id));
                } else {
                    let ov: Value = serde_json::from_str(o_images.get(k)?).ok()?;
                    images.push(with_fields(&fields, id, Some(&ov))?);
                    same_image.push(None);
                }
            }
            None => {
                let id = fresh(&mut next_img, &mut img_ids);
                let lend = other_images
                    .get(frame.frame.as_str())
                    .map(|i| i.bookkeeping());
                images.push(with_fields(&fields, &id, lend.as_ref())?);
                img_map.insert(wid, id);
                same_image.push(None);
            }
        }
    }

    // Annotations: unchanged objects keep their original entry.
    let mut ann_by_id: HashMap<String, usize> = HashMap::new();
    for (k, e) in o_ann.iter().enumerate() {
        if let Some(id) = e.id.as_ref().and_then(id_text) {
            ann_by_id.entry(id).or_insert(k);
        }
    }
    let objects: Vec<(usize, &crate::labels::Object)> = frames
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.objects.iter().map(move |o| (i, o)))
        .collect();
    if objects.len() != w_annotations.len() {
        return None;
    }
    let mut annotations: Vec<String> = Vec::with_capacity(w_annotations.len());
    for ((i, obj), raw) in objects.into_iter().zip(&w_annotations) {
        let fields = split_object(raw)?;
        let wid: Value = serde_json::from_str(fields.iter().find(|(k, _)| k == "id")?.1).ok()?;
        let frame = frames.get(i)?;
        let reuse = (|| {
            let id = obj.id.as_deref()?;
            if id_text(&wid)? != id {
                return None;
            }
            let k = *ann_by_id.get(id)?;
            let image = same_image.get(i).copied().flatten()?;
            let in_frame = orig_frame
                .get(frame.frame.as_str())
                .is_some_and(|f| f.objects.iter().any(|o| o == obj));
            (in_frame && o_ann.get(k)?.image_id.as_ref() == Some(image)).then_some(k)
        })();
        match reuse {
            Some(k) => annotations.push(minify(o_annotations.get(k)?)),
            None => {
                let mut out: Vec<(String, String)> = Vec::with_capacity(fields.len());
                for (key, val) in fields {
                    let val = match key.as_str() {
                        "image_id" => serde_json::to_string(img_map.get(val)?).ok()?,
                        "category_id" => serde_json::to_string(cat_map.get(val)?).ok()?,
                        _ => val.to_string(),
                    };
                    out.push((key, val));
                }
                annotations.push(join_object(&out)?);
            }
        }
    }

    // Assemble in the original's order of top-level fields.
    let lists: HashMap<&str, &Vec<String>> = [
        ("images", &images),
        ("annotations", &annotations),
        ("categories", &categories),
    ]
    .into_iter()
    .collect();
    let mut parts: Vec<String> = Vec::new();
    let mut done: HashSet<&str> = HashSet::new();
    let list_part = |key: &str, items: &[String]| -> Option<String> {
        let key = serde_json::to_string(key).ok()?;
        Some(if items.is_empty() {
            format!("{key}:[]")
        } else {
            format!("{key}:[\n{}\n]", items.join(",\n"))
        })
    };
    for (key, raw) in &top {
        if let Some(list) = LISTS.iter().copied().find(|l| *l == key.as_str()) {
            if done.insert(list) {
                parts.push(list_part(list, lists.get(list)?)?);
            }
            continue;
        }
        parts.push(format!(
            "{}:{}",
            serde_json::to_string(key).ok()?,
            minify(raw)
        ));
    }
    for key in LISTS {
        if !done.contains(key) {
            parts.push(list_part(key, lists.get(key)?)?);
        }
    }
    Some(format!("{{{}}}\n", parts.join(",\n")).into_bytes())
}

/// An image entry written by `coco::write` (`fields`) with the id `id` and the
/// bookkeeping fields of `lend` that it lacks.
fn with_fields(fields: &[(String, &str)], id: &Value, lend: Option<&Value>) -> Option<String> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(fields.len() + 4);
    for (k, v) in fields {
        let v = if k == "id" {
            serde_json::to_string(id).ok()?
        } else {
            v.to_string()
        };
        out.push((k.clone(), v));
    }
    if let Some(lend) = lend {
        for key in IMAGE_BOOKKEEPING {
            if let Some(v) = lend.get(key)
                && !out.iter().any(|(k, _)| k == key)
            {
                out.push((key.to_string(), serde_json::to_string(v).ok()?));
            }
        }
    }
    join_object(&out)
}

/// How COCO parsing names an id: an integer's digits, a string's text.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The first integer above every integer id in `taken` (1 when there is none).
fn fresh_start(taken: &HashSet<String>) -> i128 {
    taken
        .iter()
        .filter_map(|s| s.parse::<i128>().ok())
        .max()
        .map_or(1, |m| m.saturating_add(1))
}

/// The next integer id not in `taken` (ids compared by their JSON text).
fn fresh(next: &mut i128, taken: &mut HashSet<String>) -> Value {
    loop {
        let n = *next;
        *next = next.saturating_add(1);
        let text = n.to_string();
        if taken.insert(text.clone()) {
            return serde_json::from_str(&text).unwrap_or(Value::Null);
        }
    }
}

fn join_object(fields: &[(String, String)]) -> Option<String> {
    let mut out = String::from("{");
    for (k, (key, val)) in fields.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).ok()?);
        out.push(':');
        out.push_str(val);
    }
    out.push('}');
    Some(out)
}

/// Removes the whitespace outside strings of valid JSON text.
fn minify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut lex = Lexer::new(s.as_bytes(), 0, NO_LIMIT);
    // Start of the text not copied yet.
    let mut from = 0;
    loop {
        let run_end = lex.i;
        lex.ws();
        if lex.i > run_end {
            out.push_str(s.get(from..run_end).unwrap_or_default());
            from = lex.i;
        }
        match lex.peek() {
            None => break,
            // A string is copied whole, its spaces included; on one that is
            // not valid the rest is copied as it is (the final parse decides).
            Some(b'"') => {
                if lex.skip_string().is_none() {
                    break;
                }
            }
            Some(_) => lex.i += 1,
        }
    }
    out.push_str(s.get(from..).unwrap_or_default());
    out
}

/// The members of a JSON object, in order: decoded key and raw value text.
fn split_object(s: &str) -> Option<Vec<(String, &str)>> {
    let mut lex = Lexer::new(s.as_bytes(), 0, NO_LIMIT);
    lex.ws();
    lex.eat(b'{')?;
    let mut out = Vec::new();
    if lex.empty(b'}')? {
        return Some(out);
    }
    loop {
        let key = lex.text()?.into_owned();
        lex.ws();
        lex.eat(b':')?;
        lex.ws();
        let at = lex.i;
        lex.skip(0)?;
        out.push((key, s.get(at..lex.i)?));
        if !lex.next_or_end(b'}')? {
            return Some(out);
        }
    }
}

/// The elements of a JSON array, in order, as raw text.
fn split_array(s: &str) -> Option<Vec<&str>> {
    let mut lex = Lexer::new(s.as_bytes(), 0, NO_LIMIT);
    lex.ws();
    lex.eat(b'[')?;
    let mut out = Vec::new();
    if lex.empty(b']')? {
        return Some(out);
    }
    loop {
        let at = lex.i;
        lex.skip(0)?;
        out.push(s.get(at..lex.i)?);
        if !lex.next_or_end(b']')? {
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"{
  "info": {"description": "my set", "year": 2024},
  "licenses": [{"id": 3, "name": "CC", "url": ""}],
  "categories": [
    {"id": 7, "name": "car", "supercategory": "vehicle"},
    {"id": 9, "name": "bus", "supercategory": "vehicle"},
    {"id": 11, "name": "tree", "supercategory": "plant"}
  ],
  "images": [
    {"id": 100, "file_name": "a.jpg", "width": 10, "height": 5, "license": 3, "coco_url": "u"},
    {"id": 200, "file_name": "b.jpg", "width": 10, "height": 5, "license": 3}
  ],
  "annotations": [
    {"id": 1, "image_id": 100, "category_id": 7, "bbox": [1, 1, 2, 2], "area": 4.5, "iscrowd": 0, "extra": "kept"},
    {"id": 2, "image_id": 200, "category_id": 9, "bbox": [2, 2, 3, 3], "area": 9, "iscrowd": 0}
  ]
}"#;

    #[test]
    fn unchanged_frames_keep_every_field_and_id() {
        let frames = coco::parse(ORIGINAL.as_bytes()).expect("parses");
        let out = write_like(ORIGINAL.as_bytes(), &frames, &[], &frames).expect("written");
        let text = String::from_utf8(out.clone()).expect("utf-8");
        let doc: Value = serde_json::from_slice(&out).expect("JSON");
        let orig: Value = serde_json::from_str(ORIGINAL).expect("JSON");
        // Same document, key for key.
        assert_eq!(doc, orig, "{text}");
        // Original top-level order, one element per line.
        assert!(
            text.starts_with("{\"info\":{\"description\":\"my set\",\"year\":2024},\n\"licenses\""),
            "{text}"
        );
        assert_eq!(text.lines().count(), 15, "{text}");
    }

    #[test]
    fn deeply_nested_extra_field_keeps_the_layout() {
        // Deeper than the fast reader's nesting limit, within serde_json's.
        let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        let original = ORIGINAL.replace(r#"{"description": "my set", "year": 2024}"#, &deep);
        let frames = coco::parse(original.as_bytes()).expect("parses");
        let out = write_like(original.as_bytes(), &frames, &[], &frames).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with(&format!("{{\"info\":{deep},\n")), "{text}");
    }

    #[test]
    fn edits_are_written_and_the_rest_is_kept() {
        let original = coco::parse(ORIGINAL.as_bytes()).expect("parses");
        let mut frames = original.clone();
        // Move the bus, add a new class on a.jpg, drop b.jpg's attributes? (none), add c.jpg.
        if let Some(b) = frames[1].objects[0].bbox.as_mut() {
            b.w = 4.0;
        }
        let mut dog = crate::labels::Object::new("dog", frames[0].objects[0].bbox);
        dog.id = None;
        frames[0].objects.push(dog);
        let mut c = FrameLabels::new("c.jpg", crate::labels::Units::Pixels);
        c.width = Some(4);
        c.height = Some(4);
        frames.push(c);
        let other = br#"{"images":[{"id":1,"file_name":"c.jpg","license":5}],"annotations":[],
            "categories":[{"id":1,"name":"dog","supercategory":"animal"}]}"#;
        let out = write_like(ORIGINAL.as_bytes(), &original, &[other], &frames).expect("written");
        let doc: Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(doc["info"]["description"], "my set");
        assert_eq!(doc["licenses"][0]["id"], 3);
        let cats = doc["categories"].as_array().expect("categories");
        assert_eq!(cats.len(), 4);
        assert_eq!(cats[2]["name"], "tree");
        assert_eq!(
            cats[3],
            serde_json::json!({"id": 12, "name": "dog", "supercategory": "animal"})
        );
        let imgs = doc["images"].as_array().expect("images");
        assert_eq!(imgs[0]["coco_url"], "u");
        assert_eq!(imgs[1]["id"], 200);
        assert_eq!(imgs[2]["id"], 201);
        assert_eq!(imgs[2]["license"], 5);
        let anns = doc["annotations"].as_array().expect("annotations");
        // The untouched car keeps its fields; the moved bus is rewritten.
        assert_eq!(anns[0]["extra"], "kept");
        assert_eq!(anns[0]["area"], 4.5);
        assert_eq!(anns[1]["category_id"], 12);
        assert_eq!(anns[1]["image_id"], 100);
        assert_eq!(anns[2]["id"], 2);
        assert_eq!(anns[2]["image_id"], 200);
        assert_eq!(anns[2]["category_id"], 9);
        assert_eq!(anns[2]["bbox"][2], 4.0);
        assert_eq!(coco::parse(&out).expect("parses"), {
            coco::parse(&coco::write(&frames).expect("write")).expect("parses")
        });
    }

    #[test]
    fn not_coco_gives_none() {
        let frames = coco::parse(ORIGINAL.as_bytes()).expect("parses");
        for bad in [
            &b"[1,2]"[..],
            b"{\"images\": 3}",
            b"not json",
            b"{\"images\":[{\"id\":1",
        ] {
            assert!(write_like(bad, &frames, &[], &frames).is_none());
        }
    }

    #[test]
    fn scanner_splits_nested_values_and_strings() {
        let s = r#" { "a" : [1, {"b": "x,]}\"y"}] , "c\u0041":null,"d":-1.5e3 } "#;
        let m = split_object(s).expect("object");
        assert_eq!(
            m,
            vec![
                ("a".to_string(), r#"[1, {"b": "x,]}\"y"}]"#),
                ("cA".to_string(), "null"),
                ("d".to_string(), "-1.5e3"),
            ]
        );
        assert_eq!(
            split_array(m[0].1).expect("array"),
            vec!["1", r#"{"b": "x,]}\"y"}"#]
        );
        assert_eq!(
            minify(r#"{ "a b" : [ 1 , "\" x" ] }"#),
            r#"{"a b":[1,"\" x"]}"#
        );
    }
}
