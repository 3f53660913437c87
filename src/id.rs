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
        const_hex::encode(self.0)
    }

    /// Abbreviated hex form used in human output.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }

    /// Parses a full 64-character hex id.
    pub fn from_hex(s: &str) -> Option<Self> {
        // Exactly 64 digits: the crate would also take a `0x` prefix.
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        const_hex::decode_to_slice(s, &mut out).ok()?;
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

// Hex on the stack both ways: a record of a million frames holds two ids each.
impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        const_hex::encode_to_slice(self.0, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = ObjectId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object id (64 hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ObjectId, E> {
                ObjectId::from_hex(s).ok_or_else(|| E::custom(format!("invalid object id '{s}'")))
            }
        }
        d.deserialize_str(Hex)
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
    fn hex_is_lowercase_and_read_in_either_case() {
        let id = ObjectId(std::array::from_fn(|i| (i * 37 + 5) as u8));
        let hex = id.to_hex();
        assert_eq!(
            hex,
            "052a4f7499bee3082d52779cc1e60b30557a9fc4e90e33587da2c7ec11365b80"
        );
        assert_eq!(ObjectId::from_hex(&hex.to_uppercase()), Some(id));
        assert_eq!(id.short(), "052a4f7499be");
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(ObjectId::from_hex("zz").is_none());
        assert!(ObjectId::from_hex(&"0".repeat(63)).is_none());
        assert!(ObjectId::from_hex(&"0".repeat(66)).is_none());
        assert!(ObjectId::from_hex(&format!("{}é", "0".repeat(62))).is_none());
        assert!(ObjectId::from_hex(&format!("+1{}", "0".repeat(62))).is_none());
        assert!(ObjectId::from_hex(&format!("0x{}", "0".repeat(62))).is_none());
        assert!(ObjectId::from_hex(&format!("0x{}", "0".repeat(64))).is_none());
        assert!(ObjectId::prefix_range("xyz").is_none());
        assert!(ObjectId::prefix_range("").is_none());
    }
}
