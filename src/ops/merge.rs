//! `merge`, `cherry-pick` and `revert`: three-way merges of dataset versions.
//!
//! The three root trees (base, ours, theirs) are walked together and any
//! directory whose id is equal on two sides is settled without being read, so a
//! merge costs what changed, not what exists. A path changed on one side only
//! takes that side. A label file changed on both sides is merged frame by frame
//! and object by object ([`super::merge_labels`]); anything else changed on both
//! sides is a file-level conflict.
//!
//! A merge that stops on conflicts leaves its state in `.dsv/MERGE_STATE` (JSON,
//! written atomically before the worktree is touched) with `MERGE_HEAD`,
//! `ORIG_HEAD` and `MERGE_MSG` beside it for people and scripts. `--abort`
//! puts back HEAD's version of every path the merge or the user changed in the
//! index, and `--continue` commits once every conflict is resolved.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::compare::MatchOptions;
use crate::labels::layout::{FileSource, Layout, Role};
use crate::labels::{Format, FrameLabels, coco, cvat, kitti, voc, yolo};
use crate::meta::sidecar_path;
use crate::object::commit::COMMIT_FORMAT;
use crate::object::{Commit, EntryMode, Person, Tree, TreeEntry};
use crate::ops::diff::{FileState, diff_trees, flatten};
use crate::ops::events::{OpEvent, head_move};
use crate::ops::merge_labels::{LabelConflict, ids_are_stable, merge_frames};
use crate::ops::merge_meta::{MetaConflict, Resolution, merge_sidecar};
use crate::ops::sources::TreeSource;
use crate::ops::status::{hash_worktree_file, head_tree, stat_tracked};
use crate::refs::{HEADS, Head};
use crate::repo::Repository;
use crate::worktree::index::{IndexEdit, IndexEntry, IndexState, now_ns};
use crate::worktree::{display_path, write};

/// Version of the `MERGE_STATE` file.
pub const STATE_VERSION: u32 = 1;
/// The merge state file inside `.dsv/`.
pub const STATE_FILE: &str = "MERGE_STATE";

/// Which side wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The current branch.
    Ours,
    /// The branch or commit being merged in.
    Theirs,
}

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

/// How `merge` behaves.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Make a merge commit even when a fast-forward is possible.
    pub no_ff: bool,
    /// Refuse unless a fast-forward is possible.
    pub ff_only: bool,
    /// Decide every conflict for this side instead of stopping.
    pub strategy: Option<Side>,
    /// Message of the merge commit.
    pub message: Option<String>,
}

/// How a merge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to do: their commit is already in our history.
    UpToDate,
    /// HEAD moved forward to their commit.
    FastForward,
    /// A new commit was made.
    Committed,
    /// Stopped on conflicts; the state is in `.dsv/MERGE_STATE`.
    Conflicts,
}

/// What a merge, cherry-pick or revert did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The command.
    pub kind: MergeKind,
    /// The commit merged in.
    pub theirs: ObjectId,
    /// The merge base.
    pub base: Option<ObjectId>,
    /// The new commit (or the fast-forward target).
    pub commit: Option<ObjectId>,
    /// Files written into the working tree.
    pub written: u64,
    /// Files removed from the working tree.
    pub removed: u64,
    /// Label files both sides changed that were merged at object level.
    pub label_merged: Vec<String>,
    /// The frame-metadata sidecar, when both sides changed it and it was merged
    /// row by row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_merged: Option<String>,
    /// Conflicts (for `Conflicts`; resolved by `--strategy` otherwise not listed).
    pub conflicts: Vec<FileConflict>,
    /// The selection commit used as the merge base, when `merge` folded a
    /// selection's branch back (see [`selection_base`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<ObjectId>,
    /// What hooks fire on: the commit recorded, the merge, the branch moved.
    #[serde(skip)]
    pub events: Vec<OpEvent>,
}

/// The result of merging three trees: new states of paths that differ from ours.
#[derive(Debug, Default)]
struct TreeMerge {
    /// Path -> new state (`None`: remove), for paths whose merged state differs from ours.
    updates: BTreeMap<Vec<u8>, Option<FileState>>,
    /// Conflicted paths.
    conflicts: Vec<(Vec<u8>, FileConflict)>,
    /// Label files merged at object level.
    label_merged: Vec<String>,
    /// The sidecar, when merged row by row.
    meta_merged: Option<String>,
}

type Slot = Option<(EntryMode, ObjectId, u64)>;

fn slot(e: Option<&TreeEntry>) -> Slot {
    e.map(|e| (e.mode, e.id, e.size))
}

fn state_of(s: Slot) -> Option<FileState> {
    s.map(|(mode, id, size)| FileState { mode, id, size })
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = prefix.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Everything the three-way walk needs.
struct Merger<'a> {
    repo: &'a Repository,
    strategy: Option<Side>,
    ours_src: TreeSource<'a>,
    layout: Option<Layout>,
    /// Our version's frame-metadata sidecar path (merged row by row).
    sidecar: Option<String>,
    out: TreeMerge,
}

impl Merger<'_> {
    /// Files below one entry (a directory is flattened), keyed by full path.
    fn files(&self, s: Slot, path: &[u8]) -> Result<BTreeMap<Vec<u8>, FileState>> {
        let mut m = BTreeMap::new();
        match s {
            Some((EntryMode::Dir, id, _)) => {
                for (p, st) in flatten(&self.repo.store, &id)? {
                    m.insert(join(path, &p), st);
                }
            }
            Some(_) => {
                if let Some(st) = state_of(s) {
                    m.insert(path.to_vec(), st);
                }
            }
            None => {}
        }
        Ok(m)
    }

    /// Merges one directory level (`None` trees are empty).
    fn dir(
        &mut self,
        b: Option<ObjectId>,
        o: Option<ObjectId>,
        t: Option<ObjectId>,
        prefix: &[u8],
    ) -> Result<()> {
        crate::object::tree::check_dir_depth(prefix)?;
        let load = |id: Option<ObjectId>| -> Result<Tree> {
            match id {
                Some(id) => Tree::load(&self.repo.store, &id),
                None => Ok(Tree::default()),
            }
        };
        let (tb, to, tt) = (load(b)?, load(o)?, load(t)?);
        let mut names: Vec<&[u8]> = tb
            .entries
            .iter()
            .chain(&to.entries)
            .chain(&tt.entries)
            .map(|e| e.name.as_slice())
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let (sb, so, st) = (slot(tb.get(name)), slot(to.get(name)), slot(tt.get(name)));
            self.entry(sb, so, st, &join(prefix, name))?;
        }
        Ok(())
    }

    fn entry(&mut self, b: Slot, o: Slot, t: Slot, path: &[u8]) -> Result<()> {
        let same = |x: &Slot, y: &Slot| match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => x.0 == y.0 && x.1 == y.1,
            _ => false,
        };
        if same(&o, &t) || same(&b, &t) {
            return Ok(());
        }
        if same(&b, &o) {
            // Only they changed it: take their version of everything below.
            let (mo, mt) = (self.files(o, path)?, self.files(t, path)?);
            match (o, t) {
                (Some((EntryMode::Dir, x, _)), Some((EntryMode::Dir, y, _))) => {
                    for c in diff_trees(&self.repo.store, Some(&x), Some(&y), &[])? {
                        self.out.updates.insert(join(path, &c.path), c.new);
                    }
                }
                _ => {
                    for p in mo.keys() {
                        if !mt.contains_key(p) {
                            self.out.updates.insert(p.clone(), None);
                        }
                    }
                    for (p, s) in mt {
                        if mo.get(&p) != Some(&s) {
                            self.out.updates.insert(p, Some(s));
                        }
                    }
                }
            }
            return Ok(());
        }
        let is_dir = |s: &Slot| matches!(s, Some((EntryMode::Dir, _, _)));
        if is_dir(&o) && is_dir(&t) {
            let id = |s: Slot| s.filter(|x| x.0 == EntryMode::Dir).map(|x| x.1);
            return self.dir(id(b), id(o), id(t), path);
        }
        // A file on at least one side: settle every path below this name one by one.
        let (mb, mo, mt) = (
            self.files(b, path)?,
            self.files(o, path)?,
            self.files(t, path)?,
        );
        let mut paths: Vec<&Vec<u8>> = mb.keys().chain(mo.keys()).chain(mt.keys()).collect();
        paths.sort_unstable();
        paths.dedup();
        for p in paths {
            let (fb, fo, ft) = (mb.get(p).copied(), mo.get(p).copied(), mt.get(p).copied());
            if fo == ft || fb == ft {
                continue;
            }
            if fb == fo {
                self.out.updates.insert(p.clone(), ft);
                continue;
            }
            self.file(p, fb, fo, ft)?;
        }
        Ok(())
    }

    /// A file both sides changed.
    fn file(
        &mut self,
        path: &[u8],
        b: Option<FileState>,
        o: Option<FileState>,
        t: Option<FileState>,
    ) -> Result<()> {
        let shown = display_path(path);
        let kind = match (&b, &o, &t) {
            (None, _, _) => ConflictKind::AddAdd,
            (_, None, _) | (_, _, None) => ConflictKind::ModifyDelete,
            _ => ConflictKind::Content,
        };
        let mut conflict = FileConflict {
            path: shown.clone(),
            kind,
            format: None,
            base: b,
            ours: o,
            theirs: t,
            resolved_ours: o,
            resolved_theirs: t,
            labels: Vec::new(),
            meta: Vec::new(),
            resolved: false,
        };
        let files = match (o, t) {
            (Some(fo), Some(ft))
                if fo.mode != EntryMode::Symlink && ft.mode != EntryMode::Symlink =>
            {
                Some((fo, ft))
            }
            _ => None,
        };
        let is_sidecar = self.sidecar.as_deref() == Some(shown.as_str());
        if let Some((fo, ft)) = files
            && is_sidecar
            && let Some((ro, rt, items)) = self.sidecar_rows(&shown, b, fo, ft)?
        {
            self.out.meta_merged = Some(shown.clone());
            if items.is_empty() {
                if ro != fo {
                    self.out.updates.insert(path.to_vec(), Some(ro));
                }
                return Ok(());
            }
            conflict.kind = ConflictKind::Metadata;
            conflict.resolved_ours = Some(ro);
            conflict.resolved_theirs = Some(rt);
            conflict.meta = items;
        } else if let Some((fo, ft)) = files
            && !is_sidecar
            && let Some((format, merged)) = self.labels(&shown, b, fo, ft)?
        {
            self.out.label_merged.push(shown.clone());
            let (ro, rt, items) = merged;
            if items.is_empty() {
                self.out.updates.insert(path.to_vec(), Some(ro));
                return Ok(());
            }
            conflict.kind = ConflictKind::Labels;
            conflict.format = Some(format);
            conflict.resolved_ours = Some(ro);
            conflict.resolved_theirs = Some(rt);
            conflict.labels = items;
        }
        match self.strategy {
            Some(side) => {
                let pick = match side {
                    Side::Ours => conflict.resolved_ours,
                    Side::Theirs => conflict.resolved_theirs,
                };
                if pick != o {
                    self.out.updates.insert(path.to_vec(), pick);
                }
            }
            None => self.out.conflicts.push((path.to_vec(), conflict)),
        }
        Ok(())
    }

    /// Merges the frame-metadata sidecar row by row; `None` when a version does
    /// not parse (the caller merges the file whole).
    fn sidecar_rows(
        &self,
        path: &str,
        b: Option<FileState>,
        o: FileState,
        t: FileState,
    ) -> Result<Option<(FileState, FileState, Vec<MetaConflict>)>> {
        let store = &self.repo.store;
        let base = b.map(|b| store.get(&b.id)).transpose()?;
        let (ours, theirs) = (store.get(&o.id)?, store.get(&t.id)?);
        let Some(m) = merge_sidecar(path, base.as_deref(), &ours, &theirs) else {
            return Ok(None);
        };
        let settle = |r: Resolution| -> Result<FileState> {
            Ok(match r {
                Resolution::Ours => o,
                Resolution::Theirs => t,
                Resolution::Written(bytes) => FileState {
                    mode: o.mode,
                    id: store.put(&bytes)?,
                    size: bytes.len() as u64,
                },
            })
        };
        Ok(Some((settle(m.ours)?, settle(m.theirs)?, m.conflicts)))
    }

    /// Merges a label file at frame and object level; `None` when the path is not
    /// a label file or a version does not parse (the caller merges the file whole).
    #[allow(clippy::type_complexity)]
    fn labels(
        &self,
        path: &str,
        b: Option<FileState>,
        o: FileState,
        t: FileState,
    ) -> Result<Option<(Format, (FileState, FileState, Vec<LabelConflict>))>> {
        let Some(layout) = &self.layout else {
            return Ok(None);
        };
        let store = &self.repo.store;
        let ours_bytes = store.get(&o.id)?;
        let Role::Label(format) = layout.role(path, &ours_bytes) else {
            return Ok(None);
        };
        let parse = |bytes: &[u8]| -> Result<Option<Vec<FrameLabels>>> {
            Ok(layout.parse(&self.ours_src, path, format, bytes)?.ok())
        };
        let base = match b {
            Some(b) => match parse(&store.get(&b.id)?)? {
                Some(f) => f,
                None => return Ok(None),
            },
            None => Vec::new(),
        };
        let theirs_bytes = store.get(&t.id)?;
        let (Some(ours), Some(theirs)) = (parse(&ours_bytes)?, parse(&theirs_bytes)?) else {
            return Ok(None);
        };
        let opts = MatchOptions {
            use_ids: ids_are_stable(format),
            ..MatchOptions::default()
        };
        let Some(m) = merge_frames(&base, &ours, &theirs, &opts) else {
            return Ok(None);
        };
        // A resolution equal to one side's labels keeps that side's file byte for byte.
        let settle = |frames: &[FrameLabels]| -> Result<Option<FileState>> {
            if frames == ours.as_slice() {
                return Ok(Some(o));
            }
            if frames == theirs.as_slice() {
                return Ok(Some(t));
            }
            let Some(bytes) =
                self.write(path, format, frames, (&ours_bytes, &ours, &theirs_bytes))?
            else {
                return Ok(None);
            };
            Ok(Some(FileState {
                mode: o.mode,
                id: store.put(&bytes)?,
                size: bytes.len() as u64,
            }))
        };
        // Without conflicts both resolutions are the same merge: write it once.
        let ro = settle(&m.ours)?;
        let rt = if m.conflicts.is_empty() {
            ro
        } else {
            settle(&m.theirs)?
        };
        let (Some(ro), Some(rt)) = (ro, rt) else {
            return Ok(None);
        };
        Ok(Some((format, (ro, rt, m.conflicts))))
    }

    /// Writes frames with the format's writer; `None` when it cannot (the caller
    /// then merges the file whole). A COCO file keeps the layout of our version
    /// (`info`, `licenses`, categories and ids; see [`super::coco_layout`]).
    fn write(
        &self,
        path: &str,
        format: Format,
        frames: &[FrameLabels],
        (ours, ours_frames, theirs): (&[u8], &[FrameLabels], &[u8]),
    ) -> Result<Option<Vec<u8>>> {
        let one = || match frames {
            [f] => Some(f),
            _ => None,
        };
        Ok(match format {
            Format::Coco => super::coco_layout::write_like(ours, ours_frames, &[theirs], frames)
                .or_else(|| coco::write(frames).ok()),
            Format::Cvat => cvat::write(frames).ok(),
            Format::Voc => one().and_then(|f| voc::write(f).ok()),
            Format::Kitti => one().and_then(|f| kitti::write(f).ok()),
            Format::Yolo => match one() {
                None => None,
                Some(f) => {
                    let names = self
                        .layout
                        .as_ref()
                        .map(|l| l.class_names(&self.ours_src, path))
                        .transpose()?
                        .and_then(|r| r.ok())
                        .flatten();
                    match names {
                        Some(n) => yolo::write_with_names(f, &n).ok(),
                        None => yolo::write(f).ok(),
                    }
                }
            },
        })
    }
}

/// Merges three trees: the states that differ from ours, and the conflicts.
fn merge_trees(
    repo: &Repository,
    base: Option<ObjectId>,
    ours: Option<ObjectId>,
    theirs: Option<ObjectId>,
    strategy: Option<Side>,
) -> Result<TreeMerge> {
    let ours_src = TreeSource::new(&repo.store, ours);
    // A dsv.toml that does not parse leaves label files to the file-level merge.
    let layout = Layout::load(&ours_src)?.ok();
    let sidecar = match &layout {
        Some(l) => Some(sidecar_path(&l.toml, &|p| ours_src.exists(p))?),
        None => None,
    };
    let mut m = Merger {
        repo,
        strategy,
        ours_src,
        layout,
        sidecar,
        out: TreeMerge::default(),
    };
    if base == ours && base.is_some() {
        for c in diff_trees(&repo.store, ours.as_ref(), theirs.as_ref(), &[])? {
            m.out.updates.insert(c.path, c.new);
        }
    } else {
        m.dir(base, ours, theirs, &[])?;
    }
    Ok(m.out)
}

/// The best common ancestor of two commits: a commit reachable from both that no
/// other such commit descends from (the newest of them when there are several).
pub fn merge_base(repo: &Repository, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>> {
    let from_a = ancestors(repo, [a])?;
    let from_b = ancestors(repo, [b])?;
    let common: Vec<ObjectId> = from_b.intersection(&from_a).copied().collect();
    if common.is_empty() {
        return Ok(None);
    }
    // Best common ancestors: those no other common ancestor descends from. Commit
    // times only break a tie between several (a criss-cross history); they never
    // decide on their own, so a skewed clock cannot pick an older base.
    let mut parents = Vec::new();
    for id in &common {
        parents.extend(Commit::load(&repo.store, id)?.parents);
    }
    let shadowed = ancestors(repo, parents)?;
    let mut best: Vec<(i64, ObjectId)> = Vec::new();
    for id in common.into_iter().filter(|c| !shadowed.contains(c)) {
        best.push((Commit::load(&repo.store, &id)?.time, id));
    }
    best.sort();
    Ok(best.last().map(|(_, id)| *id))
}

/// The selection commit to merge `theirs` back against, if any: walking back from
/// `theirs` along first parents and stopping at the first commit reachable from
/// `ours`, the first commit met that records a selection (`dsv query EXPR
/// --branch`), so the nearest to `theirs` when there are several.
///
/// A selection's tree holds only the frames it selected, so against the ordinary
/// base (the queried commit) every frame left out would look deleted on their
/// side. Against the selection itself, a path it does not hold is absent on base
/// and theirs and keeps our version; what was changed on the branch after the
/// selection (edits, additions, deletions) is what gets merged.
///
/// Only first parents are followed because they say what a branch is: a branch
/// that merged a selection branch in as a second parent holds the whole dataset
/// (the selection was folded into it) and is merged the ordinary way, while a
/// selection branch that merged its source in is still a subset (against their
/// common base, the frames it left out are deleted on its side, so the merge
/// does not bring them back).
/// A selection already merged back is reachable from `ours` and no longer
/// counts: a later merge of the same branch uses the ordinary base, the branch
/// tip merged last, whose tree is the same subset.
pub fn selection_base(
    repo: &Repository,
    ours: ObjectId,
    theirs: ObjectId,
) -> Result<Option<ObjectId>> {
    let known = ancestors(repo, [ours])?;
    let mut next = Some(theirs);
    let mut seen = HashSet::new();
    while let Some(id) = next {
        if known.contains(&id) || !seen.insert(id) {
            break;
        }
        let c = Commit::load(&repo.store, &id)?;
        if c.selection.is_some() {
            return Ok(Some(id));
        }
        next = c.parents.first().copied();
    }
    Ok(None)
}

/// Every commit reachable from `starts`, the starts included.
fn ancestors(
    repo: &Repository,
    starts: impl IntoIterator<Item = ObjectId>,
) -> Result<HashSet<ObjectId>> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<ObjectId> = starts.into_iter().collect();
    while let Some(id) = queue.pop_front() {
        if seen.insert(id) {
            queue.extend(Commit::load(&repo.store, &id)?.parents);
        }
    }
    Ok(seen)
}

fn state_path(repo: &Repository) -> PathBuf {
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
            crate::refs::quote_limited(&e.to_string(), 200)
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
fn is_committed(repo: &Repository, state: &MergeState) -> Result<bool> {
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

fn save_state(repo: &Repository, state: &MergeState) -> Result<()> {
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Refused(format!("internal: encoding the merge state: {e}")))?;
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
fn update_state(repo: &Repository, state: &MergeState) -> Result<()> {
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Refused(format!("internal: encoding the merge state: {e}")))?;
    repo.storage.write_atomic(&state_path(repo), &json)
}

fn clear_state(repo: &Repository) -> Result<()> {
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

fn in_progress(s: &MergeState, what: &str) -> Error {
    let cmd = s.kind.command();
    if !s.applied {
        return Error::Refused(format!(
            "cannot {what}: a {cmd} of {} was interrupted before its files were written (run `dsv {cmd} {}` again to finish it, or `dsv {cmd} --abort`)",
            s.theirs_name, s.theirs_name
        ));
    }
    Error::Refused(format!(
        "cannot {what}: a {cmd} is in progress (finish it with `dsv {cmd} --continue`, or `dsv {cmd} --abort`)"
    ))
}

/// What running `kind` of `theirs` again finds: a state the same command left
/// when it was interrupted is taken up (`Some`), any other state refuses.
fn resumable(repo: &Repository, kind: MergeKind, theirs: ObjectId) -> Result<Option<MergeState>> {
    let Some(s) = load_state(repo)? else {
        return Ok(None);
    };
    let same = s.kind == kind && s.theirs == theirs && repo.refs.head_commit()? == Some(s.head);
    // An applied state with conflicts is the user's to resolve; one without had
    // only its commit left to make.
    if same && (!s.applied || s.conflicts.is_empty()) {
        return Ok(Some(s));
    }
    Err(in_progress(&s, kind.command()))
}

/// Whether `index_tree` is what applying `changes` (the staged ones) to `index` gives:
/// the index an interrupted run of the same merge already wrote.
fn index_already_applied(
    index: &IndexState,
    changes: &[(Vec<u8>, Option<FileState>, bool)],
    index_tree: ObjectId,
) -> Result<bool> {
    let mut entries = index.entries.clone();
    for (path, st, stage) in changes {
        if !*stage {
            continue;
        }
        match st {
            Some(st) => {
                // Only mode, id and size go into a tree.
                let stat = crate::store::chunk::StatStamp {
                    size: st.size,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    ino: 0,
                };
                entries.insert(
                    path.clone(),
                    IndexEntry {
                        mode: st.mode,
                        id: st.id,
                        stat,
                    },
                );
            }
            None => {
                entries.remove(path);
            }
        }
    }
    Ok(super::commit::index_tree_id(&entries)? == index_tree)
}

/// Whether the worktree file at `path` holds `want` (`None`: no file).
fn worktree_is(
    repo: &Repository,
    index: &IndexState,
    path: &[u8],
    want: Option<&FileState>,
) -> Result<bool> {
    let f = stat_tracked(repo.root(), path);
    Ok(match (f, want) {
        (None, None) => true,
        (Some(f), Some(w)) => {
            if f.mode != w.mode {
                false
            } else if let Some(e) = index.entries.get(path)
                && e.id == w.id
                && index.is_clean(e, &f.stat)
            {
                true
            } else {
                hash_worktree_file(repo.root(), &f)? == w.id
            }
        }
        _ => false,
    })
}

fn local_changes_error(paths: &[Vec<u8>], what: &str) -> Error {
    let mut list: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| format!("  {}", display_path(p)))
        .collect();
    if paths.len() > 10 {
        list.push(format!("  ... and {} more", paths.len() - 10));
    }
    Error::Refused(format!(
        "your local changes to these files would be overwritten by {what}:\n{}\ncommit them first (or restore them)",
        list.join("\n")
    ))
}

/// Writes and removes worktree files, then records them in the index in one transaction.
/// `stage` says which written paths get index entries (conflicted files keep ours).
fn apply(
    repo: &Repository,
    changes: &[(Vec<u8>, Option<FileState>, bool)],
    stamp: i64,
) -> Result<(u64, u64)> {
    let mut edits = Vec::new();
    let (mut written, mut removed) = (0, 0);
    for (path, st, stage) in changes {
        match st {
            Some(st) => {
                let stat = write::write_entry(
                    repo.root(),
                    path,
                    st.mode,
                    &st.id,
                    st.size,
                    &repo.store,
                    repo.storage.as_ref(),
                )?;
                written += 1;
                if *stage {
                    edits.push(IndexEdit::Set(
                        path.clone(),
                        IndexEntry {
                            mode: st.mode,
                            id: st.id,
                            stat,
                        },
                    ));
                }
            }
            None => {
                write::remove_entry(repo.root(), path, repo.storage.as_ref())?;
                removed += 1;
                if *stage {
                    edits.push(IndexEdit::Remove(path.clone()));
                }
            }
        }
    }
    if !edits.is_empty() {
        repo.index.apply(&edits, stamp)?;
    }
    Ok((written, removed))
}

/// Three-way merges `theirs` into HEAD against `base`; the shared core of merge,
/// cherry-pick and revert. `ff` allows moving HEAD to `theirs` without a commit.
#[allow(clippy::too_many_arguments)]
fn run_merge(
    repo: &Repository,
    kind: MergeKind,
    head: Option<ObjectId>,
    base: Option<ObjectId>,
    theirs: ObjectId,
    theirs_tree: Option<ObjectId>,
    base_tree: Option<ObjectId>,
    ff: bool,
    strategy: Option<Side>,
    message: String,
    author: Option<Person>,
    theirs_name: &str,
    resuming: bool,
) -> Result<MergeReport> {
    let stamp = now_ns();
    let ours_tree = head_tree(repo)?;
    let index = repo.index.load()?;
    let index_tree = super::commit::index_tree_id(&index.entries)?;
    let clean_index = match ours_tree {
        Some(t) => index_tree == t,
        None => index.entries.is_empty(),
    };
    let staged = || {
        Error::Refused(format!(
            "cannot {}: you have staged changes (commit them, or unstage them with `dsv restore --staged`)",
            kind.command()
        ))
    };
    // A fast-forward or a resumed merge that was killed after its index transaction
    // finds the index it wrote: that is not a user's staged change.
    let may_be_applied = resuming || ff || head.is_none();
    if !clean_index && !may_be_applied {
        return Err(staged());
    }
    let tm = merge_trees(repo, base_tree, ours_tree, theirs_tree, strategy)?;
    // Objects written by the label merge must be durable before the index names them.
    repo.store.flush()?;
    let mut changes: Vec<(Vec<u8>, Option<FileState>, bool)> = Vec::new();
    for (p, st) in &tm.updates {
        changes.push((p.clone(), *st, true));
    }
    for (p, c) in &tm.conflicts {
        if c.resolved_ours != c.ours {
            changes.push((p.clone(), c.resolved_ours, false));
        }
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    if !clean_index && !index_already_applied(&index, &changes, index_tree)? {
        return Err(staged());
    }
    // Refuse before touching anything if a file to change has local changes.
    let mut dirty = Vec::new();
    for (p, new, _) in &changes {
        let ours = index.entries.get(p).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        if !worktree_is(repo, &index, p, ours.as_ref())?
            && !worktree_is(repo, &index, p, new.as_ref())?
        {
            dirty.push(p.clone());
        }
    }
    for (p, _) in &tm.conflicts {
        if changes.iter().any(|c| c.0 == *p) {
            // Checked above: ours, or the resolution the merge writes there.
            continue;
        }
        let ours = index.entries.get(p).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        if !worktree_is(repo, &index, p, ours.as_ref())? && !dirty.contains(p) {
            dirty.push(p.clone());
        }
    }
    if !dirty.is_empty() {
        dirty.sort();
        return Err(local_changes_error(&dirty, kind.command()));
    }
    let mut report = MergeReport {
        outcome: Outcome::Committed,
        kind,
        theirs,
        base,
        commit: None,
        written: 0,
        removed: 0,
        label_merged: tm.label_merged.clone(),
        meta_merged: tm.meta_merged.clone(),
        conflicts: Vec::new(),
        selection: None,
        events: Vec::new(),
    };
    let Some(head) = head.filter(|_| !ff) else {
        // Fast-forward: write their files, then move HEAD.
        let (w, r) = apply(repo, &changes, stamp)?;
        report.written = w;
        report.removed = r;
        let moved = move_head(
            repo,
            theirs,
            &format!("{}: fast-forward to {theirs_name}", kind.command()),
        )?;
        report.events.push(OpEvent::Merged {
            commit: theirs,
            previous: head,
        });
        report.events.extend(moved);
        report.outcome = Outcome::FastForward;
        report.commit = Some(theirs);
        return Ok(report);
    };
    let mut state = MergeState {
        applied: false,
        version: STATE_VERSION,
        kind,
        head,
        theirs,
        theirs_name: theirs_name.to_string(),
        base,
        message,
        author,
        touched: changes.iter().map(|c| display_path(&c.0)).collect(),
        conflicts: tm.conflicts.iter().map(|(_, c)| c.clone()).collect(),
    };
    // The state is on disk before the worktree changes, so --abort always works.
    save_state(repo, &state)?;
    let (w, r) = apply(repo, &changes, stamp)?;
    state.applied = true;
    update_state(repo, &state)?;
    report.written = w;
    report.removed = r;
    if !state.conflicts.is_empty() {
        report.outcome = Outcome::Conflicts;
        report.conflicts = state.conflicts;
        return Ok(report);
    }
    let (id, events) = finish(repo, &state)?;
    report.commit = Some(id);
    report.events = events;
    Ok(report)
}

/// Moves HEAD (its branch, or a detached HEAD) to `to`; returns the branch move.
fn move_head(repo: &Repository, to: ObjectId, msg: &str) -> Result<Option<OpEvent>> {
    let (time, _) = repo.now()?;
    let who = repo.reflog_identity();
    let head = repo.refs.head()?;
    let old = repo.refs.head_commit()?;
    match &head {
        Head::Branch(b) => repo
            .refs
            .update(&format!("{HEADS}{b}"), to, &who, time, msg)?,
        Head::Detached(_) => repo.refs.set_head(&Head::Detached(to), &who, time, msg)?,
    }
    Ok(head_move(&head, old, to))
}

/// Commits the index as the result of `state` and clears the state; returns the
/// commit and what hooks fire on.
fn finish(repo: &Repository, state: &MergeState) -> Result<(ObjectId, Vec<OpEvent>)> {
    let index = repo.index.load()?;
    let (tree, summary) = super::commit::build_tree(&repo.store, &index.entries)?;
    let committer = repo.identity()?;
    let (time, tz) = repo.now()?;
    let parents = match state.kind {
        MergeKind::Merge => vec![state.head, state.theirs],
        MergeKind::CherryPick | MergeKind::Revert => vec![state.head],
    };
    if state.kind != MergeKind::Merge && Commit::load(&repo.store, &state.head)?.tree == tree {
        clear_state(repo)?;
        return Err(Error::Refused(format!(
            "nothing to commit: the {} changes nothing on this branch",
            state.kind.command()
        )));
    }
    let commit = Commit {
        format: COMMIT_FORMAT,
        tree,
        parents,
        author: state.author.clone().unwrap_or(committer),
        time,
        tz_offset_min: tz,
        message: normalize(&state.message),
        summary,
        code: super::commit::code_version(repo.root()),
        selection: None,
    };
    let id = repo.store.put_commit(&commit.encode())?;
    repo.store.flush()?;
    let moved = move_head(
        repo,
        id,
        &format!("{}: {}", state.kind.command(), commit.subject()),
    )?;
    clear_state(repo)?;
    let mut events = vec![OpEvent::Committed(id)];
    if state.kind == MergeKind::Merge {
        events.push(OpEvent::Merged {
            commit: id,
            previous: Some(state.head),
        });
    }
    events.extend(moved);
    Ok((id, events))
}

fn normalize(m: &str) -> String {
    let lines: Vec<&str> = m.lines().map(str::trim_end).collect();
    format!("{}\n", lines.join("\n").trim_matches('\n'))
}

fn tree_of(repo: &Repository, c: Option<ObjectId>) -> Result<Option<ObjectId>> {
    c.map(|c| Commit::load(&repo.store, &c).map(|c| c.tree))
        .transpose()
}

/// `dsv merge THEIRS`: fast-forward or three-way merge of a commit into HEAD.
pub fn merge(
    repo: &Repository,
    theirs: ObjectId,
    theirs_name: &str,
    opts: &MergeOptions,
) -> Result<MergeReport> {
    repo.require_write()?;
    let resume = resumable(repo, MergeKind::Merge, theirs)?;
    if let Some(s) = &resume
        && s.applied
    {
        return finish_resumed(repo, s);
    }
    let head = repo.refs.head_commit()?;
    let base = match head {
        Some(h) => merge_base(repo, h, theirs)?,
        None => None,
    };
    let up_to_date = base == Some(theirs);
    if up_to_date {
        return Ok(MergeReport {
            outcome: Outcome::UpToDate,
            kind: MergeKind::Merge,
            theirs,
            base,
            commit: head,
            written: 0,
            removed: 0,
            label_merged: Vec::new(),
            meta_merged: None,
            conflicts: Vec::new(),
            selection: None,
            events: Vec::new(),
        });
    }
    // Merging a selection back: its commit is the base, so what it left out is
    // not taken as deleted, and HEAD never moves to the subset.
    let selection = match head {
        Some(h) => selection_base(repo, h, theirs)?,
        None => None,
    };
    let base = selection.or(base);
    let can_ff = selection.is_none() && (head.is_none() || base == head);
    if opts.ff_only && !can_ff {
        return Err(Error::Refused(match selection {
            Some(s) => format!(
                "not possible to fast-forward: {theirs_name} holds a selection ({}) made by `dsv query`; merging it back needs a merge commit (merge without --ff-only)",
                s.short()
            ),
            None => format!(
                "not possible to fast-forward: {theirs_name} and HEAD have diverged (merge without --ff-only)"
            ),
        }));
    }
    let ff = can_ff && (!opts.no_ff || head.is_none());
    let branch = match repo.refs.head()? {
        Head::Branch(b) => b,
        Head::Detached(_) => "HEAD".into(),
    };
    let message = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Merge {theirs_name} into {branch}"));
    let mut report = run_merge(
        repo,
        MergeKind::Merge,
        head,
        base,
        theirs,
        tree_of(repo, Some(theirs))?,
        tree_of(repo, base)?,
        ff,
        opts.strategy,
        message,
        None,
        theirs_name,
        resume.is_some(),
    )?;
    report.selection = selection;
    Ok(report)
}

/// `dsv cherry-pick REV`: applies what REV changed (against its parent) onto HEAD.
pub fn cherry_pick(
    repo: &Repository,
    rev: ObjectId,
    name: &str,
    strategy: Option<Side>,
) -> Result<MergeReport> {
    pick_or_revert(repo, MergeKind::CherryPick, rev, name, strategy)
}

/// `dsv revert REV`: undoes what REV changed (against its parent) on HEAD.
pub fn revert(
    repo: &Repository,
    rev: ObjectId,
    name: &str,
    strategy: Option<Side>,
) -> Result<MergeReport> {
    pick_or_revert(repo, MergeKind::Revert, rev, name, strategy)
}

fn pick_or_revert(
    repo: &Repository,
    kind: MergeKind,
    rev: ObjectId,
    name: &str,
    strategy: Option<Side>,
) -> Result<MergeReport> {
    repo.require_write()?;
    let resume = resumable(repo, kind, rev)?;
    if let Some(s) = &resume
        && s.applied
    {
        return finish_resumed(repo, s);
    }
    let head = repo.refs.head_commit()?.ok_or_else(|| {
        Error::Refused(format!(
            "cannot {}: the current branch has no commits yet",
            kind.command()
        ))
    })?;
    let c = Commit::load(&repo.store, &rev)?;
    if c.parents.len() > 1 {
        return Err(Error::Refused(format!(
            "cannot {} {name}: it is a merge commit (pick or revert one of the commits it merged instead)",
            kind.command()
        )));
    }
    if let Some(sel) = &c.selection {
        // Against its parent a selection deletes every frame it left out.
        return Err(Error::Refused(format!(
            "cannot {} {name}: it is a selection of {} (`dsv query`), which holds only the selected frames; merge the selection's branch to bring its later commits back, or pick those commits",
            kind.command(),
            sel.of.short()
        )));
    }
    let parent = c.parents.first().copied();
    let parent_tree = tree_of(repo, parent)?;
    let (base_tree, theirs_tree, message, author) = match kind {
        MergeKind::Revert => (
            Some(c.tree),
            parent_tree,
            format!("Revert \"{}\"\n\nThis reverts commit {rev}.\n", c.subject()),
            None,
        ),
        _ => (
            parent_tree,
            Some(c.tree),
            c.message.clone(),
            Some(c.author.clone()),
        ),
    };
    run_merge(
        repo,
        kind,
        Some(head),
        parent,
        rev,
        theirs_tree,
        base_tree,
        false,
        strategy,
        message,
        author,
        name,
        resume.is_some(),
    )
}

/// Makes the commit of a merge whose files are written and conflicts resolved: for
/// `--continue`, and for a run killed after it wrote its files (the state says so),
/// what the uninterrupted run would have done last.
fn finish_resumed(repo: &Repository, state: &MergeState) -> Result<MergeReport> {
    let (id, events) = finish(repo, state)?;
    Ok(MergeReport {
        outcome: Outcome::Committed,
        kind: state.kind,
        theirs: state.theirs,
        base: state.base,
        commit: Some(id),
        written: 0,
        removed: 0,
        label_merged: Vec::new(),
        meta_merged: None,
        conflicts: Vec::new(),
        selection: None,
        events,
    })
}

/// `--continue`: commits once every conflict is resolved.
pub fn continue_merge(repo: &Repository) -> Result<MergeReport> {
    repo.require_write()?;
    let state = load_state(repo)?.ok_or_else(|| {
        Error::Refused("there is no merge, cherry-pick or revert in progress".into())
    })?;
    if !state.applied {
        return Err(in_progress(&state, "continue"));
    }
    let open: Vec<&str> = state.unresolved().map(|c| c.path.as_str()).collect();
    if !open.is_empty() {
        return Err(Error::Refused(format!(
            "{} conflicted file(s) not resolved yet: {} (use `dsv resolve PATH --ours|--theirs`, or edit and `dsv add`)",
            open.len(),
            open.join(", ")
        )));
    }
    if repo.refs.head_commit()? != Some(state.head) {
        return Err(Error::Refused(format!(
            "HEAD moved since the {} started; abort it with `dsv {} --abort`",
            state.kind.command(),
            state.kind.command()
        )));
    }
    finish_resumed(repo, &state)
}

/// `--abort`: puts HEAD, the index and every path the merge (or the user, through
/// the index) changed back to the pre-merge commit, then drops the state.
pub fn abort(repo: &Repository) -> Result<MergeReport> {
    repo.require_write()?;
    let stamp = now_ns();
    let state = load_state(repo)?.ok_or_else(|| {
        Error::Refused("there is no merge, cherry-pick or revert in progress".into())
    })?;
    let head_tree = Commit::load(&repo.store, &state.head)?.tree;
    let index = repo.index.load()?;
    let (index_tree, _) = super::commit::build_tree(&repo.store, &index.entries)?;
    let mut paths: Vec<Vec<u8>> = state
        .touched
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    for c in diff_trees(&repo.store, Some(&index_tree), Some(&head_tree), &[])? {
        paths.push(c.path);
    }
    paths.sort();
    paths.dedup();
    let touched: HashSet<&[u8]> = state.touched.iter().map(|p| p.as_bytes()).collect();
    let mut changes = Vec::new();
    let mut unstage = Vec::new();
    for p in paths {
        let want = super::diff::lookup(&repo.store, &head_tree, &p)?
            .filter(|(m, _, _)| m.is_blob())
            .map(|(mode, id, size)| FileState { mode, id, size });
        if want.is_none() && !touched.contains(p.as_slice()) {
            // Staged during the merge, not in HEAD: the file may have been untracked
            // before the merge, so it is only unstaged, never deleted.
            unstage.push(IndexEdit::Remove(p));
            continue;
        }
        let in_index = index
            .entries
            .get(&p)
            .is_some_and(|e| want.is_some_and(|w| w.id == e.id && w.mode == e.mode));
        if !(in_index && worktree_is(repo, &index, &p, want.as_ref())?) {
            changes.push((p, want, true));
        }
    }
    if !unstage.is_empty() {
        repo.index.apply(&unstage, stamp)?;
    }
    let (written, removed) = apply(repo, &changes, stamp)?;
    if repo.refs.head_commit()? != Some(state.head) {
        move_head(
            repo,
            state.head,
            &format!("{}: abort", state.kind.command()),
        )?;
    }
    clear_state(repo)?;
    Ok(MergeReport {
        outcome: Outcome::UpToDate,
        kind: state.kind,
        theirs: state.theirs,
        base: state.base,
        commit: Some(state.head),
        written,
        removed,
        label_merged: Vec::new(),
        meta_merged: None,
        conflicts: Vec::new(),
        selection: None,
        events: Vec::new(),
    })
}

/// What `resolve` did.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveReport {
    /// Paths resolved.
    pub resolved: Vec<String>,
    /// Conflicted paths still open.
    pub remaining: usize,
}

/// `dsv resolve PATH... --ours|--theirs`: writes the merge with every conflict of the
/// file decided for one side into the worktree and the index, and marks it resolved.
pub fn resolve(repo: &Repository, paths: &[Vec<u8>], side: Side) -> Result<ResolveReport> {
    repo.require_write()?;
    let stamp = now_ns();
    let mut state = load_state(repo)?.ok_or_else(|| {
        Error::Refused("there is no merge, cherry-pick or revert in progress".into())
    })?;
    if !state.applied {
        return Err(in_progress(&state, "resolve"));
    }
    let mut changes = Vec::new();
    let mut resolved = Vec::new();
    for p in paths {
        let shown = display_path(p);
        let c = state
            .conflicts
            .iter_mut()
            .find(|c| c.path == shown)
            .ok_or_else(|| {
                Error::Refused(format!("'{shown}' is not a conflicted path of this merge"))
            })?;
        let pick = match side {
            Side::Ours => c.resolved_ours,
            Side::Theirs => c.resolved_theirs,
        };
        c.resolved = true;
        changes.push((p.clone(), pick, true));
        resolved.push(shown);
    }
    apply(repo, &changes, stamp)?;
    save_state(repo, &state)?;
    Ok(ResolveReport {
        resolved,
        remaining: state.unresolved().count(),
    })
}

/// Called by `add`: staging a conflicted path marks it resolved.
pub fn mark_added(repo: &Repository, scopes: &[Vec<u8>]) -> Result<()> {
    let Some(mut state) = load_state(repo)? else {
        return Ok(());
    };
    if !state.applied {
        // Its conflicts are not in the worktree yet: nothing to mark.
        return Ok(());
    }
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let mut changed = false;
    for c in state.conflicts.iter_mut().filter(|c| !c.resolved) {
        let p = c.path.as_bytes();
        if whole || scopes.iter().any(|s| crate::worktree::path_within(p, s)) {
            c.resolved = true;
            changed = true;
        }
    }
    if changed {
        save_state(repo, &state)?;
    }
    Ok(())
}
