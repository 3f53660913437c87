//! Object ids: blake3 hashes of an object's bytes, shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

/// A 32-byte blake3 content id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The first 8 bytes as a big-endian integer: orders like the id itself.
    pub fn prefix_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// Hashes bytes into an id.
    pub fn hash(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }

    /// Full lowercase hex form (64 characters).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
        }
        s
    }

    /// Abbreviated hex form used in human output.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }

    /// Parses a full 64-character hex id.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        let bytes = s.as_bytes();
        for (i, o) in out.iter_mut().enumerate() {
            let hi = (bytes[2 * i] as char).to_digit(16)?;
            let lo = (bytes[2 * i + 1] as char).to_digit(16)?;
            *o = (hi * 16 + lo) as u8;
        }
        Some(ObjectId(out))
    }

    /// Parses a hex prefix (any length up to 64) into (low, high) inclusive bounds of the ids it matches.
    pub fn prefix_range(prefix: &str) -> Option<(ObjectId, ObjectId)> {
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let lower = prefix.to_ascii_lowercase();
        let lo = format!("{lower:0<64}");
        let hi = format!("{lower:f<64}");
        Some((ObjectId::from_hex(&lo)?, ObjectId::from_hex(&hi)?))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

impl FromStr for ObjectId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ObjectId::from_hex(s).ok_or(())
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectId::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid object id '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let id = ObjectId(bytes);
            prop_assert_eq!(ObjectId::from_hex(&id.to_hex()), Some(id));
            let (lo, hi) = ObjectId::prefix_range(&id.to_hex()[..7]).unwrap();
            prop_assert!(lo <= id && id <= hi);
        }
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(ObjectId::from_hex("zz").is_none());
        assert!(ObjectId::prefix_range("xyz").is_none());
        assert!(ObjectId::prefix_range("").is_none());
    }
}
