//! The three-way merge of trees: walks base, ours and theirs together, settles
//! any directory equal on two sides without reading it, merges label files
//! changed on both sides frame by frame and the sidecar row by row, and reports
//! what differs from ours and what conflicts. It reads the store and writes
//! nothing but new blobs of merged files.

use std::collections::BTreeMap;

use super::labels::{LabelConflict, merge_frames};
use super::meta::{MetaConflict, Resolution, merge_sidecar};
use crate::error::Result;
use crate::id::ObjectId;
use crate::labels::compare::MatchOptions;
use crate::labels::{Format, FrameLabels, format_of};
use crate::layout::{FileSource, Layout, Role};
use crate::meta::sidecar_path;
use crate::object::diff::{FileState, diff_trees, flatten};
use crate::object::{EntryMode, Tree, TreeEntry};
use crate::paths::display_path;
use crate::repo::Repository;
use crate::worktree::sources::TreeSource;

use super::{ConflictKind, FileConflict, Side};

/// The result of merging three trees: new states of paths that differ from ours.
#[derive(Debug, Default)]
pub(super) struct TreeMerge {
    /// Path -> new state (`None`: remove), for paths whose merged state differs from ours.
    pub(super) updates: BTreeMap<Vec<u8>, Option<FileState>>,
    /// Conflicted paths.
    pub(super) conflicts: Vec<(Vec<u8>, FileConflict)>,
    /// Label files merged at object level.
    pub(super) label_merged: Vec<String>,
    /// The sidecar, when merged row by row.
    pub(super) meta_merged: Option<String>,
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
            use_ids: format_of(format).ids_are_stable(),
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
    /// then merges the file whole). The file keeps the layout of our version
    /// where the format has one to keep ([`crate::labels::LabelFormat::write_like`]:
    /// COCO's `info`, `licenses`, categories and ids); YOLO classes are written
    /// by the names in effect for the file.
    fn write(
        &self,
        path: &str,
        format: Format,
        frames: &[FrameLabels],
        (ours, ours_frames, theirs): (&[u8], &[FrameLabels], &[u8]),
    ) -> Result<Option<Vec<u8>>> {
        let imp = format_of(format);
        let names = if imp.uses_class_names() {
            self.layout
                .as_ref()
                .map(|l| l.class_names(&self.ours_src, path))
                .transpose()?
                .and_then(|r| r.ok())
                .flatten()
        } else {
            None
        };
        Ok(imp
            .write_like(
                (ours, ours_frames),
                &[theirs],
                frames,
                names.as_deref().map(|n| n.as_slice()),
            )
            .ok())
    }
}

/// Merges three trees: the states that differ from ours, and the conflicts.
pub(super) fn merge_trees(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::OpenOptions;
    use crate::store::chunk::StatStamp;
    use crate::worktree::index::IndexEntry;

    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        (dir, repo)
    }

    /// Stores `files` (path, content) as a tree.
    fn tree(repo: &Repository, files: &[(&str, &str)]) -> Option<ObjectId> {
        let mut entries = BTreeMap::new();
        for (path, content) in files {
            let id = repo.store.put(content.as_bytes()).unwrap();
            let stat = StatStamp {
                size: content.len() as u64,
                mtime_ns: 0,
                ctime_ns: 0,
                ino: 0,
            };
            let e = IndexEntry {
                mode: EntryMode::File,
                id,
                stat,
            };
            entries.insert(path.as_bytes().to_vec(), e);
        }
        Some(
            crate::worktree::build::build_tree(&repo.store, &entries)
                .unwrap()
                .0,
        )
    }

    fn content(repo: &Repository, s: &Option<FileState>) -> String {
        let id = s.as_ref().expect("a new state").id;
        String::from_utf8(repo.store.get(&id).unwrap()).unwrap()
    }

    const IMG: (&str, &str) = ("images/f.jpg", "jpeg bytes");

    #[test]
    fn changes_on_different_paths_merge_cleanly() {
        let (_d, repo) = repo();
        let base = tree(&repo, &[("a.txt", "1"), ("b.txt", "1")]);
        let ours = tree(&repo, &[("a.txt", "2"), ("b.txt", "1")]);
        let theirs = tree(&repo, &[("a.txt", "1"), ("b.txt", "3"), ("c.txt", "new")]);
        let m = merge_trees(&repo, base, ours, theirs, None).unwrap();
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        let paths: Vec<&[u8]> = m.updates.keys().map(Vec::as_slice).collect();
        assert_eq!(
            paths,
            [b"b.txt".as_slice(), b"c.txt"],
            "only their changes differ from ours"
        );
        assert_eq!(content(&repo, &m.updates[b"b.txt".as_slice()]), "3");
    }

    #[test]
    fn same_change_on_both_sides_is_no_conflict_and_no_update() {
        let (_d, repo) = repo();
        let base = tree(&repo, &[("a.txt", "1")]);
        let both = tree(&repo, &[("a.txt", "2")]);
        let m = merge_trees(&repo, base, both, both, None).unwrap();
        assert!(m.conflicts.is_empty() && m.updates.is_empty());
    }

    #[test]
    fn different_changes_to_a_plain_file_conflict() {
        let (_d, repo) = repo();
        let base = tree(&repo, &[("a.txt", "1")]);
        let ours = tree(&repo, &[("a.txt", "2")]);
        let theirs = tree(&repo, &[("a.txt", "3")]);
        let m = merge_trees(&repo, base, ours, theirs, None).unwrap();
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].1.kind, ConflictKind::Content);
        // A strategy decides it without a conflict.
        let m = merge_trees(&repo, base, ours, theirs, Some(Side::Theirs)).unwrap();
        assert!(m.conflicts.is_empty());
        assert_eq!(content(&repo, &m.updates[b"a.txt".as_slice()]), "3");
    }

    #[test]
    fn modified_on_one_side_deleted_on_the_other_conflicts() {
        let (_d, repo) = repo();
        let base = tree(&repo, &[("a.txt", "1"), ("keep", "k")]);
        let ours = tree(&repo, &[("a.txt", "2"), ("keep", "k")]);
        let theirs = tree(&repo, &[("keep", "k")]);
        let m = merge_trees(&repo, base, ours, theirs, None).unwrap();
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].1.kind, ConflictKind::ModifyDelete);
    }

    #[test]
    fn both_sides_adding_different_files_conflict() {
        let (_d, repo) = repo();
        let base = tree(&repo, &[("keep", "k")]);
        let ours = tree(&repo, &[("keep", "k"), ("n.txt", "ours")]);
        let theirs = tree(&repo, &[("keep", "k"), ("n.txt", "theirs")]);
        let m = merge_trees(&repo, base, ours, theirs, None).unwrap();
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].1.kind, ConflictKind::AddAdd);
    }

    #[test]
    fn label_file_changed_on_both_sides_merges_object_by_object() {
        let (_d, repo) = repo();
        let names = ("labels/classes.txt", "car\nperson\n");
        let f = "labels/f.txt";
        let base = tree(
            &repo,
            &[IMG, names, (f, "0 0.2 0.2 0.1 0.1\n1 0.7 0.7 0.1 0.1\n")],
        );
        // Ours moves the car; theirs adds a person.
        let ours = tree(
            &repo,
            &[IMG, names, (f, "0 0.25 0.2 0.1 0.1\n1 0.7 0.7 0.1 0.1\n")],
        );
        let theirs = tree(
            &repo,
            &[
                IMG,
                names,
                (
                    f,
                    "0 0.2 0.2 0.1 0.1\n1 0.7 0.7 0.1 0.1\n1 0.4 0.4 0.1 0.1\n",
                ),
            ],
        );
        let m = merge_trees(&repo, base, ours, theirs, None).unwrap();
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert_eq!(m.label_merged, [f]);
        let merged = content(&repo, &m.updates[f.as_bytes()]);
        assert!(merged.contains("0.25"), "our move is kept: {merged}");
        assert_eq!(merged.lines().count(), 3, "their person is added: {merged}");
    }

    #[test]
    fn same_object_changed_differently_is_a_label_conflict() {
        let (_d, repo) = repo();
        let names = ("labels/classes.txt", "car\nperson\n");
        let f = "labels/f.txt";
        let base = tree(&repo, &[IMG, names, (f, "0 0.2 0.2 0.1 0.1\n")]);
        let ours = tree(&repo, &[IMG, names, (f, "0 0.25 0.2 0.1 0.1\n")]);
        let theirs = tree(&repo, &[IMG, names, (f, "1 0.2 0.2 0.1 0.1\n")]);
        let m = merge_trees(&repo, base, ours, theirs, None).unwrap();
        assert_eq!(m.conflicts.len(), 1, "{:?}", m.conflicts);
        assert_eq!(m.conflicts[0].1.kind, ConflictKind::Labels);
        assert!(!m.conflicts[0].1.labels.is_empty());
    }
}
