//! Commits: a tree, parents, who and when, a message, a summary and the code version.
//!
//! Encoding (format 1): canonical JSON (serde field order, no extra whitespace)
//! beginning with `{"format":1,`. JSON keeps commits readable with
//! `dsv cat-object` and lets later versions add optional fields.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::ObjectStore;

/// Commit format version written by this build.
pub const COMMIT_FORMAT: u32 = 1;

/// A person (author or committer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// Size of the committed tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of files.
    pub files: u64,
    /// Total bytes of files.
    pub bytes: u64,
}

/// The code repository state when the commit was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeVersion {
    /// Git HEAD commit id of the surrounding code repository.
    pub git_commit: String,
    /// Whether tracked files in the code worktree had uncommitted changes.
    pub dirty: bool,
}

/// A dataset commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Format version of this commit object.
    pub format: u32,
    /// Root tree id.
    pub tree: ObjectId,
    /// Parent commit ids (first parent first).
    pub parents: Vec<ObjectId>,
    /// Who made the change.
    pub author: Person,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Offset from UTC in minutes.
    pub tz_offset_min: i32,
    /// Commit message.
    pub message: String,
    /// Files and bytes in the tree.
    pub summary: Summary,
    /// Code version, when the dataset lives inside a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeVersion>,
}

impl Commit {
    /// Serializes to the canonical byte form.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a commit, checking its format version.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Commit, String> {
        let c: Commit = serde_json::from_slice(bytes).map_err(|e| format!("not a commit: {e}"))?;
        if c.format != COMMIT_FORMAT {
            return Err(format!("unsupported commit format {}", c.format));
        }
        Ok(c)
    }

    /// Reads a commit from the store.
    pub fn load(store: &ObjectStore, id: &ObjectId) -> Result<Commit> {
        let bytes = store.get(id)?;
        Commit::decode(&bytes).map_err(|reason| Error::CorruptObject { id: *id, reason })
    }

    /// First line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(msg in ".*", name in "[a-z ]{0,10}", time in any::<i64>(), files in any::<u64>(), dirty in any::<bool>()) {
            let c = Commit {
                format: COMMIT_FORMAT,
                tree: ObjectId([1; 32]),
                parents: vec![ObjectId([2; 32])],
                author: Person { name, email: "a@b".into() },
                time,
                tz_offset_min: 60,
                message: msg,
                summary: Summary { files, bytes: 3 },
                code: Some(CodeVersion { git_commit: "abc".into(), dirty }),
            };
            prop_assert_eq!(Commit::decode(&c.encode()), Ok(c));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Commit::decode(&bytes);
        }
    }
}
