//! Reading file contents straight from a remote's packs, without storing them:
//! the byte ranges of the records asked for (whole packs only when most of one is
//! wanted), each record checked against the pack index, each content hashed
//! against its id, large files reassembled from their chunks.

use std::collections::HashMap;

use rayon::prelude::*;

use super::fetch::{Checked, check_record, download};
use super::{Remote, RemoteIndex};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// How deep concatenations may nest (file, segments, chunks, with room to spare).
const MAX_DEPTH: usize = 4;

/// The verified contents of `ids` (in order; an id may repeat), read from the
/// remote's packs by byte ranges.
pub fn read_blobs(remote: &Remote, index: &RemoteIndex, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
    let got = read_level(remote, index, ids, 0)?;
    ids.iter()
        .map(|id| {
            got.get(id).cloned().ok_or_else(|| Error::Remote {
                remote: remote.name.clone(),
                message: format!("object {id} was asked for but not read"),
            })
        })
        .collect()
}

fn read_level(
    remote: &Remote,
    index: &RemoteIndex,
    ids: &[ObjectId],
    depth: usize,
) -> Result<HashMap<ObjectId, Vec<u8>>> {
    if depth > MAX_DEPTH {
        return Err(Error::Remote {
            remote: remote.name.clone(),
            message: "concatenations nested too deeply (hostile remote?)".into(),
        });
    }
    let mut uniq = ids.to_vec();
    uniq.sort();
    uniq.dedup();
    let recs = download(remote, index, &uniq, false)?;
    let checked: Vec<Result<(ObjectId, Checked)>> = recs
        .into_par_iter()
        .map(|(id, rec)| Ok((id, check_record(remote, &id, &rec)?)))
        .collect();
    let mut out = HashMap::with_capacity(uniq.len());
    let mut concats = Vec::new();
    for r in checked {
        match r? {
            (id, Checked::Raw(bytes)) => {
                out.insert(id, bytes);
            }
            (id, Checked::Concat(children)) => concats.push((id, children)),
        }
    }
    if !concats.is_empty() {
        let kids: Vec<ObjectId> = concats
            .iter()
            .flat_map(|(_, ch)| ch.iter().map(|(c, _)| *c))
            .collect();
        let parts = read_level(remote, index, &kids, depth + 1)?;
        for (id, children) in concats {
            let len: u64 = children.iter().map(|(_, l)| *l).sum();
            let mut buf = Vec::with_capacity(len.min(1 << 30) as usize);
            for (c, _) in &children {
                // Every part was asked for; one missing is the remote's fault, not a panic.
                let part = parts.get(c).ok_or_else(|| Error::Remote {
                    remote: remote.name.clone(),
                    message: format!("object {id}: its part {c} was asked for but not read"),
                })?;
                buf.extend_from_slice(part);
            }
            if ObjectId::hash(&buf) != id {
                return Err(Error::Remote {
                    remote: remote.name.clone(),
                    message: format!(
                        "object {id}: its chunks do not join to its content (damaged or hostile remote)"
                    ),
                });
            }
            out.insert(id, buf);
        }
    }
    Ok(out)
}
