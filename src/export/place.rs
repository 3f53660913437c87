//! How an exported frame gets its bytes: `--link copy|reflink|hard|symlink`.
//!
//! `copy` and `reflink` give the export its own bytes: editing an exported
//! file in place (an augmentation script) never changes the checkout. `hard`
//! and `symlink` share the bytes with the checkout, as documented.

use std::path::Path;

use crate::error::{IoContext, Result};

/// How frames are placed in an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// A copy of the bytes.
    Copy,
    /// A copy-on-write clone where the file system has them (btrfs, XFS,
    /// APFS), else a copy: the default.
    Reflink,
    /// A hard link to the checkout's file (shares its bytes and inode).
    Hard,
    /// A symbolic link to the checkout's file.
    Symlink,
}

impl LinkMode {
    /// Parses the command-line name.
    pub fn from_name(name: &str) -> Option<LinkMode> {
        Some(match name {
            "copy" => LinkMode::Copy,
            "reflink" => LinkMode::Reflink,
            "hard" => LinkMode::Hard,
            "symlink" => LinkMode::Symlink,
            _ => return None,
        })
    }
}

/// How one frame was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Cloned copy-on-write.
    Reflinked,
    /// Copied.
    Copied,
    /// Hard-linked or symlinked to the checkout.
    Linked,
    /// Kept from the earlier export being updated.
    Unchanged,
}

/// Places the checkout's file `src` (the committed content) at `dest`.
/// `no_clones` is set after a clone fails: the file system has none, and
/// trying again for every frame (create, fail, remove) cost 4x a copy.
pub fn place(src: &Path, dest: &Path, mode: LinkMode, no_clones: &mut bool) -> Result<Placed> {
    match mode {
        LinkMode::Copy => copy(src, dest),
        LinkMode::Reflink if *no_clones => copy(src, dest),
        LinkMode::Reflink => match reflink_copy::reflink(src, dest) {
            Ok(()) => Ok(Placed::Reflinked),
            Err(_) => {
                *no_clones = true;
                // A failed clone may leave an empty file behind.
                let _ = std::fs::remove_file(dest);
                copy(src, dest)
            }
        },
        LinkMode::Hard => match std::fs::hard_link(src, dest) {
            Ok(()) => Ok(Placed::Linked),
            // Another file system: a copy is the nearest thing.
            Err(_) => copy(src, dest),
        },
        LinkMode::Symlink => {
            let abs = std::path::absolute(src).ctx("resolving", src)?;
            symlink(&abs, dest)?;
            Ok(Placed::Linked)
        }
    }
}

fn copy(src: &Path, dest: &Path) -> Result<Placed> {
    std::fs::copy(src, dest).ctx("copying to", dest)?;
    Ok(Placed::Copied)
}

#[cfg(unix)]
fn symlink(target: &Path, dest: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, dest).ctx("linking", dest)
}

#[cfg(not(unix))]
fn symlink(target: &Path, dest: &Path) -> Result<()> {
    std::os::windows::fs::symlink_file(target, dest).ctx("linking", dest)
}
