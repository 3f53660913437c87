//! The merge in progress on disk: `.dsv/MERGE_STATE` (JSON, versioned, written
//! atomically before the worktree is touched), read back by `--continue`,
//! `--abort`, `resolve` and by the same command run again after a crash.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{Commit, Person};
use crate::repo::Repository;

use super::error::MergeError;
use super::labels::LabelConflict;
use super::meta::MetaConflict;
use crate::labels::Format;
use crate::object::diff::FileState;

/// Version of the `MERGE_STATE` file.
pub const STATE_VERSION: u32 = 1;
/// The merge state file inside `.dsv/`.
pub const STATE_FILE: &str = "MERGE_STATE";

/// What produced a merge state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeKind {
    /// `dsv merge`: the commit gets two parents.
    Merge,
    /// `dsv cherry-pick`: one parent, the picked commit's author and message.
    CherryPick,
    /// `dsv revert`: one parent, a "Revert" message.
    Revert,
}

impl MergeKind {
    /// The command's name (`merge`, `cherry-pick`, `revert`).
    pub fn command(self) -> &'static str {
        match self {
            MergeKind::Merge => "merge",
            MergeKind::CherryPick => "cherry-pick",
            MergeKind::Revert => "revert",
        }
    }
}

/// Why a path conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// Both sides changed the file (not a label file, or one that does not parse).
    Content,
    /// Both sides added different files at the path.
    AddAdd,
    /// One side changed the file, the other deleted it.
    ModifyDelete,
    /// Both sides changed the same objects or frames of a label file.
    Labels,
    /// Both sides changed the same rows of the frame-metadata sidecar.
    Metadata,
}

/// One conflicted path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileConflict {
    /// Repository path.
    pub path: String,
    /// Why it conflicts.
    pub kind: ConflictKind,
    /// Label format, for label-level conflicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The file in the merge base.
    pub base: Option<FileState>,
    /// Our file.
    pub ours: Option<FileState>,
    /// Their file.
    pub theirs: Option<FileState>,
    /// The merged file with every conflict decided for us (`None`: deleted).
    pub resolved_ours: Option<FileState>,
    /// The merged file with every conflict decided for them (`None`: deleted).
    pub resolved_theirs: Option<FileState>,
    /// Frame and object conflicts inside a label file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelConflict>,
    /// Row and attribute conflicts inside the frame-metadata sidecar.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta: Vec<MetaConflict>,
    /// Whether the user has resolved it (`dsv resolve` or `dsv add`).
    #[serde(default)]
    pub resolved: bool,
}

/// An interrupted merge, cherry-pick or revert (`.dsv/MERGE_STATE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeState {
    /// File version ([`STATE_VERSION`]).
    pub version: u32,
    /// The command that started it.
    pub kind: MergeKind,
    /// HEAD when it started.
    pub head: ObjectId,
    /// The commit merged in (picked, or reverted).
    pub theirs: ObjectId,
    /// What the user called it (branch name or revision).
    pub theirs_name: String,
    /// The merge base.
    pub base: Option<ObjectId>,
    /// Message of the commit `--continue` makes.
    pub message: String,
    /// Author of that commit (cherry-pick keeps the original author).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Person>,
    /// Paths the merge wrote or removed in the working tree.
    #[serde(default)]
    pub touched: Vec<String>,
    /// The conflicts.
    pub conflicts: Vec<FileConflict>,
    /// Whether the worktree and index changes are all written. `false` only between
    /// the state's first write and the end of those writes: a state left so by a
    /// crash is finished by running the same command again (or `--abort`).
    #[serde(default = "written_default")]
    pub applied: bool,
}

/// A state written before `applied` existed was saved after its writes.
fn written_default() -> bool {
    true
}

impl MergeState {
    /// Conflicts not resolved yet.
    pub fn unresolved(&self) -> impl Iterator<Item = &FileConflict> {
        self.conflicts.iter().filter(|c| !c.resolved)
    }
}

pub(super) fn state_path(repo: &Repository) -> PathBuf {
    repo.dsv_dir().join(STATE_FILE)
}

/// The merge in progress, if any.
pub fn load_state(repo: &Repository) -> Result<Option<MergeState>> {
    let path = state_path(repo);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    // serde quotes a bad value whole: a damaged state file must not be echoed.
    let state: MergeState = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Corrupt(format!(
            "{}: {}",
            path.display(),
            crate::quote::limited(&e.to_string(), 200)
        ))
    })?;
    if state.version != STATE_VERSION {
        return Err(Error::Corrupt(format!(
            "{}: unsupported merge state version {}",
            path.display(),
            state.version
        )));
    }
    if is_committed(repo, &state)? {
        if repo.writable() {
            // Best effort: it is ignored while HEAD is the merge commit anyway.
            let _ = clear_state(repo);
        }
        return Ok(None);
    }
    Ok(Some(state))
}

/// Whether HEAD is already the commit that finishes `state`: a crash between the
/// ref move and the removal of the state file leaves such a stale state behind.
pub(super) fn is_committed(repo: &Repository, state: &MergeState) -> Result<bool> {
    let Some(head) = repo.refs.head_commit()? else {
        return Ok(false);
    };
    if head == state.head {
        return Ok(false);
    }
    let parents = match Commit::load(&repo.store, &head) {
        Ok(c) => c.parents,
        Err(_) => return Ok(false),
    };
    Ok(match state.kind {
        MergeKind::Merge => parents == [state.head, state.theirs],
        MergeKind::CherryPick | MergeKind::Revert => parents == [state.head],
    })
}

pub(super) fn save_state(repo: &Repository, state: &MergeState) -> Result<()> {
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Internal(format!("encoding the merge state: {e}")))?;
    let dir = repo.dsv_dir();
    repo.storage.write_atomic(&state_path(repo), &json)?;
    repo.storage.write_atomic(
        &dir.join("MERGE_HEAD"),
        format!("{}\n", state.theirs).as_bytes(),
    )?;
    repo.storage.write_atomic(
        &dir.join("ORIG_HEAD"),
        format!("{}\n", state.head).as_bytes(),
    )?;
    repo.storage
        .write_atomic(&dir.join("MERGE_MSG"), state.message.as_bytes())
}

/// Rewrites `MERGE_STATE` alone (the copies beside it do not change).
pub(super) fn update_state(repo: &Repository, state: &MergeState) -> Result<()> {
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Internal(format!("encoding the merge state: {e}")))?;
    repo.storage.write_atomic(&state_path(repo), &json)
}

pub(super) fn clear_state(repo: &Repository) -> Result<()> {
    let dir = repo.dsv_dir();
    // MERGE_STATE goes first: it alone marks a merge in progress.
    for name in [STATE_FILE, "MERGE_HEAD", "MERGE_MSG"] {
        let p = dir.join(name);
        if p.exists() {
            repo.storage.remove_file(&p)?;
        }
    }
    Ok(())
}

/// Refuses when a merge, cherry-pick or revert is in progress.
pub fn refuse_if_in_progress(repo: &Repository, what: &str) -> Result<()> {
    match load_state(repo)? {
        Some(s) => Err(in_progress(&s, what)),
        None => Ok(()),
    }
}

pub(super) fn in_progress(s: &MergeState, what: &str) -> Error {
    let command = s.kind.command();
    if !s.applied {
        return MergeError::Interrupted {
            what: what.to_string(),
            command,
            theirs: s.theirs_name.clone(),
        }
        .into();
    }
    MergeError::InProgress {
        what: what.to_string(),
        command,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::OpenOptions;

    fn state(head: ObjectId, theirs: ObjectId) -> MergeState {
        MergeState {
            version: STATE_VERSION,
            kind: MergeKind::Merge,
            head,
            theirs,
            theirs_name: "feature".into(),
            base: None,
            message: "Merge branch 'feature'\n".into(),
            author: None,
            touched: vec!["labels/a.txt".into()],
            conflicts: Vec::new(),
            applied: true,
        }
    }

    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        (dir, repo)
    }

    #[test]
    fn merge_state_saved_is_loaded_back_and_cleared() {
        let (_d, repo) = repo();
        assert!(load_state(&repo).unwrap().is_none());
        let s = state(ObjectId([1; 32]), ObjectId([2; 32]));
        save_state(&repo, &s).unwrap();
        let back = load_state(&repo).unwrap().expect("a merge in progress");
        assert_eq!(
            (back.head, back.theirs, back.touched),
            (s.head, s.theirs, s.touched)
        );
        let merge_head = std::fs::read_to_string(repo.dsv_dir().join("MERGE_HEAD")).unwrap();
        assert_eq!(merge_head.trim(), s.theirs.to_string());
        let err = refuse_if_in_progress(&repo, "switch")
            .unwrap_err()
            .to_string();
        assert!(err.contains("merge is in progress"), "{err}");
        clear_state(&repo).unwrap();
        assert!(load_state(&repo).unwrap().is_none());
        refuse_if_in_progress(&repo, "switch").unwrap();
    }

    #[test]
    fn merge_state_interrupted_before_its_writes_says_how_to_finish() {
        let (_d, repo) = repo();
        let mut s = state(ObjectId([1; 32]), ObjectId([2; 32]));
        s.applied = false;
        save_state(&repo, &s).unwrap();
        let err = refuse_if_in_progress(&repo, "commit")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("was interrupted") && err.contains("dsv merge feature"),
            "{err}"
        );
    }

    #[test]
    fn merge_state_of_another_version_is_refused() {
        let (_d, repo) = repo();
        let mut s = state(ObjectId([1; 32]), ObjectId([2; 32]));
        s.version = STATE_VERSION + 1;
        save_state(&repo, &s).unwrap();
        let err = load_state(&repo).unwrap_err().to_string();
        assert!(err.contains("unsupported merge state version"), "{err}");
    }

    #[test]
    fn damaged_merge_state_is_refused_without_echoing_it() {
        let (_d, repo) = repo();
        let junk = format!("{{\"version\": \"{}\"", "x".repeat(10_000));
        std::fs::write(state_path(&repo), junk).unwrap();
        let err = load_state(&repo).unwrap_err().to_string();
        assert!(err.contains("MERGE_STATE"), "{err}");
        assert!(
            err.len() < 600,
            "the damaged bytes were echoed: {} bytes",
            err.len()
        );
    }
}
