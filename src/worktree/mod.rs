//! The working tree: the index (staging area), scanning files, writing files.

pub mod build;
pub mod delta;
pub mod fsmonitor;
pub mod index;
pub mod links;
pub mod scan;
pub mod sources;
pub mod sparse;
pub mod write;

use crate::paths::os_path;

/// Which write of the entries an index is at: two writes of one command can share
/// a stamp, never a generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexVersion {
    /// Counts the writes that changed entries (0 in an index older than the counter).
    pub generation: i64,
    /// When the index was last written (ns since epoch).
    pub stamp: i64,
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
