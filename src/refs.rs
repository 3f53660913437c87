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
use crate::storage::Storage;

/// Branch namespace.
pub const HEADS: &str = "refs/heads/";
/// Tag namespace.
pub const TAGS: &str = "refs/tags/";
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

/// Validates a branch or tag name (the rules of `git check-ref-format`, simplified).
pub fn check_ref_name(kind: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            kind,
            name: name.to_string(),
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
    if name.split('/').any(|c| c.starts_with('.')) {
        return bad("a component starts with '.'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return bad("contains a space, control character or one of ~^:?*[\\");
    }
    Ok(())
}

impl Refs {
    /// Refs stored under `dsv_dir`.
    pub fn new(dsv_dir: &Path, storage: Arc<dyn Storage>) -> Refs {
        Refs {
            dir: dsv_dir.to_path_buf(),
            storage,
        }
    }

    fn path(&self, full: &str) -> PathBuf {
        self.dir.join(full)
    }

    fn log_path(&self, full: &str) -> PathBuf {
        self.dir.join("logs").join(full)
    }

    /// Reads HEAD.
    pub fn head(&self) -> Result<Head> {
        let path = self.path("HEAD");
        let text = std::fs::read_to_string(&path).ctx("reading", &path)?;
        let text = text.trim_end();
        if let Some(r) = text.strip_prefix("ref: ") {
            let name = r.strip_prefix(HEADS).ok_or_else(|| {
                Error::Corrupt(format!(
                    "{}: HEAD points outside refs/heads: '{r}'",
                    path.display()
                ))
            })?;
            return Ok(Head::Branch(name.to_string()));
        }
        ObjectId::from_hex(text).map(Head::Detached).ok_or_else(|| {
            Error::Corrupt(format!(
                "{}: not a ref or commit id: '{text}'",
                path.display()
            ))
        })
    }

    /// The commit HEAD resolves to (`None` on an unborn branch).
    pub fn head_commit(&self) -> Result<Option<ObjectId>> {
        match self.head()? {
            Head::Branch(b) => self.read(&format!("{HEADS}{b}")),
            Head::Detached(id) => Ok(Some(id)),
        }
    }

    /// Reads a full ref name (`refs/heads/main`).
    pub fn read(&self, full: &str) -> Result<Option<ObjectId>> {
        let path = self.path(full);
        match std::fs::read_to_string(&path) {
            Ok(t) => ObjectId::from_hex(t.trim_end())
                .map(Some)
                .ok_or_else(|| Error::Corrupt(format!("{}: not a commit id", path.display()))),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::IsADirectory =>
            {
                Ok(None)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(e) => Err(Error::io("reading", &path, e)),
        }
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
        let path = self.log_path(full);
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

    /// Sets a ref, logging the change (also in HEAD's log when HEAD is on this branch).
    pub fn update(
        &self,
        full: &str,
        new: ObjectId,
        who: &Person,
        time: i64,
        msg: &str,
    ) -> Result<()> {
        let old = self.read(full)?;
        self.append_log(full, old, Some(new), who, time, msg)?;
        if self.head()? == Head::Branch(full.strip_prefix(HEADS).unwrap_or("").to_string()) {
            self.append_log("HEAD", old, Some(new), who, time, msg)?;
        }
        let path = self.path(full);
        if let Some(parent) = path.parent() {
            self.storage.create_dir_all(parent)?;
        }
        self.storage
            .write_atomic(&path, format!("{new}\n").as_bytes())
    }

    /// Deletes a ref and its log.
    pub fn delete(&self, full: &str) -> Result<()> {
        let path = self.path(full);
        self.storage.remove_file(&path)?;
        let log = self.log_path(full);
        if log.exists() {
            self.storage.remove_file(&log)?;
        }
        // Remove now-empty parent directories of nested names (feature/x).
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.dir.join("refs/heads")
                || d == self.dir.join("refs/tags")
                || std::fs::remove_dir(&d).is_err()
            {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    /// Points HEAD at a branch or commit, logging the move in HEAD's reflog.
    pub fn set_head(&self, head: &Head, who: &Person, time: i64, msg: &str) -> Result<()> {
        let old = self.head_commit().unwrap_or(None);
        let (text, new) = match head {
            Head::Branch(b) => (
                format!("ref: {HEADS}{b}\n"),
                self.read(&format!("{HEADS}{b}"))?,
            ),
            Head::Detached(id) => (format!("{id}\n"), Some(*id)),
        };
        self.append_log("HEAD", old, new, who, time, msg)?;
        self.storage
            .write_atomic(&self.path("HEAD"), text.as_bytes())
    }

    /// Writes HEAD without logging (used by init).
    pub fn init_head(&self, branch: &str) -> Result<()> {
        self.storage.write_atomic(
            &self.path("HEAD"),
            format!("ref: {HEADS}{branch}\n").as_bytes(),
        )
    }

    /// Lists refs under a namespace (`refs/heads/`), sorted by name, names without the prefix.
    pub fn list(&self, namespace: &str) -> Result<Vec<(String, ObjectId)>> {
        let base = self.path(namespace);
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
                    let name = p
                        .strip_prefix(&base)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .to_string();
                    if name.contains(".dsv-tmp-") {
                        continue;
                    }
                    if let Some(id) = self.read(&format!("{namespace}{name}"))? {
                        out.push((name, id));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads a reflog, oldest first; `full` is `HEAD` or a full ref name.
    pub fn reflog(&self, full: &str) -> Result<Vec<ReflogEntry>> {
        let path = self.log_path(full);
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

    /// All reflog files (HEAD and every ref that has one), as full names.
    pub fn reflog_names(&self) -> Result<Vec<String>> {
        let mut names = vec!["HEAD".to_string()];
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
}
