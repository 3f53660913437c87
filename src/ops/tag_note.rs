//! Annotated tags (`tag -a NAME -m MSG`): the tag ref stays a commit id, as every
//! reader of refs expects, and the annotation (tagger, date, message) is a JSON
//! file beside the refs, `.dsv/tag-annotations/NAME` (format 1, docs/format.md).
//! An annotation whose `object` is not where the tag points (the tag was moved
//! without one) is stale and ignored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Person;
use crate::refs::{TAGS, check_ref_name};
use crate::repo::{Repository, WritableRepo};

/// Version of the annotation file.
pub const TAG_NOTE_FORMAT: u32 = 1;

/// Directory of the annotation files under `.dsv`.
pub const TAG_NOTES_DIR: &str = "tag-annotations";

/// Largest annotation file read (a message longer than the commit message limit
/// has no business here; memory stays bounded by a hostile file).
const MAX_NOTE: u64 = 2 << 20;

/// The annotation of a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagNote {
    /// [`TAG_NOTE_FORMAT`].
    pub format: u32,
    /// The commit the tag was made on.
    pub object: ObjectId,
    /// The tag's name.
    pub tag: String,
    /// Who made the tag.
    pub tagger: Person,
    /// When (unix seconds).
    pub time: i64,
    /// Time zone offset in minutes.
    pub tz_offset_min: i32,
    /// The message, ending with a newline.
    pub message: String,
}

fn note_path(repo: &Repository, name: &str) -> Result<PathBuf> {
    check_ref_name("tag", name)?;
    Ok(repo.dsv_dir().join(TAG_NOTES_DIR).join(name))
}

/// Creates tag `name` at `target` with an annotation (with `force`, replaces an
/// existing tag). The ref is written first, then the annotation: a crash between
/// leaves a lightweight tag, never an annotation without its tag.
pub fn create_annotated(
    repo: &WritableRepo,
    name: &str,
    target: ObjectId,
    message: &str,
    force: bool,
) -> Result<TagNote> {
    if message.trim().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "tag '{name}': an annotated tag needs a message (-m MESSAGE)"
        )));
    }
    let path = note_path(repo, name)?;
    super::branch::create_tag(repo, name, target, force)?;
    let (time, tz) = repo.now()?;
    let lines: Vec<&str> = message.lines().map(str::trim_end).collect();
    let note = TagNote {
        format: TAG_NOTE_FORMAT,
        object: target,
        tag: name.to_string(),
        tagger: repo.identity()?,
        time,
        tz_offset_min: tz,
        message: format!("{}\n", lines.join("\n").trim_matches('\n')),
    };
    let bytes = serde_json::to_vec(&note).map_err(|e| Error::Corrupt(e.to_string()))?;
    if let Some(parent) = path.parent() {
        repo.storage.create_dir_all(parent)?;
    }
    repo.storage.write_atomic(&path, &bytes)?;
    Ok(note)
}

/// The annotation of tag `name`, if it has a current one.
pub fn read(repo: &Repository, name: &str) -> Result<Option<TagNote>> {
    let Some(target) = repo.refs.read(&format!("{TAGS}{name}"))? else {
        return Ok(None);
    };
    let path = note_path(repo, name)?;
    let bytes = match crate::refs::read_capped(&path, MAX_NOTE) {
        Ok(b) => b,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::IsADirectory
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    if bytes.len() as u64 > MAX_NOTE {
        return Err(Error::Corrupt(format!(
            "{}: larger than {MAX_NOTE} bytes, not a tag annotation",
            path.display()
        )));
    }
    let note: TagNote = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Corrupt(format!("{}: not a tag annotation: {e}", path.display())))?;
    if note.format != TAG_NOTE_FORMAT {
        return Err(Error::Corrupt(format!(
            "{}: tag annotation format {} (this dsv reads {TAG_NOTE_FORMAT})",
            path.display(),
            note.format
        )));
    }
    Ok((note.object == target && note.tag == name).then_some(note))
}

/// Removes the annotation of tag `name` (deleted, or replaced by a lightweight tag).
pub fn remove(repo: &WritableRepo, name: &str) -> Result<()> {
    let path = note_path(repo, name)?;
    if path.is_file() {
        repo.storage.remove_file(&path)?;
        // Parent directories of a nested name left empty go too.
        let stop = repo.dsv_dir().join(TAG_NOTES_DIR);
        let mut dir = path.parent().map(PathBuf::from);
        while let Some(d) = dir {
            if d == stop || std::fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(PathBuf::from);
        }
    }
    Ok(())
}
