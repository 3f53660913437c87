//! Reading label files from disk as dsv sees them (`dsv labels`): which format,
//! which frames, which objects. Useful to check detection and `dsv.toml` rules,
//! and to measure parsing on its own.

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::labels::{Format, FrameLabels};
use crate::layout::{FileSource, Layout, Role};
use crate::worktree::sources::WorktreeSource;

/// A label file's bytes: mapped when it is large, read otherwise.
enum Bytes {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Read(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// Files at least this large are mapped: below it, reading costs nothing worth saving.
const MAP_FROM: u64 = 16 << 20;

/// Reads a label file. A large one (a COCO file of hundreds of MB) is mapped
/// and its pages loaded up front: reading it into a fresh buffer costs the
/// kernel zeroing every page of that buffer and a copy, about a sixth of the
/// whole `dsv labels --count` time on a 205 MB file. Any mapping failure
/// falls back to reading.
fn read_label_file(file: &Path) -> Result<Bytes> {
    let f = std::fs::File::open(file).ctx("reading", file)?;
    let len = f.metadata().ctx("reading", file)?.len();
    if len >= MAP_FROM {
        // SAFETY: the map is read-only and lives only while this command
        // parses the file; if another process truncates the file meanwhile
        // the read faults (SIGBUS), the hazard every mapping reader accepts.
        // `dsv labels` is a read-only inspection command, never part of a
        // write to the repository.
        if let Ok(map) = unsafe { memmap2::MmapOptions::new().populate().map(&f) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    let mut buf = Vec::new();
    let _ = buf.try_reserve_exact(usize::try_from(len).unwrap_or(0));
    std::io::Read::read_to_end(&mut &f, &mut buf).ctx("reading", file)?;
    Ok(Bytes::Read(buf))
}

/// A label file as parsed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspected {
    /// The path as given.
    pub path: String,
    /// The format used.
    pub format: Format,
    /// Its frames.
    pub frames: Vec<FrameLabels>,
}

/// Parses a label file on disk. `root` is the dataset root (rules of its
/// `dsv.toml` and class-name files apply); `format` overrides detection.
pub fn inspect_file(root: &Path, file: &Path, format: Option<Format>) -> Result<Inspected> {
    let f = open_label_file(root, file, format)?;
    let frames = f
        .layout
        .parse(&f.src as &dyn FileSource, &f.rel, f.format, &f.bytes)?
        .map_err(|(p, e)| Error::Labels(format!("{p}: {e}")))?;
    Ok(Inspected {
        path: f.path,
        format: f.format,
        frames,
    })
}

/// A label file on disk with its format settled, read frame by frame
/// ([`LabelFile::each`]): a consumer that prints or counts frames never
/// holds a whole multi-frame file's objects (issue 16: a command's memory
/// stays within twice its largest label file plus 200 MiB).
pub struct LabelFile {
    /// The path as given.
    pub path: String,
    /// The format used.
    pub format: Format,
    rel: String,
    bytes: Bytes,
    src: WorktreeSource,
    layout: Layout,
}

/// Opens a label file on disk: reads it and settles its format. `root` is
/// the dataset root (rules of its `dsv.toml` and class-name files apply);
/// `format` overrides detection.
pub fn open_label_file(root: &Path, file: &Path, format: Option<Format>) -> Result<LabelFile> {
    let bytes = read_label_file(file)?;
    let src = WorktreeSource::new(root.to_path_buf());
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let rel = file
        .strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/");
    let format = match format {
        Some(f) => f,
        None => match layout.role(&rel, &bytes) {
            Role::Label(f) => f,
            _ => {
                return Err(Error::Labels(format!(
                    "{}: not recognized as a label file (use --format to say which it is)",
                    file.display()
                )));
            }
        },
    };
    Ok(LabelFile {
        path: file.display().to_string(),
        format,
        rel,
        bytes,
        src,
        layout,
    })
}

impl LabelFile {
    /// Scales `frames` of this file (normalized boxes) to pixels by the size
    /// in each frame's image header ([`crate::ops::pixels::labels_to_pixels`]).
    pub fn to_pixels(&self, frames: &mut [FrameLabels]) -> Result<()> {
        crate::ops::pixels::labels_to_pixels(
            &self.src,
            &self.layout,
            &self.rel,
            self.format,
            frames,
        )
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Parses it, handing each frame to `each` in file order; the error of
    /// [`inspect_file`] when it does not parse (the frames already handed
    /// over are then to be discarded).
    pub fn each(&self, each: &mut dyn FnMut(FrameLabels)) -> Result<()> {
        self.layout
            .parse_each(
                &self.src as &dyn FileSource,
                &self.rel,
                self.format,
                &self.bytes,
                each,
            )?
            .map_err(|(f, e)| Error::Labels(format!("{f}: {e}")))
    }
}
