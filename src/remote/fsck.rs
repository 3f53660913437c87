//! `fsck --remote`: check a remote's indexes, packs and the closure of its refs.

use std::collections::HashSet;

use serde::Serialize;

use super::fetch::{Checked, check_record, download, open_remote};
use super::format::PackIndex;
use super::{RemoteIndex, TransferStats, idx_name, pack_name};
use crate::error::Result;
use crate::id::ObjectId;
use crate::object::tree::TreeObject;
use crate::object::{Commit, EntryMode};
use crate::progress::Progress;
use crate::repo::Repository;

/// Outcome of a remote check.
#[derive(Debug, Default, Serialize)]
pub struct RemoteFsckReport {
    /// Remote name.
    pub remote: String,
    /// Visible packs (with an index).
    pub packs: u64,
    /// Objects reachable from the remote's branches.
    pub objects: u64,
    /// Branches checked.
    pub refs: u64,
    /// Problems found, one line each.
    pub problems: Vec<String>,
    /// Bytes and requests.
    pub transfer: TransferStats,
}

/// Checks remote `name`: every index decodes with a valid checksum and names an
/// existing pack of the right length; with `records`, every pack's bytes hash to
/// its name and every reachable record to its id; every branch's closure (commits,
/// trees, files, chunks) is listed in the indexes.
pub fn fsck_remote(
    repo: &Repository,
    name: &str,
    records: bool,
    progress: &dyn Progress,
) -> Result<RemoteFsckReport> {
    let remote = open_remote(repo, name)?;
    let mut report = RemoteFsckReport {
        remote: name.to_string(),
        ..RemoteFsckReport::default()
    };
    if let Err(e) = super::gc::read_state(&remote) {
        report.problems.push(e.to_string());
    }
    let mut index = RemoteIndex::default();
    let listing = remote.list(&["packs"])?;
    let sizes: std::collections::HashMap<String, u64> = listing
        .iter()
        .filter_map(|m| Some((m.location.filename()?.to_string(), m.size)))
        .collect();
    let mut idx_ids: Vec<ObjectId> = sizes
        .keys()
        .filter_map(|f| ObjectId::from_hex(f.strip_suffix(".idx")?))
        .collect();
    idx_ids.sort();
    for pack in idx_ids {
        let path = remote.path(&[&idx_name(&pack)]);
        let bytes = match remote.get_small(&path, super::MAX_PACK_INDEX) {
            Ok(Some(b)) => b,
            Ok(None) => {
                report
                    .problems
                    .push(format!("{path}: vanished while checking"));
                continue;
            }
            Err(e @ crate::error::Error::Remote { .. }) => {
                report.problems.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        let idx = match PackIndex::decode(&bytes) {
            Ok(i) if i.pack == pack => i,
            Ok(i) => {
                report
                    .problems
                    .push(format!("{path}: describes pack {}", i.pack));
                continue;
            }
            Err(e) => {
                report.problems.push(format!("{path}: {e}"));
                continue;
            }
        };
        let pack_file = pack_name(&pack);
        let file_name = pack_file.rsplit('/').next().unwrap_or_default();
        match sizes.get(file_name) {
            Some(n) if *n == idx.pack_len => {}
            Some(n) => report.problems.push(format!(
                "{pack_file}: {n} bytes, its index says {} (truncated)",
                idx.pack_len
            )),
            None => report
                .problems
                .push(format!("{pack_file}: missing but its index exists")),
        }
        if records
            && sizes.get(file_name) == Some(&idx.pack_len)
            && let Some(b) = remote.get_small(&remote.path(&[&pack_file]), idx.pack_len)?
            && ObjectId::hash(&b) != pack
        {
            report
                .problems
                .push(format!("{pack_file}: content does not match its name"));
        }
        index.add(&idx);
    }
    report.packs = index.packs.len() as u64;
    // Closure of every branch and tag.
    let listing = remote.refs().list()?;
    for s in &listing.skipped {
        report
            .problems
            .push(format!("branch '{}': {}", s.branch, s.reason));
    }
    let branches = listing.branches;
    report.refs = branches.len() as u64;
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut commits: Vec<(ObjectId, String)> = Vec::new();
    for (b, id) in &branches {
        commits.push((*id, format!("branch {b}")));
    }
    // Tags are roots too.
    let tags = remote.tags().list()?;
    for s in &tags.skipped {
        report
            .problems
            .push(format!("tag '{}': {}", s.branch, s.reason));
    }
    for (t, id) in &tags.branches {
        commits.push((*id, format!("tag {t}")));
    }
    let mut trees: Vec<(ObjectId, String)> = Vec::new();
    let mut blobs: Vec<(ObjectId, String)> = Vec::new();
    let missing = |id: &ObjectId, what: &str, problems: &mut Vec<String>| -> bool {
        if index.contains(id) {
            false
        } else {
            problems.push(format!("object {id} ({what}) is not in any pack index"));
            true
        }
    };
    progress.start("checking remote objects", None);
    while !commits.is_empty() || !trees.is_empty() || !blobs.is_empty() {
        let (batch, kind): (Vec<(ObjectId, String)>, u8) = if !commits.is_empty() {
            (std::mem::take(&mut commits), 0)
        } else if !trees.is_empty() {
            (std::mem::take(&mut trees), 1)
        } else {
            (std::mem::take(&mut blobs), 2)
        };
        let mut want = Vec::new();
        let mut whence = std::collections::HashMap::new();
        for (id, what) in batch {
            if !seen.insert(id) || missing(&id, &what, &mut report.problems) {
                continue;
            }
            want.push(id);
            whence.insert(id, what);
        }
        report.objects += want.len() as u64;
        progress.inc(want.len() as u64);
        let records = match download(&remote, &index, &want, false) {
            Ok(r) => r,
            Err(e) => {
                // Objects below these cannot be reached; the damage itself is the finding.
                report.problems.push(e.to_string());
                continue;
            }
        };
        for (id, rec) in records {
            let what = whence.get(&id).cloned().unwrap_or_default();
            let checked = match check_record(&remote, &id, &rec) {
                Ok(c) => c,
                Err(e) => {
                    report.problems.push(format!("{e} ({what})"));
                    continue;
                }
            };
            match (kind, checked) {
                (0, Checked::Raw(bytes)) => match Commit::decode(&bytes) {
                    Ok(c) => {
                        trees.push((c.tree, format!("tree of commit {}", id.short())));
                        for p in c.parents {
                            commits.push((p, format!("parent of {}", id.short())));
                        }
                    }
                    Err(e) => report.problems.push(format!("commit {id}: {e}")),
                },
                (1, Checked::Raw(bytes)) => match TreeObject::decode(&bytes) {
                    Ok(TreeObject::Shards(shards)) => {
                        for s in shards {
                            trees.push((s.id, format!("shard of tree {}", id.short())));
                        }
                    }
                    Ok(TreeObject::Entries(entries)) => {
                        for e in entries {
                            let what = format!(
                                "'{}' in tree {}",
                                String::from_utf8_lossy(&e.name),
                                id.short()
                            );
                            if e.mode == EntryMode::Dir {
                                trees.push((e.id, what));
                            } else {
                                blobs.push((e.id, what));
                            }
                        }
                    }
                    Err(e) => report.problems.push(format!("tree {id}: {e}")),
                },
                (2, Checked::Concat(children)) => {
                    for (c, _) in children {
                        blobs.push((c, format!("part of {}", id.short())));
                    }
                }
                (2, Checked::Raw(_)) => {}
                (_, Checked::Concat(_)) => report
                    .problems
                    .push(format!("object {id} ({what}) is a concatenation")),
                _ => {}
            }
        }
    }
    progress.finish();
    report.transfer = remote.stats();
    Ok(report)
}
