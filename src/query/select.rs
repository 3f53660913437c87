//! Recording a selection as a dataset version (`dsv query EXPR --branch NAME`):
//! a commit holding exactly the matching frames and their labels.
//!
//! Label files of a one-file-per-frame format (YOLO, KITTI, VOC) are kept
//! whole when their frame is selected and dropped otherwise. A file of a
//! multi-frame format (COCO, CVAT) that describes a selected frame is
//! rewritten with the selected frames only, in its own layout where its format
//! keeps one ([`crate::labels::LabelFormat::write_like`]: COCO's `info`,
//! `licenses`, categories and ids). Files that are neither frames nor labels
//! (class names, `dsv.toml`) are kept; the metadata sidecar keeps the rows of
//! selected frames. The commit's parent is the queried
//! commit, so the selection's history shows where it came from.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::{Format, format_of};
use crate::layout::{FileSource, Layout, Role};
use crate::meta::{Sidecar, SidecarFormat, sidecar_path};
use crate::object::commit::COMMIT_FORMAT;
use crate::object::diff::flatten;
use crate::object::{Commit, EntryMode, SelectionOf};
use crate::refs::HEADS;
use crate::repo::{Repository, WritableRepo};
use crate::worktree::index::IndexEntry;
use crate::worktree::sources::MapSource;

use super::{FrameIndex, FrameRecord};

/// What recording a selection made.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// The new commit.
    pub commit: ObjectId,
    /// The branch created (None for `--commit`).
    pub branch: Option<String>,
    /// Frames in it.
    pub frames: usize,
    /// Label files kept whole.
    pub labels_kept: usize,
    /// Label files rewritten to the selected frames.
    pub labels_rewritten: usize,
}

/// Records the selected frames of commit `base` (whose index is `index`) as a new
/// commit, chosen by the expression `query`, and points a new branch `branch` at
/// it when given.
pub fn record(
    repo: &WritableRepo,
    base: ObjectId,
    index: &FrameIndex,
    selected: &[&FrameRecord],
    query: &str,
    branch: Option<&str>,
    message: &str,
) -> Result<Selection> {
    if let Some(b) = branch {
        crate::refs::check_ref_name("branch", b)?;
        if repo.refs.read(&format!("{HEADS}{b}"))?.is_some() {
            return Err(Error::RefExists {
                kind: "branch",
                name: b.to_string(),
            });
        }
    }
    let base_commit = Commit::load(&repo.store, &base)?;
    let files = flatten(&repo.store, &base_commit.tree)?;
    let src = MapSource::new(&repo.store, &files);
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let chosen: BTreeSet<&str> = selected.iter().map(|f| f.path.as_str()).collect();
    // Label file -> its format and whether every frame it describes is chosen.
    let mut label_use: BTreeMap<&str, (Format, bool)> = BTreeMap::new();
    for f in &index.frames {
        let picked = chosen.contains(f.path.as_str());
        for (l, fmt) in &f.labels {
            let e = label_use.entry(l.as_str()).or_insert((*fmt, false));
            e.1 |= picked;
        }
    }
    let sidecar = sidecar_path(&layout.toml, &|p| src.exists(p))?;
    let mut entries: BTreeMap<Vec<u8>, IndexEntry> = BTreeMap::new();
    let (mut kept, mut rewritten) = (0, 0);
    for (p, st) in &files {
        let path = String::from_utf8_lossy(p);
        let keep = |entries: &mut BTreeMap<Vec<u8>, IndexEntry>| {
            entries.insert(p.clone(), IndexEntry::unverified(st.mode, st.id, st.size));
        };
        if !st.mode.is_blob() {
            keep(&mut entries);
            continue;
        }
        if *path == *sidecar {
            let sc = Sidecar::parse(&sidecar, &repo.store.get(&st.id)?)?;
            let rows = sc
                .rows
                .into_iter()
                .filter(|(k, _)| chosen.contains(k.as_str()))
                .collect();
            let bytes = Sidecar { rows }.write(SidecarFormat::of(&sidecar))?;
            put(repo, &mut entries, p, st.mode, &bytes)?;
            continue;
        }
        if let Some((fmt, used)) = label_use.get(&*path) {
            if !used {
                continue;
            }
            let imp = format_of(*fmt);
            if imp.is_multi_frame() {
                let bytes = repo.store.get(&st.id)?;
                let failed = |e: &dyn std::fmt::Display| Error::Labels(format!("{path}: {e}"));
                let parsed = layout
                    .parse(&src, &path, *fmt, &bytes)?
                    .map_err(|(f, e)| Error::Labels(format!("{f}: {e}")))?;
                let mut frames = Vec::new();
                for fl in &parsed {
                    let fp = layout.frame_path(&src, &path, *fmt, &fl.frame)?;
                    if fp.is_some_and(|fp| chosen.contains(fp.as_str())) {
                        frames.push(fl.clone());
                    }
                }
                let names = if imp.uses_class_names() {
                    layout
                        .class_names(&src, &path)?
                        .map_err(|(f, e)| Error::Labels(format!("{f}: {e}")))?
                } else {
                    None
                };
                // Laid out like the original where the format keeps a layout
                // (COCO: info, licenses, every category and the ids stay, so
                // labelling tools see the same categories).
                let out = imp
                    .write_like(
                        (&bytes, &parsed),
                        &[],
                        &frames,
                        names.as_deref().map(|n| n.names.as_slice()),
                    )
                    .map_err(|e| failed(&e))?;
                put(repo, &mut entries, p, st.mode, &out)?;
                rewritten += 1;
            } else {
                keep(&mut entries);
                kept += 1;
            }
            continue;
        }
        match layout.role_by_path(&path) {
            Some(Role::Frame) => {
                if chosen.contains(&*path) {
                    keep(&mut entries);
                }
            }
            // A label-looking file that no frame uses (broken, or naming no frame)
            // describes nothing selected.
            None | Some(Role::Label(_)) => {
                let head = repo.store.get(&st.id)?;
                if !matches!(layout.role(&path, &head), Role::Label(_)) {
                    keep(&mut entries);
                }
            }
            Some(Role::Other) => keep(&mut entries),
        }
    }
    let (tree, summary) = crate::worktree::build::build_tree(&repo.store, &entries)?;
    let author = repo.identity()?;
    let (time, tz) = repo.now()?;
    let commit = Commit {
        format: COMMIT_FORMAT,
        tree,
        parents: vec![base],
        author: author.clone(),
        time,
        tz_offset_min: tz,
        message: format!("{}\n", message.trim_end()),
        summary,
        code: None,
        selection: Some(SelectionOf {
            of: base,
            query: query.to_string(),
        }),
    };
    let id = repo.store.put_commit(&commit.encode())?;
    // Objects must be durable before any ref names them.
    repo.store.flush()?;
    if let Some(b) = branch {
        repo.refs.update(
            &format!("{HEADS}{b}"),
            id,
            &author,
            time,
            &format!("query: {}", commit.subject()),
        )?;
    }
    Ok(Selection {
        commit: id,
        branch: branch.map(str::to_string),
        frames: selected.len(),
        labels_kept: kept,
        labels_rewritten: rewritten,
    })
}

fn put(
    repo: &Repository,
    entries: &mut BTreeMap<Vec<u8>, IndexEntry>,
    path: &[u8],
    mode: EntryMode,
    bytes: &[u8],
) -> Result<()> {
    let id = repo.store.put(bytes)?;
    entries.insert(
        path.to_vec(),
        IndexEntry::unverified(mode, id, bytes.len() as u64),
    );
    Ok(())
}
