//! `commit`: turn the index into trees and a commit, then move the branch.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::commit::COMMIT_FORMAT;
use crate::object::{CodeVersion, Commit, Person, Summary};
use crate::refs::{HEADS, Head};
use crate::repo::WritableRepo;
use crate::store::ObjectStore;
use crate::worktree::build::TreeBuilder;
use crate::worktree::index::IndexReader;

/// Options for a commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The message.
    pub message: String,
    /// Commit even if the tree equals the parent's.
    pub allow_empty: bool,
    /// Replace HEAD's commit (git's `--amend`): same parents, HEAD's author, and
    /// HEAD's message when `message` is empty; the tree may equal the old one.
    pub amend: bool,
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

/// A commit about to be made, before anything is written: what `pre-commit` hooks see.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    /// The tree the index commits to (computed, not stored yet).
    pub tree: ObjectId,
    /// Files and bytes in that tree.
    pub summary: Summary,
    /// Its parents.
    pub parents: Vec<ObjectId>,
    /// Author.
    pub author: Person,
    /// The normalized message.
    pub message: String,
    /// Commit time.
    pub time: i64,
    /// Offset in minutes.
    pub tz_offset_min: i32,
    /// Code version around the dataset.
    pub code: Option<CodeVersion>,
}

/// Called with the pending commit before anything is written; an error aborts the commit.
pub type BeforeWrite<'a> = &'a mut dyn FnMut(&PendingCommit) -> Result<()>;

/// Called once the commit object is durable and before the ref moves (post-commit
/// deliveries are recorded here); an error aborts the commit, leaving refs unchanged.
pub type BeforeRef<'a> = &'a mut dyn FnMut(ObjectId, &Commit) -> Result<()>;

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
pub fn commit(repo: &WritableRepo, opts: &CommitOptions) -> Result<CommitResult> {
    commit_with(repo, opts, None, None)
}

/// [`commit`], calling `before_write` (the pre-commit hooks) once the commit is known
/// to be valid and before any object or ref is written, and `before_ref` once the
/// commit is stored and before the ref moves.
pub fn commit_with(
    repo: &WritableRepo,
    opts: &CommitOptions,
    before_write: Option<BeforeWrite>,
    before_ref: Option<BeforeRef>,
) -> Result<CommitResult> {
    // The commit being replaced, with what it keeps: parents, author, message.
    let amended = if opts.amend {
        let head = repo.refs.head_commit()?.ok_or_else(|| {
            Error::InvalidArgument("--amend: there is no commit to amend yet".into())
        })?;
        Some(Commit::load(&repo.store, &head)?)
    } else {
        None
    };
    if opts.message.trim().is_empty() && amended.is_none() {
        return Err(CommitError::EmptyMessage.into());
    }
    // A merge in progress commits through `merge --continue`, with both parents.
    super::merge::state::refuse_if_in_progress(repo, "commit")?;
    let author = match &amended {
        Some(c) => c.author.clone(),
        None => repo.identity()?,
    };
    // The entries stream from one read of the index into the tree builder, in path
    // order: a large index is never held in memory whole.
    let reader = repo.index.reader()?;
    let base = reader.base()?;
    let head_commit = repo.refs.head_commit()?;
    let parents: Vec<ObjectId> = match &amended {
        Some(c) => c.parents.clone(),
        None => head_commit.into_iter().collect(),
    };
    // What the tree is compared with for "nothing to commit": an amend may keep it.
    let parent = if opts.amend { None } else { head_commit };
    if head_commit.is_none() && reader.is_empty()? && !opts.allow_empty {
        return Err(CommitError::NothingStaged.into());
    }
    let nothing = || Error::from(CommitError::NoChanges);
    let (time, tz) = repo.now()?;
    let code = code_version(repo.root());
    let message = match &amended {
        Some(c) if opts.message.trim().is_empty() => c.message.clone(),
        _ => normalize_message(&opts.message),
    };
    if let Some(hook) = before_write {
        // The same tree id build_tree will store, computed without writing anything.
        let (tree, summary) = tree_of(&reader, &mut |b| Ok(ObjectId::hash(b)))?;
        if let Some(p) = parent
            && !opts.allow_empty
            && Commit::load(&repo.store, &p)?.tree == tree
        {
            return Err(nothing());
        }
        hook(&PendingCommit {
            tree,
            summary,
            parents: parents.clone(),
            author: author.clone(),
            message: message.clone(),
            time,
            tz_offset_min: tz,
            code: code.clone(),
        })?;
    }
    let (tree, summary) = stored_tree(&repo.store, &reader)?;
    drop(reader);
    // The index hashes to `tree` while nothing has written it since it was read:
    // recorded, the next status need not read it. Best effort, like status's record.
    let _ = repo
        .index
        .record_tree(base.generation, base.stamp, tree, true);
    if let Some(p) = parent
        && !opts.allow_empty
        && Commit::load(&repo.store, &p)?.tree == tree
    {
        return Err(nothing());
    }
    let commit = Commit {
        format: COMMIT_FORMAT,
        tree,
        parents,
        author: author.clone(),
        time,
        tz_offset_min: tz,
        message,
        summary,
        code,
        selection: None,
    };
    let id = repo.store.put_commit(&commit.encode())?;
    // Objects must be durable before any ref names them.
    repo.store.flush()?;
    if let Some(f) = before_ref {
        f(id, &commit)?;
    }
    let head = repo.refs.head()?;
    let kind = if opts.amend {
        "commit (amend)"
    } else if head_commit.is_none() {
        "commit (initial)"
    } else {
        "commit"
    };
    let msg = format!("{kind}: {}", commit.subject());
    // An amend keeps the old author; the reflog records who replaced the commit.
    let author = if opts.amend {
        repo.reflog_identity()
    } else {
        author
    };
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
        root: commit.parents.is_empty(),
        commit,
    })
}

/// The root tree and summary of the index in `reader`, each tree object handed to `put`.
fn tree_of(
    reader: &IndexReader,
    put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
) -> Result<(ObjectId, Summary)> {
    let mut builder = TreeBuilder::new(put);
    reader.each(|p, e| builder.push(p, e))?;
    builder.finish()
}

/// Builds and stores the tree of the index in `reader`.
fn stored_tree(store: &ObjectStore, reader: &IndexReader) -> Result<(ObjectId, Summary)> {
    tree_of(reader, &mut |b| store.put(b))
}

/// Trims trailing whitespace on lines and surrounding blank lines, ending with one newline.
fn normalize_message(m: &str) -> String {
    let lines: Vec<&str> = m.lines().map(str::trim_end).collect();
    let text = lines.join("\n");
    format!("{}\n", text.trim_matches('\n'))
}

/// Why a commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// An empty or blank message.
    #[error("aborting commit due to empty commit message (use -m MESSAGE)")]
    EmptyMessage,
    /// The first commit with an empty index.
    #[error("nothing to commit (stage files with `dsv add`, or use --allow-empty)")]
    NothingStaged,
    /// The index equals HEAD's tree.
    #[error("nothing to commit (stage changes with `dsv add`, or use --allow-empty)")]
    NoChanges,
}

impl crate::error::ModuleError for CommitError {}

crate::error::module_error!(CommitError);
