//! `commit`: turn the index into trees and a commit, then move the branch.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::commit::COMMIT_FORMAT;
use crate::object::{CodeVersion, Commit, EntryMode, Summary, Tree, TreeEntry};
use crate::refs::{HEADS, Head};
use crate::repo::{Repository, now};
use crate::store::ObjectStore;
use crate::worktree::index::IndexEntry;

/// Options for a commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The message.
    pub message: String,
    /// Commit even if the tree equals the parent's.
    pub allow_empty: bool,
}

/// The result of a commit.
#[derive(Debug, Serialize)]
pub struct CommitResult {
    /// New commit id.
    pub id: ObjectId,
    /// Branch moved (None when detached).
    pub branch: Option<String>,
    /// The commit.
    pub commit: Commit,
    /// Whether it is the first commit of the branch.
    pub root: bool,
}

/// Builds and stores the tree of an index; returns the root tree id and summary.
pub fn build_tree(
    store: &ObjectStore,
    entries: &BTreeMap<Vec<u8>, IndexEntry>,
) -> Result<(ObjectId, Summary)> {
    tree_of_index(entries, &mut |bytes| store.put(bytes))
}

/// The root tree id an index would commit to, without storing anything.
pub fn index_tree_id(entries: &BTreeMap<Vec<u8>, IndexEntry>) -> Result<ObjectId> {
    Ok(tree_of_index(entries, &mut |bytes| Ok(ObjectId::hash(bytes)))?.0)
}

fn tree_of_index(
    entries: &BTreeMap<Vec<u8>, IndexEntry>,
    put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
) -> Result<(ObjectId, Summary)> {
    let items: Vec<(&[u8], &IndexEntry)> = entries.iter().map(|(p, e)| (p.as_slice(), e)).collect();
    let (id, size, files) = build_dir(put, &items)?;
    Ok((id, Summary { files, bytes: size }))
}

/// `items` are sorted paths relative to this directory.
fn build_dir(
    put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
    items: &[(&[u8], &IndexEntry)],
) -> Result<(ObjectId, u64, u64)> {
    let mut entries = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let (path, e) = items[i];
        match path.iter().position(|b| *b == b'/') {
            None => {
                entries.push(TreeEntry {
                    name: path.to_vec(),
                    mode: e.mode,
                    id: e.id,
                    size: e.stat.size,
                    files: 1,
                });
                i += 1;
            }
            Some(slash) => {
                let name = &path[..slash];
                // All paths under `name/` are contiguous in byte order.
                let mut j = i;
                let mut sub = Vec::new();
                while j < items.len()
                    && items[j].0.len() > slash
                    && items[j].0[..slash] == *name
                    && items[j].0[slash] == b'/'
                {
                    sub.push((&items[j].0[slash + 1..], items[j].1));
                    j += 1;
                }
                let (id, size, files) = build_dir(put, &sub)?;
                entries.push(TreeEntry {
                    name: name.to_vec(),
                    mode: EntryMode::Dir,
                    id,
                    size,
                    files,
                });
                i = j;
            }
        }
    }
    let tree = Tree { entries };
    let size = tree.size();
    let files = tree.files();
    Ok((tree.store_with(put)?, size, files))
}

/// The code version of the git repository around `dir`, if any (read with gix).
pub fn code_version(dir: &Path) -> Option<CodeVersion> {
    let repo = gix::discover(dir).ok()?;
    let head = repo.head_id().ok()?;
    let dirty = repo.is_dirty().unwrap_or(false);
    Some(CodeVersion {
        git_commit: head.to_string(),
        dirty,
    })
}

/// Records the index as a new commit on the current branch (or detached HEAD).
pub fn commit(repo: &Repository, opts: &CommitOptions) -> Result<CommitResult> {
    repo.require_write()?;
    if opts.message.trim().is_empty() {
        return Err(Error::Refused(
            "aborting commit due to empty commit message (use -m MESSAGE)".into(),
        ));
    }
    // A merge in progress commits through `merge --continue`, with both parents.
    super::merge::refuse_if_in_progress(repo, "commit")?;
    let author = repo.identity()?;
    let index = repo.index.load()?;
    let parent = repo.refs.head_commit()?;
    if parent.is_none() && index.entries.is_empty() && !opts.allow_empty {
        return Err(Error::Refused(
            "nothing to commit (stage files with `dsv add`, or use --allow-empty)".into(),
        ));
    }
    let (tree, summary) = build_tree(&repo.store, &index.entries)?;
    if let Some(p) = parent
        && !opts.allow_empty
        && Commit::load(&repo.store, &p)?.tree == tree
    {
        return Err(Error::Refused(
            "nothing to commit (stage changes with `dsv add`, or use --allow-empty)".into(),
        ));
    }
    let (time, tz) = now()?;
    let commit = Commit {
        format: COMMIT_FORMAT,
        tree,
        parents: parent.into_iter().collect(),
        author: author.clone(),
        time,
        tz_offset_min: tz,
        message: normalize_message(&opts.message),
        summary,
        code: code_version(repo.root()),
    };
    let id = repo.store.put_commit(&commit.encode())?;
    // Objects must be durable before any ref names them.
    repo.store.flush()?;
    let head = repo.refs.head()?;
    let kind = if parent.is_none() {
        "commit (initial)"
    } else {
        "commit"
    };
    let msg = format!("{kind}: {}", commit.subject());
    let branch = match &head {
        Head::Branch(b) => {
            repo.refs
                .update(&format!("{HEADS}{b}"), id, &author, time, &msg)?;
            Some(b.clone())
        }
        Head::Detached(_) => {
            repo.refs
                .set_head(&Head::Detached(id), &author, time, &msg)?;
            None
        }
    };
    Ok(CommitResult {
        id,
        branch,
        commit,
        root: parent.is_none(),
    })
}

/// Trims trailing whitespace on lines and surrounding blank lines, ending with one newline.
fn normalize_message(m: &str) -> String {
    let lines: Vec<&str> = m.lines().map(str::trim_end).collect();
    let text = lines.join("\n");
    format!("{}\n", text.trim_matches('\n'))
}
