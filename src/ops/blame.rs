//! Label blame (`dsv blame`): for each object of a label file, the commit that
//! last changed it (added it, moved its box, changed its class or attributes).
//!
//! The walk follows first parents from the given commit. Each step compares the
//! file with its version in the parent the way the dataset diff does: objects
//! paired per frame by [`pair_objects`] (identical, then id where the format's
//! ids persist, then IoU), so "changed" means what `dsv diff` would report. An
//! object still identical in the parent is followed into it; any other is
//! attributed to the commit. A label file missing in the parent is looked for
//! among the renames `dsv diff` detects (same content, new path), and a frame a
//! file names differently in the parent (a COCO `file_name` changed because the
//! image was renamed) among the frame renames. The walk stops as soon as every
//! object is attributed; only versions whose bytes differ are parsed.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::compare::{MatchOptions, ObjectChangeKind, object_change, pair_objects};
use crate::labels::{BBox, Format, FrameLabels, Object, format_of};
use crate::layout::{FileSource, Layout, Role};
use crate::object::Commit;
use crate::object::diff::{ChangeKind, detect_renames, diff_trees};
use crate::paths::display_path;
use crate::worktree::sources::TreeSource;

/// Version of the JSON document [`Blame`] serializes to.
pub const SCHEMA: &str = "dsv.blame/1";

/// What to blame.
#[derive(Debug, Clone, Default)]
pub struct BlameOptions {
    /// Only this frame: the name the label file gives it, or the frame file's
    /// repository path.
    pub frame: Option<String>,
    /// Object pairing (ids are used where the format's ids persist).
    pub matching: MatchOptions,
}

/// The commit an object was last changed in.
#[derive(Debug, Clone, Serialize)]
pub struct BlameCommit {
    /// Full commit id.
    pub id: String,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    /// The author's UTC offset in minutes.
    pub tz_offset_min: i32,
    /// First line of the message.
    pub subject: String,
}

/// One object of the blamed version and where it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct BlameObject {
    /// Position of the object in its frame (0-based, file order).
    pub index: usize,
    /// Class.
    pub class: String,
    /// Box, when the object has one.
    #[serde(rename = "box", skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BBox>,
    /// The object's id in the file, when the format has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What that commit did to it: added, moved, reclassified or attributes.
    pub change: ObjectChangeKind,
    /// The commit that last changed it.
    pub commit: BlameCommit,
    /// The label file's path in that commit (differs from the blamed path
    /// when the file was renamed since).
    pub path: String,
}

/// One frame's objects, blamed.
#[derive(Debug, Clone, Serialize)]
pub struct BlameFrame {
    /// The frame as the label file names it.
    pub frame: String,
    /// The frame file it resolves to in the blamed commit, if found.
    pub frame_path: Option<String>,
    /// Units of the boxes.
    pub units: crate::labels::Units,
    /// Its objects, in file order.
    pub objects: Vec<BlameObject>,
}

/// Everything `dsv blame` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Blame {
    /// Schema version of this document.
    pub schema: &'static str,
    /// The blamed label file.
    pub path: String,
    /// Its format.
    pub format: Format,
    /// The commit blamed (full id).
    pub rev: String,
    /// Frames in file order (one entry per frame name).
    pub frames: Vec<BlameFrame>,
    /// Commits read by the walk (it stops once every object is attributed).
    pub commits_walked: usize,
}

/// The version being compared, per frame name: its objects, and for each the
/// output slot (frame, object) it stands for (`None` once attributed).
type Current = BTreeMap<String, (Vec<Object>, Vec<Option<(usize, usize)>>)>;

/// Per output frame and object: the change, the commit (index into the
/// commits read) and the label file's path there, once attributed.
type Done = Vec<Vec<Option<(ObjectChangeKind, usize, String)>>>;

/// The objects of a parsed version grouped by frame name (a name several
/// frames share is one frame), in first-seen order.
fn by_frame(frames: Vec<FrameLabels>) -> Vec<FrameLabels> {
    let mut out: Vec<FrameLabels> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for f in frames {
        match at.get(&f.frame) {
            Some(&i) => out[i].objects.extend(f.objects),
            None => {
                at.insert(f.frame.clone(), out.len());
                out.push(f);
            }
        }
    }
    out
}

fn commit_info(id: &ObjectId, c: &Commit) -> BlameCommit {
    BlameCommit {
        id: id.to_hex(),
        author: c.author.name.clone(),
        email: c.author.email.clone(),
        time: c.time,
        tz_offset_min: c.tz_offset_min,
        subject: c.subject().to_string(),
    }
}

/// The label file's format in a version, if it is a label file there.
fn label_format(layout: &Layout, path: &str, bytes: &[u8]) -> Option<Format> {
    match layout.role(path, bytes) {
        Role::Label(f) => Some(f),
        _ => None,
    }
}

fn load_layout(src: &dyn FileSource) -> Result<Layout> {
    Layout::load(src)?.map_err(|e| Error::Labels(e.to_string()))
}

/// Blames `path` (a repository path) as of commit `rev`.
pub fn blame(
    repo: &crate::Repository,
    rev: ObjectId,
    path: &str,
    opts: &BlameOptions,
) -> Result<Blame> {
    let store = &repo.store;
    let mut cur_id = rev;
    let mut cur = Commit::load(store, &rev)?;
    let src = TreeSource::new(store, Some(cur.tree));
    let Some((mode, blob)) = src.lookup(path)? else {
        return Err(Error::InvalidArgument(format!(
            "{path} is not in {} (blame reads a label file of a commit)",
            rev.short()
        )));
    };
    if !mode.is_blob() {
        return Err(Error::InvalidArgument(format!(
            "{path} is not a file in {}",
            rev.short()
        )));
    }
    let bytes = store.get(&blob)?;
    let layout = load_layout(&src)?;
    let Some(format) = label_format(&layout, path, &bytes) else {
        return Err(Error::InvalidArgument(format!(
            "{path} is not a label file (dsv reads no labels from it)"
        )));
    };
    let parsed = layout
        .parse(&src, path, format, &bytes)?
        .map_err(|(file, e)| Error::Labels(format!("{file}: {e}")))?;
    drop(bytes);
    let mut frames = by_frame(parsed);
    if let Some(want) = &opts.frame {
        let keep = match frames.iter().position(|f| &f.frame == want) {
            Some(i) => Some(i),
            None => {
                let mut found = None;
                for (i, f) in frames.iter().enumerate() {
                    if layout.frame_path(&src, path, format, &f.frame)?.as_deref()
                        == Some(want.as_str())
                    {
                        found = Some(i);
                        break;
                    }
                }
                found
            }
        };
        let Some(i) = keep else {
            return Err(Error::InvalidArgument(format!(
                "no frame {want} in {path} at {}",
                rev.short()
            )));
        };
        frames = vec![frames.swap_remove(i)];
    }

    let mut matching = opts.matching;
    matching.use_ids = format_of(format).ids_are_stable();

    // The output, objects to be filled in as the walk attributes them.
    let mut out_frames: Vec<BlameFrame> = Vec::with_capacity(frames.len());
    let mut done: Done = Vec::new();
    let mut current: Current = BTreeMap::new();
    let mut pending = 0usize;
    for (fi, f) in frames.into_iter().enumerate() {
        let frame_path = layout.frame_path(&src, path, format, &f.frame)?;
        out_frames.push(BlameFrame {
            frame: f.frame.clone(),
            frame_path,
            units: f.units,
            objects: Vec::with_capacity(f.objects.len()),
        });
        done.push(vec![None; f.objects.len()]);
        let slots: Vec<Option<(usize, usize)>> =
            (0..f.objects.len()).map(|oi| Some((fi, oi))).collect();
        pending += slots.len();
        if !slots.is_empty() {
            current.insert(f.frame, (f.objects.clone(), slots));
        }
        let objects = &mut out_frames[fi].objects;
        for (oi, o) in f.objects.into_iter().enumerate() {
            objects.push(BlameObject {
                index: oi,
                class: o.class,
                bbox: o.bbox,
                id: o.id,
                change: ObjectChangeKind::Added,
                commit: commit_info(&rev, &cur),
                path: path.to_string(),
            });
        }
    }

    // Commits that attributed something, by their position in `commits`.
    let mut commits: Vec<BlameCommit> = Vec::new();
    let mut cur_path = path.to_string();
    let mut cur_blob = blob;
    let mut walked = 1usize;
    let mut cur_layout = layout;
    let mut cur_format = format;
    // Attributes every waiting object of `current` to the commit at `ci`.
    let attribute_all = |current: &mut Current, done: &mut Done, ci: usize, at: &str| {
        for (_, (_, slots)) in std::mem::take(current) {
            for (fi, oi) in slots.into_iter().flatten() {
                done[fi][oi] = Some((ObjectChangeKind::Added, ci, at.to_string()));
            }
        }
    };
    while pending > 0 {
        commits.push(commit_info(&cur_id, &cur));
        let ci = commits.len() - 1;
        let Some(&parent_id) = cur.parents.first() else {
            attribute_all(&mut current, &mut done, ci, &cur_path);
            break;
        };
        let parent = Commit::load(store, &parent_id)?;
        let psrc = TreeSource::new(store, Some(parent.tree));
        // Tree renames between the parent and this commit, computed once when needed.
        let mut renames: Option<HashMap<String, String>> = None;
        let renames_of = |renames: &mut Option<HashMap<String, String>>| -> Result<()> {
            if renames.is_none() {
                let changes =
                    detect_renames(diff_trees(store, Some(&parent.tree), Some(&cur.tree), &[])?);
                *renames = Some(
                    changes
                        .into_iter()
                        .filter(|c| c.kind == ChangeKind::Renamed)
                        .filter_map(|c| {
                            Some((display_path(&c.path), display_path(c.from.as_deref()?)))
                        })
                        .collect(),
                );
            }
            Ok(())
        };
        let ppath = match psrc.lookup(&cur_path)? {
            Some((m, _)) if m.is_blob() => Some(cur_path.clone()),
            _ => {
                renames_of(&mut renames)?;
                renames.as_ref().and_then(|r| r.get(&cur_path).cloned())
            }
        };
        let Some(ppath) = ppath else {
            // The file was created here.
            attribute_all(&mut current, &mut done, ci, &cur_path);
            break;
        };
        let Some((_, pblob)) = psrc.lookup(&ppath)? else {
            attribute_all(&mut current, &mut done, ci, &cur_path);
            break;
        };
        let same_bytes = pblob == cur_blob;
        // Class names come from a separate file for some formats: the same
        // bytes may still mean other classes.
        if same_bytes && !format_of(cur_format).uses_class_names() {
            cur_id = parent_id;
            cur = parent;
            cur_path = ppath;
            walked += 1;
            continue;
        }
        let pbytes = store.get(&pblob)?;
        let playout = load_layout(&psrc)?;
        let pformat = label_format(&playout, &ppath, &pbytes);
        let parsed = match pformat {
            Some(f) if f == cur_format => {
                playout.parse(&psrc, &ppath, f, &pbytes)?.ok().map(by_frame)
            }
            _ => None,
        };
        drop(pbytes);
        let Some(old_frames) = parsed else {
            // Not this format's labels in the parent (or not readable as
            // them): every object was added as labels here.
            attribute_all(&mut current, &mut done, ci, &cur_path);
            break;
        };
        let mut old_by: HashMap<String, Vec<Object>> = old_frames
            .into_iter()
            .map(|f| (f.frame, f.objects))
            .collect();
        // Frames named differently in the parent: through the frame renames.
        let missing: Vec<String> = current
            .keys()
            .filter(|k| !old_by.contains_key(*k))
            .cloned()
            .collect();
        let mut renamed_frame: HashMap<String, String> = HashMap::new();
        if !missing.is_empty() {
            let gone: Vec<String> = old_by
                .keys()
                .filter(|k| !current.contains_key(*k))
                .cloned()
                .collect();
            if !gone.is_empty() {
                renames_of(&mut renames)?;
                let renames = renames.as_ref().expect("computed above");
                let csrc = TreeSource::new(store, Some(cur.tree));
                let mut old_of_path: HashMap<String, String> = HashMap::new();
                for g in &gone {
                    if let Some(p) = playout.frame_path(&psrc, &ppath, cur_format, g)? {
                        old_of_path.insert(p, g.clone());
                    }
                }
                for m in &missing {
                    if let Some(p) = cur_layout.frame_path(&csrc, &cur_path, cur_format, m)?
                        && let Some(from) = renames.get(&p)
                        && let Some(old_key) = old_of_path.get(from)
                    {
                        renamed_frame.insert(m.clone(), old_key.clone());
                    }
                }
            }
        }
        let mut next: Current = BTreeMap::new();
        for (key, (objects, slots)) in std::mem::take(&mut current) {
            let old_key = renamed_frame.get(&key).cloned().unwrap_or(key);
            let old = old_by.remove(&old_key).unwrap_or_default();
            let old_pair = pair_objects(&old, &objects, &matching);
            let mut new_to_old: Vec<Option<usize>> = vec![None; objects.len()];
            for (i, j) in old_pair.iter().enumerate() {
                if let Some(j) = j {
                    new_to_old[*j] = Some(i);
                }
            }
            let mut old_slots: Vec<Option<(usize, usize)>> = vec![None; old.len()];
            let mut any = false;
            for (j, slot) in slots.into_iter().enumerate() {
                let Some((fi, oi)) = slot else { continue };
                let change = match new_to_old[j] {
                    None => Some(ObjectChangeKind::Added),
                    Some(i) => object_change(&old[i], &objects[j], &matching).map(|c| c.kind),
                };
                match change {
                    Some(kind) => {
                        done[fi][oi] = Some((kind, ci, cur_path.clone()));
                        pending -= 1;
                    }
                    None => {
                        let i = new_to_old[j].expect("paired");
                        old_slots[i] = Some((fi, oi));
                        any = true;
                    }
                }
            }
            if any {
                next.insert(old_key, (old, old_slots));
            }
        }
        current = next;
        cur_id = parent_id;
        cur = parent;
        cur_path = ppath;
        cur_blob = pblob;
        cur_layout = playout;
        cur_format = pformat.unwrap_or(cur_format);
        walked += 1;
    }

    for (fi, f) in out_frames.iter_mut().enumerate() {
        for (oi, o) in f.objects.iter_mut().enumerate() {
            if let Some((kind, ci, at)) = done[fi][oi].take() {
                o.change = kind;
                o.commit = commits[ci].clone();
                o.path = at;
            }
        }
    }
    Ok(Blame {
        schema: SCHEMA,
        path: path.to_string(),
        format,
        rev: rev.to_hex(),
        frames: out_frames,
        commits_walked: walked,
    })
}
