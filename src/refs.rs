//! Refs: HEAD, branches and tags as small files, each change logged in a reflog.
//!
//! `.dsv/HEAD` holds `ref: refs/heads/NAME` or a commit id (detached).
//! `.dsv/refs/heads/NAME` and `.dsv/refs/tags/NAME` hold a commit id.
//! Updates replace the file atomically (temp, fsync, rename) under the
//! repository lock; the reflog line is appended first, so a crash can leave a
//! log line for an update that did not happen, never an update without a line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::Person;
use crate::quote;
use crate::storage::Storage;

/// Branch namespace.
pub const HEADS: &str = "refs/heads/";
/// Tag namespace.
pub const TAGS: &str = "refs/tags/";
/// Remote-tracking namespace (`refs/remotes/REMOTE/BRANCH`).
pub const REMOTES: &str = "refs/remotes/";
/// The newest stash; its reflog is the stash list.
pub const STASH: &str = "refs/stash";
/// The id written as "old" when a ref is created.
pub const ZERO: ObjectId = ObjectId([0; 32]);

/// Where HEAD points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// On a branch (which may not exist yet: an unborn branch).
    Branch(String),
    /// Detached at a commit.
    Detached(ObjectId),
}

/// One reflog line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReflogEntry {
    /// Previous value (zero id when created).
    pub old: ObjectId,
    /// New value (zero id when deleted).
    pub new: ObjectId,
    /// Who made the change.
    pub who: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// What happened ("commit: ...", "switch: ...").
    pub message: String,
}

/// Access to the refs of one repository.
#[derive(Debug, Clone)]
pub struct Refs {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
}

/// Largest ref file (`HEAD`, a branch, a tag) dsv reads: a ref holds 65 bytes and
/// HEAD a branch name; anything bigger is damage, refused before it is read whole.
pub const MAX_REF_FILE: u64 = 4096;

/// Validates a branch or tag name (the rules of `git check-ref-format`, simplified).
pub fn check_ref_name(kind: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            kind,
            name: quote::short(name),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "HEAD" || name == "@" {
        return bad("reserved name");
    }
    if name.starts_with('-') {
        return bad("starts with '-'");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return bad("empty path component");
    }
    if name.ends_with('.') || name.ends_with(".lock") {
        return bad("ends with '.' or '.lock'");
    }
    if name.contains("..") || name.contains("@{") {
        return bad("contains '..' or '@{'");
    }
    if name
        .split('/')
        .any(|c| c.starts_with('.') || c.ends_with(".lock"))
    {
        return bad("a component starts with '.' or ends with '.lock'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return bad("contains a space, control character or one of ~^:?*[\\");
    }
    // A component must fit in a file name (refs and their reflogs are files).
    if name.split('/').any(|c| c.len() > 255) {
        return bad("a component is longer than 255 bytes");
    }
    Ok(())
}

/// Validates a full ref name as the ref store uses it: `HEAD`, `refs/heads/B`,
/// `refs/tags/T`, `refs/remotes/REMOTE/B` or `refs/stash`. Every path the store touches goes
/// through this, so no name, from a user, a file or a remote, can lead outside
/// `.dsv/refs` and `.dsv/logs`.
pub fn check_full_name(full: &str) -> Result<()> {
    if full == "HEAD" || full == STASH {
        return Ok(());
    }
    if let Some(b) = full.strip_prefix(HEADS) {
        return check_ref_name("branch", b);
    }
    if let Some(t) = full.strip_prefix(TAGS) {
        return check_ref_name("tag", t);
    }
    if let Some(r) = full.strip_prefix(REMOTES) {
        check_ref_name("remote-tracking branch", r)?;
        if r.contains('/') {
            return Ok(());
        }
    }
    Err(Error::InvalidName {
        kind: "ref",
        name: quote::short(full),
        reason: "not HEAD, refs/heads/NAME, refs/tags/NAME, refs/remotes/REMOTE/NAME or refs/stash",
    })
}

/// Parses the contents of `.dsv/HEAD`: `ref: refs/heads/NAME` with a valid name,
/// or a commit id. The error quotes a short prefix of what is there.
pub fn parse_head(bytes: &[u8]) -> std::result::Result<Head, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(format!(
            "not a ref or commit id (not UTF-8: '{}')",
            quote::bytes(bytes)
        ));
    };
    let text = text.trim_end();
    if let Some(r) = text.strip_prefix("ref: ") {
        let name = r
            .strip_prefix(HEADS)
            .ok_or_else(|| format!("HEAD points outside refs/heads: '{}'", quote::short(r)))?;
        check_ref_name("branch", name).map_err(|e| e.to_string())?;
        return Ok(Head::Branch(name.to_string()));
    }
    ObjectId::from_hex(text)
        .map(Head::Detached)
        .ok_or_else(|| format!("not a ref or commit id: '{}'", quote::short(text)))
}

/// Parses the contents of a ref file: a commit id (64 hex digits, then a newline).
pub fn parse_ref(bytes: &[u8]) -> std::result::Result<ObjectId, String> {
    let text = String::from_utf8_lossy(bytes);
    ObjectId::from_hex(text.trim_end())
        .ok_or_else(|| format!("not a commit id: '{}'", quote::bytes(bytes)))
}

/// Reads at most `cap + 1` bytes of a file: enough to tell that it is too large
/// without reading (or holding) the rest.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// The first file below `dir` that is not a dsv temp file (a live ref), if any.
fn first_file_below(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).ok()?.flatten() {
            let p = ent.path();
            match ent.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                _ if crate::storage::is_dsv_temp(ent.file_name().as_encoded_bytes()) => {}
                _ => return Some(p),
            }
        }
    }
    None
}

impl Refs {
    /// Refs stored under `dsv_dir`.
    pub fn new(dsv_dir: &Path, storage: Arc<dyn Storage>) -> Refs {
        Refs {
            dir: dsv_dir.to_path_buf(),
            storage,
        }
    }

    /// The file of a full ref name, after checking the name.
    fn path(&self, full: &str) -> Result<PathBuf> {
        check_full_name(full)?;
        Ok(self.dir.join(full))
    }

    /// The reflog file of a full ref name, after checking the name.
    fn log_path(&self, full: &str) -> Result<PathBuf> {
        check_full_name(full)?;
        Ok(self.dir.join("logs").join(full))
    }

    /// Reads a ref file of at most [`MAX_REF_FILE`] bytes (`None`: absent).
    fn read_ref_file(path: &Path) -> Result<Option<Vec<u8>>> {
        let bytes = match read_capped(path, MAX_REF_FILE) {
            Ok(b) => b,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::IsADirectory
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        if bytes.len() as u64 > MAX_REF_FILE {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            return Err(Error::Corrupt(format!(
                "{}: {size} bytes, too large for a ref (at most {MAX_REF_FILE}); starts with '{}'",
                path.display(),
                quote::bytes(&bytes[..bytes.len().min(40)])
            )));
        }
        Ok(Some(bytes))
    }

    /// Reads HEAD. A HEAD naming an invalid branch is refused here, so no
    /// crafted HEAD can make a later write land outside `.dsv/refs`.
    pub fn head(&self) -> Result<Head> {
        let path = self.dir.join("HEAD");
        let bytes = Self::read_ref_file(&path)?.ok_or_else(|| {
            Error::io(
                "reading",
                &path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        parse_head(&bytes).map_err(|m| Error::Corrupt(format!("{}: {m}", path.display())))
    }

    /// The commit HEAD resolves to (`None` on an unborn branch).
    pub fn head_commit(&self) -> Result<Option<ObjectId>> {
        match self.head()? {
            Head::Branch(b) => self.read(&format!("{HEADS}{b}")),
            Head::Detached(id) => Ok(Some(id)),
        }
    }

    /// Reads a full ref name (`refs/heads/main`). An invalid name cannot exist:
    /// it reads as absent, without touching the file system.
    pub fn read(&self, full: &str) -> Result<Option<ObjectId>> {
        if check_full_name(full).is_err() {
            return Ok(None);
        }
        let path = self.dir.join(full);
        let Some(bytes) = Self::read_ref_file(&path)? else {
            return Ok(None);
        };
        parse_ref(&bytes)
            .map(Some)
            .map_err(|m| Error::Corrupt(format!("{}: {m}", path.display())))
    }

    /// Refuses a ref whose name clashes with an existing one: `a` cannot be
    /// created while `a/b` exists, nor `a/b` while `a` does (one would have to be
    /// both a file and a directory). Empty directories (and those holding only
    /// reflogs of deleted refs) are not a conflict; the caller removes them.
    fn check_conflict(&self, full: &str) -> Result<()> {
        let path = self.path(full)?;
        // `full` has at least two components (namespace and name).
        let mut prefix = String::new();
        let parts: Vec<&str> = full.split('/').collect();
        for (i, part) in parts.iter().enumerate().take(parts.len() - 1) {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            if i < 1 || (full.starts_with(REMOTES) && i < 2) {
                continue;
            }
            if std::fs::symlink_metadata(self.dir.join(&prefix)).is_ok_and(|m| !m.is_dir()) {
                return Err(Error::RefConflict {
                    name: quote::short(full),
                    existing: quote::short(&prefix),
                });
            }
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
            && let Some(inner) = first_file_below(&path)
        {
            let rel = inner.strip_prefix(&self.dir).unwrap_or(&inner);
            return Err(Error::RefConflict {
                name: quote::short(full),
                existing: quote::short(&rel.to_string_lossy()),
            });
        }
        Ok(())
    }

    fn append_log(
        &self,
        full: &str,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        who: &Person,
        time: i64,
        msg: &str,
    ) -> Result<()> {
        let path = self.log_path(full)?;
        if !path.is_file() {
            self.make_room(&self.dir.join("logs"), &path)?;
        }
        if let Some(parent) = path.parent() {
            self.storage.create_dir_all(parent)?;
        }
        let line = format!(
            "{} {} {} <{}> {}\t{}\n",
            old.unwrap_or(ZERO),
            new.unwrap_or(ZERO),
            who.name.replace(['<', '>', '\n'], ""),
            who.email.replace(['<', '>', '\n'], ""),
            time,
            msg.lines().next().unwrap_or("")
        );
        let mut f = self.storage.open_append(&path)?;
        self.storage.append(&mut f, &path, line.as_bytes())
    }

    /// Clears the way for a new file at `path` (below `root`): what stands in the
    /// way there is stale, since the caller checked that no live ref does. A
    /// directory at `path` (left by deleted `NAME/...` refs: empty directories, or
    /// their reflogs and temp files) is removed, and so is a file where a directory
    /// is needed (the reflog of a deleted ref `NAME` when `NAME/x` is created).
    fn make_room(&self, root: &Path, path: &Path) -> Result<()> {
        let Ok(rel) = path.strip_prefix(root) else {
            return Ok(());
        };
        let comps: Vec<_> = rel.components().collect();
        let mut cur = root.to_path_buf();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let Ok(m) = std::fs::symlink_metadata(&cur) else {
                break;
            };
            let last = i + 1 == comps.len();
            if !last && !m.is_dir() {
                self.storage.remove_file(&cur)?;
                break;
            }
            if last && m.is_dir() {
                std::fs::remove_dir_all(&cur).ctx("removing", &cur)?;
            }
        }
        Ok(())
    }

    /// Sets a ref, logging the change (also in HEAD's log when HEAD is on this branch).
    pub fn update(
        &self,
        full: &str,
        new: ObjectId,
        who: &Person,
        time: i64,
        msg: &str,
    ) -> Result<()> {
        let path = self.path(full)?;
        let old = self.read(full)?;
        if old.is_none() {
            self.check_conflict(full)?;
            self.make_room(&self.dir.join("refs"), &path)?;
        }
        self.append_log(full, old, Some(new), who, time, msg)?;
        if self.head()? == Head::Branch(full.strip_prefix(HEADS).unwrap_or("").to_string()) {
            self.append_log("HEAD", old, Some(new), who, time, msg)?;
        }
        if let Some(parent) = path.parent() {
            self.storage.create_dir_all(parent)?;
        }
        self.storage
            .write_atomic(&path, format!("{new}\n").as_bytes())
    }

    /// Deletes a ref and its log.
    pub fn delete(&self, full: &str) -> Result<()> {
        let path = self.path(full)?;
        self.storage.remove_file(&path)?;
        let log = self.log_path(full)?;
        if log.is_file() {
            self.storage.remove_file(&log)?;
        }
        // Remove now-empty parent directories of nested names (feature/x), in refs
        // and in logs: a directory left behind would block a later ref `feature`.
        for (file, stop) in [
            (path, self.dir.join("refs")),
            (log, self.dir.join("logs").join("refs")),
        ] {
            let mut dir = file.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == stop
                    || d == stop.join("heads")
                    || d == stop.join("tags")
                    || d == stop.join("remotes")
                    || std::fs::remove_dir(&d).is_err()
                {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
        Ok(())
    }

    /// Points HEAD at a branch or commit, logging the move in HEAD's reflog.
    pub fn set_head(&self, head: &Head, who: &Person, time: i64, msg: &str) -> Result<()> {
        let old = self.head_commit().unwrap_or(None);
        let (text, new) = match head {
            Head::Branch(b) => {
                check_ref_name("branch", b)?;
                (
                    format!("ref: {HEADS}{b}\n"),
                    self.read(&format!("{HEADS}{b}"))?,
                )
            }
            Head::Detached(id) => (format!("{id}\n"), Some(*id)),
        };
        self.append_log("HEAD", old, new, who, time, msg)?;
        self.storage
            .write_atomic(&self.dir.join("HEAD"), text.as_bytes())
    }

    /// Writes HEAD without logging (used by init).
    pub fn init_head(&self, branch: &str) -> Result<()> {
        check_ref_name("branch", branch)?;
        self.storage.write_atomic(
            &self.dir.join("HEAD"),
            format!("ref: {HEADS}{branch}\n").as_bytes(),
        )
    }

    /// Lists refs under a namespace (`refs/heads/`), sorted by name, names without
    /// the prefix. A file whose name is not a valid ref name is an error naming it
    /// (dsv never writes one: someone put it there), not silently skipped: `gc`
    /// must not lose the commits it may hold.
    pub fn list(&self, namespace: &str) -> Result<Vec<(String, ObjectId)>> {
        let base = self.dir.join(namespace);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", &dir, e)),
            };
            for ent in rd {
                let ent = ent.ctx("listing", &dir)?;
                let p = ent.path();
                let ft = ent.file_type().ctx("reading", &p)?;
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    if crate::storage::is_dsv_temp(ent.file_name().as_encoded_bytes()) {
                        continue;
                    }
                    let rel = p.strip_prefix(&base).unwrap_or(&p);
                    let Some(name) = rel.to_str() else {
                        return Err(Error::Corrupt(format!(
                            "{}: not a valid ref name (not UTF-8); rename or remove the file",
                            p.display()
                        )));
                    };
                    let full = format!("{namespace}{name}");
                    check_full_name(&full).map_err(|e| {
                        Error::Corrupt(format!(
                            "{}: {e}; rename or remove the file",
                            quote::short(&p.display().to_string())
                        ))
                    })?;
                    if let Some(id) = self.read(&full)? {
                        out.push((name.to_string(), id));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads a reflog, oldest first; `full` is `HEAD` or a full ref name.
    pub fn reflog(&self, full: &str) -> Result<Vec<ReflogEntry>> {
        let path = self.log_path(full)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let parse = || -> Option<ReflogEntry> {
                let (head, message) = line.split_once('\t').unwrap_or((line, ""));
                let old = ObjectId::from_hex(head.get(..64)?)?;
                let new = ObjectId::from_hex(head.get(65..129)?)?;
                let rest = head.get(130..)?;
                let (who, time) = rest.rsplit_once(' ')?;
                Some(ReflogEntry {
                    old,
                    new,
                    who: who.to_string(),
                    time: time.parse().ok()?,
                    message: message.to_string(),
                })
            };
            match parse() {
                Some(e) => out.push(e),
                None => {
                    return Err(Error::Corrupt(format!(
                        "{}:{}: malformed reflog line",
                        path.display(),
                        i + 1
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Drops entry `n` (0 = newest) of `full`'s reflog: the ref moves to the newest
    /// entry left, or is deleted with its log when none is left (how `stash drop`
    /// edits the stash list). The ref is written before the log is rewritten, so a
    /// crash between leaves the dropped entry listed, never a ref the log lacks.
    /// Returns the dropped entry, `None` when there is no entry `n`.
    pub fn drop_reflog_entry(&self, full: &str, n: usize) -> Result<Option<ReflogEntry>> {
        let mut entries = self.reflog(full)?;
        if n >= entries.len() {
            return Ok(None);
        }
        let dropped = entries.remove(entries.len() - 1 - n);
        let Some(newest) = entries.last() else {
            self.delete(full)?;
            return Ok(Some(dropped));
        };
        let path = self.path(full)?;
        self.storage
            .write_atomic(&path, format!("{}\n", newest.new).as_bytes())?;
        let text: String = entries
            .iter()
            .map(|e| format!("{} {} {} {}\t{}\n", e.old, e.new, e.who, e.time, e.message))
            .collect();
        self.storage
            .write_atomic(&self.log_path(full)?, text.as_bytes())?;
        Ok(Some(dropped))
    }

    /// All reflog files (HEAD and every ref that has one), as full names.
    pub fn reflog_names(&self) -> Result<Vec<String>> {
        let mut names = vec!["HEAD".to_string()];
        if self.log_path(STASH)?.is_file() {
            names.push(STASH.to_string());
        }
        for ns in [HEADS, TAGS] {
            for (n, _) in self.list(ns)? {
                names.push(format!("{ns}{n}"));
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for ok in ["main", "feature/x", "v1.0", "rain-night_2"] {
            assert!(check_ref_name("branch", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "HEAD", "-x", "a..b", "a b", "a/", "/a", "x.lock", "a~1", "a^", "a:b", ".hidden",
            "a//b", "a@{1}",
        ] {
            assert!(check_ref_name("branch", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_names_stay_inside_the_ref_store() {
        for ok in [
            "HEAD",
            "refs/heads/main",
            "refs/heads/feature/x",
            "refs/tags/v1.0",
            "refs/remotes/origin/main",
            "refs/stash",
        ] {
            assert!(check_full_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "refs/heads/../../x",
            "refs/heads/",
            "refs/remotes/origin",
            "refs/remotes/../x/y",
            "refs/other/x",
            "refs/stash/x",
            "logs/HEAD",
            "/etc/passwd",
            "refs/heads/a.lock/b",
        ] {
            assert!(check_full_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn head_contents() {
        assert_eq!(
            parse_head(b"ref: refs/heads/main\n"),
            Ok(Head::Branch("main".into()))
        );
        let id = ObjectId([7; 32]);
        assert_eq!(
            parse_head(format!("{id}\n").as_bytes()),
            Ok(Head::Detached(id))
        );
        for bad in [
            &b"ref: refs/heads/../../../outside/pwned\n"[..],
            b"ref: refs/tags/v1\n",
            b"ref: refs/heads/\n",
            b"garbage",
            b"\xff\xfe",
            b"",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_ref(format!("{id}\n").as_bytes()), Ok(id));
        assert!(parse_ref(b"zz").is_err());
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote::short("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        let long = "x".repeat(10_000);
        assert!(quote::short(&long).len() < 70);
        assert!(quote::bytes(&[0xff; 10_000]).chars().count() < 70);
    }

    #[test]
    fn temp_names_fit_beside_a_255_byte_name() {
        let long = "n".repeat(255);
        let tmp = crate::storage::temp_name(Path::new("/d").join(&long).as_path());
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(name.len() < 64, "{name}");
        assert!(crate::storage::is_dsv_temp(name.as_bytes()));
        assert_eq!(tmp.parent(), Some(Path::new("/d")));
    }
}
