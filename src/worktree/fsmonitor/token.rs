//! The monitor's saved token (`.dsv/fsmonitor/token`, format in docs/format.md)
//! and its bookkeeping across index writes ([`carry`], [`forget`]).
//!
//! Below both the index, which carries the token over at each write of its
//! entries, and the monitor's looks (the parent module), which save and trust
//! it: it knows the index only by its [`IndexVersion`].

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::worktree::IndexVersion;

/// First line of the token file (its format's version).
///
/// Format 1 named only the index's stamp, which two writes of one command can
/// share: it is read as no token (a full scan, then a format 2 token).
const TOKEN_MAGIC: &[u8] = b"dsv-fsmonitor-token 2\n";
/// A token file or a daemon answer larger than this is not read (full scan).
pub(super) const MAX_BYTES: u64 = 256 << 20;

/// `.dsv/fsmonitor/`: the daemon's socket, lock and cookies, and the token file.
pub fn monitor_dir(dsv_dir: &Path) -> PathBuf {
    dsv_dir.join("fsmonitor")
}

/// A repository path that cannot lead outside the working tree.
pub(super) fn safe_path(p: &[u8]) -> bool {
    !p.is_empty()
        && p[0] != b'/'
        && p.split(|b| *b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// The saved result of the last monitored look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TokenFile {
    pub(super) token: String,
    pub(super) index: IndexVersion,
    pub(super) sparse: String,
    pub(super) paths: Vec<Vec<u8>>,
}

pub(super) fn token_file(dsv_dir: &Path) -> PathBuf {
    monitor_dir(dsv_dir).join("token")
}

impl TokenFile {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = TOKEN_MAGIC.to_vec();
        out.extend_from_slice(
            format!(
                "token {}\nindex {} {}\nsparse {}\npaths {}\n",
                self.token,
                self.index.generation,
                self.index.stamp,
                self.sparse,
                self.paths.len()
            )
            .as_bytes(),
        );
        for p in &self.paths {
            out.extend_from_slice(p);
            out.push(0);
        }
        out
    }

    pub(super) fn decode(b: &[u8]) -> Option<TokenFile> {
        let mut rest = b.strip_prefix(TOKEN_MAGIC)?;
        let mut field = |name: &str| -> Option<String> {
            let nl = rest.iter().position(|c| *c == b'\n')?;
            let line = std::str::from_utf8(&rest[..nl]).ok()?;
            rest = &rest[nl + 1..];
            Some(line.strip_prefix(name)?.strip_prefix(' ')?.to_string())
        };
        let token = field("token")?;
        let index = field("index")?;
        let (generation, stamp) = index.split_once(' ')?;
        let index = IndexVersion {
            generation: generation.parse().ok()?,
            stamp: stamp.parse().ok()?,
        };
        let sparse = field("sparse")?;
        let n: usize = field("paths")?.parse().ok()?;
        let paths: Vec<Vec<u8>> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.strip_suffix(b"\0")?
                .split(|c| *c == 0)
                .map(<[u8]>::to_vec)
                .collect()
        };
        (paths.len() == n && paths.iter().all(|p| safe_path(p))).then_some(TokenFile {
            token,
            index,
            sparse,
            paths,
        })
    }

    pub(super) fn load(dsv_dir: &Path) -> Option<TokenFile> {
        let path = token_file(dsv_dir);
        let f = std::fs::File::open(path).ok()?;
        let mut b = Vec::new();
        f.take(MAX_BYTES + 1).read_to_end(&mut b).ok()?;
        if b.len() as u64 > MAX_BYTES {
            return None;
        }
        TokenFile::decode(&b)
    }

    /// Written without fsync: a file lost or torn by a crash fails to decode, or is
    /// the previous, consistent one; either way the next look is at worst a full scan.
    pub(super) fn save(&self, dsv_dir: &Path) -> std::io::Result<()> {
        let path = token_file(dsv_dir);
        let tmp = crate::storage::temp_name(&path);
        std::fs::write(&tmp, self.encode())?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// Drops the saved token (a command changed the worktree or index in a way the
/// next look must not trust).
pub fn forget(dsv_dir: &Path) {
    let _ = std::fs::remove_file(token_file(dsv_dir));
}

/// Whether a token is saved: an index write then collects the paths it changes for
/// [`carry`] (without one there is nothing to carry).
pub fn has_token(dsv_dir: &Path) -> bool {
    token_file(dsv_dir).exists()
}

/// Paths an index write may add to the token before [`carry`] gives up on it: the
/// next look costs a lookup per remembered path, which beyond a fraction of the
/// tree is dearer than the walk it replaces.
fn carry_limit(entries: u64) -> usize {
    usize::try_from(entries / 4)
        .unwrap_or(usize::MAX)
        .max(10_000)
}

/// Keeps the saved token valid across an index write by dsv (switch, reset,
/// checkout, add, rm, merge, ...), so the next look stays monitored instead of
/// finding "the index changed".
///
/// The token file says: with the index at version `before`, every path outside its
/// remembered paths, the daemon's changes since its token and the smudged entries
/// is clean. A write from `before` to `after` that changed the entries exactly at
/// `changed` (`None`: not known) leaves every other path's entry as it was, so the
/// same holds at `after` with `changed` remembered too; the worktree files the
/// command wrote are the daemon's to report (the token predates them), as is any
/// change another process made meanwhile. `before` must be read in the write's own
/// transaction. A token for another index state is left alone (stale already, or
/// saved for `after` by a look that ran since); an unreadable one, an unknown or too
/// large `changed`, or a failed save drops it. `entries`: how many entries the index
/// holds after the write.
pub fn carry(
    dsv_dir: &Path,
    before: Option<IndexVersion>,
    after: IndexVersion,
    changed: Option<&[Vec<u8>]>,
    entries: u64,
) {
    let Some(mut saved) = TokenFile::load(dsv_dir) else {
        if has_token(dsv_dir) {
            forget(dsv_dir);
        }
        return;
    };
    if Some(saved.index) != before {
        return;
    }
    match changed {
        Some(c) if saved.paths.len() + c.len() <= carry_limit(entries) => {
            saved.paths.extend(c.iter().cloned());
            saved.paths.sort_unstable();
            saved.paths.dedup();
            saved.index = after;
            if saved.save(dsv_dir).is_err() {
                forget(dsv_dir);
            }
        }
        _ => forget(dsv_dir),
    }
}
