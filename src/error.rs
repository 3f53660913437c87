//! Library error type: every failure a user can act on, with what and where.

use std::path::PathBuf;

use crate::id::ObjectId;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a dsv operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named path.
    #[error("{action} '{path}': {source}")]
    Io {
        /// What dsv was doing ("reading", "writing", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No `.dsv` directory was found in the directory or any parent.
    #[error("not a dsv repository (or any of the parent directories): {0}")]
    NotARepository(PathBuf),
    /// `dsv init` on a directory that already holds a repository.
    #[error("repository already exists at {0}")]
    AlreadyExists(PathBuf),
    /// The repository was written by a newer, unknown format version.
    #[error(
        "unsupported repository format version {found} in {path} (this dsv reads up to {supported})"
    )]
    UnsupportedFormat {
        /// Path of the format file.
        path: PathBuf,
        /// Version found on disk.
        found: String,
        /// Highest version this build understands.
        supported: u32,
    },
    /// Another process holds the repository lock.
    #[error(
        "repository is locked by pid {pid} ({path}); wait for that command to finish, or remove the lock file if no dsv process is running"
    )]
    Locked {
        /// Pid recorded in the lock file (0 if unknown).
        pid: u32,
        /// Lock file path.
        path: PathBuf,
    },
    /// An argument the caller gave that cannot be acted on: a malformed pattern or
    /// assignment, revisions that do not fit the operation, an unsupported choice.
    /// Nothing was read or changed. (The CLI reports it as a usage error.)
    #[error("{0}")]
    InvalidArgument(String),
    /// A label file that does not parse, in a command that asked for strictness.
    #[error("{0}")]
    Labels(String),
    /// A frame-metadata sidecar or edit that is malformed (names the file and line).
    #[error("{0}")]
    Metadata(String),
    /// A query expression that does not compile or cannot be evaluated.
    #[error("{0}")]
    Query(String),
    /// An object id that is not in the store.
    #[error("object {0} not found in the store")]
    MissingObject(ObjectId),
    /// An object whose bytes do not hash to its id, or that cannot be decoded.
    #[error("object {id} is corrupt: {reason}")]
    CorruptObject {
        /// Id of the object.
        id: ObjectId,
        /// What is wrong with it.
        reason: String,
    },
    /// A pack or database structure that is damaged.
    #[error("repository data is corrupt: {0}")]
    Corrupt(String),
    /// The redb database failed.
    #[error("database {path}: {message}")]
    Database {
        /// Database file.
        path: PathBuf,
        /// redb's message.
        message: String,
    },
    /// A repository database that is missing, empty, damaged or older than the
    /// packs it indexes: nothing is written until `dsv repair` rebuilds it.
    #[error("{path}: {reason}; run 'dsv repair' to rebuild it")]
    NeedsRepair {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A pack file that an object lives in cannot be read (deleted, unreadable).
    #[error("object {id} is in pack '{pack}', which cannot be read: {source}")]
    PackUnreadable {
        /// The object being read.
        id: ObjectId,
        /// The pack file.
        pack: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A revision expression that names nothing.
    #[error("unknown revision '{0}'")]
    UnknownRevision(String),
    /// A short id that matches several objects.
    #[error("short id '{prefix}' is ambiguous: {candidates}")]
    AmbiguousRevision {
        /// The prefix given.
        prefix: String,
        /// The matching ids, comma separated.
        candidates: String,
    },
    /// A malformed name (branch, tag, config key).
    #[error("invalid {kind} name '{name}': {reason}")]
    InvalidName {
        /// "branch", "tag", ...
        kind: &'static str,
        /// The name given.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A ref that already exists.
    #[error("{kind} '{name}' already exists")]
    RefExists {
        /// "branch" or "tag".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A ref whose name clashes with an existing one: `a` and `a/b` cannot both
    /// exist (one would be a file and a directory at once).
    #[error(
        "cannot create ref {name}: {existing} exists (a ref cannot also be a directory of refs)"
    )]
    RefConflict {
        /// The ref being created.
        name: String,
        /// The ref in the way.
        existing: String,
    },
    /// A ref that does not exist.
    #[error("{kind} '{name}' not found")]
    RefNotFound {
        /// "branch" or "tag".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A path argument outside the repository working tree.
    #[error("path '{path}' is outside the repository at '{root}'")]
    OutsideRepository {
        /// The path given.
        path: PathBuf,
        /// The working-tree root.
        root: PathBuf,
    },
    /// A pathspec that matched no file.
    #[error("pathspec '{0}' did not match any files")]
    PathspecNoMatch(String),
    /// A file that changed while dsv was reading it.
    #[error(
        "file '{0}' changed while being added; nothing was stored for it (retry when it is no longer being written)"
    )]
    ChangedWhileReading(PathBuf),
    /// An operation refused, with the error type of the module that refused (for
    /// example `ops::merge::MergeError`); [`ModuleError::kind`] says what kind of
    /// failure it is, and callers can downcast it with [`Error::module`].
    #[error("{0}")]
    Refused(Box<dyn ModuleError>),
    /// A bug in dsv: an invariant the code relies on did not hold.
    #[error("internal: {0}")]
    Internal(String),
    /// Invalid configuration.
    #[error("config {path}: {message}")]
    Config {
        /// Config file path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A fault injected by the test harness (DSV_FAULT).
    #[error("injected fault at write #{0} (DSV_FAULT)")]
    InjectedFault(u64),
    /// A tree entry name that would escape the working tree.
    #[error("unsafe path in tree {tree}: {name:?} ({reason})")]
    UnsafePath {
        /// Tree id.
        tree: ObjectId,
        /// The offending name.
        name: String,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// A remote (object storage) failed or holds something unusable. The message
    /// never includes credentials.
    #[error("remote '{remote}': {message}")]
    Remote {
        /// Remote name (or URL without credentials).
        remote: String,
        /// What went wrong.
        message: String,
    },
    /// A bad hook definition (`dsv.toml` `[[hooks]]`), naming the file and line.
    #[error("{0}")]
    HookConfig(String),
    /// A `pre-*` hook failed or timed out, so the operation was not done.
    #[error("{event} hook '{hook}' failed ({reason}): {operation} aborted, nothing was changed")]
    HookRejected {
        /// The event (`pre-commit`, ...).
        event: String,
        /// The hook's id.
        hook: String,
        /// What happened ("exit status 1", "timed out after 2s (killed)", ...).
        reason: String,
        /// What was refused ("commit", "push").
        operation: String,
        /// What the hook printed (stdout and stderr), for the user.
        output: String,
    },
    /// Several errors from one operation (e.g. checkout of many files).
    #[error("{summary}")]
    Multiple {
        /// One-line summary.
        summary: String,
        /// The individual errors.
        errors: Vec<Error>,
    },
}

/// What kind of failure an error is: what the user can do about it. The CLI maps
/// kinds to exit codes and hints; the library only classifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line cannot be acted on as given (nothing was read or changed);
    /// the CLI exits with 2, as for a parse error.
    Usage,
    /// The operation does not apply to the repository's state (nothing to commit,
    /// a merge in progress, local changes in the way, a name that exists).
    Refused,
    /// What was named does not exist (a revision, branch, path, delivery, remote branch).
    NotFound,
    /// Repository data, a remote or an input file is damaged, hostile or unreadable
    /// as the format it claims.
    Damaged,
    /// The environment failed: I/O, the network, another process holding the lock.
    Environment,
    /// The configuration, a hook definition or a hook said no.
    Configuration,
    /// A bug in dsv.
    Internal,
}

/// An error type of one module, carried by [`Error::Refused`].
pub trait ModuleError: std::error::Error + Send + Sync + 'static {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind {
        ErrorKind::Refused
    }
}

/// Implements `From<$t> for Error` (as [`Error::Refused`]) for a module's error enum,
/// so `?` lifts it into the library error without this module naming the type.
/// Called as `crate::error::module_error!(XError)` from the module that owns `XError`.
macro_rules! module_error {
    ($t:ty) => {
        impl From<$t> for $crate::error::Error {
            fn from(e: $t) -> Self {
                $crate::error::Error::Refused(Box::new(e))
            }
        }
    };
}
pub(crate) use module_error;

impl Error {
    /// The module error this error carries, if it is one of type `T`.
    pub fn module<T: ModuleError>(&self) -> Option<&T> {
        match self {
            Error::Refused(e) => (e.as_ref() as &dyn std::error::Error).downcast_ref::<T>(),
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::Usage,
            Error::AlreadyExists(_)
            | Error::InvalidName { .. }
            | Error::RefExists { .. }
            | Error::RefConflict { .. }
            | Error::OutsideRepository { .. }
            | Error::Query(_)
            | Error::ChangedWhileReading(_) => ErrorKind::Refused,
            Error::NotARepository(_)
            | Error::UnknownRevision(_)
            | Error::AmbiguousRevision { .. }
            | Error::RefNotFound { .. }
            | Error::PathspecNoMatch(_) => ErrorKind::NotFound,
            Error::Refused(e) => e.kind(),
            Error::UnsupportedFormat { .. }
            | Error::Labels(_)
            | Error::Metadata(_)
            | Error::MissingObject(_)
            | Error::CorruptObject { .. }
            | Error::Corrupt(_)
            | Error::NeedsRepair { .. }
            | Error::PackUnreadable { .. }
            | Error::UnsafePath { .. } => ErrorKind::Damaged,
            Error::Io { .. }
            | Error::Locked { .. }
            | Error::Database { .. }
            | Error::Remote { .. }
            | Error::InjectedFault(_) => ErrorKind::Environment,
            Error::Config { .. } | Error::HookConfig(_) | Error::HookRejected { .. } => {
                ErrorKind::Configuration
            }
            Error::Internal(_) => ErrorKind::Internal,
            Error::Multiple { errors, .. } => {
                errors.first().map_or(ErrorKind::Refused, Error::kind)
            }
        }
    }

    /// Wraps an I/O error with the action and path it happened on.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Wraps a redb error with the database path.
    pub fn db(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        let message = err.to_string();
        // Damage that only rebuilding the file can fix says so.
        if message.starts_with("DB corrupted")
            || message.starts_with("Poisoned internal lock")
            || message.starts_with("Manual upgrade required")
        {
            return Error::NeedsRepair {
                path: path.into(),
                reason: format!("the database is damaged ({message})"),
            };
        }
        Error::Database {
            path: path.into(),
            message,
        }
    }
}

/// Extension to attach a path and action to `std::io::Result`.
pub trait IoContext<T> {
    /// Converts an I/O error into [`Error::Io`] naming `path`.
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
