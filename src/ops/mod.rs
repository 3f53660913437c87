//! Porcelain operations built on the store, index and refs. The CLI calls these.

pub mod add;
pub mod branch;
pub mod checkout;
pub mod commit;
pub mod diff;
pub mod events;
pub mod frame_attrs;
pub mod fsck;
pub mod gc;
pub mod git_integration;
pub mod inspect;
pub mod label_check;
pub mod label_diff;
pub mod log;
pub mod merge;
pub mod merge_labels;
pub mod merge_meta;
pub mod repair;
pub mod revparse;
pub mod sources;
pub mod stats;
pub mod status;

/// Serializes repository paths as display strings.
pub fn ser_paths<S: serde::Serializer>(
    paths: &[Vec<u8>],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| crate::worktree::display_path(p)))
}
