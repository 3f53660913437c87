//! The object model: trees (Merkle directories) and commits, and their encodings.

pub mod commit;
pub mod tree;

pub use commit::{CodeVersion, Commit, Person, SelectionOf, Summary};
pub use tree::{EntryMode, Tree, TreeEntry};
