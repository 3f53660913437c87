//! The attributes of one object: a map from name to value, sorted by name.
//!
//! A file can hold millions of objects with one or two attributes each. A
//! `BTreeMap` allocates a whole node (eleven slots, ~600 bytes) for its first
//! entry, which made a parsed CVAT box cost ~1 KB for ~95 bytes of XML. Up to
//! [`SMALL_MAX`] entries live in a vector sized to fit; past that (a hostile
//! file with thousands of attributes on one object) a `BTreeMap` keeps
//! insertion logarithmic.

use std::collections::{BTreeMap, btree_map};
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::AttrValue;

/// Entries kept in the sorted vector before switching to a `BTreeMap`.
const SMALL_MAX: usize = 16;

/// A map from attribute name to value, iterated in name order.
#[derive(Clone, Default)]
pub struct Attributes(Repr);

#[derive(Clone)]
enum Repr {
    Small(Vec<(String, AttrValue)>),
    Large(BTreeMap<String, AttrValue>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Small(Vec::new())
    }
}

impl Attributes {
    /// An empty map (allocates nothing).
    pub fn new() -> Attributes {
        Attributes::default()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(v) => v.len(),
            Repr::Large(m) => m.len(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0 = Repr::default();
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        match &self.0 {
            Repr::Small(v) => v
                .binary_search_by(|(k, _)| k.as_str().cmp(key))
                .ok()
                .map(|i| &v[i].1),
            Repr::Large(m) => m.get(key),
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<AttrValue> {
        match &mut self.0 {
            Repr::Small(v) => v
                .binary_search_by(|(k, _)| k.as_str().cmp(key))
                .ok()
                .map(|i| v.remove(i).1),
            Repr::Large(m) => m.remove(key),
        }
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: AttrValue) -> Option<AttrValue> {
        match &mut self.0 {
            Repr::Small(v) => match v.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
                Ok(i) => Some(std::mem::replace(&mut v[i].1, value)),
                Err(i) if v.len() < SMALL_MAX => {
                    // Exactly sized: most objects have one or two attributes,
                    // and the vector never grows past SMALL_MAX.
                    v.reserve_exact(1);
                    v.insert(i, (key, value));
                    None
                }
                Err(_) => {
                    let mut m: BTreeMap<String, AttrValue> =
                        std::mem::take(v).into_iter().collect();
                    m.insert(key, value);
                    self.0 = Repr::Large(m);
                    None
                }
            },
            Repr::Large(m) => m.insert(key, value),
        }
    }

    /// The entries in name order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.0 {
            Repr::Small(v) => Iter(IterRepr::Small(v.iter())),
            Repr::Large(m) => Iter(IterRepr::Large(m.iter())),
        }
    }

    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values in name order.
    pub fn values(&self) -> impl Iterator<Item = &AttrValue> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

/// Borrowing iterator over [`Attributes`], in name order.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Small(std::slice::Iter<'a, (String, AttrValue)>),
    Large(btree_map::Iter<'a, String, AttrValue>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a AttrValue);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Small(i) => i.next().map(|(k, v)| (k, v)),
            IterRepr::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Small(i) => i.size_hint(),
            IterRepr::Large(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a AttrValue);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Owning iterator over [`Attributes`], in name order.
pub struct IntoIter(IntoIterRepr);

enum IntoIterRepr {
    Small(std::vec::IntoIter<(String, AttrValue)>),
    Large(btree_map::IntoIter<String, AttrValue>),
}

impl Iterator for IntoIter {
    type Item = (String, AttrValue);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IntoIterRepr::Small(i) => i.next(),
            IntoIterRepr::Large(i) => i.next(),
        }
    }
}

impl IntoIterator for Attributes {
    type Item = (String, AttrValue);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        match self.0 {
            Repr::Small(v) => IntoIter(IntoIterRepr::Small(v.into_iter())),
            Repr::Large(m) => IntoIter(IntoIterRepr::Large(m.into_iter())),
        }
    }
}

impl Extend<(String, AttrValue)> for Attributes {
    fn extend<T: IntoIterator<Item = (String, AttrValue)>>(&mut self, iter: T) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(String, AttrValue)> for Attributes {
    fn from_iter<T: IntoIterator<Item = (String, AttrValue)>>(iter: T) -> Attributes {
        let mut a = Attributes::new();
        a.extend(iter);
        a
    }
}

impl From<BTreeMap<String, AttrValue>> for Attributes {
    fn from(m: BTreeMap<String, AttrValue>) -> Attributes {
        m.into_iter().collect()
    }
}

impl<const N: usize> From<[(String, AttrValue); N]> for Attributes {
    fn from(a: [(String, AttrValue); N]) -> Attributes {
        a.into_iter().collect()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = AttrValue;

    fn index(&self, key: &str) -> &AttrValue {
        self.get(key).expect("no such attribute")
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl PartialEq<BTreeMap<String, AttrValue>> for Attributes {
    fn eq(&self, other: &BTreeMap<String, AttrValue>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attributes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attributes")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
                let mut a = Attributes::new();
                while let Some((k, v)) = map.next_entry::<String, AttrValue>()? {
                    a.insert(k, v);
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_maps_agree_with_a_btreemap() {
        let mut a = Attributes::new();
        let mut b = BTreeMap::new();
        for i in (0..40).rev().chain(0..5) {
            let k = format!("k{:02}", (i * 7) % 40);
            assert_eq!(
                a.insert(k.clone(), AttrValue::Int(i)),
                b.insert(k, AttrValue::Int(i))
            );
            assert_eq!(a, b);
        }
        assert_eq!(a.remove("k03"), b.remove("k03"));
        assert_eq!(a, b);
        assert_eq!(a.get("k07"), b.get("k07"));
    }
}
