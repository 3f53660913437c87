//! One interface for every label format, and the registry of formats.
//!
//! A format is a [`LabelFormat`]: its id and name, how to recognize, parse
//! and write its files, and what it can hold. Each format implements it at
//! the end of its own folder (`coco/`, `yolo/`, ...); [`REGISTRY`] is the one
//! place a format is registered, in the order content sniffing tries them.
//! Commands (diff, stats, query, merge, select, export) ask the registry
//! instead of matching on [`Format`].

use std::path::Path;
use std::sync::LazyLock;

use super::Format;
use super::{
    BBox, ClassNames, FrameLabels, Geometry, LabelError, ParseContext, Units, coco, cvat, kitti,
    voc, yolo,
};

/// What a label format is to the rest of dsv.
pub trait LabelFormat: Sync {
    /// Its id.
    fn format(&self) -> Format;

    /// The name used in `dsv.toml` and on the command line.
    fn name(&self) -> &'static str;

    /// Whether a file (its path and first bytes) looks like this format by
    /// its content. Where labels live decides the rest ([`crate::layout::Layout::role`]).
    fn sniff(&self, path: &str, head: &[u8]) -> bool;

    /// The extension of its files (lower case, without the dot).
    fn extension(&self) -> &'static str;

    /// Whether `path` is where this format's files live by convention
    /// (`blank`: the file's first bytes are whitespace only), which decides
    /// what a file there is when its content does not
    /// ([`crate::layout::Layout::role_by_content`]).
    fn place(&self, _path: &str, _blank: bool) -> Place {
        Place::Elsewhere
    }

    /// Parses one label file into its frames.
    fn parse(&self, bytes: &[u8], ctx: &ParseContext) -> Result<Vec<FrameLabels>, LabelError>;

    /// Whether [`LabelFormat::parse`] accepts a file (the same error when
    /// not); a format that can check without building the frames overrides it.
    fn check(&self, bytes: &[u8], ctx: &ParseContext) -> Result<(), LabelError> {
        self.parse(bytes, ctx).map(drop)
    }

    /// [`LabelFormat::parse`] handing the frames to `each` one at a time, in
    /// the same order; a multi-frame format that can read frame by frame
    /// overrides it, so a consumer never holds a whole file's frames. On an
    /// error, the frames already handed over are to be discarded.
    fn parse_each(
        &self,
        bytes: &[u8],
        ctx: &ParseContext,
        each: &mut dyn FnMut(FrameLabels),
    ) -> Result<(), LabelError> {
        self.parse(bytes, ctx)?.into_iter().for_each(each);
        Ok(())
    }

    /// [`LabelFormat::parse_each`] given the bytes to own: a format that has
    /// read all it keeps before handing over its first frame frees them first,
    /// so a consumer encoding the frames (a cold query of a large file) does
    /// not hold the file beside its output.
    fn parse_each_owned(
        &self,
        bytes: Vec<u8>,
        ctx: &ParseContext,
        each: &mut dyn FnMut(FrameLabels),
    ) -> Result<(), LabelError> {
        self.parse_each(&bytes, ctx, each)
    }

    /// Whether [`LabelFormat::parse_each`] hands frames over without building
    /// a whole file's objects first (as it reads them, or, for COCO, each
    /// frame's objects from compact records as it is handed over); a format
    /// that overrides it to stream says so. Otherwise it parses the whole
    /// file first, and a caller that owns the bytes may as well parse whole
    /// and reuse their room once parsed.
    fn streams_frames(&self) -> bool {
        false
    }

    /// Writes frames as one file. A one-file-per-frame format refuses any
    /// number of frames but one. `names` is the class list of formats that
    /// store class indices (YOLO); others ignore it.
    fn write(
        &self,
        frames: &[FrameLabels],
        names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError>;

    /// Writes frames in the layout of an existing file `like` (its bytes and
    /// its parsed frames), with `others` versions of it consulted for what
    /// `like` lacks: what a merge or a selection writes back. Formats with no
    /// layout to keep write as [`LabelFormat::write`].
    fn write_like(
        &self,
        _like: (&[u8], &[FrameLabels]),
        _others: &[&[u8]],
        frames: &[FrameLabels],
        names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        self.write(frames, names)
    }

    /// Whether object ids persist across versions of a file, so that diff
    /// and merge may pair objects by id.
    fn ids_are_stable(&self) -> bool {
        false
    }

    /// Whether one file of this format describes many frames.
    fn is_multi_frame(&self) -> bool;

    /// Whether parsing needs the class names of the file's directory
    /// ([`ParseContext::class_names`]).
    fn uses_class_names(&self) -> bool {
        false
    }

    /// Whether a file describes exactly the one frame its name gives
    /// ([`ParseContext::stem`]) and holds no frame attributes: a changed file
    /// at the same path then says nothing new of its frame beyond the objects.
    fn one_named_frame(&self) -> bool {
        false
    }

    /// The boxes [`LabelFormat::parse`] would build from a file whose objects
    /// are all [`PlainBox`]es, without building them (a fast path, one call
    /// per file): `true` exactly when `parse` with `names` accepts the file
    /// and gives one frame named [`ParseContext::stem`], in
    /// [`LabelFormat::units`], with no size and no frame attributes, whose
    /// objects are `out` in file order; `false` (with `out` unspecified)
    /// otherwise, and always for a format without the fast path.
    fn plain_boxes(
        &self,
        _bytes: &[u8],
        _names: Option<&ClassNames>,
        _out: &mut Vec<PlainBox>,
    ) -> bool {
        false
    }

    /// What [`LabelFormat::parse`] with `names` would count in a file,
    /// found without building objects ([`Counts`] says how): `None` when
    /// `parse` refuses the file (the caller then parses it for the error)
    /// or, for a multi-frame format, when the counting pass does not take
    /// it (the caller then parses it, with the same results), and always
    /// for a format without the counting pass.
    fn count(&self, _bytes: &[u8], _names: Option<&ClassNames>) -> Option<Counts> {
        None
    }

    /// The units its boxes are written in.
    fn units(&self) -> Units {
        Units::Pixels
    }

    /// Whether every object must have a 2D box (objects without one cannot be written).
    fn needs_boxes(&self) -> bool {
        false
    }

    /// Whether it holds a shape beyond the plain 2D box (an object with
    /// geometry it does not hold is written as its box, or left out).
    fn holds(&self, geometry: &Geometry) -> bool;

    /// Where `dsv export` puts frames and label files; `None` when export
    /// does not write this format.
    fn export_layout(&self) -> Option<ExportLayout> {
        None
    }

    /// How a file of this format lists the classes it uses, in class-id
    /// order (what `dsv export` numbers classes by); `None` for a format
    /// whose files list none. The reader gives `None` for a file it cannot read.
    fn class_list(&self) -> Option<ClassList> {
        None
    }

    /// Writes one frame as `dsv export` does, into its
    /// [`LabelFormat::export_layout`]: as [`LabelFormat::write`], unless the
    /// file names where the export puts its image.
    fn write_exported(
        &self,
        frame: &FrameLabels,
        names: Option<&[String]>,
    ) -> Result<Vec<u8>, LabelError> {
        self.write(std::slice::from_ref(frame), names)
    }

    /// The frame name a written file gives the frame at `path` in the dataset.
    fn frame_name<'a>(&self, path: &'a str) -> &'a str {
        path
    }

    /// The directories its label files sit in by convention, each with
    /// the directory of their frames: a label file's frame is looked for in
    /// its directory with that name swapped ([`crate::layout::Layout::frame_dirs`]).
    fn frame_dirs(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The names of the files that list the class names its files index
    /// ([`LabelFormat::uses_class_names`]), in order of preference: looked
    /// for beside a label file and in each parent directory, and never a
    /// frame or a label file themselves ([`names_files`]).
    fn names_files(&self) -> &'static [&'static str] {
        &[]
    }

    /// Directories of a dataset of this format whose files are not frames
    /// though they are images (VOC's segmentation masks), in any case
    /// ([`not_frame_dirs`]).
    fn not_frame_dirs(&self) -> &'static [&'static str] {
        &[]
    }

    /// The directories the frames of its label file at `path` are looked
    /// for in by convention, in order of preference (after a `dsv.toml`
    /// rule's `frames`): by default [`swapped_dirs`] (a file per frame);
    /// a multi-frame format gives [`images_near`].
    fn frames_near(&self, path: &str) -> Vec<String> {
        swapped_dirs(path)
    }

    /// Whether a frame's `subset` attribute may name the directory its frame
    /// is within, below the frame directories, when its name alone finds no
    /// frame: a CVAT project export names frames `<name>` though they sit in
    /// `images/<subset>/<name>`. The query index then looks the frame up as
    /// `<subset>/<name>` too.
    fn frames_within_subset(&self) -> bool {
        false
    }

    /// Whether `dsv export` writes every frame's image size into its label
    /// files (so it is read for every frame, not only to convert units).
    fn needs_image_size(&self) -> bool {
        false
    }

    /// Why an export of this format cannot hold the class `name` (what
    /// refuses it), `None` when it can.
    fn refuse_class_name(&self, _name: &str) -> Option<&'static str> {
        None
    }

    /// The one file of tasks of an export of this format for annotators
    /// (frames named by their dataset path under `images/`, no splits);
    /// `None` for a format exported as a dataset.
    fn task_file(&self) -> Option<&'static str> {
        None
    }

    /// Writes the files of an export of this format that are not a frame's
    /// own label file (the class list, split lists, the files of a
    /// multi-frame format), handing each to `put`, which returns `false` to
    /// stop (keeping its own error). The error names the file a writer
    /// refused.
    fn write_dataset_files(
        &self,
        _plan: &DatasetPlan,
        _put: &mut dyn FnMut(DatasetFile) -> bool,
    ) -> Result<(), (String, LabelError)> {
        Ok(())
    }
}

/// Where a file is to a format by its directories ([`LabelFormat::place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Not where its files live.
    Elsewhere,
    /// Where its files live: a file there that no format's content claims is
    /// one of its files (a broken one, reported with its line).
    Usual,
    /// Where only its files live: a file there is its file whatever its content.
    Decides,
}

/// Whether a directory of `path` (not its file name) is one of `names`, in
/// any case.
pub fn in_dir(path: &str, names: &[&str]) -> bool {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    dir.split('/')
        .any(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))
}

/// A file name without its extension (the whole name when its only dot leads).
pub fn name_stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => name,
    }
}

/// What an export's dataset files are written from
/// ([`LabelFormat::write_dataset_files`]).
#[derive(Debug, Clone, Copy)]
pub struct DatasetPlan<'a> {
    /// The export's absolute path (for a file that names its own root).
    pub root: &'a Path,
    /// The splits, in order.
    pub splits: &'a [&'a str],
    /// The classes, in id order.
    pub classes: &'a [String],
    /// Where the exported version came from.
    pub lineage: DatasetLineage<'a>,
    /// The labels of each split's frames, for a multi-frame format (empty
    /// for the others, whose frames have their own files).
    pub frames: &'a [Vec<FrameLabels>],
    /// The file names in the export of each split's frames, in order.
    pub members: &'a [Vec<&'a str>],
}

/// Where an exported version came from, as its dataset files record it.
#[derive(Debug, Clone, Copy)]
pub struct DatasetLineage<'a> {
    /// The commit (full id).
    pub commit: &'a str,
    /// The revision as given.
    pub rev: &'a str,
    /// The query that selected the frames, if any.
    pub query: Option<&'a str>,
    /// dsv's version.
    pub dsv_version: &'a str,
    /// When the export was made (RFC 3339).
    pub date: &'a str,
}

/// One file of an export's dataset files: its path in the export, its
/// bytes, and whether it holds labels (counted as a label file).
#[derive(Debug, Clone)]
pub struct DatasetFile {
    /// Its path, relative to the export's root.
    pub path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Whether it holds frames' labels.
    pub labels: bool,
}

/// Reads the class names a label file lists, in class-id order
/// ([`LabelFormat::class_list`]); `None` for a file it cannot read.
pub type ClassList = fn(&[u8]) -> Option<Vec<String>>;

/// One object of a file of plain boxes ([`LabelFormat::plain_boxes`]): its
/// class index, its box and its confidence score. As an object, its class is
/// the name at that index of the names in effect (the index written out when
/// there are none), its box that box, and its one attribute, when scored,
/// `score` ([`super::AttrValue::Float`]).
pub type PlainBox = (usize, BBox, Option<f64>);

/// The counts of a file ([`LabelFormat::count`]). Without `frames`, of a
/// one-frame file of a format that stores class indices: the frame
/// [`LabelFormat::parse`] builds has `objects` objects, classes named as a
/// [`PlainBox`]'s are, no frame attributes, and no object attribute but a
/// `score` number on `scored` of them. With `frames`, of a multi-frame
/// file that names its classes itself: see [`FileTally`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Objects.
    pub objects: u64,
    /// Objects per class index, in order of first appearance.
    pub classes: Vec<(usize, u64)>,
    /// Objects with a confidence score.
    pub scored: u64,
    /// The rest of a multi-frame file's counts.
    pub frames: Option<Box<FileTally>>,
}

/// What a multi-frame file's [`Counts`] hold beyond objects and classes:
/// `classes` index `names`, the file's own class names (two indices may
/// share a name), `scored` is 0, and the frames' and objects' attributes
/// are counted by [`super::attr_bucket`] here (`score` among them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTally {
    /// Frames with at least one object.
    pub labelled: u64,
    /// Frames without objects.
    pub empty: u64,
    /// The class names `classes` index.
    pub names: Vec<String>,
    /// (attribute, value bucket, objects), in order of first appearance.
    pub attributes: Vec<(String, String, u64)>,
    /// (attribute, value bucket, frames), in order of first appearance.
    pub frame_attributes: Vec<(String, String, u64)>,
}

/// Where an export of one format puts its files: `{split}` in a directory
/// stands for the name of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLayout {
    /// The directory frames are copied under.
    pub images: &'static str,
    /// The directory per-frame label files are written under; `None` for a
    /// multi-frame format, whose files are written per split.
    pub labels: Option<&'static str>,
    /// The extension of a per-frame label file.
    pub ext: &'static str,
}

impl ExportLayout {
    /// Where the image `name` of a frame of `split` goes.
    pub fn image(&self, split: &str, name: &str) -> String {
        format!("{}/{name}", self.images.replace("{split}", split))
    }

    /// Where the label file of a frame of `split` whose file name without
    /// extension is `stem` goes, for a one-file-per-frame format.
    pub fn label(&self, split: &str, stem: &str) -> Option<String> {
        let dir = self.labels?.replace("{split}", split);
        Some(format!("{dir}/{stem}.{}", self.ext))
    }

    /// The directories a split has, even when it holds no frame.
    pub fn dirs(&self, split: &str) -> impl Iterator<Item = String> {
        [Some(self.images), self.labels]
            .into_iter()
            .flatten()
            .map(move |d| d.replace("{split}", split))
    }
}

/// Every format, in the order content sniffing tries them (CVAT's
/// `<annotations>` before VOC's `<annotation>`, YOLO's numeric class before
/// KITTI's named one): the one place a format is registered ([`format_of`]
/// is derived from it; a test checks that it lists every format once).
pub static REGISTRY: [&dyn LabelFormat; Format::ALL.len()] = [
    &coco::CocoFormat,
    &cvat::CvatFormat,
    &voc::VocFormat,
    &yolo::YoloFormat,
    &kitti::KittiFormat,
];

/// [`REGISTRY`] indexed by [`format_tag`], built on first use.
static BY_TAG: LazyLock<[&'static dyn LabelFormat; Format::ALL.len()]> = LazyLock::new(|| {
    Format::ALL.map(|f| {
        *REGISTRY
            .iter()
            .find(|i| i.format() == f)
            // A format left out of the registry is a build mistake the
            // registry's tests catch, not an input.
            .expect("every format is in the registry")
    })
});

/// The implementation of a format.
pub fn format_of(format: Format) -> &'static dyn LabelFormat {
    BY_TAG[usize::from(format_tag(format))]
}

/// The directory part of a root-relative path ("" at the root).
fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// `dir/name`, or `name` at the root.
fn join_dir(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Where a label file's frames are when each file describes one frame:
/// its directory with a component that is one of any format's
/// [`LabelFormat::frame_dirs`] swapped for that format's frame directory
/// (the relative position under the labels directory mirrored under the
/// frames one; the nearest component first), then the directory itself.
pub fn swapped_dirs(path: &str) -> Vec<String> {
    let dir = parent_dir(path);
    let swaps = || REGISTRY.iter().flat_map(|f| f.frame_dirs().iter());
    let mut out = Vec::new();
    let comps: Vec<&str> = dir.split('/').collect();
    for (i, c) in comps.iter().enumerate().rev() {
        if let Some((_, to)) = swaps().find(|(from, _)| c == from) {
            let mut d: Vec<&str> = comps.clone();
            d[i] = to;
            out.push(d.join("/"));
        }
    }
    out.push(dir.to_string());
    out
}

/// Where a multi-frame file's frames are by convention (the COCO and
/// Datumaro layouts): `images/<subset>` beside its directory for
/// `<name>_<subset>.<ext>` (`annotations/instances_train.json` ->
/// `images/train/`), then `images/` beside and under its directory, the
/// directory itself, its parent and the root.
pub fn images_near(path: &str) -> Vec<String> {
    let dir = parent_dir(path);
    let up = parent_dir(dir);
    let name = path.rsplit_once('/').map_or(path, |(_, f)| f);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let mut out = Vec::new();
    if let Some((_, subset)) = stem.rsplit_once('_') {
        out.push(join_dir(&join_dir(up, "images"), subset));
    }
    out.push(join_dir(up, "images"));
    out.push(join_dir(dir, "images"));
    out.push(dir.to_string());
    out.push(up.to_string());
    out.push(String::new());
    out
}

/// Whether every format whose files have the extension of `path` (as
/// written) holds many frames in a file: a file there names no one frame.
pub fn only_multi_frame(path: &str) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e);
    let mut of = REGISTRY
        .iter()
        .filter(|f| Some(f.extension()) == ext)
        .peekable();
    of.peek().is_some() && of.all(|f| f.is_multi_frame())
}

/// Whether a multi-frame format writes files with the extension `ext`
/// (lower case, without the dot).
pub fn multi_frame_extension(ext: &str) -> bool {
    REGISTRY
        .iter()
        .any(|f| f.is_multi_frame() && f.extension() == ext)
}

/// Every format's [`LabelFormat::names_files`], in registry order: what
/// the layout looks for beside a label file, and never takes for a frame or
/// a label file.
pub fn names_files() -> &'static [&'static str] {
    static ALL: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        REGISTRY
            .iter()
            .flat_map(|f| f.names_files())
            .copied()
            .collect()
    });
    &ALL
}

/// Every format's [`LabelFormat::not_frame_dirs`], in registry order: a
/// file under one of them is no frame, whatever its extension.
pub fn not_frame_dirs() -> &'static [&'static str] {
    static ALL: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        REGISTRY
            .iter()
            .flat_map(|f| f.not_frame_dirs())
            .copied()
            .collect()
    });
    &ALL
}

/// The byte the query index stores `format` as: its position in
/// [`Format::ALL`]. Stored on disk: never reorder `Format::ALL`.
pub fn format_tag(format: Format) -> u8 {
    // `ALL` lists the variants in declaration order (checked below).
    format as u8
}

/// The format stored as `tag` in the query index, if any.
pub fn format_from_tag(tag: u8) -> Option<Format> {
    Format::ALL.get(usize::from(tag)).copied()
}

/// The one frame a one-file-per-frame format writes.
pub(crate) fn one_frame(frames: &[FrameLabels]) -> Result<&FrameLabels, LabelError> {
    match frames {
        [f] => Ok(f),
        _ => Err(LabelError::msg(format!(
            "{} frames for a format that holds one frame per file",
            frames.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_gives_each_format_its_own_implementation_and_tag() {
        for (i, f) in Format::ALL.into_iter().enumerate() {
            let imp = format_of(f);
            assert_eq!(imp.format(), f);
            assert_eq!(usize::from(format_tag(f)), i, "{}", imp.name());
            assert_eq!(format_from_tag(format_tag(f)), Some(f));
            assert_eq!(Format::from_name(imp.name()), Some(f));
        }
        assert_eq!(format_from_tag(5), None);
    }

    #[test]
    fn format_of_is_derived_from_the_registry() {
        for f in REGISTRY {
            let imp = format_of(f.format());
            assert_eq!(imp.format(), f.format());
            assert_eq!(imp.name(), f.name());
            assert_eq!(imp.extension(), f.extension());
        }
        assert_eq!(REGISTRY.len(), Format::ALL.len());
    }

    #[test]
    fn formats_whose_files_keep_a_subset_frame_attribute_look_frames_up_within_it() {
        // The query index looks a frame up within its `subset` (a CVAT project
        // export's convention) only for formats that say so; it did so for
        // every format before. Behaviour is kept exactly when every format
        // whose files can hold that attribute says so, and the others
        // (YOLO, KITTI: no frame attributes; VOC: only `depth`) cannot.
        let ctx = ParseContext {
            class_names: Some(std::sync::Arc::new(ClassNames::from(vec![
                "car".to_string(),
            ]))),
            stem: "a".into(),
        };
        let subset = crate::labels::AttrValue::Str("train".into());
        for f in REGISTRY {
            let name = f.name();
            let mut frame = FrameLabels::new("a", f.units());
            (frame.width, frame.height) = (Some(40), Some(30));
            frame.attributes.insert("subset".into(), subset.clone());
            let b = match f.units() {
                Units::Pixels => BBox::from_corners(4.0, 3.0, 12.0, 9.0),
                Units::Normalized => BBox::from_corners(0.1, 0.1, 0.3, 0.3),
            };
            frame
                .objects
                .push(crate::labels::Object::new("car", Some(b)));
            let bytes = f
                .write(&[frame], Some(&["car".to_string()]))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let frames = f
                .parse(&bytes, &ctx)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let kept = frames
                .iter()
                .any(|fr| fr.attributes.get("subset") == Some(&subset));
            assert_eq!(kept, f.frames_within_subset(), "{name}");
        }
    }

    #[test]
    fn every_registered_format_answers_each_method_consistently() {
        let ctx = ParseContext {
            class_names: Some(std::sync::Arc::new(ClassNames::from(vec![
                "car".to_string(),
            ]))),
            stem: "a".into(),
        };
        let inputs: [&[u8]; 5] = [
            b"",
            b"\x00\xff garbage <",
            b"0 0.5 0.5 0.2 0.2\n",
            br#"{"images":[{"id":1,"file_name":"a.jpg"}],"annotations":[],"categories":[]}"#,
            b"<annotations><image id=\"0\" name=\"a.jpg\" width=\"4\" height=\"3\"/></annotations>",
        ];
        for f in REGISTRY {
            let name = f.name();
            assert_eq!(Format::from_name(name), Some(f.format()));
            assert!(!f.extension().is_empty() && f.extension() == f.extension().to_lowercase());
            assert!(!f.sniff("a.bin", b""), "{name}");
            for bytes in inputs {
                let parsed = f.parse(bytes, &ctx);
                assert_eq!(
                    f.check(bytes, &ctx).map_err(|e| e.to_string()),
                    parsed.as_ref().map(drop).map_err(|e| e.to_string()),
                    "{name}: check and parse disagree"
                );
                let mut each = Vec::new();
                let r = f.parse_each(bytes, &ctx, &mut |fl| each.push(fl));
                let mut owned = Vec::new();
                let o = f.parse_each_owned(bytes.to_vec(), &ctx, &mut |fl| owned.push(fl));
                assert_eq!(r.is_ok(), parsed.is_ok(), "{name}");
                assert_eq!(o.is_ok(), parsed.is_ok(), "{name}");
                if let Ok(frames) = &parsed {
                    assert_eq!(&each, frames, "{name}");
                    assert_eq!(&owned, frames, "{name}");
                    if !f.is_multi_frame() {
                        assert_eq!(frames.len(), 1, "{name}");
                    }
                }
            }
            // What a format says of itself holds together.
            assert_eq!(f.names_files().is_empty(), !f.uses_class_names(), "{name}");
            if let Some(l) = f.export_layout() {
                assert_eq!(l.ext, f.extension(), "{name}");
                assert_eq!(l.labels.is_none(), f.is_multi_frame(), "{name}");
            }
            if let Some(task) = f.task_file() {
                let tool = crate::labels::tool_named(name).expect("a tool");
                assert!(tool.is_label_format(), "{name}");
                assert_eq!(tool.task_file(), task, "{name}");
            }
            if f.one_named_frame() {
                assert!(!f.is_multi_frame(), "{name}");
            }
            for path in [
                "d/annotations/instances_val.json",
                "labels/train/a.txt",
                "a.xml",
            ] {
                let near = f.frames_near(path);
                let expect = if f.is_multi_frame() {
                    images_near(path)
                } else {
                    swapped_dirs(path)
                };
                assert_eq!(near, expect, "{name}: {path}");
            }
            for (labels, images) in f.frame_dirs() {
                assert_ne!(labels, images, "{name}");
            }
            let fl = FrameLabels::new("a", f.units());
            // Whether it writes a frame without a size is the format's
            // business; it answers without panicking.
            let _ = f.write(std::slice::from_ref(&fl), Some(&["car".to_string()]));
        }
    }

    #[test]
    fn where_frames_are_looked_for_by_convention() {
        assert_eq!(
            images_near("ds/annotations/instances_val.json"),
            [
                "ds/images/val",
                "ds/images",
                "ds/annotations/images",
                "ds/annotations",
                "ds",
                ""
            ]
        );
        assert_eq!(images_near("a.xml"), ["images", "images", "", "", ""]);
        assert_eq!(
            swapped_dirs("ds/labels/train/labels/a.txt"),
            [
                "ds/labels/train/images",
                "ds/images/train/labels",
                "ds/labels/train/labels"
            ]
        );
        assert_eq!(
            swapped_dirs("voc/Annotations/a.xml"),
            ["voc/JPEGImages", "voc/Annotations"]
        );
        assert_eq!(swapped_dirs("a.txt"), [""]);
        assert!(only_multi_frame("a/b.json"));
        assert!(!only_multi_frame("a/b.JSON"));
        assert!(!only_multi_frame("a/b.xml"));
        assert!(!only_multi_frame("a/b.txt"));
        assert!(!only_multi_frame("a/b.dat"));
        assert!(!only_multi_frame("json"));
        let multi: Vec<&str> = ["json", "xml", "txt", "JSON", ""]
            .into_iter()
            .filter(|e| multi_frame_extension(e))
            .collect();
        assert_eq!(multi, ["json", "xml"]);
    }

    #[test]
    fn layout_conventions_come_from_the_formats() {
        assert_eq!(names_files(), format_of(Format::Yolo).names_files());
        assert_eq!(
            names_files(),
            [
                "data.yaml",
                "dataset.yaml",
                "obj.names",
                "classes.txt",
                "classes.names"
            ]
        );
        assert_eq!(
            not_frame_dirs(),
            ["SegmentationClass", "SegmentationObject"]
        );
        assert_eq!(not_frame_dirs(), format_of(Format::Voc).not_frame_dirs());
        // A names file is not a label file of any format by its name alone:
        // the layout sets them apart before asking formats.
        for n in names_files() {
            assert!(!n.contains('/'), "{n}");
        }
    }

    #[test]
    fn format_properties_as_the_commands_used_them() {
        let multi: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| format_of(*f).is_multi_frame())
            .collect();
        assert_eq!(multi, [Format::Coco, Format::Cvat]);
        let stable: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| format_of(*f).ids_are_stable())
            .collect();
        assert_eq!(stable, [Format::Cvat]);
        let named: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| format_of(*f).one_named_frame())
            .collect();
        assert_eq!(named, [Format::Yolo]);
        assert!(format_of(Format::Cvat).export_layout().is_none());
        let listing: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| format_of(*f).class_list().is_some())
            .collect();
        assert_eq!(listing, [Format::Coco]);
        assert_eq!(format_of(Format::Yolo).units(), Units::Normalized);
        assert_eq!(format_of(Format::Voc).frame_name("a/b/c.jpg"), "c.jpg");
    }

    #[test]
    fn shape_kinds_each_export_format_holds() {
        use crate::labels::{Keypoints, Mask, PointList};
        let mask = |column_major| {
            Geometry::Mask(Box::new(Mask {
                counts: vec![1],
                left: 0,
                top: 0,
                width: 1,
                height: 1,
                column_major,
            }))
        };
        let shapes = [
            ("polygon", Geometry::Polygon { rings: vec![] }),
            ("rle", mask(true)),
            ("mask", mask(false)),
            (
                "keypoints",
                Geometry::Keypoints(Box::new(Keypoints {
                    points: vec![],
                    outline: None,
                    labels: None,
                })),
            ),
            (
                "points",
                Geometry::Points(Box::new(PointList { points: vec![] })),
            ),
            (
                "polyline",
                Geometry::Polyline(Box::new(PointList { points: vec![] })),
            ),
        ];
        let held = |f: Format| -> Vec<&str> {
            shapes
                .iter()
                .filter(|(_, g)| format_of(f).holds(g))
                .map(|(n, _)| *n)
                .collect()
        };
        assert_eq!(
            held(Format::Coco),
            ["polygon", "rle", "keypoints", "points"]
        );
        assert_eq!(held(Format::Yolo), ["polygon"]);
        assert!(held(Format::Voc).is_empty());
        assert!(held(Format::Kitti).is_empty());
    }

    #[test]
    fn only_formats_with_a_fast_path_take_it_and_never_for_pose_files() {
        let text = b"1 0.5 0.5 0.2 0.1\n0 0.25 0.5 0.1 0.1 0.75\n";
        let names = ClassNames::from(vec!["car".to_string(), "dog".to_string()]);
        let pose = ClassNames {
            kpt_shape: Some(crate::labels::KptShape { points: 1, dims: 2 }),
            ..names.clone()
        };
        let mut boxes = Vec::new();
        for f in Format::ALL {
            let imp = format_of(f);
            let fast = f == Format::Yolo;
            assert_eq!(imp.plain_boxes(text, Some(&names), &mut boxes), fast);
            assert_eq!(imp.count(text, Some(&names)).is_some(), fast);
            assert!(!imp.plain_boxes(text, Some(&pose), &mut boxes));
            assert!(imp.count(text, Some(&pose)).is_none());
        }
        let yolo = format_of(Format::Yolo);
        assert!(yolo.plain_boxes(text, None, &mut boxes));
        assert_eq!(
            boxes.iter().map(|b| (b.0, b.2)).collect::<Vec<_>>(),
            [(1, None), (0, Some(0.75))]
        );
        let counts = yolo.count(text, Some(&names)).expect("counts");
        assert_eq!(
            counts,
            Counts {
                objects: 2,
                classes: vec![(1, 1), (0, 1)],
                scored: 1,
                frames: None,
            }
        );
    }

    #[test]
    fn export_layouts_place_frames_and_label_files_per_split() {
        let placed = |f: Format| {
            let l = format_of(f).export_layout().expect("a layout");
            (
                l.image("val", "a.b.jpg"),
                l.label("val", "a.b"),
                l.dirs("val").collect::<Vec<_>>(),
            )
        };
        let s = |x: &str| x.to_string();
        assert_eq!(
            placed(Format::Coco),
            (s("images/val/a.b.jpg"), None, vec![s("images/val")])
        );
        assert_eq!(
            placed(Format::Yolo),
            (
                s("images/val/a.b.jpg"),
                Some(s("labels/val/a.b.txt")),
                vec![s("images/val"), s("labels/val")]
            )
        );
        assert_eq!(
            placed(Format::Voc),
            (
                s("JPEGImages/a.b.jpg"),
                Some(s("Annotations/a.b.xml")),
                vec![s("JPEGImages"), s("Annotations")]
            )
        );
        assert_eq!(
            placed(Format::Kitti),
            (
                s("val/image_2/a.b.jpg"),
                Some(s("val/label_2/a.b.txt")),
                vec![s("val/image_2"), s("val/label_2")]
            )
        );
    }

    #[test]
    fn coco_lists_its_categories_in_id_order() {
        let read = format_of(Format::Coco).class_list().expect("a reader");
        let doc = br#"{"images":[],"categories":[{"id":3,"name":"c"},{"id":1,"name":"a"},{"id":2,"name":"b"}]}"#;
        assert_eq!(read(doc), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(read(br#"{"images":[]}"#), Some(vec![]));
        assert_eq!(read(br#"{"categories":[{"id":"x","name":"a"}]}"#), None);
        assert_eq!(read(b"not json"), None);
    }

    #[test]
    fn one_file_per_frame_formats_refuse_to_write_two_frames() {
        let f = FrameLabels::new("a", Units::Pixels);
        for fmt in [Format::Kitti, Format::Voc, Format::Yolo] {
            assert!(format_of(fmt).write(&[f.clone(), f.clone()], None).is_err());
            assert!(format_of(fmt).write(&[], None).is_err());
        }
    }

    #[test]
    fn the_registry_lists_every_format_once_in_sniffing_order() {
        let order: Vec<Format> = REGISTRY.iter().map(|f| f.format()).collect();
        for f in Format::ALL {
            assert_eq!(order.iter().filter(|g| **g == f).count(), 1, "{f:?}");
            let listed = REGISTRY.iter().find(|i| i.format() == f).expect("listed");
            assert_eq!(listed.name(), format_of(f).name());
        }
        let pos = |f| order.iter().position(|g| *g == f);
        // CVAT's root <annotations> would not be VOC's <annotation>, but a
        // CVAT file may hold the singular too; a YOLO line is never KITTI's.
        assert!(pos(Format::Cvat) < pos(Format::Voc));
        assert!(pos(Format::Yolo) < pos(Format::Kitti));
        let ext = |f: Format| format_of(f).extension();
        assert_eq!(Format::ALL.map(ext), ["json", "txt", "txt", "xml", "xml"]);
    }

    #[test]
    fn where_each_format_lives_by_its_directories() {
        let placed = |path: &str, blank: bool| -> Vec<(Format, Place)> {
            Format::ALL
                .into_iter()
                .map(|f| (f, format_of(f).place(path, blank)))
                .filter(|(_, p)| *p != Place::Elsewhere)
                .collect()
        };
        assert_eq!(placed("a/b.txt", false), []);
        assert_eq!(
            placed("ds/Labels/train/a.txt", false),
            [(Format::Yolo, Place::Usual)]
        );
        assert_eq!(placed("obj_train_data/a.txt", false), []);
        assert_eq!(
            placed("obj_train_data/a.txt", true),
            [(Format::Yolo, Place::Usual)]
        );
        assert_eq!(placed("d/obj_train_data/a.txt", true), []);
        assert_eq!(
            placed("training/label_2/a.txt", false),
            [(Format::Kitti, Place::Decides)]
        );
        assert_eq!(
            placed("seq/label_02/a.txt", true),
            [(Format::Kitti, Place::Decides)]
        );
        // One name in any case: each format's extension tells them apart.
        assert_eq!(
            placed("voc/Annotations/a.xml", false),
            [(Format::Coco, Place::Usual), (Format::Voc, Place::Usual)]
        );
        // The file name is not a directory.
        assert_eq!(placed("labels", false), []);
        let swaps: Vec<(Format, &str, &str)> = Format::ALL
            .into_iter()
            .flat_map(|f| {
                format_of(f)
                    .frame_dirs()
                    .iter()
                    .map(move |(l, i)| (f, *l, *i))
            })
            .collect();
        assert_eq!(
            swaps,
            [
                (Format::Yolo, "labels", "images"),
                (Format::Kitti, "label_2", "image_2"),
                (Format::Kitti, "label_02", "image_02"),
                (Format::Voc, "Annotations", "JPEGImages"),
            ]
        );
    }

    #[test]
    fn what_each_format_asks_of_an_export() {
        let with = |p: &dyn Fn(&dyn LabelFormat) -> bool| -> Vec<Format> {
            Format::ALL
                .into_iter()
                .filter(|f| p(format_of(*f)))
                .collect()
        };
        assert_eq!(
            with(&|f| f.needs_image_size()),
            [Format::Coco, Format::Voc, Format::Cvat]
        );
        assert_eq!(with(&|f| f.task_file().is_some()), [Format::Cvat]);
        assert_eq!(format_of(Format::Cvat).task_file(), Some("annotations.xml"));
        for bad in ["a:b", "a\nb", "a\rb"] {
            assert_eq!(with(&|f| f.refuse_class_name(bad).is_some()), [Format::Voc]);
        }
        assert_eq!(
            with(&|f| f.refuse_class_name("traffic light").is_some()),
            []
        );
        assert!(
            format_of(Format::Voc)
                .refuse_class_name("a:b")
                .is_some_and(|why| why.contains("labelmap.txt"))
        );
    }

    /// The dataset files each format writes for an export of two splits.
    fn dataset_files(f: Format, stop_after: usize) -> Vec<DatasetFile> {
        let mut fl = FrameLabels::new("a.jpg", Units::Pixels);
        fl.width = Some(4);
        fl.height = Some(3);
        let frames = if format_of(f).is_multi_frame() {
            vec![vec![fl], vec![]]
        } else {
            vec![vec![], vec![]]
        };
        let classes = vec!["car".to_string(), "dog \"x\"".to_string()];
        let plan = DatasetPlan {
            root: Path::new("/x/out"),
            splits: &["train", "val"],
            classes: &classes,
            lineage: DatasetLineage {
                commit: "c0ffee",
                rev: "HEAD",
                query: Some("true"),
                dsv_version: "0.1.0",
                date: "2026-01-01T00:00:00Z",
            },
            frames: &frames,
            members: &[vec!["a.jpg", "b.c.png"], vec![".hidden"]],
        };
        let mut out = Vec::new();
        format_of(f)
            .write_dataset_files(&plan, &mut |file| {
                out.push(file);
                out.len() < stop_after
            })
            .expect("written");
        out
    }

    #[test]
    fn each_format_writes_its_dataset_files() {
        let listed = |f| {
            dataset_files(f, usize::MAX)
                .into_iter()
                .map(|d| (d.path, d.labels))
                .collect::<Vec<_>>()
        };
        let s = |x: &str| x.to_string();
        assert_eq!(
            listed(Format::Coco),
            [
                (s("annotations/instances_train.json"), true),
                (s("annotations/instances_val.json"), true)
            ]
        );
        assert_eq!(listed(Format::Cvat), [(s("annotations.xml"), true)]);
        assert_eq!(listed(Format::Yolo), [(s("data.yaml"), false)]);
        assert_eq!(listed(Format::Kitti), [(s("dataset_meta.json"), false)]);
        assert_eq!(
            listed(Format::Voc),
            [
                (s("ImageSets/Main/train.txt"), false),
                (s("ImageSets/Main/val.txt"), false),
                (s("labelmap.txt"), false)
            ]
        );
        let text = |f, i: usize| {
            String::from_utf8(dataset_files(f, usize::MAX).swap_remove(i).bytes).unwrap()
        };
        assert_eq!(text(Format::Voc, 0), "a\nb.c\n");
        assert_eq!(text(Format::Voc, 1), ".hidden\n");
        assert_eq!(
            text(Format::Voc, 2),
            "# label:color_rgb:parts:actions\ncar:::\ndog \"x\":::\n"
        );
        assert_eq!(text(Format::Kitti, 0), r#"{"labels":["car","dog \"x\""]}"#);
        let yaml = text(Format::Yolo, 0);
        assert!(yaml.starts_with("# written by dsv export\npath: \"/x/out\"\ntrain: images/train\nval: images/val\nnc: 2\nnames:\n  0: \"car\"\n  1: \"dog \\\"x\\\"\"\ndsv_commit: \"c0ffee\"\n"), "{yaml}");
        assert!(yaml.contains("dsv_where: \"true\"\n"), "{yaml}");
        let coco: serde_json::Value =
            serde_json::from_slice(&dataset_files(Format::Coco, usize::MAX)[0].bytes).unwrap();
        assert_eq!(coco["info"]["dsv_split"], "train");
        assert_eq!(coco["info"]["dsv_where"], "true");
        assert_eq!(coco["categories"][1]["name"], "dog \"x\"");
        assert_eq!(coco["images"][0]["file_name"], "a.jpg");
        let cvat = text(Format::Cvat, 0);
        assert!(cvat.contains("<image id=\"0\" name=\"a.jpg\""), "{cvat}");
        // A sink that stops is not handed another file.
        for f in Format::ALL {
            assert_eq!(dataset_files(f, 1).len(), 1, "{f:?}");
        }
    }
}
