//! Renderings of a dataset diff for people: terminal text, markdown for a pull
//! request comment, and a self-contained HTML review page. The JSON form is the
//! serde serialization of [`crate::ops::label_diff::DatasetDiff`].
//!
//! Renderers write to a `std::io::Write`; they never print.

pub mod html;
pub mod markdown;
pub mod text;

/// Which version of a frame a renderer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The old version (left side of the diff).
    Before,
    /// The new version.
    After,
}

/// A diff side for people: a commit id shortened to 12 digits; "index",
/// "worktree" or "empty" as they are.
pub fn short(id: &str) -> &str {
    if id.len() >= 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}
