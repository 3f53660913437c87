//! Tying dataset versions to code: `dsv.lock` in the surrounding git repository,
//! the git diff driver's input, and the `.gitattributes`/config that install it.
//!
//! `dsv.lock` is TOML at the root of the git worktree, one `[[dataset]]` table
//! per dsv repository inside it (path relative to the git root, `.` for the root):
//! checking out an old code commit brings back its `dsv.lock`, and `dsv checkout
//! --locked` then brings back the data that code was trained on.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::refs::Head;
use crate::repo::Repository;

/// Name of the lock file at the root of the git worktree.
pub const LOCK_FILE: &str = "dsv.lock";
/// Version of the `dsv.lock` format.
pub const LOCK_VERSION: u32 = 1;
/// The git attribute line that routes `dsv.lock` through the driver.
pub const ATTRIBUTE_LINE: &str = "dsv.lock diff=dsv";

/// One dataset named by `dsv.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedDataset {
    /// The dataset root, relative to the git worktree root (`.` for the root itself).
    pub path: String,
    /// The dataset commit in use.
    pub commit: ObjectId,
    /// The branch it was on when locked, for people (not used to restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// The parsed `dsv.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// Format version ([`LOCK_VERSION`]).
    pub version: u32,
    /// Datasets, sorted by path.
    #[serde(default, rename = "dataset")]
    pub datasets: Vec<LockedDataset>,
}

impl LockFile {
    /// Parses `dsv.lock` text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<LockFile> {
        let lock: LockFile =
            toml::from_str(text).map_err(|e| GitIntegrationError::BadLockFile {
                what: what.to_string(),
                message: e.message().to_string(),
            })?;
        if lock.version != LOCK_VERSION {
            return Err(GitIntegrationError::LockVersion {
                what: what.to_string(),
                found: lock.version,
            }
            .into());
        }
        Ok(lock)
    }

    /// The TOML text, with a header saying what the file is.
    pub fn render(&self) -> Result<String> {
        let body = toml::to_string(self)
            .map_err(|e| Error::Internal(format!("encoding dsv.lock: {e}")))?;
        Ok(format!(
            "# Dataset versions this code uses; written by `dsv lock`, restored by `dsv checkout --locked`.\n{body}"
        ))
    }

    /// The entry for a dataset path.
    pub fn get(&self, path: &str) -> Option<&LockedDataset> {
        self.datasets.iter().find(|d| d.path == path)
    }
}

/// The git worktree around a dataset and the dataset's path inside it.
pub struct GitContext {
    /// Root of the git worktree.
    pub root: PathBuf,
    /// The dataset root relative to it (`.` for the root).
    pub dataset: String,
    /// The git repository's common directory (where `config` lives).
    pub common_dir: PathBuf,
}

/// Finds the git repository around the dataset; an error if there is none.
pub fn git_context(repo: &Repository) -> Result<GitContext> {
    let not_git = || GitIntegrationError::NotInGit(repo.root().to_path_buf());
    let git = gix::discover(repo.root()).map_err(|_| not_git())?;
    let root = git.workdir().ok_or_else(not_git)?;
    let root = std::fs::canonicalize(root).ctx("resolving", root)?;
    let data = std::fs::canonicalize(repo.root()).ctx("resolving", repo.root())?;
    let rel = data.strip_prefix(&root).map_err(|_| not_git())?;
    let dataset = match rel.to_str() {
        Some("") => ".".to_string(),
        Some(s) => s.to_string(),
        None => {
            return Err(GitIntegrationError::NotUtf8(rel.to_path_buf()).into());
        }
    };
    let common_dir = std::fs::canonicalize(git.common_dir()).ctx("resolving", git.common_dir())?;
    Ok(GitContext {
        root,
        dataset,
        common_dir,
    })
}

fn read_lock(path: &Path) -> Result<Option<LockFile>> {
    match std::fs::read_to_string(path) {
        Ok(t) => LockFile::parse(&t, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// What `dsv lock` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    /// The lock file.
    pub file: PathBuf,
    /// The entry written.
    pub dataset: LockedDataset,
    /// Whether the file changed.
    pub changed: bool,
}

/// `dsv lock`: records HEAD's commit for this dataset in the git worktree's `dsv.lock`.
pub fn lock(repo: &Repository) -> Result<LockReport> {
    let ctx = git_context(repo)?;
    let commit = repo
        .refs
        .head_commit()?
        .ok_or(GitIntegrationError::NothingToLock)?;
    let branch = match repo.refs.head()? {
        Head::Branch(b) => Some(b),
        Head::Detached(_) => None,
    };
    let file = ctx.root.join(LOCK_FILE);
    let mut lock = read_lock(&file)?.unwrap_or(LockFile {
        version: LOCK_VERSION,
        datasets: Vec::new(),
    });
    let entry = LockedDataset {
        path: ctx.dataset.clone(),
        commit,
        branch,
    };
    let before = lock.clone();
    lock.datasets.retain(|d| d.path != ctx.dataset);
    lock.datasets.push(entry.clone());
    lock.datasets.sort_by(|a, b| a.path.cmp(&b.path));
    let changed = lock != before;
    if changed {
        repo.storage
            .write_atomic(&file, lock.render()?.as_bytes())?;
    }
    Ok(LockReport {
        file,
        dataset: entry,
        changed,
    })
}

/// The commit `dsv.lock` names for this dataset; it must be in the store.
pub fn locked_commit(repo: &Repository) -> Result<ObjectId> {
    let ctx = git_context(repo)?;
    let file = ctx.root.join(LOCK_FILE);
    let lock = read_lock(&file)?.ok_or_else(|| GitIntegrationError::NoLockFile(file.clone()))?;
    let entry = lock
        .get(&ctx.dataset)
        .ok_or_else(|| GitIntegrationError::NoEntry {
            file: file.clone(),
            dataset: ctx.dataset.clone(),
        })?;
    if !repo.store.contains(&entry.commit)? {
        return Err(GitIntegrationError::CommitMissing {
            file: file.clone(),
            commit: entry.commit.short(),
        }
        .into());
    }
    Ok(entry.commit)
}

/// One dataset whose locked commit differs between two versions of `dsv.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockChange {
    /// The dataset path.
    pub path: String,
    /// The commit before (`None`: not locked before).
    pub old: Option<ObjectId>,
    /// The commit after (`None`: no longer locked).
    pub new: Option<ObjectId>,
}

/// The datasets whose commits differ between two `dsv.lock` texts (empty text: no file).
pub fn lock_changes(old: &str, new: &str) -> Result<Vec<LockChange>> {
    let parse = |t: &str, what: &str| -> Result<LockFile> {
        if t.trim().is_empty() {
            Ok(LockFile::default())
        } else {
            LockFile::parse(t, what)
        }
    };
    let (a, b) = (parse(old, "old dsv.lock")?, parse(new, "new dsv.lock")?);
    let mut paths: Vec<&str> = a
        .datasets
        .iter()
        .chain(&b.datasets)
        .map(|d| d.path.as_str())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    Ok(paths
        .into_iter()
        .filter_map(|p| {
            let (o, n) = (a.get(p).map(|d| d.commit), b.get(p).map(|d| d.commit));
            (o != n).then(|| LockChange {
                path: p.to_string(),
                old: o,
                new: n,
            })
        })
        .collect())
}

/// What `install-git-integration` changed.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// `.gitattributes` got the `dsv.lock diff=dsv` line.
    pub attributes_added: bool,
    /// The repository's git config got the `diff.dsv.command` setting.
    pub config_added: bool,
}

/// Installs the diff driver: `diff.dsv.command` in the git repository's own config
/// (`command` is how git should run `dsv diff-driver`) and the attribute line in the
/// worktree's `.gitattributes`. Running it twice changes nothing.
pub fn install(repo: &Repository, command: &str) -> Result<InstallReport> {
    let ctx = git_context(repo)?;
    let attrs = ctx.root.join(".gitattributes");
    let text = match std::fs::read_to_string(&attrs) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("reading", &attrs, e)),
    };
    let attributes_added = !text.lines().any(|l| l.trim() == ATTRIBUTE_LINE);
    if attributes_added {
        let mut new = text.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(ATTRIBUTE_LINE);
        new.push('\n');
        repo.storage.write_atomic(&attrs, new.as_bytes())?;
    }
    let config = ctx.common_dir.join("config");
    let text = std::fs::read_to_string(&config).ctx("reading", &config)?;
    // Replace any earlier [diff "dsv"] section, so a moved binary can be re-installed.
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t.replace(' ', "") == "[diff\"dsv\"]";
        }
        if !skipping {
            kept.push(line);
        }
    }
    let escaped = command.replace('\\', "\\\\").replace('"', "\\\"");
    let section = format!("[diff \"dsv\"]\n\tcommand = \"{escaped}\"\n");
    let mut new = kept.join("\n");
    if !new.is_empty() {
        new.push('\n');
    }
    new.push_str(&section);
    let config_added = !text.contains(&section);
    if config_added {
        repo.storage.write_atomic(&config, new.as_bytes())?;
    }
    Ok(InstallReport {
        attributes_added,
        config_added,
    })
}

/// Why `dsv lock` or `checkout --locked` was refused.
#[derive(Debug, thiserror::Error)]
pub enum GitIntegrationError {
    /// A `dsv.lock` that is not valid TOML of the expected shape.
    #[error("{what}: {message}")]
    BadLockFile {
        /// The file (or "git show REV:dsv.lock").
        what: String,
        /// The TOML parser's message.
        message: String,
    },
    /// A `dsv.lock` of a version this dsv does not read.
    #[error("{what}: unsupported dsv.lock version {found} (this dsv reads {LOCK_VERSION})")]
    LockVersion {
        /// The file.
        what: String,
        /// The version found.
        found: u32,
    },
    /// The dataset is not inside a git worktree.
    #[error(
        "the dataset at '{}' is not inside a git worktree (git integration needs one)",
        .0.display()
    )]
    NotInGit(PathBuf),
    /// A dataset path that dsv.lock (UTF-8 TOML) cannot name.
    #[error("dataset path '{}' is not UTF-8; dsv.lock cannot name it", .0.display())]
    NotUtf8(PathBuf),
    /// `dsv lock` before the first commit.
    #[error("nothing to lock: the dataset has no commits yet")]
    NothingToLock,
    /// `checkout --locked` with no dsv.lock.
    #[error("no {} (run `dsv lock` first)", .0.display())]
    NoLockFile(PathBuf),
    /// A dsv.lock that does not name this dataset.
    #[error("{} has no entry for the dataset at '{dataset}'", .file.display())]
    NoEntry {
        /// The lock file.
        file: PathBuf,
        /// The dataset's path in the git worktree.
        dataset: String,
    },
    /// A locked commit this repository does not have.
    #[error(
        "{}: dataset commit {commit} is not in this repository (fetch it first)",
        .file.display()
    )]
    CommitMissing {
        /// The lock file.
        file: PathBuf,
        /// Short id of the commit.
        commit: String,
    },
}

impl crate::error::ModuleError for GitIntegrationError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            GitIntegrationError::BadLockFile { .. } | GitIntegrationError::LockVersion { .. } => {
                ErrorKind::Damaged
            }
            GitIntegrationError::NoLockFile(_)
            | GitIntegrationError::NoEntry { .. }
            | GitIntegrationError::CommitMissing { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Refused,
        }
    }
}

crate::error::module_error!(GitIntegrationError);
