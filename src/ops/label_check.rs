//! The label files a commit would record that do not parse: `dsv add` and
//! `dsv commit` report them (a frame whose label file does not parse is not
//! unlabelled, its labels are unknown), and `[check] labels = "error"` in
//! `dsv.toml` makes `commit` refuse them.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::labels::layout::{FileSource, Layout, Role};
use crate::ops::diff::{Change, merge_maps};
use crate::ops::label_diff::LabelWarning;
use crate::repo::Repository;
use crate::worktree::display_path;

/// What the staged label files of a repository hold that does not parse.
#[derive(Debug, Clone, Default)]
pub struct LabelCheck {
    /// Staged label files (new or changed since HEAD) that do not parse.
    pub errors: Vec<LabelWarning>,
    /// Whether the staged `dsv.toml` says `[check] labels = "error"`.
    pub refuse: bool,
}

/// Parses the label files staged since HEAD (only those: the cost follows the
/// change) and returns the ones that fail.
pub fn check_staged(repo: &Repository) -> Result<LabelCheck> {
    use crate::ops::diff::flatten_scoped;
    use crate::ops::sources::MapSource;
    use crate::ops::status::{head_tree, index_states};
    let store = &repo.store;
    let base = head_tree(repo)?;
    let old = flatten_scoped(store, base.as_ref(), &[])?;
    let index = repo.index.load()?;
    let new = index_states(&index);
    let src = MapSource::new(store, &new);
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let mut changes: Vec<Change> = Vec::new();
    merge_maps(old, new.clone(), &mut changes);
    let errors: Vec<Vec<LabelWarning>> = changes
        .par_iter()
        .filter(|c| c.new.as_ref().is_some_and(|n| n.mode.is_blob()))
        .map(|c| -> Result<Vec<LabelWarning>> {
            let Some(state) = &c.new else {
                return Ok(Vec::new());
            };
            let path = display_path(&c.path);
            let role = match layout.role_by_path(&path) {
                Some(r) => r,
                None => {
                    let head = src.read_id(&path, &state.id)?.unwrap_or_default();
                    layout.role(&path, &head)
                }
            };
            let Role::Label(format) = role else {
                return Ok(Vec::new());
            };
            let Some(bytes) = src.read_id(&path, &state.id)? else {
                return Ok(Vec::new());
            };
            Ok(match layout.parse(&src, &path, format, &bytes)? {
                Ok(_) => Vec::new(),
                Err((file, e)) => vec![LabelWarning {
                    file,
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }],
            })
        })
        .collect::<Result<_>>()?;
    Ok(LabelCheck {
        errors: errors.into_iter().flatten().collect(),
        refuse: layout.toml.check_labels == crate::dsv_toml::CheckLevel::Error,
    })
}
