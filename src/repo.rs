//! Opening, creating and locking a repository; identity and time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::db::{self, Db};
use crate::error::{Error, IoContext, Result};
use crate::lock::{Access, RepoLock};
use crate::object::Person;
use crate::refs::Refs;
use crate::settings::Settings;
use crate::storage::{OsStorage, Storage};
use crate::store::ObjectStore;
use crate::worktree::index::Index;

/// Name of the repository directory inside the worktree.
pub const DSV_DIR: &str = ".dsv";
/// Repository format version written by this build (see docs/format.md).
pub const FORMAT_VERSION: u32 = 1;
/// Branch created by `dsv init`.
pub const DEFAULT_BRANCH: &str = "main";

/// How to open a repository.
#[derive(Clone)]
pub struct OpenOptions {
    /// Where writes go (a fault injector in tests).
    pub storage: Arc<dyn Storage>,
    /// What the caller decided (the CLI: from the environment).
    pub settings: Settings,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            storage: Arc::new(OsStorage),
            settings: Settings::default(),
        }
    }
}

/// An open repository: worktree root, object store, index, refs and config.
pub struct Repository {
    root: PathBuf,
    dsv: PathBuf,
    /// Where writes go.
    pub storage: Arc<dyn Storage>,
    /// Objects.
    pub store: ObjectStore,
    /// The working-tree index (staging area).
    pub index: Index,
    /// Branches, tags, HEAD.
    pub refs: Refs,
    /// Layered configuration.
    pub config: Config,
    /// What the caller decided (see [`OpenOptions`]).
    pub settings: Settings,
    lock: RepoLock,
}

fn find_root(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        if d.join(DSV_DIR).join("format").is_file() {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// Makes a path absolute without resolving symlinks in the last component.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).ctx("resolving", path)
}

impl Repository {
    /// Tree id of the commit HEAD points to (`None` on an unborn branch).
    pub fn head_tree(&self) -> Result<Option<crate::id::ObjectId>> {
        match self.refs.head_commit()? {
            Some(c) => Ok(Some(crate::object::Commit::load(&self.store, &c)?.tree)),
            None => Ok(None),
        }
    }

    /// Creates a new repository in `dir` (which is created if missing).
    pub fn init(dir: &Path, opts: &OpenOptions) -> Result<Repository> {
        Self::init_with(dir, opts, &[])
    }

    /// [`Repository::init`] with `extra` files (name inside `.dsv`, content) written
    /// before the repository appears, so they are there from its first moment.
    pub fn init_with(
        dir: &Path,
        opts: &OpenOptions,
        extra: &[(&str, &[u8])],
    ) -> Result<Repository> {
        let dir = absolute(dir)?;
        let dsv = dir.join(DSV_DIR);
        if dsv.exists() {
            return Err(Error::AlreadyExists(dsv));
        }
        opts.storage.create_dir_all(&dir)?;
        // Build the repository in a temporary directory and rename it into place,
        // so an interrupted init leaves nothing that looks like a repository.
        let tmp = crate::storage::temp_name(&dsv);
        let build = || -> Result<()> {
            for sub in ["", "packs", "refs/heads", "refs/tags", "logs"] {
                opts.storage.create_dir_all(&tmp.join(sub))?;
            }
            let refs = Refs::new(&tmp, opts.storage.clone());
            refs.init_head(DEFAULT_BRANCH)?;
            Index::create(&tmp, opts.storage.clone())?;
            let db = Db::open_rw(&tmp.join("objects.redb"), opts.storage.clone())?;
            ObjectStore::open(&tmp, db, opts.storage.clone())?;
            opts.storage.write_atomic(
                &tmp.join("config.toml"),
                b"# dsv repository configuration\n",
            )?;
            for (name, data) in extra {
                opts.storage.write_atomic(&tmp.join(name), data)?;
            }
            // The format file is written last: its presence marks a complete repository.
            opts.storage.write_atomic(
                &tmp.join("format"),
                format!("{FORMAT_VERSION}\n").as_bytes(),
            )?;
            opts.storage.rename(&tmp, &dsv)
        };
        if let Err(e) = build() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Self::open_at(&dir, Access::Write, opts)
    }

    /// Finds the repository containing `start` and opens it.
    pub fn discover(start: &Path, access: Access, opts: &OpenOptions) -> Result<Repository> {
        let start = absolute(start)?;
        let root = find_root(&start).ok_or_else(|| Error::NotARepository(start.clone()))?;
        Self::open_at(&root, access, opts)
    }

    /// The worktree root of the repository containing `start`, without opening or
    /// locking it (for tools that must not wait for, or hold up, other commands).
    pub fn locate(start: &Path) -> Result<PathBuf> {
        let start = absolute(start)?;
        let root = find_root(&start).ok_or_else(|| Error::NotARepository(start.clone()))?;
        check_format(&root.join(DSV_DIR))?;
        Ok(root)
    }

    /// Opens for writing only if nobody holds the lock right now (no waiting).
    pub fn try_discover_write(start: &Path, opts: &OpenOptions) -> Result<Option<Repository>> {
        let start = absolute(start)?;
        let root = find_root(&start).ok_or_else(|| Error::NotARepository(start.clone()))?;
        match RepoLock::try_write(&root.join(DSV_DIR))? {
            Some(lock) => Ok(Some(Self::open_locked(&root, lock, opts)?)),
            None => Ok(None),
        }
    }

    /// Opens the repository whose worktree root is `root` (no search upwards).
    pub fn open_root(root: &Path, access: Access, opts: &OpenOptions) -> Result<Repository> {
        Self::open_at(&absolute(root)?, access, opts)
    }

    fn open_at(root: &Path, access: Access, opts: &OpenOptions) -> Result<Repository> {
        let dsv = root.join(DSV_DIR);
        check_format(&dsv)?;
        let timeout = match opts.settings.lock_timeout {
            Some(t) => t,
            None => {
                let ms = Config::load(&dsv, opts.settings.user_config.as_deref())?
                    .get("core.lock_timeout_ms")
                    .map(|v| {
                        v.parse::<u64>().map_err(|_| Error::Config {
                            path: dsv.join("config.toml"),
                            message: format!(
                                "core.lock_timeout_ms must be a number of milliseconds, not '{v}'"
                            ),
                        })
                    })
                    .transpose()?
                    .unwrap_or(3000);
                Duration::from_millis(ms)
            }
        };
        let lock = RepoLock::acquire(&dsv, access, timeout)?;
        match Self::open_locked(root, lock, opts) {
            // A crash left a database that needs recovery, which only a writer may do.
            Err(e) if access == Access::Read && db::needs_repair(&e) => {
                let lock = RepoLock::acquire(&dsv, Access::Write, timeout)?;
                Self::open_locked(root, lock, opts)
            }
            r => r,
        }
    }

    fn open_locked(root: &Path, lock: RepoLock, opts: &OpenOptions) -> Result<Repository> {
        let dsv = root.join(DSV_DIR);
        let write = lock.access() == Access::Write;
        let objects = dsv.join("objects.redb");
        let db = if write {
            Db::open_existing_rw(&objects, opts.storage.clone())?
        } else {
            Db::open_ro(&objects)?
        };
        let store = ObjectStore::open(&dsv, db, opts.storage.clone())?;
        let index = Index::open(&dsv, write, opts.storage.clone())?;
        let config = Config::load(&dsv, opts.settings.user_config.as_deref())?;
        let fsync = match opts.settings.fsync {
            Some(f) => f,
            None => config.get("core.fsync") != Some("false"),
        };
        store.set_fsync(fsync);
        Ok(Repository {
            root: root.to_path_buf(),
            refs: Refs::new(&dsv, opts.storage.clone()),
            config,
            dsv,
            storage: opts.storage.clone(),
            store,
            index,
            settings: opts.settings.clone(),
            lock,
        })
    }

    /// The working-tree root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dsv` directory.
    pub fn dsv_dir(&self) -> &Path {
        &self.dsv
    }

    /// Whether whole-tree looks at the worktree use the file-system monitor
    /// (`DSV_FSMONITOR`, else `core.fsmonitor = true`; off by default).
    pub fn fsmonitor(&self) -> bool {
        self.settings
            .fsmonitor
            .unwrap_or_else(|| self.config.get("core.fsmonitor") == Some("true"))
    }

    /// Whether this handle holds the write lock.
    pub fn writable(&self) -> bool {
        self.lock.access() == Access::Write
    }

    /// This handle as a [`WritableRepo`]; fails unless it holds the write lock.
    pub fn into_writable(self) -> Result<WritableRepo> {
        if self.writable() {
            Ok(WritableRepo(self))
        } else {
            Err(Error::Internal("operation needs the write lock".into()))
        }
    }

    /// The author for new commits: the settings (`DSV_AUTHOR_*`), then config, then an
    /// error saying how to set it.
    pub fn identity(&self) -> Result<Person> {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let name = given(&self.settings.author_name)
            .or_else(|| self.config.get("user.name").map(str::to_string));
        let email = given(&self.settings.author_email)
            .or_else(|| self.config.get("user.email").map(str::to_string));
        match (name, email) {
            (Some(name), Some(email)) => Ok(Person { name, email }),
            _ => Err(RepoError::NoIdentity.into()),
        }
    }

    /// The time for new commits and reflog lines (unix seconds, minutes east of UTC):
    /// the settings' author date (`DSV_AUTHOR_DATE`) when given, so tests are
    /// reproducible; otherwise now, in local time.
    pub fn now(&self) -> Result<(i64, i32)> {
        time_at(self.settings.author_date.as_deref())
    }

    /// Identity for reflog lines; falls back to a placeholder rather than failing.
    pub fn reflog_identity(&self) -> Person {
        self.identity().unwrap_or(Person {
            name: "unknown".into(),
            email: "unknown".into(),
        })
    }

    /// Converts a user path (relative to `cwd`) into a repository path (bytes, `/`-separated).
    /// The root itself is the empty path.
    pub fn repo_path(&self, cwd: &Path, user: &Path) -> Result<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let abs = absolute(&cwd.join(user))?;
        let normalized = normalize(&abs);
        let rel = normalized
            .strip_prefix(&self.root)
            .map_err(|_| Error::OutsideRepository {
                path: user.to_path_buf(),
                root: self.root.clone(),
            })?;
        if rel
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == DSV_DIR)
        {
            return Err(RepoError::InsideDsvDir(user.to_path_buf()).into());
        }
        Ok(rel.as_os_str().as_bytes().to_vec())
    }

    /// Absolute worktree path of a repository path.
    pub fn worktree_path(&self, path: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        self.root.join(std::ffi::OsStr::from_bytes(path))
    }
}

/// Removes `.` and resolves `..` lexically (like git for pathspecs).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn check_format(dsv: &Path) -> Result<()> {
    let path = dsv.join("format");
    // A few bytes are a version; a damaged file is neither read whole nor echoed.
    let bytes = crate::refs::read_capped(&path, 64).ctx("reading", &path)?;
    let text = String::from_utf8_lossy(&bytes);
    match text.trim().parse::<u32>() {
        Ok(v) if v >= 1 && v <= FORMAT_VERSION => Ok(()),
        _ => Err(Error::UnsupportedFormat {
            path,
            found: crate::quote::bytes(text.trim().as_bytes()),
            supported: FORMAT_VERSION,
        }),
    }
}

/// The time `date` gives (unix seconds, or RFC 3339 with offset; named
/// `DSV_AUTHOR_DATE` in errors, where it comes from in the CLI), or now when it is
/// `None` or empty.
pub fn time_at(date: Option<&str>) -> Result<(i64, i32)> {
    if let Some(v) = date
        && !v.is_empty()
    {
        if let Ok(secs) = v.trim().parse::<i64>() {
            return Ok((secs, 0));
        }
        let ts: jiff::Timestamp = v.parse().map_err(|e: jiff::Error| RepoError::BadDate {
            value: v.to_string(),
            reason: e.to_string(),
        })?;
        let offset = v
            .parse::<jiff::Zoned>()
            .map(|z| z.offset().seconds() / 60)
            .unwrap_or_else(|_| rfc3339_offset_minutes(v));
        return Ok((ts.as_second(), offset));
    }
    let z = jiff::Zoned::now();
    Ok((z.timestamp().as_second(), z.offset().seconds() / 60))
}

fn rfc3339_offset_minutes(s: &str) -> i32 {
    if s.ends_with('Z') || s.ends_with('z') {
        return 0;
    }
    let tail = &s[s.len().saturating_sub(6)..];
    let sign = match tail.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return 0,
    };
    let h: i32 = tail.get(1..3).and_then(|x| x.parse().ok()).unwrap_or(0);
    let m: i32 = tail.get(4..6).and_then(|x| x.parse().ok()).unwrap_or(0);
    sign * (h * 60 + m)
}

/// A repository handle that holds the write lock. Every operation that changes
/// refs, the index, the working tree or the store takes one, so a read-only
/// handle reaching a write is a type error, not a runtime check.
pub struct WritableRepo(Repository);

impl std::ops::Deref for WritableRepo {
    type Target = Repository;
    fn deref(&self) -> &Repository {
        &self.0
    }
}

impl WritableRepo {
    /// The handle, for operations that only read.
    pub fn into_inner(self) -> Repository {
        self.0
    }
}

/// Why the repository handle refused.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No author name or email configured.
    #[error(
        "author identity unknown: run `dsv config --global user.name \"Your Name\"` and `dsv config --global user.email you@example.com` (or set DSV_AUTHOR_NAME and DSV_AUTHOR_EMAIL)"
    )]
    NoIdentity,
    /// A path argument inside `.dsv`.
    #[error("'{}' is inside the repository's .dsv directory", .0.display())]
    InsideDsvDir(PathBuf),
    /// A fixed author date that does not parse.
    #[error("DSV_AUTHOR_DATE '{value}' is not unix seconds or RFC 3339: {reason}")]
    BadDate {
        /// The value given.
        value: String,
        /// The parser's message.
        reason: String,
    },
}

impl crate::error::ModuleError for RepoError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Configuration
    }
}

crate::error::module_error!(RepoError);
