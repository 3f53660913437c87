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

/// serde_json's nesting limit for a whole document: a value of a document
/// it accepted is never deeper, so scanning such a document with this limit
/// never refuses, and never recurses without bound on one it did not check.
pub(super) const SERDE_DEPTH: usize = 128;

/// A position in JSON bytes.
pub(super) struct Lexer<'a> {
    /// The bytes.
    pub(super) b: &'a [u8],
    /// The position: the next byte to read.
    pub(super) i: usize,
    /// Nesting allowed inside a value [`Lexer::skip`] skips.
    pub(super) max_depth: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at `i` of `b`.
    pub(super) fn new(b: &'a [u8], i: usize, max_depth: usize) -> Lexer<'a> {
        Lexer { b, i, max_depth }
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
    /// (or more: escapes are checked, deep nesting is refused).
    #[inline]
    pub(super) fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.skip_string()?;
            }
            b'{' => {
                if depth >= self.max_depth {
                    return None;
                }
                self.i += 1;
                if self.empty(b'}')? {
                    return Some(());
                }
                loop {
                    self.skip_string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip(depth + 1)?;
                    if !self.next_or_end(b'}')? {
                        break;
                    }
                }
            }
            b'[' => {
                if depth >= self.max_depth {
                    return None;
                }
                self.i += 1;
                if self.empty(b']')? {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.next_or_end(b']')? {
                        break;
                    }
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.skip_number()?,
        }
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
        if !ascii {
            std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        }
        Some(())
    }
}
