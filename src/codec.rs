//! The byte codec of dsv's derived caches (query index, stats cache, sidecar
//! index): LEB128 varints, length-prefixed strings, and a bounds-checked
//! [`Reader`] that gives `None` on anything unexpected, so a damaged cache is
//! rebuilt, never trusted. It knows nothing of what the bytes mean.

/// Appends `v` as a LEB128 varint.
#[inline]
pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-prefixed string.
#[inline]
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends each f64 little-endian.
#[inline]
pub(crate) fn f64s(out: &mut Vec<u8>, v: &[f64]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Appends an optional u32: a presence byte, then the varint.
#[inline]
pub(crate) fn opt_u32(out: &mut Vec<u8>, v: Option<u32>) {
    match v {
        Some(x) => {
            out.push(1);
            varint(out, x.into());
        }
        None => out.push(0),
    }
}

/// A bounds-checked reader over an encoding; every method gives `None` past the end.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `b`.
    #[inline]
    pub(crate) fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, pos: 0 }
    }
    /// The position of the next byte.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    /// The bytes read since position `start`.
    #[inline]
    pub(crate) fn since(&self, start: usize) -> Option<&'a [u8]> {
        self.b.get(start..self.pos)
    }
    /// The next byte, not consumed.
    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    /// How many bytes are left.
    #[inline]
    pub(crate) fn rest_len(&self) -> usize {
        self.b.len() - self.pos
    }
    /// Whether every byte was read.
    #[inline]
    pub(crate) fn done(&self) -> bool {
        self.pos == self.b.len()
    }
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    #[inline]
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    #[inline]
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A count, bounded by the bytes left (each item takes at least one byte).
    #[inline]
    pub(crate) fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.b.len() - self.pos).then_some(n)
    }
    #[inline]
    pub(crate) fn string(&mut self) -> Option<String> {
        let n = self.count()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    /// A little-endian f64.
    #[inline]
    pub(crate) fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    #[inline]
    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    #[inline]
    pub(crate) fn opt_u32(&mut self) -> Option<Option<u32>> {
        Some(if self.bool()? {
            Some(u32::try_from(self.varint()?).ok()?)
        } else {
            None
        })
    }
    /// A borrowed length-prefixed string.
    #[inline]
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
}
