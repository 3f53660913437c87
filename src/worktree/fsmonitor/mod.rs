//! The file-system monitor (`core.fsmonitor = true`): a daemon per repository
//! ([`daemon`]) records the paths that changed since a token, so `status`,
//! `add -A` and `commit -a` look only at those instead of walking the tree.
//!
//! The token is kept in `.dsv/fsmonitor/token` (format in docs/format.md) with
//! what the last look found: the index version (generation and stamp) it was
//! taken against, a digest of
//! the sparse definition, and every path that was not clean then (modified,
//! deleted, untracked). A later look is monitored only if all of that still holds;
//! it then examines the paths the daemon reports, the remembered ones, and every
//! smudged index entry (the racy-timestamp rule), and nothing else. Any doubt (no
//! daemon, another daemon, an overflow, a changed `.dsvignore`, a different index
//! or sparse definition, an unreadable token file) is a full scan.
//!
//! Every write of the index's entries by dsv (switch, reset, checkout, add, rm,
//! merge, ...) carries the token over to the new version with the paths whose entries
//! it changed remembered too ([`carry`]), so the first look after it is still
//! monitored; the worktree files it wrote are reported by the daemon like any
//! other change.

pub mod daemon;
pub(super) mod token;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::paths::{os_path, path_within};
use crate::progress::Progress;
use crate::store::chunk::StatStamp;

use super::delta::{WorktreeDelta, classify, worktree_delta};
use super::index::{IndexState, IndexVersion};
use super::scan::{IGNORE_FILE, WorkFile, mode_of, scan};
use token::{MAX_BYTES, TokenFile, safe_path};
pub use token::{carry, forget, has_token, monitor_dir};

/// First word of every request on the socket (the protocol's version).
pub const PROTOCOL: &str = "dsv-fsmonitor/1";

/// Failures of the monitor daemon.
#[derive(Debug, thiserror::Error)]
pub enum FsmonitorError {
    /// The socket path is longer than a Unix socket address can hold.
    #[error("cannot monitor: the socket path '{0}' is too long for a Unix socket")]
    SocketPathTooLong(PathBuf),
}

impl crate::error::ModuleError for FsmonitorError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Environment
    }
}
crate::error::module_error!(FsmonitorError);

/// The daemon's socket.
pub fn socket_path(dsv_dir: &Path) -> PathBuf {
    monitor_dir(dsv_dir).join("sock")
}

/// What the daemon says about itself (`dsv fsmonitor status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// Its process id.
    pub pid: u32,
    /// `starting`, `ready` or `failed: why`.
    pub state: String,
    /// Directories watched.
    pub watched_dirs: u64,
    /// Changed paths remembered.
    pub changed_paths: u64,
    /// Questions answered.
    pub queries: u64,
    /// Overflows (inotify's queue, or too many changed paths).
    pub overflows: u64,
    /// Times every watch was set up again (start, overflow, directory renamed).
    pub rebuilds: u64,
}

/// The daemon's answer to "what changed since this token".
#[derive(Debug)]
enum Answer {
    /// These paths changed; `token` stands for now.
    Changes { token: String, paths: Vec<Vec<u8>> },
    /// The old token cannot be answered: scan everything; `token` stands for now.
    Full { token: String },
    /// No daemon listens.
    NotRunning,
    /// The daemon cannot help (why).
    Unavailable(String),
}

/// How a command used the monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MonitorUse {
    /// Not enabled, or not applicable (a command limited to paths).
    #[default]
    Off,
    /// Monitored: only these many paths were looked at.
    Used(usize),
    /// Enabled, but a full scan was needed (why).
    Full(String),
    /// Enabled, and no daemon runs: the caller should start one.
    NotRunning,
}

impl std::fmt::Display for MonitorUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorUse::Off => f.write_str("off"),
            MonitorUse::Used(n) => write!(f, "used ({n} paths)"),
            MonitorUse::Full(why) => write!(f, "full scan ({why})"),
            MonitorUse::NotRunning => f.write_str("full scan (not running)"),
        }
    }
}

fn request(dsv_dir: &Path, line: &str) -> std::result::Result<Vec<u8>, Answer> {
    let sock = socket_path(dsv_dir);
    let mut stream = match UnixStream::connect(&sock) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(Answer::NotRunning);
        }
        Err(e) => return Err(Answer::Unavailable(format!("connecting: {e}"))),
    };
    let unavailable = |e: std::io::Error| Answer::Unavailable(format!("talking to it: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(unavailable)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(unavailable)?;
    stream
        .write_all(format!("{PROTOCOL} {line}\n").as_bytes())
        .map_err(unavailable)?;
    let mut out = Vec::new();
    (&stream)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(unavailable)?;
    if out.len() as u64 > MAX_BYTES {
        return Err(Answer::Unavailable("answer too large".into()));
    }
    Ok(out)
}

fn ask(dsv_dir: &Path, token: Option<&str>) -> Answer {
    let token = token.filter(|t| !t.is_empty() && !t.contains(char::is_whitespace));
    let out = match request(dsv_dir, &format!("query {}", token.unwrap_or("-"))) {
        Ok(out) => out,
        Err(a) => return a,
    };
    parse_answer(&out).unwrap_or_else(|| Answer::Unavailable("unreadable answer".into()))
}

fn parse_answer(out: &[u8]) -> Option<Answer> {
    let nl = out.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(&out[..nl]).ok()?;
    let body = &out[nl + 1..];
    let mut words = head.splitn(2, ' ');
    match (words.next()?, words.next()) {
        ("full", Some(token)) if body.is_empty() => Some(Answer::Full {
            token: token.to_string(),
        }),
        ("changes", Some(rest)) => {
            let (token, n) = rest.split_once(' ')?;
            let n: usize = n.parse().ok()?;
            let paths: Vec<Vec<u8>> = if body.is_empty() {
                Vec::new()
            } else {
                body.strip_suffix(b"\0")?
                    .split(|b| *b == 0)
                    .map(<[u8]>::to_vec)
                    .collect()
            };
            (paths.len() == n && paths.iter().all(|p| safe_path(p))).then(|| Answer::Changes {
                token: token.to_string(),
                paths,
            })
        }
        ("unavailable", why) => Some(Answer::Unavailable(why.unwrap_or("").to_string())),
        _ => None,
    }
}

/// The daemon's own report, or `None` when none runs.
pub fn daemon_status(dsv_dir: &Path) -> Result<Option<DaemonStatus>> {
    match request(dsv_dir, "status") {
        Ok(out) => Ok(serde_json::from_slice(&out).ok()),
        Err(Answer::NotRunning) => Ok(None),
        Err(_) => Ok(None),
    }
}

/// Asks the daemon to exit; `false` when none runs.
pub fn stop_daemon(dsv_dir: &Path) -> bool {
    request(dsv_dir, "stop").is_ok()
}

/// Why a saved token cannot be trusted for the index at `index` and the sparse
/// definition digested as `sparse` (`None`: it can).
fn why_not(saved: Option<&TokenFile>, index: IndexVersion, sparse: &str) -> Option<&'static str> {
    match saved {
        None => Some("no saved token"),
        Some(t) if t.index != index => Some("the index changed"),
        Some(t) if t.sparse != sparse => Some("the sparse definition changed"),
        Some(_) => None,
    }
}

/// Digest of the sparse definition (`-` when there is none): a changed definition
/// changes which absent files count as deleted.
fn sparse_digest(dsv_dir: &Path) -> String {
    match std::fs::read(super::sparse::file(dsv_dir)) {
        Ok(b) => crate::id::ObjectId::hash(&b).to_hex(),
        Err(_) => "-".into(),
    }
}

/// One monitored look at the working tree: created by [`Session::begin`] before
/// anything is read, used by [`Session::delta`], then saved by [`Session::save`].
#[derive(Debug)]
pub struct Session {
    /// How the monitor is used this time.
    pub usage: MonitorUse,
    /// The token to save (`None`: nothing is saved).
    token: Option<String>,
    /// The paths to look at, or `None` for a full scan.
    candidates: Option<Vec<Vec<u8>>>,
    sparse: String,
}

impl Session {
    /// Asks the daemon what changed since the saved token, given the index as
    /// loaded (its stamp must be the one the token was saved with).
    pub fn begin(dsv_dir: &Path, index: &IndexState) -> Session {
        let smudged: Vec<Vec<u8>> = index
            .entries
            .iter()
            .filter(|(_, e)| e.stat.mtime_ns == 0)
            .map(|(p, _)| p.clone())
            .collect();
        Session::begin_with(dsv_dir, index.version(), &smudged)
    }

    /// [`Session::begin`] from the index's version and its smudged paths only (see
    /// [`super::index::Peek`]), so the index need not be read whole.
    pub fn begin_with(dsv_dir: &Path, index: IndexVersion, smudged: &[Vec<u8>]) -> Session {
        let sparse = sparse_digest(dsv_dir);
        let saved = TokenFile::load(dsv_dir);
        let why_not = why_not(saved.as_ref(), index, &sparse);
        let old = saved.as_ref().filter(|_| why_not.is_none());
        let answer = ask(dsv_dir, old.map(|t| t.token.as_str()));
        let (usage, token, candidates) = match answer {
            Answer::NotRunning => (MonitorUse::NotRunning, None, None),
            Answer::Unavailable(why) => (MonitorUse::Full(why), None, None),
            Answer::Full { token } => (
                MonitorUse::Full(why_not.unwrap_or("the daemon cannot answer").to_string()),
                Some(token),
                None,
            ),
            Answer::Changes { token, paths } => {
                let old = old.map(|t| t.paths.as_slice()).unwrap_or_default();
                // A changed ignore file changes what every path below it is.
                let ignores_changed = paths
                    .iter()
                    .any(|p| p.rsplit(|b| *b == b'/').next() == Some(IGNORE_FILE.as_bytes()));
                let mut all: Vec<Vec<u8>> = paths;
                all.extend(old.iter().cloned());
                // The racy-timestamp rule: entries too recent to trust are looked at.
                all.extend(smudged.iter().cloned());
                all.sort_unstable();
                all.dedup();
                if ignores_changed {
                    (
                        MonitorUse::Full("a .dsvignore changed".into()),
                        Some(token),
                        None,
                    )
                } else {
                    (MonitorUse::Used(all.len()), Some(token), Some(all))
                }
            }
        };
        Session {
            usage,
            token,
            candidates,
            sparse,
        }
    }

    /// The paths to look at when monitored (sorted), `None` for a full scan.
    pub fn candidates(&self) -> Option<&[Vec<u8>]> {
        self.candidates.as_deref()
    }

    /// The working tree against the index: only the candidate paths when monitored,
    /// else [`worktree_delta`] over the whole tree.
    pub fn delta(
        &self,
        root: &Path,
        index: &IndexState,
        hash: bool,
        progress: &dyn Progress,
    ) -> Result<WorktreeDelta> {
        match &self.candidates {
            None => worktree_delta(root, index, &[], hash, progress),
            Some(c) => monitored_delta(root, index, c, hash, progress),
        }
    }

    /// Saves the token with what this look found not clean (after the sparse rule),
    /// against the index at `index` (the version the look began with, or the one the
    /// caller's own write left). Best effort: a failure only costs a full scan next time.
    pub fn save(&self, dsv_dir: &Path, index: IndexVersion, delta: &WorktreeDelta) {
        let Some(token) = &self.token else { return };
        let mut paths: Vec<Vec<u8>> = delta
            .modified
            .iter()
            .map(|(f, _)| f.path.clone())
            .chain(delta.deleted.iter().cloned())
            .chain(delta.untracked.iter().map(|f| f.path.clone()))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        let file = TokenFile {
            token: token.clone(),
            index,
            sparse: self.sparse.clone(),
            paths,
        };
        if file.save(dsv_dir).is_err() {
            forget(dsv_dir);
        }
    }
}

/// `.dsvignore` matchers per directory, as `scan` builds them (kept in step with it).
struct Ignores<'a> {
    root: &'a Path,
    nodes: HashMap<Vec<u8>, Option<Arc<Node>>>,
    visible: HashMap<Vec<u8>, bool>,
}

struct Node {
    matcher: ignore::gitignore::Gitignore,
    parent: Option<Arc<Node>>,
}

fn parent_of(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|b| *b == b'/') {
        Some(i) => &p[..i],
        None => b"",
    }
}

impl Ignores<'_> {
    /// The matchers that apply to entries of directory `dir`.
    fn chain(&mut self, dir: &[u8]) -> Option<Arc<Node>> {
        if let Some(n) = self.nodes.get(dir) {
            return n.clone();
        }
        let parent = if dir.is_empty() {
            None
        } else {
            self.chain(parent_of(dir))
        };
        let abs = self.root.join(os_path(dir));
        let file = abs.join(IGNORE_FILE);
        let node = if file.is_file() {
            let mut b = ignore::gitignore::GitignoreBuilder::new(&abs);
            let _ = b.add(&file);
            match b.build() {
                Ok(matcher) => Some(Arc::new(Node {
                    matcher,
                    parent: parent.clone(),
                })),
                Err(_) => parent,
            }
        } else {
            parent
        };
        self.nodes.insert(dir.to_vec(), node.clone());
        node
    }

    fn ignored(&mut self, path: &[u8], is_dir: bool) -> bool {
        let mut cur = self.chain(parent_of(path));
        let abs = self.root.join(os_path(path));
        while let Some(n) = cur {
            match n.matcher.matched(&abs, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => cur = n.parent.clone(),
            }
        }
        false
    }

    /// Whether the walk would enter directory `dir` (every component a real,
    /// not ignored directory, `.dsv` and `.git` at the root left out).
    fn visible_dir(&mut self, dir: &[u8]) -> bool {
        if dir.is_empty() {
            return true;
        }
        if let Some(v) = self.visible.get(dir) {
            return *v;
        }
        let v = self.visible_dir(parent_of(dir))
            && !(parent_of(dir).is_empty() && (dir == b".dsv" || dir == b".git"))
            && std::fs::symlink_metadata(self.root.join(os_path(dir)))
                .is_ok_and(|m| m.file_type().is_dir())
            && !self.ignored(dir, true)
            && crate::object::tree::check_dir_depth(dir).is_ok();
        self.visible.insert(dir.to_vec(), v);
        v
    }
}

/// What the walk would report under each candidate: a file as itself, a directory
/// by a scan of its subtree.
fn look_up(root: &Path, candidates: &[Vec<u8>], progress: &dyn Progress) -> Result<Vec<WorkFile>> {
    let mut ig = Ignores {
        root,
        nodes: HashMap::new(),
        visible: HashMap::new(),
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for c in candidates {
        if !ig.visible_dir(parent_of(c)) {
            continue;
        }
        let parent = parent_of(c);
        let name = &c[parent.len() + usize::from(!parent.is_empty())..];
        if parent.is_empty() && (name == b".dsv" || name == b".git") {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(root.join(os_path(c))) else {
            continue;
        };
        if meta.is_dir() {
            if !ig.ignored(c, true) {
                dirs.push(c.clone());
            }
            continue;
        }
        if crate::storage::is_dsv_temp(name) || ig.ignored(c, false) {
            continue;
        }
        if let Some(mode) = mode_of(&meta) {
            files.push(WorkFile {
                path: c.clone(),
                mode,
                stat: StatStamp::of(&meta),
            });
        }
    }
    if !dirs.is_empty() {
        files.extend(scan(root, &dirs, progress)?);
    }
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Ok(files)
}

/// [`worktree_delta`] limited to `candidates` (sorted) and what lies below them: the
/// same `classify` over the files found there and the index entries there.
pub fn monitored_delta(
    root: &Path,
    index: &IndexState,
    candidates: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let files = look_up(root, candidates, progress)?;
    let mut entries = BTreeMap::new();
    for c in candidates {
        if let Some(e) = index.entries.get(c) {
            entries.insert(c.clone(), *e);
        }
        let mut lo = c.clone();
        lo.push(b'/');
        let mut hi = c.clone();
        hi.push(b'/' + 1);
        for (p, e) in index.entries.range(lo..hi) {
            debug_assert!(path_within(p, c));
            entries.insert(p.clone(), *e);
        }
    }
    let sub = IndexState {
        entries,
        stamp: index.stamp,
        generation: index.generation,
    };
    classify(root, &sub, files, &[], hash, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use token::token_file;

    fn v(generation: i64, stamp: i64) -> IndexVersion {
        IndexVersion { generation, stamp }
    }

    #[test]
    fn token_file_round_trip() {
        let t = TokenFile {
            token: "abc-12".into(),
            index: v(3, -5),
            sparse: "-".into(),
            paths: vec![b"a/b".to_vec(), b"c\nd".to_vec()],
        };
        assert_eq!(TokenFile::decode(&t.encode()), Some(t.clone()));
        let mut bad = t.encode();
        bad.truncate(bad.len() - 1);
        assert_eq!(TokenFile::decode(&bad), None);
        assert_eq!(TokenFile::decode(b"dsv-fsmonitor-token 3\n"), None);
    }

    #[test]
    fn a_format_1_token_is_no_token() {
        let old = b"dsv-fsmonitor-token 1\ntoken abc-12\nindex 7\nsparse -\npaths 0\n";
        assert_eq!(TokenFile::decode(old), None);
        assert_eq!(why_not(None, v(1, 7), "-"), Some("no saved token"));
    }

    #[test]
    fn a_token_saved_between_two_writes_with_one_stamp_is_not_trusted_after_the_second() {
        use crate::worktree::index::{Index, IndexEdit, IndexEntry};
        let dir = tempfile::tempdir().unwrap();
        let dsv = dir.path();
        std::fs::create_dir_all(monitor_dir(dsv)).unwrap();
        let storage: Arc<dyn crate::storage::Storage> = Arc::new(crate::storage::OsStorage);
        Index::create(dsv, storage.clone()).unwrap();
        let index = Index::open(dsv, true, storage).unwrap();
        let entry = |byte: u8| {
            IndexEntry::unverified(
                crate::object::EntryMode::File,
                crate::id::ObjectId([byte; 32]),
                1,
            )
        };
        let set = |p: &[u8], byte| IndexEdit::Set(p.to_vec(), entry(byte));
        // One command writes the index twice with the same stamp; a look reads the
        // index between the writes and saves its token after the second.
        let stamp = 1_000_000_000_000;
        index.apply(&[set(b"a", 1)], stamp).unwrap();
        let seen = index.reader().unwrap().peek().unwrap().version();
        index.apply(&[set(b"b", 2)], stamp).unwrap();
        let now = index.reader().unwrap().peek().unwrap().version();
        assert_eq!(seen.stamp, now.stamp);
        let saved = TokenFile {
            token: "abc-7".into(),
            index: seen,
            sparse: "-".into(),
            paths: Vec::new(),
        };
        // It does not describe the index as the second write left it ('b' is not
        // among its paths): the next look must not trust it.
        assert_eq!(why_not(Some(&saved), now, "-"), Some("the index changed"));
        assert_eq!(why_not(Some(&saved), seen, "-"), None);
        // Saved as it is now, a token is carried across two more such writes.
        TokenFile {
            index: now,
            ..saved
        }
        .save(dsv)
        .unwrap();
        index.apply(&[set(b"c", 3)], stamp).unwrap();
        index.apply(&[set(b"d", 4)], stamp).unwrap();
        let t = TokenFile::load(dsv).unwrap();
        assert_eq!(t.index, index.reader().unwrap().peek().unwrap().version());
        assert_eq!(t.paths, vec![b"c".to_vec(), b"d".to_vec()]);
    }

    #[test]
    fn a_token_is_carried_only_across_a_write_from_its_own_index_state() {
        let dir = tempfile::tempdir().unwrap();
        let dsv = dir.path();
        std::fs::create_dir_all(monitor_dir(dsv)).unwrap();
        let saved = |index: IndexVersion, paths: &[&str]| {
            TokenFile {
                token: "abc-7".into(),
                index,
                sparse: "-".into(),
                paths: paths.iter().map(|p| p.as_bytes().to_vec()).collect(),
            }
            .save(dsv)
            .unwrap();
        };
        let changed = |p: &[&str]| p.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>();
        saved(v(1, 5), &["b"]);
        carry(
            dsv,
            Some(v(1, 5)),
            v(2, 9),
            Some(&changed(&["c", "a", "b"])),
            100,
        );
        let t = TokenFile::load(dsv).unwrap();
        assert_eq!((t.token.as_str(), t.index), ("abc-7", v(2, 9)));
        assert_eq!(t.paths, changed(&["a", "b", "c"]));
        // A token saved against another index state stays as it is (stale, or newer),
        // whether the stamp or only the generation differs.
        carry(dsv, Some(v(1, 5)), v(2, 12), Some(&changed(&["d"])), 100);
        carry(dsv, Some(v(1, 9)), v(2, 9), Some(&changed(&["d"])), 100);
        assert_eq!(TokenFile::load(dsv).unwrap(), t);
        // Unknown or too many changed paths: the token goes.
        carry(dsv, Some(v(2, 9)), v(3, 12), None, 100);
        assert!(!has_token(dsv));
        saved(v(1, 5), &[]);
        let many: Vec<Vec<u8>> = (0..10_001).map(|i| format!("f{i}").into_bytes()).collect();
        carry(dsv, Some(v(1, 5)), v(2, 6), Some(&many), 100);
        assert!(!has_token(dsv));
        // An unreadable token goes too, as does one of format 1.
        for old in [
            &b"dsv-fsmonitor-token 2\ntoken x\n"[..],
            b"dsv-fsmonitor-token 1\ntoken x\nindex 5\nsparse -\npaths 0\n",
        ] {
            std::fs::write(token_file(dsv), old).unwrap();
            carry(dsv, Some(v(1, 5)), v(2, 6), Some(&[]), 100);
            assert!(!has_token(dsv));
        }
    }

    #[test]
    fn answers_naming_paths_outside_the_tree_are_refused() {
        assert!(parse_answer(b"changes t 1\n../x\0").is_none());
        assert!(parse_answer(b"changes t 1\n/etc\0").is_none());
        assert!(parse_answer(b"changes t 2\na\0").is_none());
        assert!(matches!(
            parse_answer(b"changes t 2\na\0b/c\0"),
            Some(Answer::Changes { .. })
        ));
    }
}
