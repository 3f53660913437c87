//! The COCO reader: one hand-written pass over the bytes, through the
//! tokenizer of `lex.rs`, in place of serde_json's visitors (on a large file
//! most of serde's time went to that machinery and its number conversion).
//!
//! The element readers ([`Reader::image`], [`Reader::annotation`],
//! [`Reader::category`], ...) are driven two ways: [`parse`] streams images
//! and annotations into a [`Stream`] (the usual layout, one pass, lists
//! split across two threads when long), and [`collect`] reads the whole
//! document into lists ([`Doc`]: the last of repeated lists wins), which
//! [`super::parse`] runs when the streaming read returns `None` (a repeated
//! list, an unknown or repeated id, and every error).
//!
//! Errors are serde_json's, which this reader replaced: the same words and
//! positions, so messages did not change. A data error (a wrong type, a
//! missing or repeated field, a bbox of three numbers) is recorded where the
//! reading stops ([`Reader::data`], [`Reader::wrong`]); otherwise the error
//! is the document's first syntax error as serde_json's typed parse words
//! it, or, inside a value it skips (`IgnoredAny`), as that skip words it
//! (`lex::first_syntax_error`, `lex::ignored_value_error`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::lex::{JsonError, Kind, Lexer, SERDE_DEPTH};
use super::{
    Ann, Attrs, Bbox4, Build, Category, Class, Compact, Crowd, Doc, IMAGE_FIELDS, Id, IdIndex,
    Image, KeypointList, Seg, Segmentation, Stream, Tallied, Tally, Waiting, Whole, classes,
    image_count_hint, resolve,
};
use crate::labels::{AttrValue, BBox, FrameLabels};

/// Parses a COCO document streaming; `None` when it is not handled (the
/// caller then reads it into lists, [`collect`]).
pub(super) fn parse(bytes: &[u8]) -> Option<Vec<FrameLabels>> {
    parse_split_from(bytes, SPLIT_FROM)
}

/// Lists shorter than this (`images`: up to the `"annotations"` key;
/// `annotations`: up to the end of the file) are read on one thread: handing
/// half of a list to another costs tens of microseconds, which a short list
/// does not repay.
pub(super) const SPLIT_FROM: usize = 1 << 21;

/// [`parse`], splitting the `images` and `annotations` lists from
/// `split_from` bytes instead of [`SPLIT_FROM`] (tests and fuzzing set it
/// low so that small documents take the split path too).
pub(super) fn parse_split_from(bytes: &[u8], split_from: usize) -> Option<Vec<FrameLabels>> {
    read::<Whole>(Reader::new(bytes, 0, split_from)).map(|(frames, _)| frames)
}

/// [`parse`] with each frame's annotations held as compact records until
/// it is handed over ([`Compact`]), and the categories' names they index.
pub(super) fn parse_compact(bytes: &[u8]) -> Option<(Vec<Waiting>, Vec<String>)> {
    parse_compact_split_from(bytes, SPLIT_FROM)
}

/// [`parse_compact`], splitting lists from `split_from` bytes (see
/// [`parse_split_from`]).
pub(super) fn parse_compact_split_from(
    bytes: &[u8],
    split_from: usize,
) -> Option<(Vec<Waiting>, Vec<String>)> {
    read::<Compact>(Reader::new(bytes, 0, split_from))
}

/// [`parse`] keeping only what is counted of frames and annotations
/// ([`Tally`]), and the categories' names their classes index.
pub(super) fn parse_tally(bytes: &[u8]) -> Option<(Vec<Tallied>, Vec<String>)> {
    parse_tally_split_from(bytes, SPLIT_FROM)
}

/// [`parse_tally`], splitting lists from `split_from` bytes (see
/// [`parse_split_from`]).
pub(super) fn parse_tally_split_from(
    bytes: &[u8],
    split_from: usize,
) -> Option<(Vec<Tallied>, Vec<String>)> {
    read::<Tally>(Reader::new(bytes, 0, split_from))
}

/// The whole document into lists ([`Reader::collect`]), or the error that
/// stops it, as serde_json would report it: its reader position and words.
pub(super) fn collect(bytes: &[u8]) -> Result<Doc<'_>, JsonError> {
    let mut r = Reader::new(bytes, 0, usize::MAX);
    match r.collect() {
        Some(doc) => Ok(doc),
        None => Err(r.error()),
    }
}

/// The `categories` of a document, each its id and name, in file order, as
/// the class list of `format.rs` reads them (as serde_json read them into a
/// struct of one defaulted field: other keys skipped, a repeated one
/// refused); `None` where that reading fails: not JSON, not an object, a
/// category without an integer id (written as one, fitting `i64`) or a name,
/// or with either repeated.
pub(super) fn category_list(bytes: &[u8]) -> Option<Vec<(i64, String)>> {
    Reader::new(bytes, 0, usize::MAX).category_list()
}

/// The document of a reader at its start: its frames and the categories'
/// names.
fn read<B: Build>(mut r: Reader<'_>) -> Option<(Vec<B::Frame>, Vec<String>)> {
    let mut s = Stream::<B>::default();
    // Same presizing as the serde streaming parse (see there).
    let images = image_count_hint(r.b);
    if s.frames.try_reserve_exact(images).is_ok() {
        let _ = s.image_ids.try_reserve_exact(images);
    }
    r.document(&mut s)?;
    s.finish()
}

/// A JSON number as serde_json's parser classifies it: a non-negative
/// integer, a negative integer, or anything else as a float.
#[derive(Clone, Copy)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    /// What serde's `f64` visitor makes of it.
    fn f64(self) -> f64 {
        match self {
            Num::U(v) => v as f64,
            Num::I(v) => v as f64,
            Num::F(v) => v,
        }
    }
}

/// The tables an annotation is resolved with (images, categories), shared
/// read-only by the two halves of a split `annotations` list.
struct Lookup<'a> {
    frame_of: IdIndex<'a>,
    classes: Option<(IdIndex<'a>, Vec<String>)>,
}

impl Lookup<'_> {
    /// The categories' names (none while they are not known).
    fn names(&self) -> &[String] {
        self.classes.as_ref().map_or(&[], |(_, names)| names)
    }
}

/// How [`Reader::elements`] stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Run {
    /// At the end of the list (its `]` consumed).
    Ended,
    /// At the element that starts at the split point.
    AtStop,
}

/// What the second half of a split `annotations` list made, for
/// [`Stream::add_runs`].
struct Tail<'a, O> {
    /// Consecutive objects of one frame, in list order.
    runs: Vec<(usize, Vec<O>)>,
    /// Each object's category id, when categories were not known yet.
    later: Vec<Id<'a>>,
    /// Whether any object took its class name from the categories.
    named: bool,
}

/// The objects of `run`, moved out into a list of their exact size.
fn exact<O>(run: &mut Vec<O>) -> Vec<O> {
    let mut out = Vec::with_capacity(run.len());
    out.append(run);
    out
}

/// The powers of ten serde_json's float conversion uses (its `POW10` table,
/// the same literals: each the correctly rounded double).
#[rustfmt::skip]
static POW10: [f64; 309] = [
    1e000, 1e001, 1e002, 1e003, 1e004, 1e005, 1e006, 1e007, 1e008, 1e009, //
    1e010, 1e011, 1e012, 1e013, 1e014, 1e015, 1e016, 1e017, 1e018, 1e019, //
    1e020, 1e021, 1e022, 1e023, 1e024, 1e025, 1e026, 1e027, 1e028, 1e029, //
    1e030, 1e031, 1e032, 1e033, 1e034, 1e035, 1e036, 1e037, 1e038, 1e039, //
    1e040, 1e041, 1e042, 1e043, 1e044, 1e045, 1e046, 1e047, 1e048, 1e049, //
    1e050, 1e051, 1e052, 1e053, 1e054, 1e055, 1e056, 1e057, 1e058, 1e059, //
    1e060, 1e061, 1e062, 1e063, 1e064, 1e065, 1e066, 1e067, 1e068, 1e069, //
    1e070, 1e071, 1e072, 1e073, 1e074, 1e075, 1e076, 1e077, 1e078, 1e079, //
    1e080, 1e081, 1e082, 1e083, 1e084, 1e085, 1e086, 1e087, 1e088, 1e089, //
    1e090, 1e091, 1e092, 1e093, 1e094, 1e095, 1e096, 1e097, 1e098, 1e099, //
    1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107, 1e108, 1e109, //
    1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119, //
    1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129, //
    1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, //
    1e140, 1e141, 1e142, 1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, //
    1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157, 1e158, 1e159, //
    1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169, //
    1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, //
    1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, //
    1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199, //
    1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209, //
    1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, //
    1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, //
    1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239, //
    1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249, //
    1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259, //
    1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, //
    1e270, 1e271, 1e272, 1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, //
    1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287, 1e288, 1e289, //
    1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299, //
    1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
];

/// serde_json's float conversion without its `float_roundtrip` feature
/// (`f64_from_parts` in its `de.rs`), step for step, so every float comes
/// out bit-identical; `None` where serde_json reports "number out of range".
fn f64_from_parts(positive: bool, significand: u64, mut exponent: i32) -> Option<f64> {
    let mut f = significand as f64;
    loop {
        match POW10.get(exponent.wrapping_abs() as usize) {
            Some(&pow) => {
                if exponent >= 0 {
                    f *= pow;
                    if f.is_infinite() {
                        return None;
                    }
                } else {
                    f /= pow;
                }
                break;
            }
            None => {
                if f == 0.0 {
                    break;
                }
                if exponent >= 0 {
                    return None;
                }
                f /= 1e308;
                exponent += 308;
            }
        }
    }
    Some(if positive { f } else { -f })
}

/// An integer of `sig` digits with its sign, as serde_json gives it: a
/// float on underflow of `i64`, or for `-0`.
fn integer(positive: bool, sig: u64) -> Num {
    if positive {
        return Num::U(sig);
    }
    let neg = (sig as i64).wrapping_neg();
    if neg >= 0 {
        Num::F(-(sig as f64))
    } else {
        Num::I(neg)
    }
}

/// serde_json's test for `significand * 10 + digit` overflowing `u64`.
fn overflows(significand: u64, digit: u64) -> bool {
    significand >= u64::MAX / 10 && (significand > u64::MAX / 10 || digit > u64::MAX % 10)
}

/// The reader: the bytes and a position. Every method returns `None` for
/// "not handled".
struct Reader<'a> {
    /// The tokenizer: the bytes and the position.
    lex: Lexer<'a>,
    /// A reused buffer for polygon points (as the serde parser's `RING`).
    ring: Vec<[f64; 2]>,
    /// The shortest list that is split (see [`SPLIT_FROM`]).
    split_from: usize,
    /// Tests: split there instead of at the scan's candidate.
    #[cfg(test)]
    split_at: Option<usize>,
    /// Why the reading stopped, when it was a data error (see
    /// [`Reader::error`]).
    why: Option<JsonError>,
}

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = Lexer<'a>;
    #[inline]
    fn deref(&self) -> &Lexer<'a> {
        &self.lex
    }
}

impl std::ops::DerefMut for Reader<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.lex
    }
}

impl<'a> Reader<'a> {
    /// A reader at `i` of `b`, splitting lists from `split_from` bytes.
    fn new(b: &'a [u8], i: usize, split_from: usize) -> Reader<'a> {
        Reader {
            lex: Lexer::new(b, i, SERDE_DEPTH),
            ring: Vec::new(),
            split_from: split_from.max(1),
            #[cfg(test)]
            split_at: None,
            why: None,
        }
    }

    /// A number, classified and converted as serde_json does; `None` where
    /// serde_json reports an error.
    ///
    /// Nearly every number has at most 19 digits, which can never overflow
    /// the `u64` significand: those are read without serde_json's per-digit
    /// overflow test; longer ones go to [`Reader::number_exact`], which
    /// follows serde_json digit by digit.
    fn number(&mut self) -> Option<Num> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let positive = b.get(i) != Some(&b'-');
        if !positive {
            i += 1;
        }
        let int_start = i;
        let mut sig: u64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            sig = sig.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let int_digits = i - int_start;
        // No digit, or a leading zero followed by more digits: invalid.
        if int_digits == 0 || (int_digits > 1 && b.get(int_start) == Some(&b'0')) {
            return None;
        }
        let mut frac_digits = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while let Some(&c) = b.get(i) {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                sig = sig.wrapping_mul(10).wrapping_add(u64::from(d));
                i += 1;
            }
            frac_digits = i - frac_start;
            if frac_digits == 0 {
                return None;
            }
        }
        if int_digits + frac_digits > 19 || matches!(b.get(i), Some(b'e' | b'E')) {
            self.i = start;
            return self.number_exact();
        }
        self.i = i;
        if frac_digits > 0 {
            // At most 19 digits: the exponent is -1 to -19.
            let exponent = -i32::try_from(frac_digits).ok()?;
            return f64_from_parts(positive, sig, exponent).map(Num::F);
        }
        Some(integer(positive, sig))
    }

    /// [`Reader::number`] for any length, digit by digit as serde_json
    /// reads (its `parse_integer`, `parse_number`, `parse_long_integer`,
    /// `parse_decimal`, `parse_decimal_overflow`, `parse_exponent` and
    /// `parse_exponent_overflow` without `float_roundtrip`); `None` exactly
    /// where serde_json reports an error.
    fn number_exact(&mut self) -> Option<Num> {
        let positive = if self.peek()? == b'-' {
            self.i += 1;
            false
        } else {
            true
        };
        let sig: u64 = match self.peek()? {
            b'0' => {
                self.i += 1;
                // There can be only one leading '0'.
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
                0
            }
            c @ b'1'..=b'9' => {
                self.i += 1;
                let mut sig = u64::from(c - b'0');
                while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
                    let d = u64::from(c - b'0');
                    if overflows(sig, d) {
                        // A float: the digits past the significand only
                        // count in the exponent.
                        let mut exponent: i32 = 0;
                        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            self.i += 1;
                            exponent = exponent.checked_add(1)?;
                        }
                        return self.fraction(positive, sig, exponent).map(Num::F);
                    }
                    sig = sig * 10 + d;
                    self.i += 1;
                }
                sig
            }
            _ => return None,
        };
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return self.fraction(positive, sig, 0).map(Num::F);
        }
        Some(integer(positive, sig))
    }

    /// The rest of a float after its integer digits (`sig`, with `exponent`
    /// digits dropped): an optional fraction, then an optional exponent.
    fn fraction(&mut self, positive: bool, mut sig: u64, mut exponent: i32) -> Option<f64> {
        if self.peek() == Some(b'.') {
            self.i += 1;
            let mut digits = 0usize;
            while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
                let d = u64::from(c - b'0');
                if overflows(sig, d) {
                    // serde_json ignores every further digit.
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                    digits = usize::MAX;
                    break;
                }
                sig = sig * 10 + d;
                exponent = exponent.checked_sub(1)?;
                digits += 1;
                self.i += 1;
            }
            if digits == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let positive_exp = match self.peek()? {
                b'+' => {
                    self.i += 1;
                    true
                }
                b'-' => {
                    self.i += 1;
                    false
                }
                _ => true,
            };
            let mut exp: i32 = match self.peek()? {
                c @ b'0'..=b'9' => i32::from(c - b'0'),
                _ => return None,
            };
            self.i += 1;
            while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
                self.i += 1;
                let d = i32::from(c - b'0');
                if exp >= i32::MAX / 10 && (exp > i32::MAX / 10 || d > i32::MAX % 10) {
                    // An exponent past i32: out of range, or zero.
                    if sig != 0 && positive_exp {
                        return None;
                    }
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                    return Some(if positive { 0.0 } else { -0.0 });
                }
                exp = exp * 10 + d;
            }
            exponent = if positive_exp {
                exponent.saturating_add(exp)
            } else {
                exponent.saturating_sub(exp)
            };
        }
        f64_from_parts(positive, sig, exponent)
    }

    /// An id: an integer or a string (serde parser: `Id`'s visitor).
    fn id(&mut self) -> Option<Id<'a>> {
        let start = self.i;
        match self.peek()? {
            b'"' => return Some(Id::Text(self.text()?)),
            b'-' | b'0'..=b'9' => {}
            _ => return self.wrong(start, "an integer or string id"),
        }
        Some(match self.num()? {
            Num::U(v) => Id::Int(v.into()),
            Num::I(v) => Id::Int(v.into()),
            Num::F(v) => {
                if v.fract() == 0.0 && v.abs() < 9.0e18 {
                    Id::Int(v as i128)
                } else {
                    return self.data(self.i, format!("id {v} is not a whole number"));
                }
            }
        })
    }

    /// An image dimension (serde parser: `Dim`'s visitor).
    fn dim(&mut self) -> Option<Option<u32>> {
        if self.null()? {
            return Some(None);
        }
        let start = self.i;
        if !matches!(self.peek()?, b'-' | b'0'..=b'9') {
            return self.wrong(start, "an image size in whole pixels");
        }
        Some(Some(match self.num()? {
            Num::U(v) => match u32::try_from(v) {
                Ok(v) => v,
                Err(_) => return self.data(self.i, format!("image size {v} is too large")),
            },
            Num::I(v) => return self.data(self.i, format!("image size {v} is negative")),
            Num::F(v) => {
                if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                    v as u32
                } else {
                    return self.data(
                        self.i,
                        format!("image size {v} is not a whole number of pixels"),
                    );
                }
            }
        }))
    }

    /// Any value as an attribute (serde parser: `JsonAttr`'s visitor):
    /// `None` inside for null.
    fn attr(&mut self, depth: usize) -> Option<Option<AttrValue>> {
        Some(Some(match self.peek()? {
            b'"' => AttrValue::Str(self.text()?.into_owned()),
            b't' => {
                self.literal(b"true")?;
                AttrValue::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                AttrValue::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                return Some(None);
            }
            b'[' | b'{' => {
                // Nested values become their JSON text as serde_json's
                // `Value` writes it (keys sorted, numbers reformatted):
                // checked here, then read by serde_json itself.
                let start = self.i;
                if self.skip(depth).is_none() {
                    return self.nested_error(start);
                }
                let raw = self.b.get(start..self.i)?;
                match serde_json::from_slice::<serde_json::Value>(raw) {
                    Ok(v) => AttrValue::Str(v.to_string()),
                    Err(e) => return self.value_error(start, raw, &e),
                }
            }
            _ => match self.num()? {
                Num::U(v) => match i64::try_from(v) {
                    Ok(i) => AttrValue::Int(i),
                    Err(_) => AttrValue::Float(v as f64),
                },
                Num::I(v) => AttrValue::Int(v),
                Num::F(v) => AttrValue::Float(v),
            },
        }))
    }

    /// The top-level object, into the stream (serde parser: `Doc`).
    fn document<B: Build>(&mut self, s: &mut Stream<'a, B>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        // An `annotations` list before the `images`: only checked where it
        // is, and read (from this position) once the images are known.
        let mut deferred: Option<usize> = None;
        if !self.empty(b'}')? {
            loop {
                let key = self.key()?;
                match &*key {
                    b"images" => {
                        if s.images_done || s.annotations_done {
                            return None;
                        }
                        self.images(s)?;
                        let mut index = IdIndex::new(s.image_ids.iter());
                        for (k, id) in s.image_ids.iter().enumerate() {
                            if !index.insert(id, k) {
                                return None;
                            }
                        }
                        s.image_ids = Vec::new();
                        s.frame_of = Some(index);
                        s.images_done = true;
                    }
                    b"annotations" => {
                        // A second list would replace the first.
                        if s.annotations_done || deferred.is_some() {
                            return None;
                        }
                        if s.images_done {
                            self.annotations_value(s)?;
                        } else {
                            deferred = Some(self.i);
                            self.skip_any()?;
                        }
                    }
                    b"categories" => {
                        let list = if self.null()? {
                            Vec::new()
                        } else {
                            self.categories()?
                        };
                        if s.classes_used {
                            return None;
                        }
                        s.classes = Some(classes(list)?);
                    }
                    _ => self.skip_any()?,
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        self.ws();
        // Nothing may follow the document.
        if self.i != self.b.len() {
            return None;
        }
        if let Some(at) = deferred {
            // Without images the reading into lists reports the file.
            if !s.images_done {
                return None;
            }
            self.i = at;
            self.annotations_value(s)?;
        }
        Some(())
    }

    /// The whole document into lists, the last of repeated lists winning
    /// (serde parser: `Doc`): what [`super::parse`] checks ids on when the
    /// streaming read does not take a document.
    fn collect(&mut self) -> Option<Doc<'a>> {
        self.ws();
        let start = self.i;
        if self.peek()? != b'{' {
            return self.wrong(
                start,
                "a COCO object with \"images\", \"annotations\" and \"categories\"",
            );
        }
        self.i += 1;
        let mut doc = Doc {
            images: None,
            annotations: Vec::new(),
            categories: Vec::new(),
        };
        if !self.empty(b'}')? {
            loop {
                let key = self.key()?;
                match &*key {
                    b"images" => doc.images = Some(self.sequence(Reader::image)?),
                    b"annotations" => {
                        doc.annotations = if self.null()? {
                            Vec::new()
                        } else {
                            self.sequence(Reader::annotation)?
                        }
                    }
                    b"categories" => {
                        doc.categories = if self.null()? {
                            Vec::new()
                        } else {
                            self.categories()?
                        }
                    }
                    _ => self.skip_any()?,
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        self.ws();
        // Nothing may follow the document (the syntax check says what).
        if self.i != self.b.len() {
            return None;
        }
        Some(doc)
    }

    /// A list of `one`, each element read by it.
    fn sequence<T>(&mut self, one: fn(&mut Reader<'a>) -> Option<T>) -> Option<Vec<T>> {
        let start = self.i;
        if self.peek()? != b'[' {
            return self.wrong(start, "a sequence");
        }
        self.i += 1;
        let mut list = Vec::new();
        if self.empty(b']')? {
            return Some(list);
        }
        loop {
            list.push(one(self)?);
            if !self.next_or_end(b']')? {
                return Some(list);
            }
        }
    }

    /// The value of `annotations` (a list or null), into the stream.
    fn annotations_value<B: Build>(&mut self, s: &mut Stream<'a, B>) -> Option<()> {
        if !self.null()? {
            self.annotations(s)?;
        }
        s.flush_run();
        s.annotations_done = true;
        Some(())
    }

    /// The `images` list (serde parser: `ImagesSeed`). A long list is read
    /// in two halves at once (see [`Reader::list`]).
    fn images<B: Build>(&mut self, s: &mut Stream<'a, B>) -> Option<()> {
        self.eat(b'[')?;
        if self.empty(b']')? {
            return Some(());
        }
        // The list nearly always ends where the annotations begin (looked
        // for only where the list may be long enough to split).
        let rest = self.b.get(self.i..)?;
        let end = if rest.len() >= self.split_from {
            memchr::memmem::find(rest, b"\"annotations\"").map_or(self.b.len(), |p| self.i + p)
        } else {
            self.b.len()
        };
        let at = self.split_point(end);
        // About half of the presized frame list is the second half's.
        let expect = s.frames.capacity().saturating_sub(s.frames.len()) / 2;
        let tail = self.list(
            at,
            |r| {
                let mut img = r.image()?;
                s.image_ids.push(std::mem::replace(&mut img.id, Id::Int(0)));
                s.frames.push(B::frame(img));
                Some(())
            },
            |r, cancel| r.image_tail::<B>(expect, cancel),
        )?;
        if let Some((mut ids, mut frames)) = tail {
            s.image_ids.append(&mut ids);
            s.frames.append(&mut frames);
        }
        Some(())
    }

    /// The second half of a split `images` list (see [`Reader::list`]): the
    /// ids and frames of its entries, as [`Reader::images`] makes them.
    fn image_tail<B: Build>(
        &mut self,
        expect: usize,
        cancel: &AtomicBool,
    ) -> Option<(Vec<Id<'a>>, Vec<B::Frame>)> {
        let mut ids = Vec::new();
        let mut frames = Vec::new();
        if frames.try_reserve_exact(expect).is_ok() {
            let _ = ids.try_reserve_exact(expect);
        }
        loop {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let mut img = self.image()?;
            ids.push(std::mem::replace(&mut img.id, Id::Int(0)));
            frames.push(B::frame(img));
            if !self.next_or_end(b']')? {
                return Some((ids, frames));
            }
        }
    }

    /// One image entry (serde parser: `Image`'s visitor).
    fn image(&mut self) -> Option<Image<'a>> {
        let start = self.i;
        if self.peek()? != b'{' {
            return self.wrong(start, "an image object with \"id\" and \"file_name\"");
        }
        self.i += 1;
        let mut id = None;
        let mut file_name = None;
        let (mut width, mut height) = (None, None);
        let mut attributes = BTreeMap::new();
        if !self.empty(b'}')? {
            loop {
                let key = self.key()?;
                match &*key {
                    b"id" => id = Some(self.id()?),
                    b"file_name" => file_name = Some(self.string_value()?),
                    b"width" => width = self.dim()?,
                    b"height" => height = self.dim()?,
                    k if IMAGE_FIELDS.iter().any(|f| f.as_bytes() == k) => self.skip_any()?,
                    _ => {
                        if let Some(v) = self.attr(3)? {
                            let name = String::from_utf8(key.into_owned()).ok()?;
                            // The last of repeated keys wins, as in the serde parser.
                            attributes.insert(name, v);
                        }
                    }
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        let Some(id) = id else {
            return self.data(self.i, "missing field `id`");
        };
        let Some(file_name) = file_name else {
            return self.data(self.i, "missing field `file_name`");
        };
        Some(Image {
            id,
            file_name,
            width,
            height,
            attributes,
        })
    }

    /// A string value (`file_name`, a category's `name`).
    fn string_value(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return self.wrong(self.i, "a string");
        }
        self.text()
    }

    /// The document's `categories` as [`category_list`] reads them.
    fn category_list(&mut self) -> Option<Vec<(i64, String)>> {
        self.ws();
        self.eat(b'{')?;
        let mut list = None;
        if !self.empty(b'}')? {
            loop {
                let key = self.key()?;
                if &*key == b"categories" {
                    if list.is_some() {
                        return None;
                    }
                    list = Some(self.category_entries()?);
                } else {
                    self.skip_any()?;
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        self.ws();
        // Nothing may follow the document.
        if self.i != self.b.len() {
            return None;
        }
        Some(list.unwrap_or_default())
    }

    /// The entries of a `categories` list, for [`category_list`].
    fn category_entries(&mut self) -> Option<Vec<(i64, String)>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        if self.empty(b']')? {
            return Some(out);
        }
        loop {
            self.eat(b'{')?;
            let (mut id, mut name) = (None, None);
            if !self.empty(b'}')? {
                loop {
                    let key = self.key()?;
                    match &*key {
                        // An `i64` as serde_json gives it: from an integer
                        // written as one (`-0` and longer ones are floats).
                        b"id" if id.is_none() => {
                            id = Some(match self.number()? {
                                Num::U(v) => i64::try_from(v).ok()?,
                                Num::I(v) => v,
                                Num::F(_) => return None,
                            })
                        }
                        b"name" if name.is_none() => name = Some(self.string_value()?),
                        b"id" | b"name" => return None,
                        _ => self.skip_any()?,
                    }
                    if !self.next_or_end(b'}')? {
                        break;
                    }
                }
            }
            out.push((id?, name?.into_owned()));
            if !self.next_or_end(b']')? {
                return Some(out);
            }
        }
    }

    /// The `categories` list.
    fn categories(&mut self) -> Option<Vec<Category<'a>>> {
        let start = self.i;
        if self.peek()? != b'[' {
            return self.wrong(start, "a sequence");
        }
        self.i += 1;
        let mut list = Vec::new();
        if self.empty(b']')? {
            return Some(list);
        }
        loop {
            list.push(self.category()?);
            if !self.next_or_end(b']')? {
                return Some(list);
            }
        }
    }

    /// One category (a derived struct: a repeated field is an error).
    fn category(&mut self) -> Option<Category<'a>> {
        let start = self.i;
        if self.peek()? != b'{' {
            return self.not_struct(start, "struct Category", 0, 2);
        }
        self.i += 1;
        let (mut id, mut name) = (None, None);
        if !self.empty(b'}')? {
            loop {
                let at = self.i;
                let key = self.key()?;
                match &*key {
                    b"id" if id.is_none() => id = Some(self.id()?),
                    b"name" if name.is_none() => name = Some(self.string_value()?),
                    b"id" => return self.duplicate(at, "id"),
                    b"name" => return self.duplicate(at, "name"),
                    _ => self.skip_any()?,
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        let Some(id) = id else {
            return self.data(self.i, "missing field `id`");
        };
        let Some(name) = name else {
            return self.data(self.i, "missing field `name`");
        };
        Some(Category { id, name })
    }

    /// The `annotations` list, each straight into its frame (serde parser:
    /// `AnnotationsSeed`). A long list is read in two halves at once (see
    /// [`Reader::list`]).
    fn annotations<B: Build>(&mut self, s: &mut Stream<'a, B>) -> Option<()> {
        self.eat(b'[')?;
        if self.empty(b']')? {
            return Some(());
        }
        // The tables annotations are resolved with, out of the stream for the
        // list's duration so that a second thread can share them while this
        // one adds to the stream.
        let look = Lookup {
            frame_of: s.frame_of.take()?,
            classes: s.classes.take(),
        };
        let at = self.split_point(self.b.len());
        let tail = self.list(
            at,
            |r| {
                let ann = r.annotation()?;
                let (fi, class) = resolve(&look.frame_of, look.classes.as_ref(), &ann)?;
                s.add_resolved(fi, class, ann, look.names())
            },
            |r, cancel| r.annotation_tail::<B>(&look, cancel),
        );
        s.frame_of = Some(look.frame_of);
        s.classes = look.classes;
        if let Some(tail) = tail? {
            s.add_runs(tail.runs, tail.later, tail.named)?;
        }
        Some(())
    }

    /// Where to cut the rest of a long list (the reader at its first
    /// element; `end` about where the list ends): the start of an element
    /// near the middle, as a cheap scan sees it (a `}`, a comma, a `{`, with
    /// whitespace between). The scan does not know about strings or
    /// nesting, so the place is only a candidate, which [`Reader::list`]
    /// checks. `None` for a short list, or when no candidate is near.
    fn split_point(&self, end: usize) -> Option<usize> {
        #[cfg(test)]
        if self.split_at.is_some() {
            return self.split_at;
        }
        let rest = end.checked_sub(self.i)?;
        if rest < self.split_from {
            return None;
        }
        let mid = self.i + rest / 2;
        // Entries are a few hundred bytes each: a boundary is always close
        // unless the middle is inside a huge entry.
        let window = self
            .b
            .get(mid..mid.saturating_add(1 << 20).min(self.b.len()))?;
        let skip_ws = |mut j: usize| {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(j) {
                j += 1;
            }
            j
        };
        for close in memchr::memchr_iter(b'}', window) {
            let j = skip_ws(mid + close + 1);
            if self.b.get(j) != Some(&b',') {
                continue;
            }
            let j = skip_ws(j + 1);
            if self.b.get(j) == Some(&b'{') {
                return Some(j);
            }
        }
        None
    }

    /// Reads the rest of a list, the reader at an element, `one` reading
    /// each element into the stream. With a split point `at`, another
    /// (rayon) thread reads from `at` to the end of the list at the same
    /// time with `tail`, speculatively, into data of its own.
    ///
    /// The second half is used (returned, the reader then after the list)
    /// only if this thread, reading on from the start, arrives exactly at
    /// `at` after a comma of the list: that proves `at` starts an element,
    /// and from there the sequential parse would have read just what `tail`
    /// read (the same code; the tables it reads do not change within a
    /// list). Otherwise (`at` inside a string or a nested value, or past the
    /// list) the speculation is dropped and this thread reads on alone; a
    /// second half that failed is dropped too and this thread reads it
    /// again. So every result and every `None` is the sequential parse's.
    fn list<T: Send>(
        &mut self,
        at: Option<usize>,
        mut one: impl FnMut(&mut Reader<'a>) -> Option<()> + Send,
        tail: impl FnOnce(&mut Reader<'a>, &AtomicBool) -> Option<T> + Send,
    ) -> Option<Option<T>> {
        let cancel = AtomicBool::new(false);
        let Some(at) = at else {
            self.elements(usize::MAX, &cancel, &mut one)?;
            return Some(None);
        };
        let mut other = Reader::new(self.b, at, self.split_from);
        let (head, second) = rayon::join(
            || {
                let head = self.elements(at, &cancel, &mut one);
                if head != Some(Run::AtStop) {
                    // The second half is of no use: let it stop early.
                    cancel.store(true, Ordering::Relaxed);
                }
                head
            },
            || tail(&mut other, &cancel).map(|t| (t, other.i)),
        );
        match head? {
            Run::Ended => Some(None),
            Run::AtStop => match second {
                Some((t, end)) => {
                    #[cfg(test)]
                    tests::accepted();
                    self.i = end;
                    Some(Some(t))
                }
                None => {
                    self.elements(usize::MAX, &cancel, &mut one)?;
                    Some(None)
                }
            },
        }
    }

    /// Reads elements with `one`, the reader at an element, until the list
    /// ends ([`Run::Ended`]) or, after a comma of the list, the reader is
    /// exactly at `stop` ([`Run::AtStop`]). Passing `stop` inside an element
    /// means it was not a boundary: `cancel` is set and reading goes on to
    /// the end.
    fn elements(
        &mut self,
        mut stop: usize,
        cancel: &AtomicBool,
        one: &mut impl FnMut(&mut Reader<'a>) -> Option<()>,
    ) -> Option<Run> {
        loop {
            one(self)?;
            if !self.next_or_end(b']')? {
                return Some(Run::Ended);
            }
            if self.i >= stop {
                if self.i == stop {
                    return Some(Run::AtStop);
                }
                cancel.store(true, Ordering::Relaxed);
                stop = usize::MAX;
            }
        }
    }

    /// The second half of a split `annotations` list (see [`Reader::list`]):
    /// from an element to the list's closing bracket, resolved with the same
    /// tables, each frame's consecutive objects collected at their exact
    /// size as [`Stream`] does. `None` on anything the sequential parse might
    /// not do the same way, and as soon as `cancel` is set.
    fn annotation_tail<B: Build>(
        &mut self,
        look: &Lookup<'a>,
        cancel: &AtomicBool,
    ) -> Option<Tail<'a, B::Obj>> {
        let mut tail = Tail {
            runs: Vec::new(),
            later: Vec::new(),
            named: false,
        };
        let mut run: Vec<B::Obj> = Vec::new();
        let mut run_frame = 0;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let ann = self.annotation()?;
            let (fi, class) = resolve(&look.frame_of, look.classes.as_ref(), &ann)?;
            // The stream's frame numbers are u32.
            u32::try_from(fi).ok()?;
            let class = match class {
                Class::Index(c) => {
                    tail.named = true;
                    c
                }
                Class::Later(id) => {
                    tail.later.push(id);
                    Class::LATER
                }
            };
            if fi != run_frame && !run.is_empty() {
                tail.runs.push((run_frame, exact(&mut run)));
            }
            run_frame = fi;
            run.push(B::object(ann, class, look.names()));
            if !self.next_or_end(b']')? {
                break;
            }
        }
        if !run.is_empty() {
            tail.runs.push((run_frame, exact(&mut run)));
        }
        Some(tail)
    }

    /// One annotation (a derived struct: a repeated known field is an
    /// error, unknown fields are skipped).
    fn annotation(&mut self) -> Option<Ann<'a>> {
        const ID: u16 = 1;
        const IMAGE: u16 = 2;
        const CATEGORY: u16 = 4;
        const BBOX: u16 = 8;
        const SEGMENTATION: u16 = 16;
        const CROWD: u16 = 32;
        const SCORE: u16 = 64;
        const ATTRIBUTES: u16 = 128;
        const KEYPOINTS: u16 = 256;
        const NAMES: [&str; 9] = [
            "id",
            "image_id",
            "category_id",
            "bbox",
            "segmentation",
            "iscrowd",
            "score",
            "attributes",
            "keypoints",
        ];
        let start = self.i;
        if self.peek()? != b'{' {
            return self.not_struct(start, "struct Ann", 1, 9);
        }
        self.i += 1;
        let mut seen = 0u16;
        let mut ann = Ann {
            id: None,
            image_id: Id::Int(0),
            category_id: Id::Int(0),
            bbox: None,
            segmentation: Segmentation(None),
            keypoints: None,
            iscrowd: None,
            score: None,
            attributes: Attrs(Vec::new()),
        };
        if !self.empty(b'}')? {
            loop {
                let at = self.i;
                let key = self.key()?;
                let field = match &*key {
                    b"id" => ID,
                    b"image_id" => IMAGE,
                    b"category_id" => CATEGORY,
                    b"bbox" => BBOX,
                    b"segmentation" => SEGMENTATION,
                    b"iscrowd" => CROWD,
                    b"score" => SCORE,
                    b"attributes" => ATTRIBUTES,
                    b"keypoints" => KEYPOINTS,
                    _ => 0,
                };
                if seen & field != 0 {
                    let name = NAMES
                        .get(field.trailing_zeros() as usize)
                        .copied()
                        .unwrap_or_default();
                    return self.duplicate(at, name);
                }
                seen |= field;
                match field {
                    ID => {
                        if !self.null()? {
                            ann.id = Some(self.id()?);
                        }
                    }
                    IMAGE => ann.image_id = self.id()?,
                    CATEGORY => ann.category_id = self.id()?,
                    BBOX => {
                        if !self.null()? {
                            ann.bbox = Some(self.bbox()?);
                        }
                    }
                    SEGMENTATION => ann.segmentation = self.segmentation()?,
                    CROWD => {
                        if !self.null()? {
                            ann.iscrowd = Some(self.crowd()?);
                        }
                    }
                    SCORE => {
                        if !self.null()? {
                            ann.score = Some(self.f64_value()?);
                        }
                    }
                    ATTRIBUTES => ann.attributes = self.attributes()?,
                    KEYPOINTS => {
                        if !self.null()? {
                            ann.keypoints = Some(self.keypoints()?);
                        }
                    }
                    _ => self.skip_any()?,
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        // Both are required fields.
        if seen & IMAGE == 0 {
            return self.data(self.i, "missing field `image_id`");
        }
        if seen & CATEGORY == 0 {
            return self.data(self.i, "missing field `category_id`");
        }
        Some(ann)
    }

    /// A number read as `f64`.
    #[inline]
    fn f64_value(&mut self) -> Option<f64> {
        let at = self.i;
        match self.number() {
            Some(n) => Some(n.f64()),
            None => self.not_f64(at),
        }
    }

    /// [`Reader::number`], recording "number out of range" where
    /// serde_json reports it.
    #[inline]
    fn num(&mut self) -> Option<Num> {
        let at = self.i;
        match self.number() {
            Some(n) => Some(n),
            None => self.out_of_range(at),
        }
    }

    /// A number at `at` that is JSON but no `f64`: out of range.
    #[cold]
    fn out_of_range<T>(&mut self, at: usize) -> Option<T> {
        let mut l = Lexer::new(self.b, at, 0);
        l.skip_number()?;
        if self.why.is_none() {
            self.why = Some(JsonError::at(l.i, Kind::Syntax, "number out of range"));
        }
        None
    }

    /// Why the value at `at` is not an `f64`: another type, or a number
    /// out of range (a number that is not JSON is a syntax error).
    #[cold]
    fn not_f64<T>(&mut self, at: usize) -> Option<T> {
        if !matches!(self.b.get(at), Some(b'-' | b'0'..=b'9')) {
            return self.wrong(at, "f64");
        }
        self.out_of_range(at)
    }

    /// `bbox`: exactly four numbers.
    fn bbox(&mut self) -> Option<Bbox4> {
        let start = self.i;
        let four = (|| {
            self.eat(b'[')?;
            self.ws();
            let x = self.number()?.f64();
            self.eat_comma()?;
            let y = self.number()?.f64();
            self.eat_comma()?;
            let w = self.number()?.f64();
            self.eat_comma()?;
            let h = self.number()?.f64();
            self.ws();
            self.eat(b']')?;
            Some(Bbox4(BBox { x, y, w, h }))
        })();
        four.or_else(|| self.bbox_error(start))
    }

    /// Why a `bbox` is not four numbers (reading it again from `start`).
    #[cold]
    fn bbox_error(&mut self, start: usize) -> Option<Bbox4> {
        self.i = start;
        if self.peek()? != b'[' {
            return self.wrong(start, "a bbox [x, y, width, height]");
        }
        self.i += 1;
        let mut n = 0;
        if !self.empty(b']')? {
            loop {
                self.f64_value()?;
                n += 1;
                if !self.next_or_end(b']')? {
                    break;
                }
            }
        }
        self.data(
            self.i,
            format!("bbox has {n} numbers; COCO boxes are [x, y, width, height]"),
        )
    }

    /// `keypoints` (serde parser: `KeypointList`): a flat list of numbers,
    /// whole x, y, visibility triples, at most `MAX_POLYGON_POINTS` of them.
    fn keypoints(&mut self) -> Option<KeypointList> {
        let start = self.i;
        if self.peek()? != b'[' {
            return self.wrong(start, "a sequence");
        }
        self.i += 1;
        let mut flat: Vec<f64> = Vec::new();
        if !self.empty(b']')? {
            loop {
                flat.push(self.f64_value()?);
                if !self.next_or_end(b']')? {
                    break;
                }
            }
        }
        if !flat.len().is_multiple_of(3) {
            let at = self.after_member(self.i);
            return self.data(at, "keypoints is not a list of x, y, visibility triples");
        }
        if flat.len() / 3 > crate::labels::MAX_POLYGON_POINTS {
            let at = self.after_member(self.i);
            return self.data(at, super::too_many_points());
        }
        Some(KeypointList(
            flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        ))
    }

    /// A comma between array elements, with the whitespace around it.
    fn eat_comma(&mut self) -> Option<()> {
        self.ws();
        self.eat(b',')?;
        self.ws();
        Some(())
    }

    /// `iscrowd` (serde parser: `Crowd`'s visitor: integers and booleans).
    fn crowd(&mut self) -> Option<Crowd> {
        let start = self.i;
        Some(Crowd(match self.peek()? {
            b't' => {
                self.literal(b"true")?;
                true
            }
            b'f' => {
                self.literal(b"false")?;
                false
            }
            b'-' | b'0'..=b'9' => match self.num()? {
                Num::U(v) => v != 0,
                Num::I(v) => v != 0,
                Num::F(_) => return self.wrong(start, "iscrowd as 0, 1, true or false"),
            },
            _ => return self.wrong(start, "iscrowd as 0, 1, true or false"),
        }))
    }

    /// `segmentation` (serde parser: `Segmentation`'s visitor, the same
    /// rules in the same order).
    fn segmentation(&mut self) -> Option<Segmentation> {
        let start = self.i;
        match self.peek()? {
            b'n' => {
                self.literal(b"null")?;
                return Some(Segmentation(None));
            }
            b'{' => return self.rle(),
            b'[' => self.i += 1,
            _ => return self.wrong(start, "a list of polygons or an RLE object"),
        }
        let mut rings: Vec<Vec<[f64; 2]>> = Vec::new();
        let mut flat: Vec<[f64; 2]> = Vec::new();
        let mut pending: Option<f64> = None;
        if !self.empty(b']')? {
            loop {
                let at = self.i;
                match self.peek()? {
                    b'[' => {
                        let ring = self.ring()?;
                        if !(flat.is_empty() && pending.is_none()) {
                            return self.mixed();
                        }
                        if !ring.is_empty() {
                            if rings.capacity() == 0 {
                                rings.reserve_exact(1);
                            }
                            rings.push(ring);
                        }
                    }
                    b'-' | b'0'..=b'9' => {
                        let x = self.f64_value()?;
                        if !rings.is_empty() {
                            return self.mixed();
                        }
                        match pending.take() {
                            Some(_) if flat.len() >= crate::labels::MAX_POLYGON_POINTS => {
                                let at = self.after_element(self.i);
                                return self.data(at, super::too_many_points());
                            }
                            Some(px) => flat.push([px, x]),
                            None => pending = Some(x),
                        }
                    }
                    _ => return self.wrong(at, "a polygon [x1, y1, x2, y2, ...]"),
                }
                if !self.next_or_end(b']')? {
                    break;
                }
            }
        }
        if pending.is_some() {
            return self.data(
                self.i,
                "segmentation polygon has an odd number of coordinates",
            );
        }
        if !flat.is_empty() {
            flat.shrink_to_fit();
            rings.reserve_exact(1);
            rings.push(flat);
        }
        Some(Segmentation(
            (!rings.is_empty()).then_some(Seg::Rings(rings)),
        ))
    }

    /// "mixes numbers and polygons", after the element just read.
    #[cold]
    fn mixed<T>(&mut self) -> Option<T> {
        let at = self.after_element(self.i);
        self.data(at, "segmentation mixes numbers and polygons")
    }

    /// An RLE `segmentation` object (serde parser: `Segmentation`'s
    /// `visit_map`: the last of repeated keys wins).
    fn rle(&mut self) -> Option<Segmentation> {
        let whole = |n: Num| match n {
            Num::U(v) => u32::try_from(v).ok(),
            _ => None,
        };
        self.eat(b'{')?;
        let (mut counts, mut size) = (None, None);
        if !self.empty(b'}')? {
            loop {
                let key = self.key()?;
                match &*key {
                    b"counts" => {
                        let start = self.i;
                        let list = (|| {
                            if self.peek()? == b'"' {
                                return Some(Err(self.text()?));
                            }
                            self.eat(b'[')?;
                            let mut c = Vec::new();
                            if !self.empty(b']')? {
                                loop {
                                    c.push(whole(self.number()?)?);
                                    if !self.next_or_end(b']')? {
                                        break;
                                    }
                                }
                            }
                            Some(Ok(c))
                        })();
                        counts = Some(match list {
                            Some(c) => c,
                            None => return self.untagged(start),
                        });
                    }
                    b"size" => size = Some(self.size()?),
                    _ => self.skip_any()?,
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        let (Some(counts), Some((height, width))) = (counts, size) else {
            return self.data(
                self.i,
                "RLE segmentation needs \"counts\" and \"size\": [height, width]",
            );
        };
        let counts = match counts {
            Ok(c) => c,
            Err(text) => match super::decode_rle_text(&text) {
                Some(c) => c,
                None => {
                    return self.data(
                        self.i,
                        "RLE segmentation \"counts\" is not pycocotools' compressed RLE text",
                    );
                }
            },
        };
        Some(Segmentation(Some(Seg::Rle(crate::labels::Mask {
            counts,
            left: 0,
            top: 0,
            width,
            height,
            column_major: true,
        }))))
    }

    /// `counts` that is neither a list of run lengths nor a string (serde
    /// parser: an untagged enum, which reads the value whole first).
    #[cold]
    fn untagged<T>(&mut self, start: usize) -> Option<T> {
        self.i = start;
        self.skip_any()?;
        let at = self.after_member(self.i);
        self.data(at, "data did not match any variant of untagged enum Counts")
    }

    /// An RLE `size`: `[height, width]` in `u32`s.
    fn size(&mut self) -> Option<(u32, u32)> {
        let start = self.i;
        if self.peek()? != b'[' {
            return self.wrong(start, "an array of length 2");
        }
        self.i += 1;
        let mut hw = [0u32; 2];
        let mut n = 0;
        if !self.empty(b']')? {
            loop {
                if n == 2 {
                    return None;
                }
                let at = self.i;
                if !matches!(self.peek()?, b'-' | b'0'..=b'9') {
                    return self.wrong(at, "u32");
                }
                let v = match self.num()? {
                    Num::U(v) => u32::try_from(v).map_err(|_| format!("integer `{v}`")),
                    Num::I(v) => Err(format!("integer `{v}`")),
                    Num::F(_) => return self.wrong(at, "u32"),
                };
                match v {
                    Ok(v) => {
                        if let Some(slot) = hw.get_mut(n) {
                            *slot = v;
                        }
                    }
                    Err(u) => {
                        return self.data(self.i, format!("invalid value: {u}, expected u32"));
                    }
                }
                n += 1;
                if !self.next_or_end(b']')? {
                    break;
                }
            }
        }
        if n < 2 {
            return self.data(
                self.i,
                format!("invalid length {n}, expected an array of length 2"),
            );
        }
        Some((hw[0], hw[1]))
    }

    /// One polygon: pairs of numbers, copied out at their exact count.
    fn ring(&mut self) -> Option<Vec<[f64; 2]>> {
        self.eat(b'[')?;
        self.ring.clear();
        if !self.empty(b']')? {
            loop {
                let x = self.f64_value()?;
                if self.eat_comma().is_none() {
                    return self.odd_ring();
                }
                let y = self.f64_value()?;
                if self.ring.len() >= crate::labels::MAX_POLYGON_POINTS {
                    let at = self.after_element(self.i);
                    return self.data(at, super::too_many_points());
                }
                self.ring.push([x, y]);
                if !self.next_or_end(b']')? {
                    break;
                }
            }
        }
        Some(self.ring.as_slice().to_vec())
    }

    /// A polygon that ends after an x: odd, or not JSON.
    #[cold]
    fn odd_ring<T>(&mut self) -> Option<T> {
        self.ws();
        if self.peek()? != b']' {
            return None;
        }
        self.data(
            self.i + 1,
            "segmentation polygon has an odd number of coordinates",
        )
    }

    /// An annotation's `attributes` object (serde parser: `Attrs`).
    fn attributes(&mut self) -> Option<Attrs<'a>> {
        if self.null()? {
            return Some(Attrs(Vec::new()));
        }
        let start = self.i;
        if self.peek()? != b'{' {
            return self.wrong(start, "an attributes object");
        }
        self.i += 1;
        let mut out = Vec::new();
        if !self.empty(b'}')? {
            loop {
                let key = match self.key()? {
                    Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).ok()?),
                    Cow::Owned(v) => Cow::Owned(String::from_utf8(v).ok()?),
                };
                if let Some(v) = self.attr(4)? {
                    out.push((key, v));
                }
                if !self.next_or_end(b'}')? {
                    break;
                }
            }
        }
        Some(Attrs(out))
    }

    // -----------------------------------------------------------------
    // Errors: serde_json's wording and positions, recorded where the
    // reading stops (see [`Reader::error`]).

    /// Records a data error at reader position `index` (the first one
    /// recorded stays) and stops.
    #[cold]
    fn data<T>(&mut self, index: usize, message: impl Into<Cow<'static, str>>) -> Option<T> {
        if self.why.is_none() {
            self.why = Some(JsonError::at(index, Kind::Data, message));
        }
        None
    }

    /// The value at `start` is valid JSON of the wrong type: "invalid
    /// type" as serde_json words it. Nothing is recorded when the value
    /// is not valid JSON (the syntax error is then reported).
    #[cold]
    fn wrong<T>(&mut self, start: usize, expected: &str) -> Option<T> {
        // Visitors serde_json drives with `deserialize_any` refuse a list or
        // an object after entering it (the reader is then past its end, or
        // at its first element); the others before.
        const ANY: [&str; 6] = [
            "an integer or string id",
            "an image size in whole pixels",
            "iscrowd as 0, 1, true or false",
            "a polygon [x1, y1, x2, y2, ...]",
            "an attributes object",
            "a list of polygons or an RLE object",
        ];
        let mut r = Reader::new(self.b, start, usize::MAX);
        let unexpected = match r.peek()? {
            c @ (b'[' | b'{') => {
                if ANY.contains(&expected) {
                    r.i = self.after(start + 1, if c == b'[' { b']' } else { b'}' });
                }
                if c == b'[' { "sequence" } else { "map" }.to_string()
            }
            b'"' => format!("string {:?}", r.text()?),
            b't' => {
                r.literal(b"true")?;
                "boolean `true`".to_string()
            }
            b'f' => {
                r.literal(b"false")?;
                "boolean `false`".to_string()
            }
            b'n' => {
                r.literal(b"null")?;
                "null".to_string()
            }
            b'-' | b'0'..=b'9' => match r.number() {
                None => return self.out_of_range(start),
                Some(Num::U(v)) => format!("integer `{v}`"),
                Some(Num::I(v)) => format!("integer `{v}`"),
                Some(Num::F(v)) => format!(
                    "floating point `{}`",
                    serde_json::to_string(&v).unwrap_or_default()
                ),
            },
            _ => return None,
        };
        self.data(
            r.i,
            format!("invalid type: {unexpected}, expected {expected}"),
        )
    }

    /// serde_json's error on a nested attribute value (text `raw` at
    /// `start`), which it reads into a `Value` (a number out of range, a
    /// lone surrogate).
    #[cold]
    fn value_error<T>(&mut self, start: usize, raw: &[u8], e: &serde_json::Error) -> Option<T> {
        let line_start = raw
            .split_inclusive(|c| *c == b'\n')
            .take(e.line().saturating_sub(1))
            .map(<[u8]>::len)
            .sum::<usize>();
        let index = start + line_start + e.column();
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        let kind = match e.classify() {
            serde_json::error::Category::Eof => Kind::Eof,
            serde_json::error::Category::Data => Kind::Data,
            _ => Kind::Syntax,
        };
        if self.why.is_none() {
            self.why = Some(JsonError::at(index, kind, message));
        }
        None
    }

    /// A nested attribute value at `start` that did not skip: serde_json
    /// reads it into a `Value`, whose error comes first (a number out of
    /// range, a lone surrogate before the end of a cut file).
    #[cold]
    fn nested_error<T>(&mut self, start: usize) -> Option<T> {
        if self.too_deep.is_some() {
            return None;
        }
        let raw = self.b.get(start..)?;
        match serde_json::from_slice::<serde_json::Value>(raw) {
            Err(e) if !e.to_string().starts_with("trailing characters") => {
                self.value_error(start, raw, &e)
            }
            _ => None,
        }
    }

    /// An annotation or category that is not an object. serde's derived
    /// structs also take a list of their fields in order: an empty one
    /// lacks the first required field (`required`); other lists are
    /// refused here as another type.
    #[cold]
    fn not_struct<T>(
        &mut self,
        start: usize,
        what: &str,
        required: usize,
        fields: usize,
    ) -> Option<T> {
        let mut l = Lexer::new(self.b, start + 1, 0);
        l.ws();
        if self.b.get(start) == Some(&b'[') && l.peek() == Some(b']') {
            return self.data(
                l.i + 1,
                format!("invalid length {required}, expected {what} with {fields} elements"),
            );
        }
        self.wrong(start, what)
    }

    /// "duplicate field" for the key at `at`: serde_json's position is
    /// after the key and the whitespace before its colon.
    #[cold]
    fn duplicate<T>(&mut self, at: usize, name: &str) -> Option<T> {
        let mut l = Lexer::new(self.b, at, 0);
        l.skip_string()?;
        l.ws();
        self.data(l.i, format!("duplicate field `{name}`"))
    }

    /// Where serde_json's reader is when an error raised after a list
    /// element is positioned: past the whitespace, a `]`, or a comma and
    /// the whitespace after it.
    fn after_element(&self, i: usize) -> usize {
        self.after(i, b']')
    }

    /// [`Reader::after_element`] in an object.
    fn after_member(&self, i: usize) -> usize {
        self.after(i, b'}')
    }

    fn after(&self, i: usize, close: u8) -> usize {
        let mut l = Lexer::new(self.b, i, 0);
        l.ws();
        match l.peek() {
            Some(c) if c == close => l.i + 1,
            Some(b',') => {
                l.i += 1;
                l.ws();
                l.i
            }
            _ => l.i,
        }
    }

    /// The error of a reading that stopped: the first of what it recorded
    /// and the document's first syntax error, as serde_json reports them.
    fn error(&self) -> JsonError {
        let deep = self
            .too_deep
            .map(|at| JsonError::peek(self.b, at, Kind::Syntax, "recursion limit exceeded"));
        let stopped = match (&self.why, deep) {
            (Some(w), Some(d)) if d.index < w.index => Some(d),
            (Some(w), _) => Some(JsonError::at(w.index, w.kind, w.message.clone())),
            (None, d) => d,
        };
        if stopped.is_none()
            && let Some(start) = self.ignored
            && let Some(e) = super::lex::ignored_value_error(self.b, start)
        {
            return e;
        }
        let syntax = super::lex::first_syntax_error(self.b, self.i);
        match (stopped, syntax) {
            (Some(s), Some(j)) if j.index < s.index => j,
            (Some(s), _) => s,
            (None, Some(j)) => j,
            // Nothing recorded and the JSON is fine: should not happen;
            // say where the reading stopped.
            (None, None) => JsonError::at(self.i, Kind::Data, "unexpected value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_buffered as parse_lists, write};
    use crate::labels::{
        AttrValue, BBox, Counts, FrameLabels, Geometry, LabelError, Object, Units, attr_bucket,
    };
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Runs both drivers on `bytes`. Where the streaming read gives frames,
    /// they must be the reading into lists', bit for bit (`Debug` of a float
    /// tells -0.0 from 0.0 and every other pair of distinct values); where it
    /// does not, [`super::super::parse`] is the reading into lists. Returns
    /// whether the streaming read took the document.
    fn differ(bytes: &[u8]) -> bool {
        same_categories(bytes);
        let reference = parse_lists(bytes);
        let full = super::super::parse(bytes);
        golden::record(bytes, &full);
        assert_eq!(
            format!("{full:?}"),
            format!("{reference:?}"),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        let fast = super::parse(bytes);
        // Frames handed over one by one from compact records: the same
        // frames, or the same error; the same streaming read, split or not.
        let mut each = Vec::new();
        let streamed = super::super::parse_each(bytes, &mut |f| each.push(f)).map(|()| each);
        assert_eq!(
            format!("{streamed:?}"),
            format!("{full:?}"),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            super::super::check(bytes),
            full.as_ref().map(drop).map_err(Clone::clone)
        );
        // The counting pass: what counting the frames gives, where the
        // streaming read takes the file (nothing otherwise), split or not.
        let counted = super::super::count(bytes);
        assert_eq!(counted.is_some(), fast.is_some());
        if let Some(c) = &counted {
            let Ok(frames) = &full else {
                panic!("counted a file parse refuses");
            };
            assert_eq!(
                tallies_of_counts(c),
                tallies_of_frames(frames),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let split = super::parse_tally_split_from(bytes, 1)
            .and_then(|(frames, names)| super::super::counts_of(frames, names));
        assert_eq!(split, counted);
        let want = format!("{fast:?}");
        for split_from in [usize::MAX, 1] {
            assert_eq!(
                format!(
                    "{:?}",
                    super::super::parse_each_fast_split_from(bytes, split_from)
                ),
                want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // The same with the annotations list split at the scan's candidate.
        assert_eq!(
            format!("{:?}", super::parse_split_from(bytes, 1)),
            format!("{fast:?}"),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        match fast {
            Some(frames) => {
                let Ok(want) = &reference else {
                    panic!(
                        "the streaming read accepted what the reading into lists rejects ({reference:?}):\n{}",
                        String::from_utf8_lossy(bytes)
                    );
                };
                assert_eq!(&frames, want, "{}", String::from_utf8_lossy(bytes));
                assert_eq!(
                    format!("{frames:?}"),
                    format!("{want:?}"),
                    "{}",
                    String::from_utf8_lossy(bytes)
                );
                true
            }
            None => false,
        }
    }

    /// The class list's reading of the categories is serde_json's, which it
    /// replaced (a derived struct of one defaulted field), on any document
    /// that is an object, but for what serde read by position (a document
    /// or a category that is a list), which the class list refuses as the
    /// parser does.
    fn same_categories(bytes: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Categories {
            #[serde(default)]
            categories: Vec<Category>,
        }
        #[derive(serde::Deserialize)]
        struct Category {
            id: i64,
            name: String,
        }
        if bytes.iter().find(|b| !b" \n\r\t".contains(b)) != Some(&b'{') {
            return;
        }
        let mut want = serde_json::from_slice::<Categories>(bytes)
            .ok()
            .map(|c| c.categories.into_iter().map(|c| (c.id, c.name)).collect());
        if want.is_some() {
            // (`Value` refuses some documents the struct reading takes:
            // numbers out of range, lone surrogates in skipped values.)
            let v = serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_default();
            if v["categories"]
                .as_array()
                .is_some_and(|l| l.iter().any(serde_json::Value::is_array))
            {
                want = None;
            }
        }
        assert_eq!(
            super::category_list(bytes),
            want,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }

    /// `differ` on the document and on cut points through it.
    /// What `dsv stats` counts of a file, by class and attribute name:
    /// labelled and empty frames, objects, objects per class, objects and
    /// frames per attribute value bucket.
    type Tallies = (
        [u64; 3],
        BTreeMap<String, u64>,
        [BTreeMap<(String, String), u64>; 2],
    );

    /// [`Tallies`] of parsed frames.
    fn tallies_of_frames(frames: &[FrameLabels]) -> Tallies {
        let mut t = Tallies::default();
        for f in frames {
            t.0[usize::from(f.objects.is_empty())] += 1;
            for (k, v) in &f.attributes {
                *t.2[1].entry((k.clone(), attr_bucket(v))).or_default() += 1;
            }
            for o in &f.objects {
                t.0[2] += 1;
                *t.1.entry(o.class.clone()).or_default() += 1;
                for (k, v) in o.attributes.iter() {
                    *t.2[0].entry((k.clone(), attr_bucket(v))).or_default() += 1;
                }
            }
        }
        t
    }

    /// [`Tallies`] of a counting pass's results.
    fn tallies_of_counts(c: &Counts) -> Tallies {
        let tally = c.frames.as_ref().expect("a multi-frame tally");
        let mut t = Tallies::default();
        t.0 = [tally.labelled, tally.empty, c.objects];
        assert_eq!(c.scored, 0);
        for &(index, n) in &c.classes {
            *t.1.entry(tally.names[index].clone()).or_default() += n;
        }
        for (map, list) in
            t.2.iter_mut()
                .zip([&tally.attributes, &tally.frame_attributes])
        {
            for (k, v, n) in list {
                *map.entry((k.clone(), v.clone())).or_default() += n;
            }
        }
        t
    }

    fn differ_cut(bytes: &[u8], step: usize) -> bool {
        let whole = differ(bytes);
        let mut n = 0;
        while n < bytes.len() {
            differ(&bytes[..n]);
            n += step.max(1);
        }
        whole
    }

    const FIXTURES: [&str; 4] = [
        "fixtures/datumaro/coco_dataset/coco_instances/annotations/instances_train.json",
        "fixtures/datumaro/coco_dataset/coco_instances/annotations/instances_val.json",
        "fixtures/datumaro/roboflow_dataset/coco/train/_annotations.coco.json",
        "fixtures/datumaro/roboflow_dataset/coco/val/_annotations.coco.json",
    ];

    fn read(rel: &str) -> Vec<u8> {
        let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The results of `parse` on every document the tests below make,
    /// against the results recorded when the serde parser still produced
    /// them (frames bit for bit, errors with their text, line and column),
    /// so that the reader stays what it was as its implementation changes.
    ///
    /// The tests named in [`golden::check`] record each document they
    /// parse, in order; groups of [`golden::GROUP`] consecutive results are
    /// hashed into one line of `golden/<test>.txt`. A corpus that changes
    /// (a test making other documents) fails too: write the files again
    /// with `COCO_GOLDEN_WRITE=1` from the commit before the change and
    /// check them in with the change.
    mod golden {
        use std::cell::RefCell;
        use std::fmt::Write as _;

        use crate::labels::{FrameLabels, LabelError};

        /// Documents per line of a golden file.
        pub(super) const GROUP: usize = 16;

        /// Documents and their results, as text.
        type Seen = Vec<(Vec<u8>, String)>;

        thread_local! {
            /// Each document parsed on this thread and its result.
            static SEEN: RefCell<Option<Seen>> = const { RefCell::new(None) };
        }

        /// Starts recording on this thread (each test runs on its own).
        pub(super) fn start() {
            SEEN.with(|s| *s.borrow_mut() = Some(Vec::new()));
        }

        /// Records one parse, when recording.
        pub(super) fn record(bytes: &[u8], result: &Result<Vec<FrameLabels>, LabelError>) {
            SEEN.with(|s| {
                if let Some(seen) = s.borrow_mut().as_mut() {
                    // `Debug` tells -0.0 from 0.0, and shows the error's
                    // line and column as well as its text.
                    seen.push((bytes.to_vec(), format!("{result:?}")));
                }
            });
        }

        fn path(test: &str) -> std::path::PathBuf {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/labels/coco/golden")
                .join(format!("{test}.txt"))
        }

        fn digest(items: &[(Vec<u8>, String)]) -> String {
            let mut h = blake3::Hasher::new();
            for (doc, result) in items {
                h.update(&(doc.len() as u64).to_le_bytes());
                h.update(doc);
                h.update(&(result.len() as u64).to_le_bytes());
                h.update(result.as_bytes());
            }
            const_hex::encode(&h.finalize().as_bytes()[..8])
        }

        /// Per file (by content) of the sample datasets, which are not
        /// always there: the digest of what this thread recorded since
        /// [`start`], compared with `golden/sample_json_files.txt` where the
        /// file is listed; collected by [`check_files`].
        pub(super) fn file_line(bytes: &[u8]) -> String {
            let seen = SEEN
                .with(|s| s.borrow_mut().take())
                .expect("golden::start was called");
            let id = const_hex::encode(&blake3::hash(bytes).as_bytes()[..8]);
            format!("{id} {} {}", seen.len(), digest(&seen))
        }

        /// Checks the lines of [`file_line`]: every listed file that is
        /// here gives its listed results (the fixtures are always here).
        pub(super) fn check_files(test: &str, lines: &[String]) -> usize {
            let path = path(test);
            if std::env::var_os("COCO_GOLDEN_WRITE").is_some() {
                let mut sorted = lines.to_vec();
                sorted.sort();
                std::fs::write(&path, sorted.join("\n") + "\n").unwrap();
                return lines.len();
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut checked = 0;
            for line in lines {
                let id = line.split(' ').next().unwrap_or_default();
                if let Some(w) = want.lines().find(|w| w.starts_with(id)) {
                    assert_eq!(
                        w, line,
                        "{test}: a sample file parses otherwise than it did"
                    );
                    checked += 1;
                }
            }
            checked
        }

        /// Compares what this thread recorded since [`start`] with the
        /// golden file of `test`; on a difference, shows the documents of
        /// the first group that differs and what they parse to now.
        pub(super) fn check(test: &str) {
            let seen = SEEN
                .with(|s| s.borrow_mut().take())
                .expect("golden::start was called");
            let mut text = format!("{} documents\n", seen.len());
            for group in seen.chunks(GROUP) {
                let _ = writeln!(text, "{}", digest(group));
            }
            let path = path(test);
            if std::env::var_os("COCO_GOLDEN_WRITE").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
                return;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if want == text {
                return;
            }
            let (want_lines, got_lines): (Vec<&str>, Vec<&str>) =
                (want.lines().collect(), text.lines().collect());
            assert_eq!(
                want_lines.first(),
                got_lines.first(),
                "{test}: the corpus changed"
            );
            let k = want_lines
                .iter()
                .zip(&got_lines)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let mut show = String::new();
            for (doc, result) in seen.chunks(GROUP).nth(k.saturating_sub(1)).unwrap_or(&[]) {
                let _ = writeln!(show, "---\n{}\n=> {result}", String::from_utf8_lossy(doc));
            }
            panic!(
                "{test}: group {} of the golden results differs; one of these parses to another result than it did:\n{show}",
                k.saturating_sub(1)
            );
        }
    }

    #[test]
    fn fixtures_and_every_prefix() {
        golden::start();
        for rel in FIXTURES {
            let bytes = read(rel);
            assert!(differ_cut(&bytes, 1), "{rel}: not taken by the fast path");
            // What dsv writes is taken too.
            let written = write(&super::super::parse(&bytes).unwrap()).unwrap();
            assert!(differ_cut(&written, 1), "{rel} as written");
        }
        golden::check("fixtures_and_every_prefix");
    }

    /// Every JSON file of the fixtures (always there) and of the shared sample
    /// datasets next to the repository, or where `DSV_SAMPLE_DATASETS` says
    /// (a worktree elsewhere), when they are there: they are not part of
    /// the project, so a fresh clone checks the fixtures only.
    #[test]
    fn sample_json_files() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![here.join("fixtures"), here.join("../shared/datasets")];
        dirs.extend(std::env::var_os("DSV_SAMPLE_DATASETS").map(std::path::PathBuf::from));
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "json") {
                    files.push(p);
                }
            }
        }
        let mut taken = 0;
        let mut lines = Vec::new();
        for p in &files {
            let bytes = std::fs::read(p).unwrap();
            golden::start();
            if super::super::sniff(&p.to_string_lossy(), &bytes) {
                taken += usize::from(differ_cut(&bytes, 7));
            } else {
                differ(&bytes);
            }
            lines.push(golden::file_line(&bytes));
        }
        let checked = golden::check_files("sample_json_files", &lines);
        eprintln!(
            "{} sample JSON files, {taken} taken by the fast path, {checked} against golden results",
            files.len()
        );
        assert!(checked >= FIXTURES.len(), "{checked} files checked");
        // The four COCO files of fixtures/ are in the usual layout.
        assert!(
            taken >= 4,
            "{taken} of {} taken by the fast path",
            files.len()
        );
    }

    /// A document with a marker for each place a variant goes.
    const TEMPLATE: &str = r#"{"info": @INFO@, "licenses": [], @TOP@
 "categories": [{"id": 1, "name": @CATNAME@, "supercategory": "x"@CATX@}, {"id": @CATID@, "name": "two"}],
 "images": [{"id": @IMGID@, "file_name": @FILE@, "width": @WIDTH@, "height": 480, "license": @LICENSE@@IMGX@},
            {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480}],
 "annotations": [
  {"id": @ANNID@, "image_id": @IMGID@, "category_id": @CATID@, "bbox": @BBOX@, "area": @AREA@,
   "iscrowd": @CROWD@, "segmentation": @SEG@, "score": @SCORE@, "attributes": @ATTRS@@ANNX@},
  {"id": 8, "image_id": 2, "category_id": 1, "bbox": [@NUM@, 2, 3, 4], "segmentation": [[@NUM@, 1, 2, 3]]},
  {"id": 9, "image_id": 2, "category_id": 1, "segmentation": [1, @NUM@, 2, 3], "attributes": {"v": @NUM@}}
 ]}"#;

    const DEFAULTS: [(&str, &str); 20] = [
        ("@INFO@", r#"{"description": "bench"}"#),
        ("@TOP@", ""),
        ("@CATNAME@", r#""car""#),
        ("@CATX@", ""),
        ("@CATID@", "2"),
        ("@IMGID@", "1"),
        ("@FILE@", r#""a.jpg""#),
        ("@WIDTH@", "640"),
        ("@LICENSE@", "1"),
        ("@IMGX@", ""),
        ("@ANNID@", "7"),
        ("@BBOX@", "[1.5, 2.25, 30, 40.125]"),
        ("@AREA@", "1204.9999999999998"),
        ("@CROWD@", "0"),
        ("@SEG@", "[[1, 2, 3, 4, 5, 6]]"),
        ("@SCORE@", "0.5"),
        ("@ATTRS@", r#"{"occluded": false}"#),
        ("@ANNX@", ""),
        ("@NUM@", "1.25"),
        ("@NONE@", ""),
    ];

    fn fill(marker: &str, value: &str) -> String {
        let mut doc = TEMPLATE.to_string();
        for (m, d) in DEFAULTS {
            doc = doc.replace(m, if m == marker { value } else { d });
        }
        doc
    }

    const NUMBERS: [&str; 52] = [
        "0",
        "-0",
        "7",
        "-7",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "-0.0",
        "0.0",
        "0.1",
        "3.0",
        "1920.0",
        "0.30000000000000004",
        "123.45678901234567",
        "0.1000000000000000055511151231257827",
        "1.7976931348623157e308",
        "1.7976931348623159e308",
        "2.2250738585072014e-308",
        "5e-324",
        "4.9e-324",
        "1e-400",
        "1e308",
        "1e309",
        "-1e309",
        "1.5e300",
        "0e999999999",
        "1e999999999",
        "1e-999999999",
        "1e9999999999",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "12345678901234567890.5",
        "1234567890123456789.5",
        "0.000000000000000000000000001",
        "4294967295",
        "4294967296",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "NaN",
        "Infinity",
        "0x10",
        "2.5E-3",
    ];

    const STRINGS: [&str; 20] = [
        r#""plain""#,
        r#""a\"b""#,
        r#""\u00e9t\u00e9""#,
        r#""\ud83d\ude00""#,
        r#""\uD834\uDD1E""#,
        r#""\ud83d""#,
        r#""\ude00""#,
        r#""\ud83d\u0041""#,
        "\"\u{e9} \u{6f22}\u{5b57} \u{1f600}\"",
        r#""\/\b\f\n\r\t\\""#,
        r#""\x""#,
        "\"tab\there\"",
        r#""\u00""#,
        r#""\u0000""#,
        r#""""#,
        r#""\u12G4""#,
        "\"a\u{7f}b\"",
        r#""unterminated"#,
        r#"'single'"#,
        r#""1""#,
    ];

    const VALUES: [&str; 18] = [
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        r#""s""#,
        "[]",
        "{}",
        r#"[1, [2, {"a": null}]]"#,
        r#"{"b": 1, "a": [true], "b": 2}"#,
        r#"{"k": "\u00e9\n"}"#,
        "[1e400]",
        "[1, 2,]",
        r#"{"a" 1}"#,
        "tru",
        "nul",
        "[0.1000000000000000055511151231257827]",
    ];

    #[test]
    fn every_variant_in_every_place() {
        let mut taken = 0;
        let mut total = 0;
        golden::start();
        let mut run = |doc: String| {
            total += 1;
            taken += usize::from(differ_cut(doc.as_bytes(), 37));
        };
        run(fill("@NONE@", ""));
        for n in NUMBERS {
            for marker in [
                "@NUM@",
                "@WIDTH@",
                "@IMGID@",
                "@CATID@",
                "@ANNID@",
                "@CROWD@",
                "@SCORE@",
                "@AREA@",
                "@LICENSE@",
                "@INFO@",
            ] {
                run(fill(marker, n));
            }
            run(fill("@BBOX@", &format!("[{n}, {n}, {n}, {n}]")));
            run(fill("@SEG@", &format!("[[{n}, 1, 2, {n}]]")));
            run(fill("@SEG@", &format!("[{n}, {n}]")));
            run(fill("@ATTRS@", &format!(r#"{{"x": {n}}}"#)));
            run(fill("@IMGX@", &format!(r#", "x": {n}"#)));
            run(fill("@IMGX@", &format!(r#", "x": [{n}, {{"y": {n}}}]"#)));
            run(fill("@ANNX@", &format!(r#", "keypoints": [{n}, 1, {n}]"#)));
        }
        for s in STRINGS {
            for marker in [
                "@FILE@",
                "@CATNAME@",
                "@IMGID@",
                "@CATID@",
                "@ANNID@",
                "@INFO@",
            ] {
                run(fill(marker, s));
            }
            run(fill("@TOP@", &format!("{s}: 1,")));
            run(fill("@IMGX@", &format!(", {s}: {s}")));
            run(fill("@ANNX@", &format!(", {s}: {s}")));
            run(fill("@CATX@", &format!(", {s}: {s}")));
            run(fill("@ATTRS@", &format!("{{{s}: {s}, \"n\": [{s}]}}")));
        }
        for v in VALUES {
            for marker in [
                "@INFO@",
                "@LICENSE@",
                "@BBOX@",
                "@SEG@",
                "@CROWD@",
                "@SCORE@",
                "@ATTRS@",
                "@ANNID@",
                "@WIDTH@",
                "@FILE@",
                "@CATNAME@",
            ] {
                run(fill(marker, v));
            }
            run(fill("@TOP@", &format!("\"extra\": {v},")));
            run(fill("@IMGX@", &format!(", \"x\": {v}")));
            run(fill("@ANNX@", &format!(", \"x\": {v}")));
            run(fill("@CATX@", &format!(", \"x\": {v}")));
            run(fill("@ATTRS@", &format!("{{\"x\": {v}, \"y\": {v}}}")));
            run(fill("@ANNX@", &format!(", \"keypoints\": {v}")));
        }
        // Keypoints with each kind of segmentation.
        for kp in [
            "[1, 2, 2, 3, 4, 1]",
            "[0, 0, 0]",
            "[]",
            "null",
            "[1, 2]",
            "[1, 2, 2, 3]",
            r#"[1, 2, "x"]"#,
            "[[1, 2, 2]]",
            "[1.5, -2, 0, 1e400, 1, 1]",
        ] {
            for seg in [
                "[[1, 2, 3, 4, 5, 6]]",
                r#"{"counts": [1, 2], "size": [1, 3]}"#,
                "[]",
                "null",
                "[1, 2, 3, 4]",
            ] {
                run(fill("@ANNX@", &format!(r#", "keypoints": {kp}"#)).replacen(
                    "[[1, 2, 3, 4, 5, 6]]",
                    seg,
                    1,
                ));
            }
        }
        // Known fields of odd shape, repeated fields, escaped keys.
        for (marker, v) in [
            ("@BBOX@", "[1, 2, 3]"),
            ("@BBOX@", "[1, 2, 3, 4, 5]"),
            ("@BBOX@", "[1, 2, 3, null]"),
            ("@BBOX@", "[ 1 ,2 , 3,4 ]"),
            ("@SEG@", "[]"),
            ("@SEG@", "[[]]"),
            ("@SEG@", "[[], 1, 2]"),
            ("@SEG@", "[1, 2, []]"),
            ("@SEG@", "[[1, 2], 3, 4]"),
            ("@SEG@", "[1, 2, [3, 4]]"),
            ("@SEG@", "[[1, 2], [3, 4, 5, 6]]"),
            ("@SEG@", "[[1, 2, 3]]"),
            ("@SEG@", "[1, 2, 3]"),
            ("@SEG@", "[[1, 2, [3]]]"),
            ("@SEG@", r#"{"counts": "abc", "size": [1, 2]}"#),
            ("@SEG@", r#"["x"]"#),
            ("@CROWD@", "2"),
            ("@CROWD@", "-1"),
            ("@CROWD@", "1.0"),
            ("@CROWD@", r#""1""#),
            ("@ATTRS@", r#"{"a": 1, "a": 2}"#),
            ("@ATTRS@", r#"{"a": 1, "a": null}"#),
            ("@ATTRS@", r#"{"iscrowd": 5, "score": "high"}"#),
            ("@ATTRS@", "5"),
            ("@ANNX@", r#", "id": 3"#),
            ("@ANNX@", r#", "image_id": 1"#),
            ("@ANNX@", r#", "bbox": null"#),
            ("@ANNX@", r#", "area": 1, "area": 2"#),
            (
                "@ANNX@",
                r#", "keypoints": [1, 2, 2], "keypoints": [1, 2, 2]"#,
            ),
            ("@ANNX@", r#", "keypoints": null, "keypoints": [1, 2, 2]"#),
            ("@ANNX@", r#", "\u0069d": 3"#),
            ("@IMGX@", r#", "id": 5"#),
            ("@IMGX@", r#", "width": null"#),
            ("@IMGX@", r#", "file_name": "c.jpg""#),
            ("@IMGX@", r#", "x": 1, "x": null"#),
            ("@IMGX@", r#", "x": null, "x": 1"#),
            ("@IMGX@", r#", "fil\u0065_name": "d.jpg""#),
            (
                "@IMGX@",
                r#", "coco_url": {"deep": [1, 2]}, "date_captured": "2020""#,
            ),
            ("@CATX@", r#", "id": 4"#),
            ("@CATX@", r#", "name": "dup""#),
            ("@TOP@", r#""images": [],"#),
            ("@TOP@", r#""annotations": [],"#),
            ("@TOP@", r#""annotations": null,"#),
            ("@TOP@", r#""categories": [{"id": 1, "name": "first"}],"#),
            ("@TOP@", r#""categories": null,"#),
            ("@TOP@", r#""\u0069mages": [],"#),
        ] {
            run(fill(marker, v));
        }
        // Deep nesting around serde_json's limit of 128.
        for depth in [10, 60, 63, 64, 65, 120, 124, 125, 126, 127, 128, 129, 200] {
            let v = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            for marker in ["@INFO@", "@LICENSE@"] {
                run(fill(marker, &v));
            }
            run(fill("@IMGX@", &format!(", \"x\": {v}")));
            run(fill("@ATTRS@", &format!("{{\"x\": {v}}}")));
            run(fill("@SEG@", &format!("{{\"x\": {v}}}")));
        }
        golden::check("every_variant_in_every_place");
        eprintln!("{total} documents, {taken} taken by the fast path");
        assert!(
            taken * 3 > total,
            "the fast path took only {taken} of {total}"
        );
    }

    #[test]
    fn keypoints_are_read_on_the_fast_path() {
        for kp in ["[1, 2, 2, 3.5, 4, 1]", "[]", "null"] {
            let doc = fill("@ANNX@", &format!(r#", "keypoints": {kp}"#));
            assert!(differ(doc.as_bytes()), "{doc}");
        }
        let doc = fill("@ANNX@", r#", "keypoints": [1, 2, 2]"#);
        let frames = super::super::parse(doc.as_bytes()).unwrap();
        let Some(Geometry::Keypoints(k)) = &frames[0].objects[0].geometry else {
            panic!("{frames:?}");
        };
        assert_eq!(k.points, vec![[1.0, 2.0, 2.0]]);
        assert_eq!(
            k.outline,
            Some(vec![vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
        );
        // Not triples: the serde parser's error.
        let doc = fill("@ANNX@", r#", "keypoints": [1, 2]"#);
        assert!(!differ(doc.as_bytes()));
    }

    #[test]
    fn annotations_before_images_are_read_on_the_fast_path() {
        let images = r#""images": [{"id": 1, "file_name": "a"}, {"id": 2, "file_name": "b"}]"#;
        let anns = r#""annotations": [{"image_id": 2, "category_id": 3, "id": 1}, {"image_id": 1, "category_id": 3}]"#;
        let cats = r#""categories": [{"name": "x", "id": 3}]"#;
        let doc = format!("{{{anns}, \"info\": {{}}, {images}, {cats}}}");
        assert!(differ(doc.as_bytes()), "{doc}");
        let frames = super::super::parse(doc.as_bytes()).unwrap();
        assert_eq!(frames[1].objects[0].class, "x");
        assert_eq!(frames[0].objects.len(), 1);
        // Not taken: two lists, no images, an unknown image, trailing text.
        for doc in [
            format!("{{{anns}, {anns}, {images}, {cats}}}"),
            format!("{{{anns}, {images}, {anns}, {cats}}}"),
            format!("{{{anns}, {cats}}}"),
            format!("{{{anns}, {images}, {cats}}} x"),
            format!("{{{}, {images}, {cats}}}", anns.replace("2,", "7,")),
        ] {
            assert!(!differ(doc.as_bytes()), "{doc}");
        }
        // Long enough to be read in two halves.
        let mut frames = Vec::new();
        for k in 0..3_000 {
            let mut f = FrameLabels::new(format!("f{k}.jpg"), Units::Pixels);
            for j in 0..3 {
                let mut o = Object::new(format!("c{j}"), None);
                o.id = Some(format!("{}", k * 10 + j));
                f.objects.push(o);
            }
            frames.push(f);
        }
        let text = String::from_utf8(write(&frames).unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let first = format!(
            "{{\"annotations\": {}, \"categories\": {}, \"images\": {}}}",
            v["annotations"], v["categories"], v["images"]
        );
        assert_eq!(
            super::parse_split_from(first.as_bytes(), 1000).unwrap(),
            frames
        );
        assert!(differ(first.as_bytes()));
    }

    #[test]
    fn whitespace_order_and_layout() {
        golden::start();
        let base = fill("@NONE@", "");
        assert!(differ(base.as_bytes()));
        // Other whitespace, none at all, a BOM, trailing text.
        let loose = base
            .replace(", ", " ,\r\n\t")
            .replace(": ", "\t:  ")
            .replace('[', "[ ");
        assert!(differ(loose.as_bytes()));
        let tight: String = {
            let mut out = String::new();
            let mut in_str = false;
            let mut esc = false;
            for c in base.chars() {
                if in_str {
                    out.push(c);
                    if esc {
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '"' {
                        in_str = false;
                    }
                } else if c == '"' {
                    in_str = true;
                    out.push(c);
                } else if !c.is_whitespace() {
                    out.push(c);
                }
            }
            out
        };
        assert!(differ(tight.as_bytes()));
        for doc in [
            format!("\u{feff}{base}"),
            format!("{base} x"),
            format!("{base}\n\n"),
            format!(" \n{base}"),
            format!("{base}{{}}"),
            format!("[{base}]"),
        ] {
            differ(doc.as_bytes());
        }
        // Every order of the three lists.
        let images = r#""images": [{"id": 1, "file_name": "a"}, {"id": "t", "file_name": "b"}]"#;
        let anns = r#""annotations": [{"image_id": "t", "category_id": 3}, {"image_id": 1, "category_id": "c", "id": 4}, {"image_id": "t", "category_id": 3, "id": "q"}]"#;
        let cats = r#""categories": [{"name": "x", "id": 3}, {"id": "c", "name": "y"}]"#;
        let lists = [images, anns, cats];
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let doc = format!(
                "{{{}, {}, {}}}",
                lists[order[0]], lists[order[1]], lists[order[2]]
            );
            assert!(differ_cut(doc.as_bytes(), 3), "{doc}");
        }
        golden::check("whitespace_order_and_layout");
    }

    #[test]
    fn invalid_utf8_anywhere() {
        golden::start();
        let base = fill("@FILE@", "\"\u{e9}t\u{e9}\"").into_bytes();
        assert!(differ(&base));
        for at in 0..base.len() {
            let mut bytes = base.clone();
            bytes[at] = 0xff;
            // Taken where serde_json took it too: in a skipped value.
            differ(&bytes);
            let mut bytes = base.clone();
            bytes.insert(at, 0xc3);
            differ(&bytes);
        }
        golden::check("invalid_utf8_anywhere");
    }

    /// Numbers past the short path (significands beyond `u64`, exponents
    /// past `i32`, long fractions): taken exactly where serde_json takes
    /// them, and bit-identical.
    #[test]
    fn long_numbers_are_read_like_serde_json() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let digits = |n: u64, next: &mut dyn FnMut() -> u64| -> String {
            (0..n)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect()
        };
        let mut taken = 0;
        for k in 0..100_000u64 {
            let mut text = String::new();
            if next() % 4 == 0 {
                text.push('-');
            }
            let int = digits(1 + next() % 45, &mut next);
            // Leading zeros now and then (invalid but for "0").
            text.push_str(if k % 50 == 0 {
                &int
            } else {
                int.trim_start_matches('0')
            });
            if text.is_empty() || text == "-" {
                text.push('0');
            }
            if next() % 2 == 0 {
                text.push('.');
                text.push_str(&digits(next() % 45, &mut next));
            }
            if next() % 2 == 0 {
                text.push(['e', 'E'][(next() % 2) as usize]);
                text.push_str(["", "+", "-"][(next() % 3) as usize]);
                text.push_str(&digits(next() % 13, &mut next));
            }
            let want: Result<f64, _> = serde_json::from_str(&text);
            let mut r = super::Reader::new(text.as_bytes(), 0, super::SPLIT_FROM);
            let got = r.number().filter(|_| r.i == text.len());
            match (got, &want) {
                (Some(n), Ok(w)) => {
                    assert_eq!(n.f64().to_bits(), w.to_bits(), "{text}");
                    taken += 1;
                }
                (None, Err(_)) => {}
                _ => panic!("{text}: fast {:?}, serde {want:?}", got.map(|n| n.f64())),
            }
        }
        assert!(taken > 30_000, "{taken}");
        for text in [
            "18446744073709551616",
            "123456789012345678901234567890",
            "1.00000000000000000000000000001",
            "184467440737095516150.5e-3",
            "1e-9999999999",
            "0e9999999999",
            "-0e99999999999",
        ] {
            let doc = fill("@SCORE@", text);
            assert!(differ(doc.as_bytes()), "{doc}");
        }
    }

    /// Floats bit-identical to serde_json's, on numbers of every shape.
    #[test]
    fn floats_match_serde_json_bit_for_bit() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut checked = 0;
        for k in 0..200_000 {
            let digits = 1 + next() % 20;
            let mut text = String::new();
            if next() % 4 == 0 {
                text.push('-');
            }
            let mantissa: String = (0..digits)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let m = mantissa.trim_start_matches('0');
            let m = if m.is_empty() { "0" } else { m };
            let point = (next() % (m.len() as u64 + 1)) as usize;
            if point == 0 || k % 3 == 0 {
                text.push_str(m);
            } else {
                text.push_str(&m[..point]);
                text.push('.');
                text.push_str(&m[point..]);
                if point == m.len() {
                    text.push('0');
                }
            }
            if next() % 3 == 0 {
                text.push_str(&format!("e{}", (next() % 660) as i64 - 330));
            }
            let want: Result<f64, _> = serde_json::from_str(&text);
            let mut r = super::Reader::new(text.as_bytes(), 0, super::SPLIT_FROM);
            if let Some(n) = r.number() {
                assert_eq!(r.i, text.len(), "{text}");
                let got = n.f64();
                let want = want.unwrap_or_else(|e| panic!("{text}: fast {got}, serde {e}"));
                assert_eq!(got.to_bits(), want.to_bits(), "{text}");
                checked += 1;
            }
        }
        assert!(checked > 150_000, "{checked}");
    }

    fn json_str(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    /// A number as some writer might put it.
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:?}")),
            (-1e6f64..1e6).prop_map(|v| format!("{v}")),
            (-1e6f64..1e6, 0usize..8).prop_map(|(v, d)| format!("{v:.d$}")),
            (0u32..5000).prop_map(|v| v.to_string()),
            (-1e300f64..1e300).prop_map(|v| format!("{v:e}")),
            any::<i64>().prop_map(|v| v.to_string()),
            "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
            Just("-0".to_string()),
        ]
    }

    /// Text with the characters that need care: quotes, backslashes,
    /// controls, non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9_./ \"\\\\\n\t\u{1}\u{e9}\u{6f22}\u{1f600}]{0,12}"
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u32..6).prop_map(|v| v.to_string()),
            1 => "[a-c]".prop_map(|s| json_str(&s)),
            1 => Just("1.0".to_string()),
        ]
    }

    /// Any JSON value, for extra fields.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            number_text(),
            text().prop_map(|s| json_str(&s)),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec((text(), inner), 0..4).prop_map(|v| {
                    let fields: Vec<String> = v
                        .iter()
                        .map(|(k, v)| format!("{}: {v}", json_str(k)))
                        .collect();
                    format!("{{{}}}", fields.join(", "))
                }),
            ]
        })
    }

    /// An object from fields, shuffled by `order`, sometimes with an extra field.
    fn object(mut fields: Vec<String>, order: &[usize], extra: Option<String>) -> String {
        if let Some(e) = extra {
            fields.push(e);
        }
        for (k, &o) in order.iter().enumerate() {
            let len = fields.len();
            if len > 1 {
                fields.swap(k % len, o % len);
            }
        }
        format!("{{{}}}", fields.join(", "))
    }

    prop_compose! {
        fn image()(id in id(), name in text(), w in prop::option::of(number_text()),
                   extra in prop::option::of((text(), value())), order in prop::collection::vec(0usize..8, 0..4))
                   -> String {
            let mut f = vec![format!("\"id\": {id}"), format!("\"file_name\": {}", json_str(&name))];
            if let Some(w) = w {
                f.push(format!("\"width\": {w}"));
            }
            object(f, &order, extra.map(|(k, v)| format!("{}: {v}", json_str(&k))))
        }
    }

    prop_compose! {
        fn annotation()(id in prop::option::of(id()), image in id(), cat in id(),
                        bbox in prop::option::of(prop::collection::vec(number_text(), 3..6)),
                        seg in prop::option::of(prop::collection::vec(prop::collection::vec(number_text(), 0..7), 0..3)),
                        crowd in prop::option::of(prop_oneof![Just("0"), Just("1"), Just("true"), Just("null")]),
                        score in prop::option::of(number_text()),
                        attrs in prop::option::of(prop::collection::vec((text(), value()), 0..3)),
                        extra in prop::option::of((text(), value())),
                        order in prop::collection::vec(0usize..10, 0..5)) -> String {
            let mut f = vec![format!("\"image_id\": {image}"), format!("\"category_id\": {cat}")];
            if let Some(id) = id {
                f.push(format!("\"id\": {id}"));
            }
            if let Some(b) = bbox {
                f.push(format!("\"bbox\": [{}]", b.join(", ")));
            }
            if let Some(s) = seg {
                let rings: Vec<String> = s.iter().map(|r| format!("[{}]", r.join(", "))).collect();
                f.push(format!("\"segmentation\": [{}]", rings.join(", ")));
            }
            if let Some(c) = crowd {
                f.push(format!("\"iscrowd\": {c}"));
            }
            if let Some(s) = score {
                f.push(format!("\"score\": {s}"));
            }
            if let Some(a) = attrs {
                let kv: Vec<String> = a.iter().map(|(k, v)| format!("{}: {v}", json_str(k))).collect();
                f.push(format!("\"attributes\": {{{}}}", kv.join(", ")));
            }
            object(f, &order, extra.map(|(k, v)| format!("{}: {v}", json_str(&k))))
        }
    }

    prop_compose! {
        fn document()(images in prop::collection::vec(image(), 0..5),
                      anns in prop::collection::vec(annotation(), 0..8),
                      cats in prop::collection::vec((id(), text()), 0..5),
                      top in prop::option::of(value()),
                      order in 0usize..6) -> String {
            let cats: Vec<String> = cats.iter()
                .map(|(id, name)| format!("{{\"id\": {id}, \"name\": {}}}", json_str(name)))
                .collect();
            let mut lists = vec![
                format!("\"images\": [{}]", images.join(", ")),
                format!("\"annotations\": [{}]", anns.join(",\n ")),
                format!("\"categories\": [{}]", cats.join(", ")),
            ];
            lists.rotate_left(order % 3);
            if order >= 3 {
                lists.swap(0, 1);
            }
            if let Some(v) = top {
                lists.insert(order % 4, format!("\"info\": {v}"));
            }
            format!("{{{}}}", lists.join(",\n"))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_documents_parse_alike(doc in document(), cut in any::<prop::sample::Index>()) {
            differ(doc.as_bytes());
            let bytes = doc.as_bytes();
            differ(&bytes[..cut.index(bytes.len() + 1)]);
        }

        #[test]
        fn written_frames_parse_alike(n in 0usize..20, seed in any::<u64>()) {
            // Frames as dsv writes them: all taken by the fast path.
            let mut frames = Vec::new();
            let mut x = seed | 1;
            for k in 0..n {
                let mut f = FrameLabels::new(format!("f{k}.jpg"), Units::Pixels);
                f.width = Some(640);
                f.height = Some(480);
                for j in 0..(k % 4) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let v = (x % 100_000) as f64 / 7.0;
                    let mut o = Object::new(format!("c{}", j % 3), Some(BBox { x: v, y: v / 3.0, w: 1.5, h: v.sqrt() }));
                    o.attributes.insert("score".into(), AttrValue::Float(v / 1e5));
                    f.objects.push(o);
                }
                frames.push(f);
            }
            let bytes = write(&frames).unwrap();
            prop_assert!(differ(&bytes));
        }
    }

    #[test]
    fn the_class_list_reads_categories_as_serde_json_did() {
        let cats = |list: &str| format!(r#"{{"images": [], "categories": {list}, "x": [{{}}]}}"#);
        let mut docs: Vec<String> = [
            r#"[{"id": 2, "name": "b"}, {"id": 1, "name": "a", "supercategory": {"x": [1]}}]"#,
            "[]",
            "null",
            "{}",
            r#"[{"id": 1.0, "name": "a"}]"#,
            r#"[{"id": -0, "name": "a"}]"#,
            r#"[{"id": -5, "name": "a"}]"#,
            r#"[{"id": 1e2, "name": "a"}]"#,
            r#"[{"id": 9223372036854775807, "name": "a"}]"#,
            r#"[{"id": 9223372036854775808, "name": "a"}]"#,
            r#"[{"id": -9223372036854775808, "name": "a"}]"#,
            r#"[{"id": -9223372036854775809, "name": "a"}]"#,
            r#"[{"id": 123456789012345678901234, "name": "a"}]"#,
            r#"[{"id": "1", "name": "a"}]"#,
            r#"[{"id": 1, "name": 2}]"#,
            r#"[{"id": 1}]"#,
            r#"[{"name": "a"}]"#,
            r#"[{"id": 1, "id": 2, "name": "a"}]"#,
            r#"[{"id": 1, "name": "a", "name": "b"}]"#,
            r#"[{"id": 1, "name": "a\u00e9\n"}]"#,
            r#"[{"i\u0064": 1, "name": "a"}]"#,
            r#"[{"id": 1, "name": null}]"#,
            r#"[{"id": 1, "name": "a"},]"#,
            r#"[{"id": 1, "name": "a"}"#,
        ]
        .iter()
        .map(|l| cats(l))
        .collect();
        docs.extend(
            [
                r#"{"categories": [{"id": 1, "name": "a"}], "categories": []}"#,
                r#"{"categories": [{"id": 1, "name": "a"}]} x"#,
                r#"{"images": [{"id": 1, "file_name": "\q"}], "categories": []}"#,
                "{}",
                "{",
                " { } ",
            ]
            .map(String::from),
        );
        for doc in &docs {
            same_categories(doc.as_bytes());
        }
        assert_eq!(
            super::category_list(docs[0].as_bytes()),
            Some(vec![(2, "b".into()), (1, "a".into())])
        );
        // serde_json read a struct from a list too, by position; the parser
        // refuses such a category, and so does the class list now.
        assert_eq!(super::category_list(cats(r#"[[1, "a"]]"#).as_bytes()), None);
    }

    #[test]
    fn errors_are_the_reading_into_lists() {
        // The streaming read never reports: a document it stops on is read
        // into lists, whose error (and position) is what `parse` returns.
        let doc = fill("@BBOX@", "[1, 2, 3]");
        let err: LabelError = super::super::parse(doc.as_bytes()).unwrap_err();
        assert_eq!(
            err.message,
            "not valid COCO: bbox has 3 numbers; COCO boxes are [x, y, width, height]"
        );
        assert_eq!(Err(err), parse_lists(doc.as_bytes()));
    }

    /// The fast path with the annotations list split at `at` (any byte).
    fn split_at(bytes: &[u8], at: usize) -> Option<Vec<FrameLabels>> {
        let mut r = super::Reader::new(bytes, 0, 1);
        r.split_at = Some(at);
        super::read::<super::Whole>(r).map(|(frames, _)| frames)
    }

    /// Annotations where a scan for `}`, `,` and `{` finds places that are
    /// not element boundaries: inside strings, nested objects and arrays of
    /// objects, RLE masks; runs of one frame across any split, and frames
    /// that come back later.
    const TRICKY: [&str; 9] = [
        r#"{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "segmentation": [[1, 2, 3, 4, 5, 6]]}"#,
        r#"{"id": 2, "image_id": 1, "category_id": 2, "attributes": {"note": "}, {\"id\": 9, \"image_id\": 2, \"category_id\": 1}, {"}}"#,
        r#"{"id": 3, "image_id": 2, "category_id": 1, "attributes": {"parts": [{"a": 1}, {"b": [2, {"c": 3}]}], "x": {}}, "area": [{}, {"d": "},{"}]}"#,
        r#"{"id": 4, "image_id": 2, "category_id": 2, "segmentation": {"counts": [1, 2], "size": [3, 4]}, "iscrowd": 1}"#,
        r#"{"id": "s", "image_id": 1, "category_id": 1, "segmentation": [1, 2, 3, 4], "score": 0.25}"#,
        r#"{ "image_id" : 3 , "category_id" : 2 }"#,
        r#"{"id": 7, "image_id": 3, "category_id": 1, "extra": "\u007d,{"}"#,
        r#"{"id": 8, "image_id": 3, "category_id": 2, "bbox": [0.5, 1e2, -3, 4.25]}"#,
        r#"{"id": 9, "image_id": 2, "category_id": 1, "attributes": {"occluded": false, "track": [{"id": 1}, {"id": 2}]}}"#,
    ];

    /// A document with the given annotations; categories before or after them.
    fn tricky_doc(anns: &[&str], categories_last: bool) -> String {
        let images = r#""images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg", "w": {"x": "},{"}}, {"id": 3, "file_name": "c.jpg"}]"#;
        let cats = r#""categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "bus"}]"#;
        let anns = format!("\"annotations\": [{}]", anns.join(",\n  "));
        if categories_last {
            format!("{{{images},\n {anns},\n {cats}}}")
        } else {
            format!("{{{cats}, {images},\n {anns}, \"info\": {{\"a\": [{{}}, {{}}]}}}}")
        }
    }

    thread_local! {
        /// Splits whose second half was used, on this thread.
        static ACCEPTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    pub(super) fn accepted() {
        ACCEPTED.with(|a| a.set(a.get() + 1));
    }

    /// Split at every byte of the document: the result is always the
    /// sequential one, and splits at element boundaries are taken.
    fn split_everywhere(doc: &str) -> usize {
        let bytes = doc.as_bytes();
        let want = format!("{:?}", super::parse_split_from(bytes, usize::MAX));
        let before = ACCEPTED.with(std::cell::Cell::get);
        for at in 0..=bytes.len() + 1 {
            assert_eq!(
                format!("{:?}", split_at(bytes, at)),
                want,
                "split at {at}: {}",
                String::from_utf8_lossy(&bytes[..at.min(bytes.len())])
            );
        }
        ACCEPTED.with(std::cell::Cell::get) - before
    }

    #[test]
    fn split_at_every_byte() {
        golden::start();
        for categories_last in [false, true] {
            let doc = tricky_doc(&TRICKY, categories_last);
            assert!(differ(doc.as_bytes()), "{doc}");
            // One accepted split per element boundary but the first (of
            // the annotations, and of the three images).
            assert_eq!(split_everywhere(&doc), TRICKY.len() - 1 + 2, "{doc}");
            // Frames in a different order: runs of one frame across splits.
            let mut anns = TRICKY.to_vec();
            anns.reverse();
            anns.extend_from_slice(&TRICKY);
            let doc = tricky_doc(&anns, categories_last);
            assert!(differ(doc.as_bytes()));
            assert_eq!(split_everywhere(&doc), anns.len() - 1 + 2);
        }
        // Failures in either half: the split gives the sequential `None`.
        for bad in [
            r#"{"id": 5, "image_id": 4, "category_id": 1}"#,
            r#"{"id": 5, "image_id": 1, "category_id": 3}"#,
            r#"{"id": 5, "image_id": 1}"#,
            r#"{"id": 5, "image_id": 1, "category_id": 1, "id": 6}"#,
            r#"{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}"#,
            r#"{"id": 5, "image_id": 1, "category_id": 1, "x": "\q"}"#,
            r#"{"id": 5, "image_id": 1, "category_id": 1}}"#,
            r#"{"id": 5, "image_id": 1, "category_id": 1},"#,
            "[]",
            "5",
        ] {
            for place in [0, 4, TRICKY.len()] {
                let mut anns = TRICKY.to_vec();
                anns.insert(place, bad);
                for categories_last in [false, true] {
                    let doc = tricky_doc(&anns, categories_last);
                    assert!(!differ(doc.as_bytes()), "{doc}");
                    split_everywhere(&doc);
                }
            }
        }
        // Unknown categories named only at the end.
        let mut anns = TRICKY.to_vec();
        anns.push(r#"{"id": 5, "image_id": 1, "category_id": 7}"#);
        let doc = tricky_doc(&anns, true);
        assert!(!differ(doc.as_bytes()));
        split_everywhere(&doc);
        golden::check("split_at_every_byte");
    }

    /// A file above the split threshold, split by `parse` itself: the same
    /// frames as the serde parser, with the categories before and after
    /// the annotations, and cut short.
    #[test]
    fn large_documents_split_alike() {
        golden::start();
        let mut frames = Vec::new();
        for k in 0..10_000 {
            let mut f = FrameLabels::new(format!("f{k}.jpg"), Units::Pixels);
            f.width = Some(640);
            f.attributes
                .insert("weather".into(), AttrValue::Str("sun".into()));
            for j in 0..(k % 5) {
                let v = (k * 7 + j) as f64 / 4.0;
                let mut o = Object::new(
                    format!("c{}", j % 4),
                    Some(BBox {
                        x: v,
                        y: 1.0,
                        w: 2.5,
                        h: v,
                    }),
                );
                o.id = Some(format!("{}", k * 10 + j));
                if j == 2 {
                    o.attributes
                        .insert("note".into(), AttrValue::Str("}, {\"id\": 1}".into()));
                }
                o.geometry = Some(Geometry::Polygon {
                    rings: vec![vec![[v, 1.0], [2.0, v], [3.0, 4.0]]],
                });
                f.objects.push(o);
            }
            frames.push(f);
        }
        let bytes = write(&frames).unwrap();
        assert!(bytes.len() > super::SPLIT_FROM, "{}", bytes.len());
        let before = ACCEPTED.with(std::cell::Cell::get);
        assert_eq!(super::super::parse(&bytes).unwrap(), frames);
        // The annotations; the images are too short to split.
        assert_eq!(ACCEPTED.with(std::cell::Cell::get), before + 1);
        assert!(differ(&bytes));
        // pycocotools' order: categories last.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let last = format!(
            "{{\"images\": {}, \"annotations\": {}, \"categories\": {}}}",
            v["images"], v["annotations"], v["categories"]
        );
        assert!(differ(last.as_bytes()));
        assert_eq!(super::super::parse(last.as_bytes()).unwrap(), frames);
        for cut in [bytes.len() / 2, bytes.len() * 3 / 4, bytes.len() - 2] {
            assert!(!differ(&bytes[..cut]));
        }
        golden::check("large_documents_split_alike");
    }
}
