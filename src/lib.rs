//! dsv: version control for machine-learning datasets.
//!
//! Frames and labels are stored content-addressed (blake3) in a deduplicated,
//! zstd-compressed pack store; commits, branches and tags work like git's.
//! The library holds all logic; `src/main.rs` and `src/cli/` are a thin CLI.
//! See `docs/architecture.md` for how the modules fit together.

pub mod codec;
pub mod config;
pub mod db;
pub mod dsv_toml;
pub mod error;
pub mod export;
pub mod hooks;
pub mod id;
pub mod image;
pub mod labels;
pub mod layout;
pub mod lock;
pub mod meta;
pub mod object;
pub mod ops;
pub mod paths;
pub mod progress;
pub mod query;
pub mod quote;
pub mod redact;
pub mod refs;
pub mod remote;
pub mod repo;
pub mod report;
pub mod settings;
pub mod storage;
pub mod store;
pub mod trace;
pub mod worktree;

pub use error::{Error, ErrorKind, ModuleError, Result};
pub use id::ObjectId;
pub use repo::{OpenOptions, Repository, WritableRepo};
pub use settings::Settings;
