//! The working tree: the index (staging area), scanning files, writing files.

pub mod index;
pub mod links;
pub mod scan;
pub mod write;

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

/// The first leading directory of `path` (`a`, then `a/b` for `a/b/c`) that is a symlink
/// in the working tree. A tracked path below a symlink is not in the working tree: dsv
/// never follows the link, which may point outside the repository.
pub fn symlink_prefix(root: &std::path::Path, path: &[u8]) -> Option<Vec<u8>> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| &path[..i])
        .find(|dir| {
            std::fs::symlink_metadata(root.join(os_path(dir)))
                .is_ok_and(|m| m.file_type().is_symlink())
        })
        .map(<[u8]>::to_vec)
}
