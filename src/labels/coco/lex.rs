//! The tokenizer of COCO JSON: whitespace, punctuation, strings (decoded as
//! serde_json decodes them), literals, and skipping whole values with
//! serde_json's checks. The fast reader (`fast.rs`) reads COCO's fields with
//! it, the layout-preserving writer (`layout.rs`) splits and minifies the
//! original file with it, and error positions are found with it
//! (`super::locate`), so what is a string, a value or its end is decided in
//! one place.
//!
//! Every method returns `None` for what it does not accept: the token
//! serde_json would reject, or a value nested deeper than `max_depth`.

use std::borrow::Cow;

/// Bytes that end a plain run inside a string: the quote, a backslash,
/// control characters (invalid in JSON strings) and non-ASCII bytes (whose
/// UTF-8 must be checked).
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c < 0x20 || c == b'"' as usize || c == b'\\' as usize || c >= 0x80;
        c += 1;
    }
    t
};

/// The containers that may enclose a container that serde_json reads into
/// a typed value or a `Value` (its recursion limit of 128 counts the
/// container itself): deeper is "recursion limit exceeded". Values it
/// ignores (`IgnoredAny`) have no limit, nor has [`Lexer::skip_any`].
pub(super) const SERDE_DEPTH: usize = 127;

/// No nesting limit (skipping is iterative).
pub(super) const NO_LIMIT: usize = usize::MAX;

/// The containers open while skipping, innermost last: whether each is an
/// object. The first 64 in bits, deeper ones in a list.
#[derive(Default)]
struct Open {
    bits: u64,
    len: usize,
    more: Vec<bool>,
}

impl Open {
    #[inline]
    fn push(&mut self, object: bool) {
        if self.len < 64 {
            self.bits = (self.bits & !(1 << self.len)) | (u64::from(object) << self.len);
        } else {
            self.more.push(object);
        }
        self.len += 1;
    }

    #[inline]
    fn last(&self) -> Option<bool> {
        let k = self.len.checked_sub(1)?;
        if k < 64 {
            Some(self.bits >> k & 1 == 1)
        } else {
            self.more.last().copied()
        }
    }

    #[inline]
    fn pop(&mut self) {
        if self.len > 64 {
            self.more.pop();
        }
        self.len = self.len.saturating_sub(1);
    }
}

/// A position in JSON bytes.
pub(super) struct Lexer<'a> {
    /// The bytes.
    pub(super) b: &'a [u8],
    /// The position: the next byte to read.
    pub(super) i: usize,
    /// Nesting allowed inside a value [`Lexer::skip`] skips.
    pub(super) max_depth: usize,
    /// Where a container was refused for its nesting, if one was.
    pub(super) too_deep: Option<usize>,
    /// Where a value [`Lexer::skip_any`] refused starts, if one was.
    pub(super) ignored: Option<usize>,
    /// Whether skipped strings are taken as serde_json's `IgnoredAny` takes
    /// them: their bytes need not be UTF-8.
    lenient: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer at `i` of `b`.
    pub(super) fn new(b: &'a [u8], i: usize, max_depth: usize) -> Lexer<'a> {
        Lexer {
            b,
            i,
            max_depth,
            too_deep: None,
            ignored: None,
            lenient: false,
        }
    }

    /// The byte at the position, if any.
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace (serde_json's four characters).
    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Consumes `c`, which must be the next byte.
    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// After a value inside an object or array: whitespace, then `,` (true)
    /// or the closing `close` (false).
    #[inline]
    pub(super) fn next_or_end(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        if c == b',' {
            self.ws();
            Some(true)
        } else if c == close {
            Some(false)
        } else {
            None
        }
    }

    /// After an opening `[` or `{` (consumed): whitespace, and whether the
    /// container is empty (its closing `close` is then consumed too).
    #[inline]
    pub(super) fn empty(&mut self, close: u8) -> Option<bool> {
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            Some(true)
        } else {
            Some(false)
        }
    }

    /// `null` (consumed) or not (nothing consumed).
    #[inline]
    pub(super) fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    /// Consumes `word` (`true`, `null`, ...), which must come next.
    #[inline]
    pub(super) fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        if self.b.get(self.i..end)? == word {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// A string at its opening quote, as bytes: borrowed when it has no
    /// escapes; always valid UTF-8.
    #[inline]
    pub(super) fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut ascii = true;
        loop {
            let c = *self.b.get(self.i)?;
            if !STOP[c as usize] {
                self.i += 1;
                continue;
            }
            match c {
                b'"' => break,
                b'\\' => return self.escaped(start),
                0x80.. => {
                    ascii = false;
                    self.i += 1;
                }
                _ => return None,
            }
        }
        let raw = self.b.get(start..self.i)?;
        self.i += 1;
        if !ascii {
            std::str::from_utf8(raw).ok()?;
        }
        Some(Cow::Borrowed(raw))
    }

    /// The rest of a string with escapes, decoded as serde_json decodes them
    /// into a `str`; `None` for what it would reject (and for lone
    /// surrogates, which it rejects too).
    #[cold]
    pub(super) fn escaped(&mut self, start: usize) -> Option<Cow<'a, [u8]>> {
        let mut out = self.b.get(start..self.i)?.to_vec();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    let plain = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    out.push(plain);
                }
                0..0x20 => return None,
                _ => out.push(c),
            }
        }
        std::str::from_utf8(&out).ok()?;
        Some(Cow::Owned(out))
    }

    /// The character of a `\u` escape (after the `u`); a surrogate pair
    /// must be complete.
    #[inline]
    pub(super) fn unicode_escape(&mut self) -> Option<char> {
        let n = self.hex4()?;
        let code = match n {
            0xD800..=0xDBFF => {
                self.literal(b"\\u")?;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                (((n - 0xD800) << 10) | (low - 0xDC00)) + 0x1_0000
            }
            0xDC00..=0xDFFF => return None,
            _ => n,
        };
        char::from_u32(code)
    }

    /// Four hex digits (of a `\u` escape) as a number.
    #[inline]
    pub(super) fn hex4(&mut self) -> Option<u32> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = char::from(*self.b.get(self.i)?).to_digit(16)?;
            n = n * 16 + d;
            self.i += 1;
        }
        Some(n)
    }

    /// A string as text.
    #[inline]
    pub(super) fn text(&mut self) -> Option<Cow<'a, str>> {
        Some(match self.string()? {
            Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).ok()?),
            Cow::Owned(v) => Cow::Owned(String::from_utf8(v).ok()?),
        })
    }

    /// An object key and its colon; the reader is left at the value.
    #[inline]
    pub(super) fn key(&mut self) -> Option<Cow<'a, [u8]>> {
        let k = self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(k)
    }

    /// Skips a number of any length, checking only its syntax (serde_json's
    /// `ignore_number`).
    #[inline]
    pub(super) fn skip_number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    /// Skips ASCII digits.
    #[inline]
    pub(super) fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// Skips one or more ASCII digits.
    #[inline]
    pub(super) fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// Skips any JSON value, checking it as strictly as serde_json does
    /// (or more: escapes are checked). `depth` containers enclose it; a
    /// container that would be the `max_depth + 1`-th is refused (its offset
    /// kept in [`Lexer::too_deep`]). Iterative: no nesting exhausts the stack.
    #[inline]
    pub(super) fn skip(&mut self, depth: usize) -> Option<()> {
        self.skip_within(depth, self.max_depth)
    }

    /// Skips any JSON value at any nesting: what serde_json's `IgnoredAny`
    /// takes (it has no nesting limit).
    #[inline]
    pub(super) fn skip_any(&mut self) -> Option<()> {
        let start = self.i;
        self.lenient = true;
        let done = self.skip_within(0, usize::MAX);
        self.lenient = false;
        if done.is_none() {
            self.ignored.get_or_insert(start);
        }
        done
    }

    /// [`Lexer::skip`] with the limit given.
    fn skip_within(&mut self, depth: usize, limit: usize) -> Option<()> {
        let mut open = Open::default();
        loop {
            match self.peek()? {
                b'"' => self.skip_string()?,
                c @ (b'{' | b'[') => {
                    if depth.saturating_add(open.len) >= limit {
                        self.too_deep.get_or_insert(self.i);
                        return None;
                    }
                    self.i += 1;
                    let object = c == b'{';
                    if !self.empty(if object { b'}' } else { b']' })? {
                        open.push(object);
                        if object {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => self.skip_number()?,
            }
            // After a value: close what ends here, or go to the next element.
            loop {
                let Some(object) = open.last() else {
                    return Some(());
                };
                if self.next_or_end(if object { b'}' } else { b']' })? {
                    if object {
                        self.member_key()?;
                    }
                    break;
                }
                open.pop();
            }
        }
    }

    /// An object key being skipped, and its colon.
    #[inline]
    fn member_key(&mut self) -> Option<()> {
        self.skip_string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    /// Skips a string, checking escapes as serde_json's `ignore_str` does and
    /// that its text is UTF-8.
    #[inline]
    pub(super) fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let start = self.i;
        let mut ascii = true;
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            if !STOP[c as usize] {
                continue;
            }
            match c {
                b'"' => break,
                b'\\' => match *self.b.get(self.i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                    b'u' => {
                        self.i += 1;
                        self.hex4()?;
                    }
                    _ => return None,
                },
                0x80.. => ascii = false,
                _ => return None,
            }
        }
        if !ascii && !self.lenient {
            std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        }
        Some(())
    }
}

/// How serde_json classifies an error (what `json_error` words it by).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// The input ends inside a value.
    Eof,
    /// Not JSON.
    Syntax,
    /// JSON, but not what COCO holds there.
    Data,
}

/// An error of the COCO reader: serde_json's wording, at its reader
/// position `index` (see [`position`]).
#[derive(Debug)]
pub(super) struct JsonError {
    pub(super) index: usize,
    pub(super) kind: Kind,
    pub(super) message: Cow<'static, str>,
}

impl JsonError {
    /// An error at a byte serde_json peeked at (not consumed).
    pub(super) fn peek(b: &[u8], at: usize, kind: Kind, message: &'static str) -> JsonError {
        JsonError {
            index: at.saturating_add(1).min(b.len()),
            kind,
            message: Cow::Borrowed(message),
        }
    }

    /// An error after the bytes up to `index` were consumed.
    pub(super) fn at(index: usize, kind: Kind, message: impl Into<Cow<'static, str>>) -> JsonError {
        JsonError {
            index,
            kind,
            message: message.into(),
        }
    }
}

/// The bytes of a string's text (between its quotes, escapes checked)
/// with escapes decoded and other bytes as they are: what serde_json checks
/// as UTF-8.
fn decode_lossless(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut l = Lexer::new(text, 0, 0);
    while let Some(c) = l.peek() {
        l.i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(e) = l.peek() else { break };
        l.i += 1;
        let plain = match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                if let Some(ch) = l.unicode_escape() {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                continue;
            }
            other => other,
        };
        out.push(plain);
    }
    out
}

/// serde_json's position of a reader index: the 1-based line, and the
/// column of the last byte read on it (0 right after a newline).
pub(super) fn position(b: &[u8], i: usize) -> (usize, usize) {
    let head = b.get(..i.min(b.len())).unwrap_or(b);
    let start = memchr::memrchr(b'\n', head).map_or(0, |p| p + 1);
    let line = 1 + memchr::memchr_iter(b'\n', head.get(..start).unwrap_or_default()).count();
    (line, head.len() - start)
}

/// The first error that makes `b` not a JSON document, found and worded
/// as serde_json's typed parse does; `None` for a JSON document (any
/// nesting: the COCO reader checks nesting where serde_json limits it).
pub(super) fn first_syntax_error(b: &[u8], strict_from: usize) -> Option<JsonError> {
    check(b, 0, strict_from, false)
}

/// The error of the value at `start` that serde_json's `IgnoredAny`
/// reports (its wording differs from the typed parse's in places, and it
/// takes strings that are not UTF-8).
pub(super) fn ignored_value_error(b: &[u8], start: usize) -> Option<JsonError> {
    check(b, start, usize::MAX, true)
}

/// The first error from `start` on (of one value when `ignore`, else of the
/// document), with typed-parse checks of strings that end at or after
/// `strict_from` (the others were skipped by the reader as ignored values).
fn check(b: &[u8], start: usize, strict_from: usize, ignore: bool) -> Option<JsonError> {
    let mut l = Lexer::new(b, start, NO_LIMIT);
    let mut open = Open::default();
    let eof = |l: &Lexer<'_>, what: &'static str| JsonError::peek(b, l.i, Kind::Eof, what);
    let bad = |l: &Lexer<'_>, what: &'static str| JsonError::peek(b, l.i, Kind::Syntax, what);
    loop {
        // A value.
        l.ws();
        match l.peek() {
            None => return Some(eof(&l, "EOF while parsing a value")),
            Some(c @ (b'[' | b'{')) => {
                l.i += 1;
                let object = c == b'{';
                l.ws();
                match l.peek() {
                    None if object => return Some(eof(&l, "EOF while parsing an object")),
                    None => return Some(eof(&l, "EOF while parsing a list")),
                    Some(b'}') if object => l.i += 1,
                    Some(b']') if !object => l.i += 1,
                    Some(b'"') if object => {
                        open.push(true);
                        if let Some(e) = l.member(b, strict_from) {
                            return Some(e);
                        }
                        continue;
                    }
                    Some(_) if object => return Some(bad(&l, "key must be a string")),
                    Some(_) => {
                        open.push(false);
                        continue;
                    }
                }
            }
            Some(b'"') => {
                if let Some(e) = l.check_string(b, strict_from) {
                    return Some(e);
                }
            }
            Some(b't') => {
                if let Some(e) = l.check_ident(b"true") {
                    return Some(e);
                }
            }
            Some(b'f') => {
                if let Some(e) = l.check_ident(b"false") {
                    return Some(e);
                }
            }
            Some(b'n') => {
                if let Some(e) = l.check_ident(b"null") {
                    return Some(e);
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                if let Some(e) = l.check_number(b, ignore) {
                    return Some(e);
                }
            }
            Some(_) => return Some(bad(&l, "expected value")),
        }
        // After a value.
        loop {
            l.ws();
            let Some(object) = open.last() else {
                return (!ignore && l.i < b.len()).then(|| bad(&l, "trailing characters"));
            };
            let close = if object { b'}' } else { b']' };
            match l.peek() {
                None if object => return Some(eof(&l, "EOF while parsing an object")),
                None => return Some(eof(&l, "EOF while parsing a list")),
                Some(b',') => {
                    l.i += 1;
                    l.ws();
                    match l.peek() {
                        None if ignore && object => {
                            return Some(eof(&l, "EOF while parsing an object"));
                        }
                        None => return Some(eof(&l, "EOF while parsing a value")),
                        Some(c) if c == close && ignore && !object => {
                            return Some(bad(&l, "expected value"));
                        }
                        Some(c) if c == close && !ignore => {
                            return Some(bad(&l, "trailing comma"));
                        }
                        Some(b'"') if object => {
                            if let Some(e) = l.member(b, strict_from) {
                                return Some(e);
                            }
                        }
                        Some(_) if object => return Some(bad(&l, "key must be a string")),
                        Some(_) => {}
                    }
                    break;
                }
                Some(c) if c == close => {
                    l.i += 1;
                    open.pop();
                }
                Some(_) if object => return Some(bad(&l, "expected `,` or `}`")),
                Some(_) => return Some(bad(&l, "expected `,` or `]`")),
            }
        }
    }
}

impl Lexer<'_> {
    /// A key (at its quote) and its colon, checked as serde_json does.
    fn member(&mut self, b: &[u8], strict_from: usize) -> Option<JsonError> {
        if let Some(e) = self.check_string(b, strict_from) {
            return Some(e);
        }
        self.ws();
        match self.peek() {
            Some(b':') => {
                self.i += 1;
                None
            }
            Some(_) => Some(JsonError::peek(b, self.i, Kind::Syntax, "expected `:`")),
            None => Some(JsonError::peek(
                b,
                self.i,
                Kind::Eof,
                "EOF while parsing an object",
            )),
        }
    }

    /// A number, checked as serde_json's `parse_integer` (typed) or
    /// `ignore_integer` (`ignore`) does: they word an end of input apart.
    fn check_number(&mut self, b: &[u8], ignore: bool) -> Option<JsonError> {
        let invalid = |i| JsonError::at(i, Kind::Syntax, "invalid number");
        let end = |i| {
            if ignore {
                invalid(i)
            } else {
                JsonError::at(i, Kind::Eof, "EOF while parsing a value")
            }
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            None => return Some(end(self.i)),
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Some(JsonError::peek(b, self.i, Kind::Syntax, "invalid number"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            Some(_) => return Some(invalid(self.i + 1)),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            let from = self.i;
            self.digits();
            if self.i == from {
                return Some(match self.peek() {
                    None if !ignore => {
                        JsonError::peek(b, self.i, Kind::Eof, "EOF while parsing a value")
                    }
                    _ => JsonError::peek(b, self.i, Kind::Syntax, "invalid number"),
                });
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            match self.peek() {
                None => return Some(end(self.i)),
                Some(b'0'..=b'9') => self.digits(),
                Some(_) => return Some(invalid(self.i + 1)),
            }
        }
        None
    }

    /// `word` (`true`, ...) at its first byte, as serde_json's `parse_ident`.
    fn check_ident(&mut self, word: &[u8]) -> Option<JsonError> {
        for &want in word {
            match self.peek() {
                None => {
                    return Some(JsonError::at(
                        self.i,
                        Kind::Eof,
                        "EOF while parsing a value",
                    ));
                }
                Some(c) => {
                    self.i += 1;
                    if c != want {
                        return Some(JsonError::at(self.i, Kind::Syntax, "expected ident"));
                    }
                }
            }
        }
        None
    }

    /// A string at its quote, checked as serde_json's `parse_str` does.
    fn check_string(&mut self, b: &[u8], strict_from: usize) -> Option<JsonError> {
        self.i += 1;
        let start = self.i;
        // Whether the string is read as text (checked as UTF-8, surrogates
        // paired) rather than skipped: known only at its end.
        let mut surrogate: Option<JsonError> = None;
        let eof = |i| JsonError::at(i, Kind::Eof, "EOF while parsing a string");
        let later = 'scan: loop {
            let Some(&c) = b.get(self.i) else {
                break 'scan Some(eof(b.len()));
            };
            self.i += 1;
            match c {
                b'"' => break None,
                b'\\' => {
                    let Some(&e) = b.get(self.i) else {
                        break 'scan Some(eof(b.len()));
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => match self.check_unicode_escape(b) {
                            Some(err)
                                if err.kind == Kind::Eof || err.message == "invalid escape" =>
                            {
                                break 'scan Some(err);
                            }
                            Some(err) => {
                                surrogate.get_or_insert(err);
                            }
                            None => {}
                        },
                        _ => {
                            break 'scan Some(JsonError::at(
                                self.i,
                                Kind::Syntax,
                                "invalid escape",
                            ));
                        }
                    }
                }
                0..0x20 => {
                    // The typed parse reports it past the character,
                    // `IgnoredAny` at it.
                    let at = if strict_from == usize::MAX {
                        self.i - 1
                    } else {
                        self.i
                    };
                    break 'scan Some(JsonError::at(
                        at,
                        Kind::Syntax,
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                _ => {}
            }
        };
        if let Some(e) = later {
            // A surrogate error before it comes first in a string read as text.
            return Some(match surrogate {
                Some(s) if self.i >= strict_from => s,
                _ => e,
            });
        }
        if self.i < strict_from {
            return None;
        }
        if surrogate.is_some() {
            return surrogate;
        }
        let text = b.get(start..self.i - 1).unwrap_or_default();
        if std::str::from_utf8(text).is_err() {
            // serde_json counts back from the closing quote by the invalid
            // tail of the decoded text (so approximately after escapes).
            let decoded = decode_lossless(text);
            let tail = match std::str::from_utf8(&decoded) {
                Err(e) => decoded.len() - e.valid_up_to(),
                Ok(_) => 0,
            };
            return Some(JsonError::at(
                self.i.saturating_sub(tail),
                Kind::Syntax,
                "invalid unicode code point",
            ));
        }
        None
    }

    /// A `\u` escape after the `u`, as serde_json checks it into a `str`.
    fn check_unicode_escape(&mut self, b: &[u8]) -> Option<JsonError> {
        let hex = |l: &mut Self| -> Result<u32, JsonError> {
            if b.len().saturating_sub(l.i) < 4 {
                l.i = b.len();
                return Err(JsonError::at(l.i, Kind::Eof, "EOF while parsing a string"));
            }
            let at = l.i;
            l.i += 4;
            let mut lex = Lexer::new(b, at, 0);
            lex.hex4()
                .ok_or_else(|| JsonError::at(l.i, Kind::Syntax, "invalid escape"))
        };
        let n = match hex(self) {
            Ok(n) => n,
            Err(e) => return Some(e),
        };
        match n {
            0xDC00..=0xDFFF => Some(JsonError::at(
                self.i,
                Kind::Syntax,
                "lone leading surrogate in hex escape",
            )),
            0xD800..=0xDBFF => {
                for want in [b'\\', b'u'] {
                    match b.get(self.i) {
                        None => {
                            return Some(JsonError::at(
                                b.len(),
                                Kind::Eof,
                                "EOF while parsing a string",
                            ));
                        }
                        Some(&c) if c != want => {
                            // serde_json reports it past that byte, which
                            // the string then goes on from.
                            return Some(JsonError::at(
                                self.i + 1,
                                Kind::Syntax,
                                "unexpected end of hex escape",
                            ));
                        }
                        Some(_) => self.i += 1,
                    }
                }
                match hex(self) {
                    Ok(0xDC00..=0xDFFF) => None,
                    Ok(_) => Some(JsonError::at(
                        self.i,
                        Kind::Syntax,
                        "lone leading surrogate in hex escape",
                    )),
                    Err(e) => Some(e),
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's error for `b` read into a `Value` (its typed parse),
    /// as (index-free) line, column and words; `None` for JSON.
    fn serde_error(b: &[u8]) -> Option<(usize, usize, String)> {
        let e = serde_json::from_slice::<serde_json::Value>(b).err()?;
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        Some((
            e.line(),
            e.column(),
            full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
        ))
    }

    fn ours(b: &[u8]) -> Option<(usize, usize, String)> {
        let e = first_syntax_error(b, 0)?;
        let (line, column) = position(b, e.index);
        Some((line, column, e.message.into_owned()))
    }

    /// Every prefix of a document and every one-byte change of it (JSON's
    /// punctuation, digits, escapes, control and non-UTF-8 bytes) gets
    /// serde_json's syntax error, words and position, or none.
    #[test]
    fn syntax_errors_are_serde_jsons_on_cut_and_changed_documents() {
        let doc = r#"{"a": [1, -2.5e3, true, null, {"b": "x\u00e9\n"}], "c": {}, "d": [],
 "e": "café \ud83d\ude00", "f": 0.5, "g": [[[]]], "h": false}"#
            .as_bytes();
        assert_eq!(ours(doc), None);
        let mut checked = 0;
        for n in 0..doc.len() {
            let cut = &doc[..n];
            assert_eq!(
                ours(cut),
                serde_error(cut),
                "{}",
                String::from_utf8_lossy(cut)
            );
            for c in [
                b',', b']', b'}', b'"', b'\\', b'-', b'0', b'e', b'.', b'u', 0x01, 0xff, b'x', b' ',
            ] {
                let mut changed = doc.to_vec();
                changed[n] = c;
                let want = serde_error(&changed);
                // Numbers' range and nesting are the reader's to check.
                if want.as_ref().is_some_and(|w| w.2.contains("out of range")) {
                    continue;
                }
                assert_eq!(
                    ours(&changed),
                    want,
                    "{}",
                    String::from_utf8_lossy(&changed)
                );
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }

    /// Skipping is iterative: nesting far deeper than any stack is skipped
    /// (serde_json's `IgnoredAny` has no limit) or refused at the limit.
    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let depth = 200_000;
        let doc = format!("{}1{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
        let mut l = Lexer::new(doc.as_bytes(), 0, NO_LIMIT);
        assert_eq!(l.skip_any(), Some(()));
        assert_eq!(l.i, doc.len());
        let mut l = Lexer::new(doc.as_bytes(), 0, SERDE_DEPTH);
        assert_eq!(l.skip(3), None);
        // Refused: the container that would be serde_json's 128th counting
        // the 3 around, the 125th of the value (each 6-byte `[{"a":` holds two).
        assert_eq!(l.too_deep, Some(124 / 2 * 6));
    }
}
