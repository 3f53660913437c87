//! The JSON document every hook gets (stdin of a command, body of a webhook):
//! what happened, to which commit, and what changed in the dataset.
//!
//! The schema is documented in docs/hooks.md; `schema` names its version so a
//! receiver can refuse a document it does not understand.

use serde::Serialize;

use crate::error::Result;
use crate::hooks::config::Event;
use crate::id::ObjectId;
use crate::labels::compare::ObjectChangeKind;
use crate::layout::{FileSource, Layout};
use crate::object::{CodeVersion, Commit, Person};
use crate::ops::commit::PendingCommit;
use crate::ops::frame_attrs::{FrameAttributeTotals, PredictionTotals};
use crate::ops::label_diff::{ClassDelta, DatasetDiff, LabelDiffOptions, label_diff};
use crate::paths::display_path;
use crate::repo::Repository;

/// Version of the payload document.
pub const SCHEMA: &str = "dsv.hook/1";

/// Which repository an event happened in.
#[derive(Debug, Clone, Serialize)]
pub struct RepoInfo {
    /// Absolute path of the working tree.
    pub root: String,
    /// Its directory name.
    pub name: String,
}

/// The remote a push or a watched commit is about.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteRef {
    /// Remote name (`origin`).
    pub name: String,
    /// Its URL, credentials removed.
    pub url: String,
}

/// `branch-updated`: which branch moved, from where to where, and the commits it
/// gained.
#[derive(Debug, Clone, Serialize)]
pub struct BranchUpdate {
    /// The branch.
    pub branch: String,
    /// Its commit before (`null`: it had none).
    pub old: Option<String>,
    /// Its commit now.
    pub new: String,
    /// `true` when `old` is an ancestor of `new` (or there was no `old`); `false` for
    /// a reset backwards or to another line of history.
    pub fast_forward: bool,
    /// How many commits are reachable from `new` and not from `old`.
    pub commits_count: usize,
    /// Those commits, oldest first (parents before children), at most
    /// [`MAX_LISTED_COMMITS`]: the newest ones when there are more.
    pub commits: Vec<String>,
}

/// `pre-push`, `post-push`: the remote ref the push changes, as git's `pre-push`
/// input line names it (a delete has no new value).
#[derive(Debug, Clone, Serialize)]
pub struct PushUpdate {
    /// The remote ref (`refs/heads/main`, `refs/tags/v1`).
    #[serde(rename = "ref")]
    pub remote_ref: String,
    /// Its commit before (`null`: created).
    pub old: Option<String>,
    /// Its commit after (`null`: deleted).
    pub new: Option<String>,
    /// Whether the push deletes it.
    pub deleted: bool,
}

/// The most commits a `branch-updated` payload lists.
pub const MAX_LISTED_COMMITS: usize = 1000;

/// Frame files added, removed, modified, renamed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrameCounts {
    /// New frames.
    pub added: usize,
    /// Frames gone.
    pub removed: usize,
    /// Frames whose bytes changed.
    pub modified: usize,
    /// Frames moved with the same bytes.
    pub renamed: usize,
}

/// Object changes over all label files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectCounts {
    /// Objects added.
    pub added: usize,
    /// Objects removed.
    pub removed: usize,
    /// Boxes moved.
    pub moved: usize,
    /// Class changed.
    pub reclassified: usize,
    /// Attributes changed.
    pub attributes: usize,
}

/// What changed between `base` and the event's commit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeSummary {
    /// The commit compared against (the first parent; the previous HEAD for a checkout);
    /// `null` when compared with an empty dataset.
    pub base: Option<String>,
    /// Files in the new tree.
    pub files: u64,
    /// Bytes in the new tree.
    pub bytes: u64,
    /// Files added, removed, modified or renamed.
    pub files_changed: usize,
    /// Frame files.
    pub frames: FrameCounts,
    /// Label files that changed.
    pub label_files_changed: usize,
    /// Whether any label file changed.
    pub labels_changed: bool,
    /// Object changes inside the changed label files.
    pub objects: ObjectCounts,
    /// Per-class deltas over the changed frames.
    pub classes: Vec<ClassDelta>,
    /// Frame attribute changes (sidecar and label files): frames, attributes
    /// added/removed/changed, and frames per attribute value before and after.
    pub frame_attributes: FrameAttributeTotals,
    /// Prediction changes in the metadata sidecar: frames, predictions added,
    /// removed and changed.
    pub predictions: PredictionTotals,
    /// Label files that could not be parsed (they count as file changes only).
    pub warnings: Vec<String>,
    /// True when the label files were not available (`dsv watch` in a metadata-only
    /// mirror): only `files_changed` is counted; frame, label, object and class
    /// figures are left out (zero, empty) and `warnings` says so.
    pub partial: bool,
    /// Every changed path (new and old names); used by `paths` filters, not sent.
    #[serde(skip)]
    pub paths: Vec<String>,
}

/// The document a hook receives.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    /// `dsv.hook/1`.
    pub schema: &'static str,
    /// The event.
    pub event: Event,
    /// The repository.
    pub repository: RepoInfo,
    /// The branch HEAD is on (`null` when detached).
    pub branch: Option<String>,
    /// The commit (`null` for `pre-commit`: it does not exist yet).
    pub commit: Option<String>,
    /// Its root tree (for `pre-commit`, the tree the index would commit).
    pub tree: String,
    /// Parent commit ids.
    pub parents: Vec<String>,
    /// `post-checkout`: the commit HEAD was at before; `pre-push`/`post-push`: the
    /// remote branch's commit before the push; `remote-commit`: the commit fired
    /// before this one for the branch (`null` otherwise, or when there was none).
    pub previous: Option<String>,
    /// `pre-push`, `post-push`, `remote-commit`: the remote (`null` otherwise).
    pub remote: Option<RemoteRef>,
    /// Author.
    pub author: Person,
    /// Commit message.
    pub message: String,
    /// Commit time, RFC 3339 with the author's offset.
    pub time: String,
    /// Commit time, unix seconds.
    pub timestamp: i64,
    /// The git commit of the code repository around the dataset, if any.
    pub code: Option<CodeVersion>,
    /// What changed.
    pub summary: ChangeSummary,
    /// `branch-updated`: the move (absent for other events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<BranchUpdate>,
    /// `pre-push`, `post-push`: the remote ref and its move (absent for other events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushUpdate>,
}

impl Payload {
    /// The JSON bytes sent to hooks.
    pub fn to_json(&self) -> String {
        // Plain owned data always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Repository root and name.
pub fn repo_info(repo: &Repository) -> RepoInfo {
    let root = repo.root();
    RepoInfo {
        root: root.display().to_string(),
        name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// RFC 3339 with the given offset (UTC if it is out of range).
pub fn rfc3339(time: i64, tz_offset_min: i32) -> String {
    let ts = jiff::Timestamp::from_second(time).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let offset =
        jiff::tz::Offset::from_seconds(tz_offset_min * 60).unwrap_or(jiff::tz::Offset::UTC);
    ts.to_zoned(jiff::tz::TimeZone::fixed(offset))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn summarize(d: &DatasetDiff, base: Option<ObjectId>, files: u64, bytes: u64) -> ChangeSummary {
    let mut paths = Vec::with_capacity(d.files.len());
    for f in &d.files {
        paths.push(display_path(&f.path));
        if let Some(from) = &f.from {
            paths.push(display_path(from));
        }
    }
    let label_files = d.labels.len();
    ChangeSummary {
        base: base.map(|b| b.to_hex()),
        files,
        bytes,
        files_changed: d.files.len(),
        frames: FrameCounts {
            added: d.frames.added.len(),
            removed: d.frames.removed.len(),
            modified: d.frames.modified.len(),
            renamed: d.frames.renamed.len(),
        },
        label_files_changed: label_files + d.warnings.len(),
        // Frame attributes are labels of the frame (a reviewer's tag, the
        // weather); predictions are a model's output, so importing them (what a
        // retraining job may do) does not fire retraining again.
        labels_changed: label_files + d.warnings.len() > 0 || !d.frame_attribute_totals.is_empty(),
        objects: ObjectCounts {
            added: d.count(ObjectChangeKind::Added),
            removed: d.count(ObjectChangeKind::Removed),
            moved: d.count(ObjectChangeKind::Moved),
            reclassified: d.count(ObjectChangeKind::Reclassified),
            attributes: d.count(ObjectChangeKind::Attributes),
        },
        classes: d.classes.clone(),
        frame_attributes: d.frame_attribute_totals.clone(),
        predictions: d.prediction_totals.clone(),
        partial: false,
        warnings: d.warnings.iter().map(|w| w.to_string()).collect(),
        paths,
    }
}

fn layout_or_default(src: &dyn FileSource, warnings: &mut Vec<String>) -> Result<Layout> {
    Ok(match Layout::load(src)? {
        Ok(l) => l,
        Err(e) => {
            // A hook must still learn that a commit happened when its label rules are broken.
            warnings.push(format!("{e} (labels detected without it)"));
            Layout::new(crate::dsv_toml::DsvToml::default())
        }
    })
}

/// The change summary from commit `base` (or an empty dataset) to commit `new`.
pub fn summary_between(
    repo: &Repository,
    base: Option<ObjectId>,
    new: &Commit,
) -> Result<ChangeSummary> {
    let new_tree = new.tree;
    use crate::object::diff::{detect_renames, diff_trees};
    use crate::worktree::sources::TreeSource;
    let store = &repo.store;
    let old_tree = match base {
        Some(c) => Some(Commit::load(store, &c)?.tree),
        None => None,
    };
    let changes = detect_renames(diff_trees(store, old_tree.as_ref(), Some(&new_tree), &[])?);
    let (old_src, new_src) = (
        TreeSource::new(store, old_tree),
        TreeSource::new(store, Some(new_tree)),
    );
    let mut warnings = Vec::new();
    let lo = layout_or_default(&old_src, &mut warnings)?;
    let ln = layout_or_default(&new_src, &mut warnings)?;
    let from = base.map(|b| b.to_hex()).unwrap_or_else(|| "empty".into());
    let d = label_diff(
        &changes,
        (&old_src, &lo),
        (&new_src, &ln),
        from,
        new_tree.to_hex(),
        &LabelDiffOptions::default(),
    )?;
    let mut s = summarize(&d, base, new.summary.files, new.summary.bytes);
    s.warnings.extend(warnings);
    Ok(s)
}

/// The change summary from commit `base` to commit `new` from their trees alone,
/// for a repository that has the trees but not the label files (a metadata-only
/// mirror): files changed and the changed paths, marked `partial`.
pub fn tree_summary(
    repo: &Repository,
    base: Option<ObjectId>,
    new: &Commit,
) -> Result<ChangeSummary> {
    use crate::object::diff::{detect_renames, diff_trees};
    let old_tree = match base {
        Some(c) => Some(Commit::load(&repo.store, &c)?.tree),
        None => None,
    };
    let changes = detect_renames(diff_trees(
        &repo.store,
        old_tree.as_ref(),
        Some(&new.tree),
        &[],
    )?);
    let mut paths = Vec::with_capacity(changes.len());
    for c in &changes {
        paths.push(display_path(&c.path));
        if let Some(from) = &c.from {
            paths.push(display_path(from));
        }
    }
    Ok(ChangeSummary {
        base: base.map(|b| b.to_hex()),
        files: new.summary.files,
        bytes: new.summary.bytes,
        files_changed: changes.len(),
        partial: true,
        warnings: vec![
            "label files not downloaded (metadata-only mirror): frame, label and class counts left out"
                .into(),
        ],
        paths,
        ..ChangeSummary::default()
    })
}

/// The change summary from HEAD to the index (what a commit now would record).
pub fn summary_of_index(repo: &Repository, files: u64, bytes: u64) -> Result<ChangeSummary> {
    use crate::ops::label_diff::{DiffSpec, diff_repo};
    let spec = DiffSpec {
        staged: true,
        labels: true,
        ..DiffSpec::default()
    };
    let d = diff_repo(repo, &spec, &crate::progress::NoProgress)?;
    Ok(summarize(&d, repo.refs.head_commit()?, files, bytes))
}

/// The payload for an event about an existing commit.
pub fn for_commit(
    repo: &Repository,
    event: Event,
    commit_id: ObjectId,
    c: &Commit,
    branch: Option<String>,
    previous: Option<ObjectId>,
    summary: ChangeSummary,
) -> Payload {
    Payload {
        schema: SCHEMA,
        event,
        repository: repo_info(repo),
        branch,
        commit: Some(commit_id.to_hex()),
        tree: c.tree.to_hex(),
        parents: c.parents.iter().map(|p| p.to_hex()).collect(),
        previous: previous.map(|p| p.to_hex()),
        remote: None,
        author: c.author.clone(),
        message: c.message.clone(),
        time: rfc3339(c.time, c.tz_offset_min),
        timestamp: c.time,
        code: c.code.clone(),
        summary,
        update: None,
        push: None,
    }
}

/// The payload for a commit not made yet (`pre-commit`).
pub fn for_pending(
    repo: &Repository,
    event: Event,
    pending: &PendingCommit,
    branch: Option<String>,
    summary: ChangeSummary,
) -> Payload {
    Payload {
        schema: SCHEMA,
        event,
        repository: repo_info(repo),
        branch,
        commit: None,
        tree: pending.tree.to_hex(),
        parents: pending.parents.iter().map(|p| p.to_hex()).collect(),
        previous: None,
        remote: None,
        author: pending.author.clone(),
        message: pending.message.clone(),
        time: rfc3339(pending.time, pending.tz_offset_min),
        timestamp: pending.time,
        code: pending.code.clone(),
        summary,
        update: None,
        push: None,
    }
}
