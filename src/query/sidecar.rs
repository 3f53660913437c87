//! The metadata sidecar read for the index: each row's frame path with its
//! attribute and prediction sections already in the encoding frame records
//! use ([`codec`]). A plain JSONL row costs no map and, unless it has escapes,
//! no owned string; a million of them as `FrameMeta` maps were the largest
//! phase of a cold query.
//!
//! The rows read are kept per content id of the sidecar (`.dsv/cache/query-sidecar/`,
//! a parse-cache pack of one group, docs/format.md), so a version whose sidecar
//! did not change does not read or parse it again.

use std::borrow::Cow;

use crate::error::Result;
use crate::id::ObjectId;
use crate::labels::{AttrRef, AttrValue};
use crate::meta::{self, Row, SidecarFormat};

use super::codec::{self, IndexRead, Reader};

/// One row's metadata, encoded: the attribute section, then the predictions
/// section; borrowed when read from the cache.
pub(super) struct EncodedMeta<'a> {
    bytes: Cow<'a, [u8]>,
    split: usize,
}

/// The rows of a sidecar: frame path and metadata, in path order.
pub(super) type Rows<'a> = Vec<(Cow<'a, str>, EncodedMeta<'a>)>;

/// Version of the cached rows' encoding; part of the cache key.
const CACHE_VERSION: &[u8] = b"dsv-query-sidecar-1";

impl EncodedMeta<'_> {
    /// The attribute section (count, then name and value pairs in name order).
    pub fn attrs(&self) -> &[u8] {
        self.bytes.get(..self.split).unwrap_or(&[])
    }

    /// The predictions section (count, then predictions).
    pub fn predictions(&self) -> &[u8] {
        self.bytes.get(self.split..).unwrap_or(&[])
    }

    /// The metadata whose sections are these (as a frame record holds them).
    pub fn from_sections(attrs: &[u8], predictions: &[u8]) -> EncodedMeta<'static> {
        EncodedMeta {
            bytes: Cow::Owned([attrs, predictions].concat()),
            split: attrs.len(),
        }
    }

    #[cfg(test)]
    fn of_meta(m: &meta::FrameMeta) -> EncodedMeta<'static> {
        let mut bytes = Vec::new();
        codec::attrs(&mut bytes, &m.attrs);
        let split = bytes.len();
        codec::predictions(&mut bytes, &m.predictions);
        EncodedMeta {
            bytes: Cow::Owned(bytes),
            split,
        }
    }

    fn of_row(r: &Row) -> EncodedMeta<'static> {
        let mut bytes = Vec::with_capacity(64);
        codec::attr_pairs(
            &mut bytes,
            r.attrs.iter().map(|(k, v)| (k.as_ref(), v.as_attr())),
        );
        let split = bytes.len();
        codec::predictions(&mut bytes, &r.predictions);
        EncodedMeta {
            bytes: Cow::Owned(bytes),
            split,
        }
    }

    /// Attributes already in name order, without repeated names, and no predictions.
    fn of_pairs<'k>(
        pairs: impl ExactSizeIterator<Item = (&'k str, AttrRef<'k>)>,
    ) -> EncodedMeta<'static> {
        let mut bytes = Vec::with_capacity(64);
        codec::attr_pairs(&mut bytes, pairs);
        let split = bytes.len();
        codec::predictions(&mut bytes, &[]);
        EncodedMeta {
            bytes: Cow::Owned(bytes),
            split,
        }
    }
}

/// The cache key of the rows of sidecar `name` whose content id is `id` (the
/// name gives the format).
pub(super) fn cache_key(name: &str, id: &ObjectId) -> [u8; 32] {
    crate::db::cache_key(CACHE_VERSION, &[name.as_bytes(), &id.0])
}

/// Encodes rows for the cache: their count, then per row the path, the
/// length of the attribute section and the metadata bytes.
pub(super) fn encode_rows(out: &mut Vec<u8>, rows: &[(Cow<str>, EncodedMeta)]) {
    codec::varint(out, rows.len() as u64);
    for (path, m) in rows {
        codec::string(out, path);
        codec::varint(out, m.split as u64);
        codec::varint(out, m.bytes.len() as u64);
        out.extend_from_slice(&m.bytes);
    }
}

/// Rows encoded by [`encode_rows`], borrowing from `b`; `None` for bytes that
/// do not decode (sections included), whatever they are.
pub(super) fn decode_rows(b: &[u8]) -> Option<Rows<'_>> {
    let mut r = Reader::new(b);
    let n = r.count()?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let path = r.str()?;
        let split = usize::try_from(r.varint()?).ok()?;
        let len = usize::try_from(r.varint()?).ok()?;
        let bytes = r.take(len)?;
        // Judges read these sections unchecked later: each must be whole.
        let mut sections = Reader::new(bytes);
        if sections.attrs_section()?.len() != split {
            return None;
        }
        sections.predictions_section()?;
        if !sections.done() {
            return None;
        }
        rows.push((
            Cow::Borrowed(path),
            EncodedMeta {
                bytes: Cow::Borrowed(bytes),
                split,
            },
        ));
    }
    r.done().then_some(rows)
}

/// The rows of the sidecar `name` (its bytes given), in path order, with the
/// errors [`meta::Sidecar::parse`] gives.
pub(super) fn read<'a>(name: &str, bytes: &'a [u8]) -> Result<Rows<'a>> {
    match SidecarFormat::of(name) {
        SidecarFormat::Jsonl => meta::jsonl_rows(name, bytes, |line, raw| {
            let row = meta::read_row(name, line, raw)?;
            let m = EncodedMeta::of_row(&row);
            Ok((row.path, m))
        }),
        SidecarFormat::Csv => Ok(meta::csv_rows(name, bytes, |cells| {
            let values: Vec<(&str, AttrValue)> = cells
                .iter()
                .map(|(k, c)| (k, meta::parse_value(c)))
                .collect();
            EncodedMeta::of_pairs(values.iter().map(|(k, v)| (*k, v.as_attr())))
        })?
        .into_iter()
        .map(|(p, m)| (Cow::Owned(p), m))
        .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::meta::Sidecar;

    /// Every reading of a sidecar agrees with [`Sidecar::parse`] encoded, errors included.
    fn agrees(name: &str, text: &str) {
        let general = Sidecar::parse(name, text.as_bytes()).map(|sc| {
            sc.rows
                .iter()
                .map(|(p, m)| {
                    let e = EncodedMeta::of_meta(m);
                    (p.clone(), e.attrs().to_vec(), e.predictions().to_vec())
                })
                .collect::<Vec<_>>()
        });
        let encoded = read(name, text.as_bytes()).map(|rows| {
            rows.iter()
                .map(|(p, e)| (p.to_string(), e.attrs().to_vec(), e.predictions().to_vec()))
                .collect::<Vec<_>>()
        });
        match (general, encoded) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{text}"),
            (Err(g), Err(e)) => assert_eq!(g.to_string(), e.to_string(), "{text}"),
            (g, e) => panic!("{text}: {:?} against {:?}", g.err(), e.err()),
        }
    }

    #[test]
    fn rows_read_for_the_index_are_the_sidecar_encoded() {
        let rows = [
            r#"{"path":"a.jpg","weather":"rain","n":3,"x":0.25,"ok":true}"#,
            r#"{"path":"/b/c.jpg/","weather":null,"z":1,"a":"x"}"#,
            r#"{"weather":"sun","path":"c\"q.jpg","s":"é\n\u0041"}"#,
            r#"{"path":"d.jpg","n":18446744073709551615,"m":-9223372036854775808}"#,
            r#"{"path":"e.jpg","w":"rain","w":"sun"}"#,
            r#"{"path":"f.jpg","w":null,"w":"sun"}"#,
            r#"{"path":"g.jpg","predictions":[{"class":"car","box":[1,2,3,4],"score":0.5}],"k":2}"#,
            r#"{"path":"h.jpg","tags":["x"]}"#,
            r#"{"path":"i.jpg","":1,"B":2,"a":3}"#,
        ];
        let mut all = String::new();
        for r in rows {
            agrees("meta.jsonl", r);
            all.push_str(r);
            all.push('\n');
        }
        agrees("meta.jsonl", &all);
        agrees("meta.jsonl", &format!("{all}{}\n", rows[0]));
        agrees("meta.jsonl", &format!("{all}{{\"path\":3}}\n"));
        agrees("meta.jsonl", "{\"path\":\"a.jpg\"}\n{not json\n");
        agrees("meta.csv", "path,weather,n\na.jpg,rain,3\nb.jpg,,x\n");
        agrees("meta.csv", "path,weather\na.jpg,rain\na.jpg,sun\n");
        agrees(
            "meta.csv",
            "path,note,b,b\r\n\na.jpg,\"two\nlines, \"\"q\"\"\",1,\r\n \nb.jpg,x,,2.5\n",
        );
        agrees("meta.csv", "path,a\nx,\"open\n");
        agrees("meta.csv", "path,a\nx,\"a\"b\n");
    }

    #[test]
    fn cached_rows_decode_as_read_and_damage_is_refused() {
        let text = concat!(
            "{\"path\":\"a.jpg\",\"weather\":\"rain\",\"n\":3}\n",
            "{\"path\":\"b\\\"q.jpg\",\"x\":0.5,\"ok\":true}\n",
            "{\"path\":\"c.jpg\",\"predictions\":[{\"class\":\"car\",\"box\":[1,2,3,4],\"score\":0.5}]}\n",
        );
        let rows = read("meta.jsonl", text.as_bytes()).expect("parses");
        let mut enc = Vec::new();
        encode_rows(&mut enc, &rows);
        let back = decode_rows(&enc).expect("decodes");
        let flat = |rows: &Rows| -> Vec<(String, Vec<u8>, Vec<u8>)> {
            rows.iter()
                .map(|(p, m)| (p.to_string(), m.attrs().to_vec(), m.predictions().to_vec()))
                .collect()
        };
        assert_eq!(flat(&back), flat(&rows));
        assert!(!back[2].1.predictions().is_empty());
        for cut in 0..enc.len() {
            assert!(decode_rows(&enc[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(decode_rows(&longer).is_none());
    }

    proptest::proptest! {
        #[test]
        fn damaged_cached_rows_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode_rows(&bytes);
        }

        #[test]
        fn any_jsonl_sidecar_reads_as_it_parses(
            rows in proptest::collection::vec(
                (
                    "[a-c/]{0,3}",
                    proptest::collection::vec(
                        ("[a-c]{0,2}|path|predictions", "null|true|-?[0-9]{1,20}|[0-9]\\.[0-9]e-?[0-9]|\"[a\\\\n\"é]{0,3}\"|\\[\\]|\\{\\}"),
                        0..4,
                    ),
                ),
                0..6,
            )
        ) {
            let mut text = String::new();
            for (path, fields) in &rows {
                text.push_str(&format!("{{\"path\":\"{path}\""));
                for (k, v) in fields {
                    text.push_str(&format!(",\"{k}\":{v}"));
                }
                text.push_str("}\n");
            }
            agrees("meta.jsonl", &text);
        }
    }
}
