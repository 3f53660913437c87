//! `--split train=0.8,val=0.1,test=0.1`: which split a frame goes to, decided by
//! a hash of its path alone, so a frame stays in its split as the dataset grows
//! (adding or removing other frames never moves it) and every export of the
//! same fractions agrees.

use crate::error::{Error, Result};

/// Named fractions of the frames.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// Split names and fractions, in the order given (they sum to 1).
    pub parts: Vec<(String, f64)>,
}

/// The split name of an export without `--split`: every frame is in it.
pub const DEFAULT_SPLIT: &str = "train";

impl Split {
    /// One split holding every frame.
    pub fn all_in(name: &str) -> Split {
        Split {
            parts: vec![(name.to_string(), 1.0)],
        }
    }

    /// Parses `name=fraction,...` (fractions summing to 1; names of letters,
    /// digits, `_` and `-`, each once).
    pub fn parse(text: &str) -> Result<Split> {
        let bad = |m: String| Error::InvalidArgument(format!("--split {text:?}: {m}"));
        let mut parts: Vec<(String, f64)> = Vec::new();
        for item in text.split(',') {
            let Some((name, frac)) = item.split_once('=') else {
                return Err(bad(format!("{item:?} is not NAME=FRACTION")));
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(bad(format!(
                    "split name {name:?} must be letters, digits, '_' or '-'"
                )));
            }
            if parts.iter().any(|(n, _)| n == name) {
                return Err(bad(format!("split {name:?} is named twice")));
            }
            let f: f64 = frac
                .trim()
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && (0.0..=1.0).contains(f))
                .ok_or_else(|| bad(format!("{frac:?} is not a fraction between 0 and 1")))?;
            parts.push((name.to_string(), f));
        }
        let sum: f64 = parts.iter().map(|(_, f)| f).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(bad(format!("the fractions add up to {sum}, not 1")));
        }
        Ok(Split { parts })
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|(n, _)| n.as_str())
    }

    /// The index of the split of the frame at `path`: the first 8 bytes of the
    /// BLAKE3 hash of the path, as a fraction of 2^64, against the running sum
    /// of the fractions.
    pub fn of(&self, path: &str) -> usize {
        let h = blake3::hash(path.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.as_bytes()[..8]);
        let x = u64::from_le_bytes(first) as f64 / 18_446_744_073_709_551_616.0;
        let mut acc = 0.0;
        for (i, (_, f)) in self.parts.iter().enumerate() {
            acc += f;
            if x < acc {
                return i;
            }
        }
        // Rounding of the running sum: the last split with a share takes the rest.
        self.parts.iter().rposition(|(_, f)| *f > 0.0).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_fractions_are_checked() {
        assert!(Split::parse("train=0.8,val=0.1,test=0.1").is_ok());
        for bad in [
            "train=0.8",
            "train=0.5,train=0.5",
            "train",
            "a/b=1",
            "train=1.5,val=-0.5",
            "train=x",
        ] {
            assert!(Split::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_frame_keeps_its_split_and_the_shares_are_near_the_fractions() {
        let s = Split::parse("train=0.8,val=0.1,test=0.1").unwrap();
        let mut n = [0usize; 3];
        for i in 0..10_000 {
            let p = format!("images/{i:06}.jpg");
            let k = s.of(&p);
            assert_eq!(k, s.of(&p));
            n[k] += 1;
        }
        assert!((7_700..8_300).contains(&n[0]), "{n:?}");
        assert!((800..1_200).contains(&n[1]), "{n:?}");
        assert!((800..1_200).contains(&n[2]), "{n:?}");
    }
}
