//! Repository paths: the bytes of a tree entry's path, `/`-separated, shown to
//! humans and mapped to the file system the same way everywhere.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Shows a repository path for humans: lossy UTF-8, with invalid bytes as `\xNN`.
pub fn display_path(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::new();
            for chunk in path.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// A repository path as an OS string.
pub fn os_path(path: &[u8]) -> &OsStr {
    OsStr::from_bytes(path)
}

/// Whether `path` equals `prefix` or lies below it (`prefix` empty matches everything).
pub fn path_within(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

/// Serializes a repository path as its display string.
pub fn ser<S: serde::Serializer>(p: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&display_path(p))
}

/// Serializes an optional repository path as its display string or null.
pub fn ser_opt<S: serde::Serializer>(
    p: &Option<Vec<u8>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match p {
        Some(p) => ser(p, s),
        None => s.serialize_none(),
    }
}

/// Serializes repository paths as display strings.
pub fn ser_many<S: serde::Serializer>(
    paths: &[Vec<u8>],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| display_path(p)))
}

/// Repository paths shown in an error, one per indented line: the first ten, then a
/// count of the rest (a refusal must stay readable however many files it names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathList(pub Vec<Vec<u8>>);

impl std::fmt::Display for PathList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().take(10).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {}", display_path(p))?;
        }
        if self.0.len() > 10 {
            write!(f, "\n  ... and {} more", self.0.len() - 10)?;
        }
        Ok(())
    }
}
