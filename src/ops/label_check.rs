//! The label files a commit records that do not parse: `dsv add` and
//! `dsv commit` report them (a frame whose label file does not parse is not
//! unlabelled, its labels are unknown), and `[check] labels = "error"` in
//! `dsv.toml` makes `commit` refuse them. Only the files that changed are
//! read: the cost follows the change, not the dataset.

use rayon::prelude::*;

use crate::dsv_toml::{CheckLevel, DsvToml};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::layout::{FileSource, Layout, Role};
use crate::ops::label_diff::LabelWarning;
use crate::repo::Repository;

/// Staged or committed label files that do not parse.
#[derive(Debug, Clone, Default)]
pub struct LabelCheck {
    /// The label files that do not parse.
    pub errors: Vec<LabelWarning>,
    /// Whether `dsv.toml` says `[check] labels = "error"`.
    pub refuse: bool,
}

/// Parses each of `paths` (with its content id) that the layout of `src`
/// calls a label file; returns those that fail.
fn check_files(src: &dyn FileSource, paths: &[(String, ObjectId)]) -> Result<LabelCheck> {
    let layout = Layout::load(src)?.map_err(|e| Error::Labels(e.to_string()))?;
    Ok(LabelCheck {
        errors: check_with(&layout, src, paths)?,
        refuse: layout.toml.check_labels == CheckLevel::Error,
    })
}

/// The label files among `paths` that do not parse, by `layout`.
fn check_with(
    layout: &Layout,
    src: &dyn FileSource,
    paths: &[(String, ObjectId)],
) -> Result<Vec<LabelWarning>> {
    let errors: Vec<Vec<LabelWarning>> = paths
        .par_iter()
        .map(|(path, id)| -> Result<Vec<LabelWarning>> {
            let role = match layout.role_by_path(path) {
                Some(r) => r,
                None => {
                    let head = src.read_id(path, id)?.unwrap_or_default();
                    layout.role(path, &head)
                }
            };
            let Role::Label(format) = role else {
                return Ok(Vec::new());
            };
            let Some(bytes) = src.read_id(path, id)? else {
                return Ok(Vec::new());
            };
            Ok(match layout.check(src, path, format, &bytes)? {
                Ok(()) => Vec::new(),
                Err((file, e)) => vec![LabelWarning {
                    file,
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }],
            })
        })
        .collect::<Result<_>>()?;
    Ok(errors.into_iter().flatten().collect())
}

/// Paths [`check_index_paths`] and [`check_trees`] check at a time: a full `add -A` of a
/// large tree names every path, and a list of all of them with their ids would
/// cost more than the index itself.
const CHECK_CHUNK: usize = 16_384;

/// Checks the given staged paths (what `dsv add` just staged), looking each up in
/// the index instead of reading it whole.
pub fn check_index_paths(repo: &Repository, paths: &[Vec<u8>]) -> Result<LabelCheck> {
    let reader = repo.index.reader()?;
    let src = crate::worktree::sources::IndexSource::new(&repo.store, &reader);
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let mut errors = Vec::new();
    for chunk in paths.chunks(CHECK_CHUNK) {
        let files: Vec<(String, ObjectId)> = chunk
            .iter()
            .zip(reader.get_many(chunk)?)
            .filter_map(|(p, e)| {
                let e = e?;
                e.mode
                    .is_blob()
                    .then(|| (String::from_utf8_lossy(p).into_owned(), e.id))
            })
            .collect();
        errors.extend(check_with(&layout, &src, &files)?);
    }
    Ok(LabelCheck {
        errors,
        refuse: layout.toml.check_labels == CheckLevel::Error,
    })
}

/// Checks the label files that changed between two trees (what a commit
/// recorded): a diff of the trees, which skips unchanged directories. The changes
/// are checked [`CHECK_CHUNK`] at a time as the diff walks, never listed whole: the
/// first commit of a large tree changes every file.
pub fn check_trees(
    repo: &Repository,
    old: Option<&ObjectId>,
    new: &ObjectId,
) -> Result<LabelCheck> {
    let src = crate::worktree::sources::TreeSource::new(&repo.store, Some(*new));
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let mut errors = Vec::new();
    let mut files: Vec<(String, ObjectId)> = Vec::new();
    crate::object::diff::diff_trees_each(&repo.store, old, Some(new), &mut |c| {
        if let Some(n) = c.new.filter(|n| n.mode.is_blob()) {
            files.push((crate::paths::display_path(&c.path), n.id));
            if files.len() >= CHECK_CHUNK {
                errors.extend(check_with(&layout, &src, &files)?);
                files.clear();
            }
        }
        Ok(())
    })?;
    errors.extend(check_with(&layout, &src, &files)?);
    Ok(LabelCheck {
        errors,
        refuse: layout.toml.check_labels == CheckLevel::Error,
    })
}

/// The files (not links or directories) a list of changes leaves, with their content ids.
fn changed_blobs(changes: &[crate::object::diff::Change]) -> Vec<(String, ObjectId)> {
    changes
        .iter()
        .filter_map(|c| {
            let n = c.new.as_ref()?;
            n.mode
                .is_blob()
                .then(|| (crate::paths::display_path(&c.path), n.id))
        })
        .collect()
}

/// Whether the staged `dsv.toml` says `[check] labels = "error"` (one lookup in
/// the index, which every commit makes: never the whole index).
pub fn staged_refuses(repo: &Repository) -> Result<bool> {
    let Some(e) = repo.index.get(crate::dsv_toml::FILE_NAME.as_bytes())? else {
        return Ok(false);
    };
    let bytes = repo.store.get(&e.id)?;
    Ok(DsvToml::parse(&bytes).is_ok_and(|t| t.check_labels == CheckLevel::Error))
}

/// Checks every label file staged since HEAD (reads HEAD's whole file list:
/// used only when a refusal must come before the commit).
pub fn check_staged(repo: &Repository) -> Result<LabelCheck> {
    use crate::object::diff::{Change, flatten_scoped, merge_maps};
    use crate::worktree::delta::index_states;
    let store = &repo.store;
    let base = repo.head_tree()?;
    let old = flatten_scoped(store, base.as_ref(), &[])?;
    let index = repo.index.load()?;
    let new = index_states(&index);
    let src = crate::worktree::sources::MapSource::new(store, &new);
    let mut changes: Vec<Change> = Vec::new();
    merge_maps(old, new.clone(), &mut changes);
    let files = changed_blobs(&changes);
    check_files(&src, &files)
}
