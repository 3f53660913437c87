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

/// What a selection commit (`dsv query EXPR --branch NAME`) was cut from.
///
/// A selection holds only the matching frames of the queried commit; `dsv merge`
/// uses it as the merge base when it merges the selection's branch back, so the
/// frames left out of it are not taken as deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionOf {
    /// The queried commit (also the selection commit's parent).
    pub of: ObjectId,
    /// The query expression that chose the frames.
    pub query: String,
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
    /// Set on a selection commit: the commit it was cut from and the query.
    /// Absent in every other commit (and in commits written before it existed,
    /// whose encoding and ids are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionOf>,
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

    #[test]
    fn commits_without_a_selection_encode_as_before() {
        let c = Commit {
            format: COMMIT_FORMAT,
            tree: ObjectId([1; 32]),
            parents: vec![],
            author: Person {
                name: "a".into(),
                email: "a@b".into(),
            },
            time: 1,
            tz_offset_min: 0,
            message: "m\n".into(),
            summary: Summary { files: 0, bytes: 0 },
            code: None,
            selection: None,
        };
        let bytes = c.encode();
        assert!(!String::from_utf8_lossy(&bytes).contains("selection"));
        // An older commit (no such field) decodes to the same value.
        assert_eq!(Commit::decode(&bytes), Ok(c));
    }

    proptest! {
        #[test]
        fn round_trip(msg in ".*", name in "[a-z ]{0,10}", time in any::<i64>(), files in any::<u64>(), dirty in any::<bool>(), msg_query in ".*") {
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
                selection: dirty.then(|| SelectionOf { of: ObjectId([3; 32]), query: msg_query.clone() }),
            };
            prop_assert_eq!(Commit::decode(&c.encode()), Ok(c));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Commit::decode(&bytes);
        }
    }
}
