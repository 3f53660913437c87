//! Frame metadata: a tracked sidecar table mapping frame paths to attributes
//! (`weather=rain`, `sensor=cam_front`, reviewer flags) and model predictions.
//!
//! The sidecar is an ordinary file of the dataset (`meta.jsonl` by default, or
//! `meta.csv`, or the path in `dsv.toml` `[metadata]`), so it is versioned,
//! diffed and merged like everything else; `dsv meta set/unset/import` edit it
//! in the working tree. JSONL rows are `{"path": ..., key: value, ...,
//! "predictions": [{"class", "box": {x, y, w, h}, "score"}]}` (a list `[x, y, w, h]`
//! box is read too); CSV has a header
//! with a `path` column and one column per attribute (empty cell: not set).
//! Every parse error names the line (and column where known).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::labels::{AttrRef, AttrValue, BBox};

/// The sidecar used when `dsv.toml` declares none and no `meta.csv` exists.
pub const DEFAULT_SIDECAR: &str = "meta.jsonl";
/// The CSV sidecar looked for when `meta.jsonl` does not exist.
pub const DEFAULT_CSV_SIDECAR: &str = "meta.csv";
/// The JSONL field holding a frame's predictions.
pub const PREDICTIONS: &str = "predictions";

/// One model prediction for a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Predicted class name.
    pub class: String,
    /// Box, top-left corner and size in the labels' units: written as the map
    /// `{x, y, w, h}` every output uses; the `[x, y, w, h]` list of older
    /// sidecars is still read.
    #[serde(
        rename = "box",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "box_map_or_list"
    )]
    pub bbox: Option<BBox>,
    /// Confidence in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A prediction box given either as `{x, y, w, h}` or as `[x, y, w, h]`.
fn box_map_or_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<BBox>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List([f64; 4]),
        Map(BBox),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|e| match e {
        Either::List([x, y, w, h]) => BBox { x, y, w, h },
        Either::Map(b) => b,
    }))
}

/// Attributes and predictions of one frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameMeta {
    /// Attributes by name.
    pub attrs: BTreeMap<String, AttrValue>,
    /// Model predictions.
    pub predictions: Vec<Prediction>,
}

impl FrameMeta {
    /// Whether the row holds no attribute and no prediction.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.predictions.is_empty()
    }
}

/// Sidecar file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated with a header line.
    Csv,
}

impl SidecarFormat {
    /// The format a sidecar path implies (`.csv` is CSV, anything else JSONL).
    pub fn of(path: &str) -> SidecarFormat {
        if path.to_ascii_lowercase().ends_with(".csv") {
            SidecarFormat::Csv
        } else {
            SidecarFormat::Jsonl
        }
    }
}

/// A parsed sidecar: rows by frame path, in path order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sidecar {
    /// Metadata by root-relative frame path.
    pub rows: BTreeMap<String, FrameMeta>,
}

/// `line N, column C: ` or `line N: `.
fn at(line: usize, column: Option<usize>) -> String {
    match column {
        Some(c) => format!("line {line}, column {c}: "),
        None => format!("line {line}: "),
    }
}

/// Parses a value written on the command line or in a CSV cell: integers,
/// real numbers and true/false become typed values, anything else text.
pub fn parse_value(text: &str) -> AttrValue {
    if let Ok(i) = text.parse::<i64>() {
        return AttrValue::Int(i);
    }
    match text {
        "true" => return AttrValue::Bool(true),
        "false" => return AttrValue::Bool(false),
        _ => {}
    }
    // "inf" and "nan" parse as floats but nobody means them as numbers.
    if text.bytes().any(|b| b.is_ascii_digit())
        && let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return AttrValue::Float(f);
    }
    AttrValue::Str(text.to_string())
}

fn parse_prediction(v: &serde_json::Value) -> std::result::Result<Prediction, String> {
    let p: Prediction = serde_json::from_value(v.clone()).map_err(|e| {
        format!(
            "a prediction must be {{\"class\": ..., \"box\": {{\"x\": .., \"y\": .., \"w\": .., \"h\": ..}}, \"score\": ...}}: {e}"
        )
    })?;
    if let Some(b) = p.bbox
        && [b.x, b.y, b.w, b.h].iter().any(|x| !x.is_finite())
    {
        return Err("a prediction box has a value that is not a finite number".into());
    }
    Ok(p)
}

/// One JSONL row as read: the frame path, the attributes given a value and
/// the predictions, borrowing from the line where it can. Every row shape and
/// every error comes from one reading ([`row`]), which means what reading the
/// line as a `serde_json::Value` object and then checking it would: a name
/// given twice keeps its last value, rules are checked in name order after the
/// whole line was read, so a JSON syntax error always wins.
pub(crate) struct Row<'a> {
    /// The frame path, '/' trimmed from both ends.
    pub path: Cow<'a, str>,
    /// The attributes given a value, in name order, each name once (nulls left out).
    pub attrs: Vec<(Cow<'a, str>, PlainValue<'a>)>,
    /// The row's predictions.
    pub predictions: Vec<Prediction>,
}

/// An attribute value of a [`Row`].
pub(crate) enum PlainValue<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl PlainValue<'_> {
    /// The value as the attribute it stands for.
    pub fn as_attr(&self) -> AttrRef<'_> {
        match self {
            PlainValue::Bool(b) => AttrRef::Bool(*b),
            PlainValue::Int(i) => AttrRef::Int(*i),
            PlainValue::Float(x) => AttrRef::Float(*x),
            PlainValue::Str(s) => AttrRef::Str(s),
        }
    }
}

impl Row<'_> {
    /// The row as a sidecar holds it.
    fn into_owned(self) -> (String, FrameMeta) {
        let attrs = self
            .attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_attr().to_owned()))
            .collect();
        (
            self.path.into_owned(),
            FrameMeta {
                attrs,
                predictions: self.predictions,
            },
        )
    }
}

/// Why a JSONL row does not read.
pub(crate) enum RowError {
    /// Not JSON at all (the error knows its column).
    Json(serde_json::Error),
    /// JSON that breaks a row rule.
    Rule(String),
}

/// Reads one JSONL row.
pub(crate) fn row(raw: &str) -> std::result::Result<Row<'_>, RowError> {
    match serde_json::from_str::<RowRead>(raw) {
        Ok(RowRead(r)) => r.map_err(RowError::Rule),
        Err(e) => Err(RowError::Json(e)),
    }
}

/// [`row`] with the error naming the sidecar and the line (and column for JSON syntax).
pub(crate) fn read_row<'a>(name: &str, line: usize, raw: &'a str) -> Result<Row<'a>> {
    row(raw).map_err(|e| {
        let (column, msg) = match e {
            RowError::Json(e) => (Some(e.column()), format!("not JSON: {e}")),
            RowError::Rule(msg) => (None, msg),
        };
        Error::Metadata(format!("{name}: {}{msg}", at(line, column)))
    })
}

/// A whole line read: the row, or the rule it breaks.
struct RowRead<'a>(std::result::Result<Row<'a>, String>);

impl<'de> Deserialize<'de> for RowRead<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(RowVisitor)
    }
}

struct RowVisitor;

impl RowVisitor {
    fn not_object<'de, E>() -> std::result::Result<RowRead<'de>, E> {
        Ok(RowRead(Err("a row must be a JSON object".into())))
    }
}

impl<'de> serde::de::Visitor<'de> for RowVisitor {
    type Value = RowRead<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<RowRead<'de>, E> {
        Self::not_object()
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<RowRead<'de>, E> {
        Self::not_object()
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<RowRead<'de>, E> {
        Self::not_object()
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<RowRead<'de>, E> {
        Self::not_object()
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<RowRead<'de>, E> {
        Self::not_object()
    }
    fn visit_unit<E>(self) -> std::result::Result<RowRead<'de>, E> {
        Self::not_object()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        seq: A,
    ) -> std::result::Result<RowRead<'de>, A::Error> {
        read_nested_seq(seq)?;
        Self::not_object()
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<RowRead<'de>, A::Error> {
        // The last "path" given: `None` inside when it is not a string.
        let mut path: Option<Option<Cow<'de, str>>> = None;
        let mut fields: Vec<(Cow<'de, str>, Field<'de>)> = Vec::new();
        while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
            if k == "path" {
                path = Some(match map.next_value::<Field<'de>>()? {
                    Field::Value(PlainValue::Str(p)) => Some(p),
                    _ => None,
                });
            } else if k == PREDICTIONS {
                let v = map.next_value::<serde_json::Value>()?;
                fields.push((k, Field::Predictions(Box::new(v))));
            } else {
                let v = map.next_value::<Field<'de>>()?;
                fields.push((k, v));
            }
        }
        let path = match path {
            Some(Some(p)) if !p.trim().is_empty() => match p {
                Cow::Borrowed(b) => Cow::Borrowed(b.trim_matches('/')),
                Cow::Owned(o) => Cow::Owned(o.trim_matches('/').to_string()),
            },
            Some(_) => return Ok(RowRead(Err("\"path\" must be a non-empty string".into()))),
            None => return Ok(RowRead(Err("missing \"path\"".into()))),
        };
        // Stable, so the values of a repeated name stay in the order given.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        if fields.windows(2).any(|w| w[0].0 == w[1].0) {
            // The last value of a repeated name wins: each later one is moved
            // into the place of the one kept.
            fields.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        let mut attrs = Vec::with_capacity(fields.len());
        let mut predictions = Vec::new();
        for (k, v) in fields {
            match v {
                Field::Value(a) => attrs.push((k, a)),
                Field::Null => {}
                Field::Nested => {
                    return Ok(RowRead(Err(format!(
                        "attribute \"{k}\" must be text, a number or true/false"
                    ))));
                }
                Field::Predictions(v) => {
                    let serde_json::Value::Array(items) = *v else {
                        return Ok(RowRead(Err("\"predictions\" must be a list".into())));
                    };
                    match items.iter().map(parse_prediction).collect() {
                        Ok(p) => predictions = p,
                        Err(msg) => return Ok(RowRead(Err(msg))),
                    }
                }
            }
        }
        Ok(RowRead(Ok(Row {
            path,
            attrs,
            predictions,
        })))
    }
}

/// Reads the rest of a list whose value is not used, number ranges and
/// strings checked as when the value is used.
fn read_nested_seq<'de, A: serde::de::SeqAccess<'de>>(
    mut seq: A,
) -> std::result::Result<(), A::Error> {
    while seq.next_element::<serde_json::Value>()?.is_some() {}
    Ok(())
}

/// A JSON string, borrowed from the input unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// The value of a row's name.
enum Field<'a> {
    Value(PlainValue<'a>),
    Null,
    /// A list or an object (read whole, not kept).
    Nested,
    /// The value of "predictions", whatever it is (boxed: rare, and large).
    Predictions(Box<serde_json::Value>),
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> serde::de::Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(PlainValue::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(PlainValue::Int(v)))
    }
    // As `serde_json::Number::as_i64`, then `as_f64`: an integer beyond i64 is a real.
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(match i64::try_from(v) {
            Ok(i) => PlainValue::Int(i),
            Err(_) => PlainValue::Float(v as f64),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(PlainValue::Float(v)))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(PlainValue::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(PlainValue::Str(Cow::Owned(v.to_string()))))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Value(PlainValue::Str(Cow::Owned(v))))
    }
    fn visit_unit<E>(self) -> std::result::Result<Field<'de>, E> {
        Ok(Field::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        seq: A,
    ) -> std::result::Result<Field<'de>, A::Error> {
        read_nested_seq(seq)?;
        Ok(Field::Nested)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Field<'de>, A::Error> {
        while map.next_entry::<Text, serde_json::Value>()?.is_some() {}
        Ok(Field::Nested)
    }
}

/// A piece's rows (line, path, metadata) up to its first error, and that error with its line.
type PieceRows<'a, R> = (Vec<(usize, Cow<'a, str>, R)>, Option<(usize, Error)>);

/// Bytes of a JSONL sidecar parsed as one piece (at a line boundary).
/// Tests use small pieces, so that every sidecar they read has several.
const JSONL_PIECE: usize = if cfg!(test) { 64 } else { 1 << 20 };

/// One non-blank JSONL row: its frame path and metadata; errors name the line.
fn jsonl_row(name: &str, line: usize, raw: &str) -> Result<(String, FrameMeta)> {
    read_row(name, line, raw).map(Row::into_owned)
}

/// The rows of a JSONL sidecar, each read by `row` (given its line number and
/// text), in path order; errors as if the lines were read one after another:
/// the first line that fails to read or repeats a path wins.
pub(crate) fn jsonl_rows<'a, R: Send>(
    name: &str,
    bytes: &'a [u8],
    row: impl Fn(usize, &'a str) -> Result<(Cow<'a, str>, R)> + Sync,
) -> Result<Vec<(Cow<'a, str>, R)>> {
    use rayon::prelude::*;
    let mut t = crate::trace::Phases::start("meta.jsonl");
    let text = utf8_text(bytes)
        .map_err(|line| Error::Metadata(format!("{name}: {}not UTF-8", at(line, None))))?;
    // Pieces of whole lines parsed in parallel (a million-row sidecar took
    // seconds on one core), each with the number of its first line.
    let mut pieces = Vec::new();
    let (mut rest, mut line) = (text, 0usize);
    while !rest.is_empty() {
        let cut = match rest.get(JSONL_PIECE..).and_then(|t| t.find('\n')) {
            Some(i) => JSONL_PIECE + i + 1,
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at(cut);
        pieces.push((line, piece));
        line += memchr::memchr_iter(b'\n', piece.as_bytes()).count();
        rest = tail;
    }
    let parsed: Vec<PieceRows<'a, R>> = pieces
        .par_iter()
        .map(|&(first, piece)| {
            let mut rows = Vec::new();
            for (i, raw) in piece.lines().enumerate() {
                let line = first + i + 1;
                if raw.trim().is_empty() {
                    continue;
                }
                match row(line, raw) {
                    Ok((path, meta)) => rows.push((line, path, meta)),
                    Err(e) => return (rows, Some((line, e))),
                }
            }
            (rows, None)
        })
        .collect();
    t.mark("rows");
    let mut first_error: Option<(usize, Error)> = None;
    let mut rows: Vec<(Cow<'a, str>, usize, R)> =
        Vec::with_capacity(parsed.iter().map(|(r, _)| r.len()).sum());
    for (piece_rows, err) in parsed {
        rows.extend(piece_rows.into_iter().map(|(l, p, m)| (p, l, m)));
        if let Some(e) = err {
            first_error = Some(e);
            break;
        }
    }
    let rows = in_path_order(name, rows, first_error);
    t.mark("sort");
    rows
}

/// Rows (path, line, metadata) read up to the first error (with its line)
/// put in path order; the first failing line wins, as if the rows were read
/// one after another: that error, or a second row for a path.
fn in_path_order<P: AsRef<str> + Send, R: Send>(
    name: &str,
    mut rows: Vec<(P, usize, R)>,
    first_error: Option<(usize, Error)>,
) -> Result<Vec<(P, R)>> {
    use rayon::prelude::*;
    rows.par_sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()).then(a.1.cmp(&b.1)));
    let dup = rows
        .windows(2)
        .filter(|w| w[0].0.as_ref() == w[1].0.as_ref())
        .map(|w| (w[1].1, w[1].0.as_ref().to_string()))
        .min();
    if let Some((line, path)) = dup
        && first_error.as_ref().is_none_or(|(l, _)| line < *l)
    {
        return Err(Error::Metadata(format!(
            "{name}: {}second row for \"{path}\"",
            at(line, None)
        )));
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    Ok(rows.into_iter().map(|(p, _, m)| (p, m)).collect())
}

impl Sidecar {
    /// Parses a sidecar; `name` (the file's path) starts every error message.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Sidecar> {
        match SidecarFormat::of(name) {
            SidecarFormat::Jsonl => Sidecar::parse_jsonl(name, bytes),
            SidecarFormat::Csv => Sidecar::parse_csv(name, bytes),
        }
    }

    fn parse_jsonl(name: &str, bytes: &[u8]) -> Result<Sidecar> {
        let rows = jsonl_rows(name, bytes, |line, raw| {
            jsonl_row(name, line, raw).map(|(p, m)| (Cow::Owned(p), m))
        })?;
        Ok(Sidecar {
            rows: rows.into_iter().map(|(p, m)| (p.into_owned(), m)).collect(),
        })
    }

    fn parse_csv(name: &str, bytes: &[u8]) -> Result<Sidecar> {
        let rows = csv_rows(name, bytes, |cells| FrameMeta {
            attrs: cells
                .iter()
                .map(|(k, c)| (k.to_string(), parse_value(c)))
                .collect(),
            predictions: Vec::new(),
        })?;
        Ok(Sidecar {
            rows: rows.into_iter().collect(),
        })
    }

    /// The sidecar as bytes of the given format (rows in path order, one per line).
    pub fn write(&self, format: SidecarFormat) -> Result<Vec<u8>> {
        match format {
            SidecarFormat::Jsonl => {
                let mut out = Vec::new();
                for (path, m) in &self.rows {
                    if m.is_empty() {
                        continue;
                    }
                    let mut obj = serde_json::Map::new();
                    obj.insert("path".into(), path.clone().into());
                    for (k, v) in &m.attrs {
                        obj.insert(k.clone(), serde_json::to_value(v).unwrap_or_default());
                    }
                    if !m.predictions.is_empty() {
                        obj.insert(
                            PREDICTIONS.into(),
                            serde_json::to_value(&m.predictions).unwrap_or_default(),
                        );
                    }
                    out.extend_from_slice(serde_json::Value::Object(obj).to_string().as_bytes());
                    out.push(b'\n');
                }
                Ok(out)
            }
            SidecarFormat::Csv => {
                if self.rows.values().any(|m| !m.predictions.is_empty()) {
                    return Err(Error::Metadata(
                        "predictions cannot be stored in a CSV sidecar (use a .jsonl one)".into(),
                    ));
                }
                let mut keys: Vec<&String> =
                    self.rows.values().flat_map(|m| m.attrs.keys()).collect();
                keys.sort();
                keys.dedup();
                let mut w = csv_writer(Vec::new());
                let csv_err = |e: csv::Error| Error::Metadata(format!("writing CSV: {e}"));
                w.write_record(std::iter::once("path").chain(keys.iter().map(|k| k.as_str())))
                    .map_err(csv_err)?;
                let mut cells: Vec<String> = Vec::with_capacity(keys.len() + 1);
                for (path, m) in &self.rows {
                    if m.is_empty() {
                        continue;
                    }
                    cells.clear();
                    cells.push(path.clone());
                    cells.extend(
                        keys.iter()
                            .map(|k| m.attrs.get(*k).map(|v| v.to_string()).unwrap_or_default()),
                    );
                    w.write_record(&cells).map_err(csv_err)?;
                }
                w.into_inner()
                    .map_err(|e| Error::Metadata(format!("writing CSV: {}", e.error())))
            }
        }
    }
}

/// The CSV writer every sidecar is written with: `\n` after each row, a cell
/// quoted only when it holds a comma, a quote or a line break.
fn csv_writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

/// One CSV cell as written in a row (quoted when it must be).
pub(crate) fn csv_cell(s: &str) -> String {
    // A row of one empty cell is written `""`, an empty cell among others as nothing.
    if s.is_empty() {
        return String::new();
    }
    let mut w = csv_writer(Vec::new());
    // A quoted cell is closed when its row ends; writing to memory does not fail.
    let _ = w.write_record([s]);
    let mut out = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    out.pop();
    out
}

/// Splits one CSV line, read as a sidecar row is; the error carries the
/// 1-based column (a cell running over the line end is an unclosed quote).
pub(crate) fn split_csv(line: &str) -> std::result::Result<Vec<String>, (usize, String)> {
    let (body, had_cr) = match line.strip_suffix('\r') {
        Some(b) => (b, true),
        None => (line, false),
    };
    let last_quoted = check_quotes(body).map_err(|(at, m)| (at + 1, m.to_string()))?;
    let mut record = csv::StringRecord::new();
    // One line of text is one record (a line break would have needed a quote).
    if !csv_reader(line.as_bytes())
        .read_record(&mut record)
        .unwrap_or(false)
    {
        return Ok(vec![String::new()]);
    }
    let last_len = last_cell_len(&record, last_quoted, had_cr);
    Ok((0..record.len())
        .map(|c| cell(&record, c, last_len).to_string())
        .collect())
}

/// The CSV reader of sidecars: no header row of its own (the first non-blank
/// row is the header), rows of any length (checked against the header here),
/// a row ends at `\n` only (a lone `\r` is text, as it always was).
fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(bytes)
}

/// The length of a row's last cell without the `\r` of a `\r\n` line end
/// (the reader ends rows at `\n`): one `\r` after a quoted cell, every
/// trailing `\r` of an unquoted one, as the line reader before took them.
fn last_cell_len(record: &csv::StringRecord, last_quoted: bool, had_cr: bool) -> usize {
    let last = record.get(record.len().wrapping_sub(1)).unwrap_or("");
    if last_quoted {
        last.len() - usize::from(had_cr && last.ends_with('\r'))
    } else {
        last.trim_end_matches('\r').len()
    }
}

/// Cell `c` of a row whose last cell is `last_len` bytes long.
fn cell(record: &csv::StringRecord, c: usize, last_len: usize) -> &str {
    let text = record.get(c).unwrap_or("");
    if c + 1 == record.len() {
        text.get(..last_len).unwrap_or(text)
    } else {
        text
    }
}

/// Checks the quoting of one raw CSV row (its line end removed) and tells
/// whether its last cell is quoted; an error is the byte offset and what is
/// wrong. The `csv` crate reads any bytes leniently (it has no strict mode,
/// BurntSushi/rust-csv#77), but an unclosed quote or text after a closing
/// quote is a damaged sidecar, refused as it always was.
fn check_quotes(raw: &str) -> std::result::Result<bool, (usize, &'static str)> {
    let b = raw.as_bytes();
    if memchr::memchr(b'"', b).is_none() {
        return Ok(false);
    }
    let mut i = 0;
    let mut at_cell_start = true;
    let mut last_quoted = false;
    while i < b.len() {
        match b[i] {
            b'"' if at_cell_start => {
                let open = i;
                i += 1;
                loop {
                    let Some(q) = memchr::memchr(b'"', &b[i..]) else {
                        return Err((open, "unclosed quote"));
                    };
                    i += q + 1;
                    if b.get(i) == Some(&b'"') {
                        i += 1;
                        continue;
                    }
                    break;
                }
                if b.get(i).is_some_and(|c| *c != b',') {
                    return Err((i, "text after a closing quote"));
                }
                at_cell_start = false;
                last_quoted = true;
            }
            b',' => {
                at_cell_start = true;
                last_quoted = false;
                i += 1;
            }
            _ => {
                at_cell_start = false;
                i += 1;
            }
        }
    }
    Ok(last_quoted)
}

/// The set cells of one CSV row, as [`csv_rows`] gives them.
pub(crate) struct CsvCells<'a> {
    names: &'a [String],
    record: &'a csv::StringRecord,
    last_len: usize,
    cols: &'a [usize],
}

impl<'a> CsvCells<'a> {
    /// Column name and cell text of each set cell, in name order; a name
    /// given to several columns once, with its last set cell.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + '_ {
        let (names, record, last_len) = (self.names, self.record, self.last_len);
        self.cols
            .iter()
            .map(move |&c| (names[c].as_str(), cell(record, c, last_len)))
    }
}

/// The data rows of a CSV sidecar, each made by `row` from its set cells, in
/// path order; errors name the file and the line (the first line of a row
/// whose quoted cell runs over several), the first failing line winning.
pub(crate) fn csv_rows<R: Send>(
    name: &str,
    bytes: &[u8],
    mut row: impl FnMut(CsvCells) -> R,
) -> Result<Vec<(String, R)>> {
    let err = |line: usize, col: Option<usize>, msg: String| {
        Error::Metadata(format!("{name}: {}{msg}", at(line, col)))
    };
    let text = utf8_text(bytes).map_err(|line| err(line, None, "not UTF-8".into()))?;
    let mut rdr = csv_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    // The header: column names, the path column, and the columns of each
    // attribute name, in name order.
    let mut names: Vec<String> = Vec::new();
    let mut path_col = None;
    let mut by_name: Vec<Vec<usize>> = Vec::new();
    let mut cols: Vec<usize> = Vec::new();
    let mut rows: Vec<(String, usize, R)> = Vec::new();
    let mut first_error = None;
    loop {
        let start = rdr.position().clone();
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(start.line(), |p| p.line()) as usize;
                first_error = Some((line, err(line, None, e.to_string())));
                break;
            }
        }
        // The row's text: after the blank lines the reader skipped, up to
        // its line end.
        let end = rdr.position().byte() as usize;
        let raw = text.get(start.byte() as usize..end).unwrap_or("");
        let body = raw.trim_start_matches('\n');
        let line = start.line() as usize + (raw.len() - body.len());
        let body = body.strip_suffix('\n').unwrap_or(body);
        let (body, had_cr) = match body.strip_suffix('\r') {
            Some(b) => (b, true),
            None => (body, false),
        };
        if body.trim().is_empty() {
            continue;
        }
        let last_quoted = match check_quotes(body) {
            Ok(q) => q,
            Err((at, msg)) => {
                let before = &body[..at];
                let l = line + before.matches('\n').count();
                let col = at - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                first_error = Some((l, err(l, Some(col), msg.into())));
                break;
            }
        };
        let last_len = last_cell_len(&record, last_quoted, had_cr);
        let Some(path_col) = path_col else {
            names = (0..record.len())
                .map(|c| cell(&record, c, last_len).to_string())
                .collect();
            let Some(p) = names.iter().position(|c| c == "path") else {
                let msg = "the header has no \"path\" column".to_string();
                first_error = Some((line, err(line, None, msg)));
                break;
            };
            path_col = Some(p);
            let mut order: Vec<usize> = (0..names.len()).filter(|&c| names[c] != "path").collect();
            order.sort_by(|&a, &b| names[a].cmp(&names[b]).then(a.cmp(&b)));
            for c in order {
                match by_name.last_mut() {
                    Some(g) if names[g[0]] == names[c] => g.push(c),
                    _ => by_name.push(vec![c]),
                }
            }
            continue;
        };
        if record.len() != names.len() {
            let msg = format!("{} cells, the header has {}", record.len(), names.len());
            first_error = Some((line, err(line, None, msg)));
            break;
        }
        let path = cell(&record, path_col, last_len).trim_matches('/');
        if path.is_empty() {
            first_error = Some((line, err(line, None, "empty path".into())));
            break;
        }
        let path = path.to_string();
        cols.clear();
        cols.extend(by_name.iter().filter_map(|g| {
            g.iter()
                .rev()
                .copied()
                .find(|&c| !cell(&record, c, last_len).is_empty())
        }));
        let r = row(CsvCells {
            names: &names,
            record: &record,
            last_len,
            cols: &cols,
        });
        rows.push((path, line, r));
    }
    in_path_order(name, rows, first_error)
}

/// The sidecar path of a dataset version: `dsv.toml` `[metadata] path`, else
/// `meta.jsonl`, else `meta.csv` when only that one exists.
pub fn sidecar_path(
    toml: &crate::dsv_toml::DsvToml,
    exists: &dyn Fn(&str) -> Result<bool>,
) -> Result<String> {
    if let Some(p) = &toml.metadata {
        return Ok(p.clone());
    }
    if !exists(DEFAULT_SIDECAR)? && exists(DEFAULT_CSV_SIDECAR)? {
        return Ok(DEFAULT_CSV_SIDECAR.to_string());
    }
    Ok(DEFAULT_SIDECAR.to_string())
}

/// One `key=value` of `dsv meta set`.
pub fn parse_assignment(s: &str) -> Result<(String, AttrValue)> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(Error::InvalidArgument(format!(
            "'{s}' is not key=value (e.g. weather=rain)"
        )));
    };
    check_key(k)?;
    Ok((k.to_string(), parse_value(v)))
}

pub(crate) fn check_key(k: &str) -> Result<()> {
    if k.is_empty() || k == "path" || k == PREDICTIONS || k.contains(['\n', '\r']) {
        return Err(Error::InvalidArgument(format!(
            "'{k}' cannot be an attribute name (empty, or reserved: path, predictions)"
        )));
    }
    Ok(())
}

/// One line of a predictions file for `dsv meta import`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionLine {
    frame: String,
    class: String,
    #[serde(rename = "box", default, deserialize_with = "box_map_or_list")]
    bbox: Option<BBox>,
    score: Option<f64>,
}

/// Parses a predictions file: JSONL lines `{"frame", "class", "box": {x, y, w, h}, "score"}`
/// (`box` also as `[x, y, w, h]`).
pub fn parse_predictions(name: &str, bytes: &[u8]) -> Result<BTreeMap<String, Vec<Prediction>>> {
    let text = String::from_utf8_lossy(bytes);
    let mut out: BTreeMap<String, Vec<Prediction>> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let l: PredictionLine = serde_json::from_str(raw).map_err(|e| {
            Error::Metadata(format!(
                "{name}: {}{e}",
                at(i + 1, Some(e.column()).filter(|c| *c > 0))
            ))
        })?;
        if l.bbox
            .is_some_and(|b| [b.x, b.y, b.w, b.h].iter().any(|x| !x.is_finite()))
            || l.score.is_some_and(|s| !s.is_finite())
        {
            return Err(Error::Metadata(format!(
                "{name}: {}box and score must be finite numbers",
                at(i + 1, None)
            )));
        }
        out.entry(l.frame.trim_matches('/').to_string())
            .or_default()
            .push(Prediction {
                class: l.class,
                bbox: l.bbox,
                score: l.score,
            });
    }
    Ok(out)
}

/// The bytes as text, or the 1-based line where they stop being UTF-8.
fn utf8_text(bytes: &[u8]) -> std::result::Result<&str, usize> {
    std::str::from_utf8(bytes).map_err(|e| {
        bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns a JSON scalar into an attribute value (`None` for null, lists, objects).
    fn attr_of_json(v: &serde_json::Value) -> Option<AttrValue> {
        match v {
            serde_json::Value::Bool(b) => Some(AttrValue::Bool(*b)),
            serde_json::Value::Number(n) => Some(match n.as_i64() {
                Some(i) => AttrValue::Int(i),
                None => AttrValue::Float(n.as_f64()?),
            }),
            serde_json::Value::String(s) => Some(AttrValue::Str(s.clone())),
            _ => None,
        }
    }

    /// The reading the one row reader must agree with: the line as a
    /// `serde_json::Value`, then checked (the reader before it was one).
    fn value_reading(name: &str, line: usize, raw: &str) -> Result<(String, FrameMeta)> {
        let err = |line: usize, col: Option<usize>, msg: String| {
            Error::Metadata(format!("{name}: {}{msg}", at(line, col)))
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| err(line, Some(e.column()), format!("not JSON: {e}")))?;
        let serde_json::Value::Object(map) = v else {
            return Err(err(line, None, "a row must be a JSON object".into()));
        };
        let path = match map.get("path") {
            Some(serde_json::Value::String(p)) if !p.trim().is_empty() => {
                p.trim_matches('/').to_string()
            }
            Some(_) => {
                return Err(err(
                    line,
                    None,
                    "\"path\" must be a non-empty string".into(),
                ));
            }
            None => return Err(err(line, None, "missing \"path\"".into())),
        };
        let mut meta = FrameMeta::default();
        for (k, v) in &map {
            if k == "path" {
                continue;
            }
            if k == PREDICTIONS {
                let serde_json::Value::Array(items) = v else {
                    return Err(err(line, None, "\"predictions\" must be a list".into()));
                };
                for p in items {
                    meta.predictions
                        .push(parse_prediction(p).map_err(|m| err(line, None, m))?);
                }
                continue;
            }
            match attr_of_json(v) {
                Some(a) => {
                    meta.attrs.insert(k.clone(), a);
                }
                None if v.is_null() => {}
                None => {
                    return Err(err(
                        line,
                        None,
                        format!("attribute \"{k}\" must be text, a number or true/false"),
                    ));
                }
            }
        }
        Ok((path, meta))
    }

    #[test]
    fn prediction_box_is_read_as_list_or_map_and_written_as_map() {
        let list = r#"{"class":"car","box":[1,2,3,4],"score":0.5}"#;
        let map = r#"{"class":"car","box":{"x":1,"y":2,"w":3,"h":4},"score":0.5}"#;
        let a: Prediction = serde_json::from_str(list).expect("list read");
        let b: Prediction = serde_json::from_str(map).expect("map read");
        assert_eq!(a, b);
        assert_eq!(a.bbox, Some(BBox::from_corners(1.0, 2.0, 4.0, 6.0)));
        let none: Prediction = serde_json::from_str(r#"{"class":"car"}"#).expect("no box");
        assert_eq!(none.bbox, None);
        assert_eq!(
            serde_json::to_value(&a).expect("serializes"),
            serde_json::json!({"class": "car", "box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}, "score": 0.5})
        );
        let half = serde_json::from_str::<Prediction>(r#"{"class":"car","box":{"x":1}}"#);
        assert!(half.is_err());
        let lines = format!(
            "{}\n{}\n",
            r#"{"frame":"a.jpg","class":"car","box":[1,2,3,4]}"#,
            r#"{"frame":"a.jpg","class":"bus","box":{"x":1,"y":2,"w":3,"h":4}}"#
        );
        let p = parse_predictions("p.jsonl", lines.as_bytes()).expect("both forms");
        assert_eq!(p["a.jpg"][0].bbox, p["a.jpg"][1].bbox);
    }

    #[test]
    fn the_row_reader_agrees_with_the_value_reading() {
        let rows = [
            r#"{"path":"a.jpg","weather":"rain","n":3,"x":0.25,"ok":true}"#,
            r#"{"path":"/a/b.jpg/","weather":null}"#,
            r#"{"weather":"sun","path":"c.jpg"}"#,
            r#"{"path":"a.jpg","n":18446744073709551615,"m":-9223372036854775808}"#,
            r#"{"path":"a.jpg","big":1e400}"#,
            r#"{"path":"a.jpg","s":"é
"q""}"#,
            r#"{"path":"a.jpg","w":"rain","w":"sun"}"#,
            r#"{"path":"a.jpg","w":null,"w":"sun"}"#,
            r#"{"path":"a.jpg","path":"b.jpg"}"#,
            r#"{"path":"/"}"#,
            r#"{"path":"  "}"#,
            r#"{"path":""}"#,
            r#"{"path":3}"#,
            r#"{"path":null}"#,
            r#"{"weather":"rain"}"#,
            r#"{"path":"a.jpg","tags":["x"]}"#,
            r#"{"path":"a.jpg","o":{"k":1}}"#,
            r#"{"path":"a.jpg","predictions":[{"class":"car","box":[1,2,3,4],"score":0.5}]}"#,
            r#"{"path":"a.jpg","predictions":null}"#,
            r#"{"path":"a.jpg","predictions":[{"class":"car","box":[1,2]}]}"#,
            r#"{"path":"a.jpg",}"#,
            r#"{"path":"a.jpg"} x"#,
            r#"["a.jpg"]"#,
            r#""a.jpg""#,
            r#"{"path":"a.jpg","":1}"#,
            r#"{"path":"a.jpg","n":-0.0,"e":1.5e-7,"f":123456789012345678901234567890}"#,
            r#"{"path":"a.jpg","n":-0,"m":0.0,"k":9223372036854775807,"j":9223372036854775808}"#,
            r#"{"path":"a.jpg","predictions":[{"class":"car","box":{"x":1,"y":2,"w":3,"h":4}}],"w":"x"}"#,
            r#"{"path":"a.jpg","predictions":[{"class":"car"}],"predictions":[]}"#,
            r#"{"path":"a.jpg","predictions":3,"predictions":[{"class":"bus","score":1}]}"#,
            r#"{"path":"a.jpg","predictions":[{"class":"car","box":[1,2,3,1e308]}]}"#,
            r#"{"path":"a.jpg","predictions":[{"class":"car","box":[1,2,3,4],"x":1}]}"#,
            r#"{"path":"a.jpg","predictions":[{"box":[1,2,3,4]}]}"#,
            r#"{"path":"a.jpg","predictions":{"class":"car"}}"#,
            r#"{"path":"a.jpg","a":[1],"predictions":7}"#,
            r#"{"path":"a.jpg","z":[1],"predictions":7}"#,
            r#"{"path":"a.jpg","b":{},"a":[]}"#,
            r#"{"path":"a.jpg","t":["x"],"t":"y"}"#,
            r#"{"path":"a.jpg","t":"y","t":{"k":[]}}"#,
            r#"{"path":"a.jpg","t":"y","t":null}"#,
            r#"{"path":3,"t":[1]}"#,
            r#"{"path":3,"path":"b.jpg"}"#,
            r#"{"path":"b.jpg","path":[]}"#,
            r#"{"t":[1]}"#,
            r#"{"path":"a.jpg","o":[1e400]}"#,
            r#"{"path":"a.jpg","o":{"k":1e400}}"#,
            r#"{"path":"a.jpg","o":{"k":"\ud800"}}"#,
            r#"[1e400]"#,
            r#"[1,"#,
            r#"3"#,
            r#"null"#,
            r#"true"#,
            r#"-1.5"#,
            r#"{}"#,
            r#"{"path":"a\u00e9\/b.jpg","k\n":"v\t"}"#,
            r#"{"path":"a.jpg","\u0070ath":"b.jpg"}"#,
            r#"{"path":"a.jpg" "n":1}"#,
            r#"{"path":"a.jpg",3:1}"#,
            r#"{"path":"a.jpg","n":01}"#,
            "",
            " { \"path\" : \"a.jpg\" , \"n\" : 1 } ",
        ];
        for raw in rows {
            let one = jsonl_row("m.jsonl", 7, raw).map_err(|e| e.to_string());
            let value = value_reading("m.jsonl", 7, raw).map_err(|e| e.to_string());
            assert_eq!(one, value, "{raw}");
        }
    }

    #[test]
    fn the_first_failing_line_wins_across_pieces() {
        let row = |i: usize| format!("{{\"path\":\"f{i:04}.jpg\",\"weather\":\"rain\"}}\n");
        let doc = |bad: Option<usize>, dup: Option<usize>| {
            let mut s = String::new();
            for i in 1..=200 {
                match (bad, dup) {
                    (Some(b), _) if b == i => s.push_str("{not json\n"),
                    (_, Some(d)) if d == i => s.push_str(&row(3)),
                    _ => s.push_str(&row(i)),
                }
            }
            s
        };
        let err = |d: String| {
            Sidecar::parse("m.jsonl", d.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(err(doc(Some(120), Some(150))).contains("line 120, column 2: not JSON"));
        assert!(err(doc(Some(120), Some(50))).contains("line 50: second row for \"f0003.jpg\""));
        let ok = Sidecar::parse("m.jsonl", doc(None, None).as_bytes()).unwrap();
        assert_eq!(ok.rows.len(), 200);
        assert!(
            ok.rows
                .keys()
                .zip(ok.rows.keys().skip(1))
                .all(|(a, b)| a < b)
        );
    }

    #[test]
    fn jsonl_round_trip_and_errors() {
        let text = b"{\"path\":\"a.jpg\",\"weather\":\"rain\",\"n\":3,\"predictions\":[{\"class\":\"car\",\"box\":[1,2,3,4],\"score\":0.5}]}\n\n{\"path\":\"b.jpg\",\"night\":true}\n";
        let sc = Sidecar::parse("meta.jsonl", text).unwrap();
        assert_eq!(sc.rows.len(), 2);
        assert_eq!(sc.rows["a.jpg"].attrs["n"], AttrValue::Int(3));
        assert_eq!(sc.rows["a.jpg"].predictions[0].score, Some(0.5));
        let again = Sidecar::parse("meta.jsonl", &sc.write(SidecarFormat::Jsonl).unwrap()).unwrap();
        assert_eq!(again, sc);
        let e = Sidecar::parse("meta.jsonl", b"{\"path\":\"a\"}\n{\"path\": 3}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "meta.jsonl: line 2: \"path\" must be a non-empty string");
        let e = Sidecar::parse("m.jsonl", b"\n{\"path\":\"a\",}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m.jsonl: line 2, column "), "{e}");
    }

    #[test]
    fn csv_round_trip_and_errors() {
        let sc = Sidecar::parse(
            "meta.csv",
            b"path,weather,score\nimg/a.jpg,\"rain, heavy\",0.25\nimg/b.jpg,,1\n",
        )
        .unwrap();
        assert_eq!(
            sc.rows["img/a.jpg"].attrs["weather"],
            AttrValue::Str("rain, heavy".into())
        );
        assert!(!sc.rows["img/b.jpg"].attrs.contains_key("weather"));
        let again = Sidecar::parse("meta.csv", &sc.write(SidecarFormat::Csv).unwrap()).unwrap();
        assert_eq!(again, sc);
        let e = Sidecar::parse("meta.csv", b"path,a\nx.jpg,1\ny.jpg\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "meta.csv: line 3: 1 cells, the header has 2");
        let e = Sidecar::parse("meta.csv", b"path,a\nx.jpg,\"open\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "meta.csv: line 2, column 7: unclosed quote");
    }

    #[test]
    fn meta_value_with_newline_round_trips() {
        let mut sc = Sidecar::default();
        let mut m = FrameMeta::default();
        m.attrs.insert(
            "note".into(),
            AttrValue::Str("two\nlines, \"q\"\r\n".into()),
        );
        m.attrs.insert("n".into(), AttrValue::Int(3));
        sc.rows.insert("a.jpg".into(), m);
        sc.rows.insert("b.jpg".into(), FrameMeta::default());
        sc.rows
            .get_mut("b.jpg")
            .unwrap()
            .attrs
            .insert("n".into(), AttrValue::Int(4));
        let bytes = sc.write(SidecarFormat::Csv).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "path,n,note\na.jpg,3,\"two\nlines, \"\"q\"\"\r\n\"\nb.jpg,4,\n"
        );
        assert_eq!(Sidecar::parse("meta.csv", &bytes).unwrap(), sc);
    }

    #[test]
    fn csv_rows_read_as_the_line_reader_did() {
        let sc = Sidecar::parse(
            "meta.csv",
            b"\n  \npath,b,a,b,path\r\n\r\nx.jpg,1,,2,q\r\n/y.jpg/,3,z,,q\n \nz.jpg,,\"\",,\n",
        )
        .unwrap();
        let attrs = |p: &str| {
            sc.rows[p]
                .attrs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(attrs("x.jpg"), ["b=2"]);
        assert_eq!(attrs("y.jpg"), ["a=z", "b=3"]);
        assert!(attrs("z.jpg").is_empty());
        let e = |text: &[u8]| Sidecar::parse("m.csv", text).unwrap_err().to_string();
        assert_eq!(
            e(b"\n\npath,a\nx,\"a\"b\n"),
            "m.csv: line 4, column 6: text after a closing quote"
        );
        assert_eq!(
            e(b"path,a\nx,\"a\nb\",\"c\nd\n"),
            "m.csv: line 3, column 4: unclosed quote"
        );
        assert_eq!(
            e(b"path,a\nx,1\n\ny,1\nx,2\n"),
            "m.csv: line 5: second row for \"x\""
        );
        assert_eq!(
            e(b"path,a\nx,1\nx,2\ny,\"\n"),
            "m.csv: line 3: second row for \"x\""
        );
        assert_eq!(
            e(b"path,a\nx,1\ny,\"\nx,2\n"),
            "m.csv: line 3, column 3: unclosed quote"
        );
        assert_eq!(
            e(b"a,b\nx,1\n"),
            "m.csv: line 1: the header has no \"path\" column"
        );
        assert_eq!(e(b"path,a\n/,1\n"), "m.csv: line 2: empty path");
        assert_eq!(
            e(b"path,a\nx,1,2\n"),
            "m.csv: line 2: 3 cells, the header has 2"
        );
        assert_eq!(e(b"path,a\nx,\xff\n"), "m.csv: line 2: not UTF-8");
        assert_eq!(
            split_csv("a,\"b,\"\"c\"\"\",d\r"),
            Ok(vec!["a".into(), "b,\"c\"".into(), "d".into()])
        );
        assert_eq!(split_csv("a,\"b"), Err((3, "unclosed quote".into())));
        assert_eq!(
            split_csv("a\"b,\"c\"\r"),
            Ok(vec!["a\"b".into(), "c".into()])
        );
        assert_eq!(split_csv("a,b\r\r"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(split_csv(""), Ok(vec![String::new()]));
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("two\nlines\r"), "\"two\nlines\r\"");
    }

    proptest::proptest! {
        #[test]
        fn any_row_reads_as_the_value_reading(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["path", "predictions", "a", "b", "", "p\\u0061th"]),
                    proptest::sample::select(vec![
                        "\"x.jpg\"", "\"/\"", "\" \"", "\"a\\/b\"", "1", "-7", "2.5", "1e400",
                        "18446744073709551616", "true", "null", "[]", "[1,{}]", "{}", "{\"k\":[1e400]}",
                        "[{\"class\":\"car\",\"box\":[1,2,3,4],\"score\":0.5}]",
                        "[{\"class\":\"car\",\"box\":{\"x\":1,\"y\":2,\"w\":3,\"h\":4}}]",
                        "[{\"class\":\"car\",\"box\":[1,2]}]", "[{\"box\":[1,2,3,4]}]",
                        "\"\\ud800\"", "tru", "[1,", "01",
                    ]),
                ),
                0..5,
            ),
            wrap in proptest::sample::select(vec!["{}", "[]", "{} x", " {} "]),
        ) {
            let body = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(",");
            let raw = match wrap {
                "{}" => format!("{{{body}}}"),
                "[]" => format!("[{body}]"),
                "{} x" => format!("{{{body}}} x"),
                _ => format!(" {{ {body} }} "),
            };
            let one = jsonl_row("m.jsonl", 3, &raw).map_err(|e| e.to_string());
            let value = value_reading("m.jsonl", 3, &raw).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(one, value, "{}", raw);
        }

        #[test]
        fn any_sidecar_written_as_csv_reads_back(
            rows in proptest::collection::btree_map(
                "[a-c]{1,3}(/[a-c]{1,2})?",
                proptest::collection::btree_map("[a-d ,\"]{1,3}", "[a-c ,\"\r\n]{1,4}|-?[0-9]{1,3}", 1..4),
                0..5,
            )
        ) {
            let sc = Sidecar {
                rows: rows
                    .into_iter()
                    .map(|(p, attrs)| {
                        let attrs = attrs.into_iter().map(|(k, v)| (k, parse_value(&v))).collect();
                        (p, FrameMeta { attrs, predictions: Vec::new() })
                    })
                    .collect(),
            };
            let bytes = sc.write(SidecarFormat::Csv).unwrap();
            proptest::prop_assert_eq!(Sidecar::parse("meta.csv", &bytes).unwrap(), sc);
        }
    }

    #[test]
    fn values_are_typed() {
        assert_eq!(parse_value("3"), AttrValue::Int(3));
        assert_eq!(parse_value("0.5"), AttrValue::Float(0.5));
        assert_eq!(parse_value("true"), AttrValue::Bool(true));
        assert_eq!(parse_value("nan"), AttrValue::Str("nan".into()));
    }
}
