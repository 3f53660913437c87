//! The object model: trees (Merkle directories) and commits, their encodings,
//! the difference of two trees and the ancestry of commits.

pub mod commit;
pub mod diff;
pub mod graph;
pub mod tree;

pub use commit::{CodeVersion, Commit, Person, SelectionOf, Summary};
pub use tree::{EntryMode, Tree, TreeEntry};
