//! Which files of a dataset are frames and which are labels, and how they pair up.
//!
//! The rules of `dsv.toml` come first; without a rule a file is classified by
//! its path (extension, directory names such as `labels/`, `label_2/`,
//! `Annotations/`) and, for candidate label files, by a look at its first bytes.
//! Everything reads through [`FileSource`], so the same logic works on a
//! commit's tree, the index and the working tree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::dsv_toml::{DsvToml, DsvTomlError};

use crate::labels::format::in_dir as has_dir;
use crate::labels::{ClassNames, Format, FrameLabels, LabelError, ParseContext, Place};

/// A version of the dataset's files, addressed by root-relative `/` paths.
pub trait FileSource: Sync {
    /// The file's bytes, or `None` when there is no such file.
    fn read(&self, path: &str) -> crate::error::Result<Option<Vec<u8>>>;
    /// Whether a file exists at the path.
    fn exists(&self, path: &str) -> crate::error::Result<bool>;
    /// The bytes of the file at `path` whose content id is `id` (sources backed by
    /// the object store read the id directly instead of walking the path).
    fn read_id(
        &self,
        path: &str,
        id: &crate::id::ObjectId,
    ) -> crate::error::Result<Option<Vec<u8>>> {
        let _ = id;
        self.read(path)
    }
    /// Every file's path, where the source can list them cheaply enough for a
    /// diff to look for the unchanged files describing a frame; `None` otherwise.
    fn paths(&self) -> crate::error::Result<Option<Vec<String>>> {
        Ok(None)
    }
}

/// What a file is to dsv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An image, a lidar sweep: something labels describe.
    Frame,
    /// A label file of a format.
    Label(Format),
    /// Anything else (class-name files, configs, docs).
    Other,
}

/// The classification rules of one dataset version.
pub struct Layout {
    /// The dataset's `dsv.toml` (defaults when absent).
    pub toml: DsvToml,
    names: Mutex<HashMap<String, Option<Arc<ClassNames>>>>,
}

/// The directory part of a root-relative path ("" at the root).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The last component of a root-relative path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, f)| f)
}

/// A path's file name without its extension (the frame name of YOLO and KITTI files).
pub fn stem(path: &str) -> &str {
    let f = file_name(path);
    f.rsplit_once('.').map_or(f, |(s, _)| s)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The extension when it is one a label format uses (lower case: `json`,
/// `xml`, `txt`, in any case in the path), else "": called for every file
/// of a tree, so it allocates nothing.
fn label_ext(path: &str) -> &'static str {
    let e = file_name(path).rsplit_once('.').map_or("", |(_, e)| e);
    crate::labels::REGISTRY
        .iter()
        .map(|f| f.extension())
        .find(|x| e.eq_ignore_ascii_case(x))
        .unwrap_or("")
}

fn blank_head(head: &[u8]) -> bool {
    head.iter().all(|b| b.is_ascii_whitespace())
}

/// Class names found for a label file (`None`: no names file), or the names file
/// that failed to parse with its error.
pub type NamesResult = Result<Option<Arc<ClassNames>>, (String, LabelError)>;

/// How much of a file's start classification looks at.
pub const SNIFF_LEN: usize = 8192;

impl Layout {
    /// Reads `dsv.toml` from the source (defaults when absent).
    pub fn load(src: &dyn FileSource) -> crate::error::Result<Result<Layout, DsvTomlError>> {
        let toml = match src.read(crate::dsv_toml::FILE_NAME)? {
            Some(bytes) => match DsvToml::parse(&bytes) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            },
            None => DsvToml::default(),
        };
        Ok(Ok(Layout::new(toml)))
    }

    /// Rules from an already parsed `dsv.toml`.
    pub fn new(toml: DsvToml) -> Layout {
        Layout {
            toml,
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Classification from the path alone: `Some(role)` when the path decides,
    /// `None` when the content must be looked at ([`Layout::role`]).
    pub fn role_by_path(&self, path: &str) -> Option<Role> {
        if let Some(rule) = self.toml.rule_for(path) {
            return Some(Role::Label(rule.format));
        }
        if path == crate::dsv_toml::FILE_NAME {
            return Some(Role::Other);
        }
        if has_dir(path, crate::labels::format::not_frame_dirs()) {
            // Such as Pascal VOC's segmentation masks, PNGs beside the frames:
            // counted, queried or exported as images they would be unlabelled frames.
            return Some(Role::Other);
        }
        if self.toml.is_frame(path) {
            return Some(Role::Frame);
        }
        let name = file_name(path);
        if crate::labels::format::names_files()
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            return Some(Role::Other);
        }
        match label_ext(name) {
            "" => Some(Role::Other),
            _ => None,
        }
    }

    /// Classification from the path and the file's first bytes.
    pub fn role(&self, path: &str, head: &[u8]) -> Role {
        if let Some(r) = self.role_by_path(path) {
            return r;
        }
        self.role_by_content(path, head)
    }

    /// Classification of a file whose path alone does not settle it
    /// ([`Layout::role_by_path`] gave `None`), from its first bytes. The
    /// formats of its extension are asked in the registry's order
    /// ([`crate::labels::REGISTRY`]): a directory where only one format's
    /// files live decides; then the first format whose content the file has;
    /// then a directory where a format's files live (a file there that does
    /// not look right is a broken label file, reported with its line, not an
    /// unrelated file).
    pub fn role_by_content(&self, path: &str, head: &[u8]) -> Role {
        let head = &head[..head.len().min(SNIFF_LEN)];
        let ext = label_ext(path);
        let formats = || {
            crate::labels::REGISTRY
                .iter()
                .filter(move |f| f.extension() == ext)
        };
        let blank = blank_head(head);
        let mut usual = None;
        for f in formats() {
            match f.place(path, blank) {
                Place::Decides => return Role::Label(f.format()),
                Place::Usual => usual = usual.or(Some(f.format())),
                Place::Elsewhere => {}
            }
        }
        match formats().find(|f| f.sniff(path, head)) {
            Some(f) => Role::Label(f.format()),
            None => usual.map_or(Role::Other, Role::Label),
        }
    }

    /// Class names for a YOLO label file: the `names` of its `dsv.toml` rule, else
    /// the nearest names file in its directory or a parent.
    pub fn class_names(
        &self,
        src: &dyn FileSource,
        path: &str,
    ) -> crate::error::Result<NamesResult> {
        if let Some(names) = self.toml.rule_for(path).and_then(|r| r.names.clone()) {
            return self.names_file(src, &names);
        }
        let mut dir = parent(path).to_string();
        let mut visited = Vec::new();
        let found = loop {
            if let Some(hit) = self.cached_names(&dir) {
                break hit;
            }
            visited.push(dir.clone());
            let mut hit = None;
            for n in crate::labels::format::names_files() {
                let p = join(&dir, n);
                if src.exists(&p)? {
                    hit = Some(p);
                    break;
                }
            }
            if let Some(p) = hit {
                match self.names_file(src, &p)? {
                    Ok(names) => break names,
                    Err(e) => return Ok(Err(e)),
                }
            }
            if dir.is_empty() {
                break None;
            }
            dir = parent(&dir).to_string();
        };
        if let Ok(mut cache) = self.names.lock() {
            for d in visited {
                cache.insert(d, found.clone());
            }
        }
        Ok(Ok(found))
    }

    fn cached_names(&self, dir: &str) -> Option<Option<Arc<ClassNames>>> {
        self.names.lock().ok()?.get(dir).cloned()
    }

    fn names_file(&self, src: &dyn FileSource, path: &str) -> crate::error::Result<NamesResult> {
        let Some(bytes) = src.read(path)? else {
            return Ok(Ok(None));
        };
        Ok(
            match crate::labels::parse_class_names(file_name(path), &bytes) {
                Ok(n) => Ok(Some(Arc::new(n))),
                Err(e) => Err((path.to_string(), e)),
            },
        )
    }

    /// What parsing the label file at `path` needs (the class names of its
    /// directory, for formats that store class indices); `Err((file, error))`
    /// when the class-names file does not parse.
    fn context(
        &self,
        src: &dyn FileSource,
        path: &str,
        format: Format,
    ) -> crate::error::Result<Result<ParseContext, (String, LabelError)>> {
        let class_names = if crate::labels::format_of(format).uses_class_names() {
            match self.class_names(src, path)? {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            }
        } else {
            None
        };
        Ok(Ok(ParseContext {
            class_names,
            stem: stem(path).to_string(),
        }))
    }

    /// Parses a label file; `Err((file, error))` names the file that failed
    /// (the label file, or the class-names file it needs).
    pub fn parse(
        &self,
        src: &dyn FileSource,
        path: &str,
        format: Format,
        bytes: &[u8],
    ) -> crate::error::Result<Result<Vec<FrameLabels>, (String, LabelError)>> {
        Ok(self.context(src, path, format)?.and_then(|ctx| {
            crate::labels::format_of(format)
                .parse(bytes, &ctx)
                .map_err(|e| (path.to_string(), e))
        }))
    }

    /// Whether [`Layout::parse`] accepts a label file (the same error when
    /// not), without keeping what a multi-frame file holds where the format
    /// can check without building it ([`crate::labels::LabelFormat::check`]).
    pub fn check(
        &self,
        src: &dyn FileSource,
        path: &str,
        format: Format,
        bytes: &[u8],
    ) -> crate::error::Result<Result<(), (String, LabelError)>> {
        Ok(self.context(src, path, format)?.and_then(|ctx| {
            crate::labels::format_of(format)
                .check(bytes, &ctx)
                .map_err(|e| (path.to_string(), e))
        }))
    }

    /// [`Layout::parse`] handing the frames to `each` one at a time, in the
    /// same order ([`crate::labels::LabelFormat::parse_each`]), so a consumer that
    /// counts them never holds a whole multi-frame file. On an error, the
    /// frames already handed over are to be discarded.
    pub fn parse_each(
        &self,
        src: &dyn FileSource,
        path: &str,
        format: Format,
        bytes: &[u8],
        each: &mut dyn FnMut(FrameLabels),
    ) -> crate::error::Result<Result<(), (String, LabelError)>> {
        Ok(self.context(src, path, format)?.and_then(|ctx| {
            crate::labels::format_of(format)
                .parse_each(bytes, &ctx, each)
                .map_err(|e| (path.to_string(), e))
        }))
    }

    /// [`Layout::parse_each`] handing the format the bytes to own (see
    /// [`crate::labels::LabelFormat::parse_each_owned`]).
    pub fn parse_each_owned(
        &self,
        src: &dyn FileSource,
        path: &str,
        format: Format,
        bytes: Vec<u8>,
        each: &mut dyn FnMut(FrameLabels),
    ) -> crate::error::Result<Result<(), (String, LabelError)>> {
        Ok(self.context(src, path, format)?.and_then(|ctx| {
            crate::labels::format_of(format)
                .parse_each_owned(bytes, &ctx, each)
                .map_err(|e| (path.to_string(), e))
        }))
    }

    /// The frame a label file's frame entry describes, if it exists in `src`.
    pub fn frame_path(
        &self,
        src: &dyn FileSource,
        label_path: &str,
        format: Format,
        frame: &str,
    ) -> crate::error::Result<Option<String>> {
        let dirs = self.frame_dirs(label_path, format);
        self.frame_path_in(src, &dirs, frame)
    }

    /// The directories [`Layout::frame_path`] looks for a label file's frames
    /// in, in order of preference: its `dsv.toml` rule's `frames`, then where
    /// its format's frames are by convention
    /// ([`crate::labels::LabelFormat::frames_near`]). The same for every
    /// label file of a directory (of one format), so a caller pairing many
    /// can keep them.
    pub fn frame_dirs(&self, label_path: &str, format: Format) -> Vec<String> {
        self.with_rule(
            label_path,
            crate::labels::format_of(format).frames_near(label_path),
        )
    }

    /// [`Layout::frame_dirs`] of a label file whose format is unknown:
    /// where a one-file-per-frame format's frames would be
    /// ([`crate::labels::format::swapped_dirs`]).
    pub fn frame_dirs_unknown(&self, label_path: &str) -> Vec<String> {
        self.with_rule(label_path, crate::labels::format::swapped_dirs(label_path))
    }

    /// The frames directory of `label_path`'s `dsv.toml` rule, if any, before `near`.
    fn with_rule(&self, label_path: &str, near: Vec<String>) -> Vec<String> {
        match self
            .toml
            .rule_for(label_path)
            .and_then(|r| r.frames.clone())
        {
            Some(f) => std::iter::once(f).chain(near).collect(),
            None => near,
        }
    }

    /// [`Layout::frame_path`] given the label file's [`Layout::frame_dirs`].
    pub fn frame_path_in(
        &self,
        src: &dyn FileSource,
        candidates: &[String],
        frame: &str,
    ) -> crate::error::Result<Option<String>> {
        self.frame_path_with(candidates, frame, |p| {
            Ok(src.exists(p)?.then(|| p.to_string()))
        })
    }

    /// [`Layout::frame_path_in`] with the existence check given: `probe`
    /// answers `Some` for a path that exists (with what the caller wants to
    /// know of it), and the first candidate it answers for is the frame's.
    pub fn frame_path_with<T>(
        &self,
        candidates: &[String],
        frame: &str,
        mut probe: impl FnMut(&str) -> crate::error::Result<Option<T>>,
    ) -> crate::error::Result<Option<T>> {
        let key_has_ext = frame.contains('.') && self.toml.is_frame(frame);
        let mut path = String::new();
        for d in candidates {
            path.clear();
            if !d.is_empty() {
                path.push_str(d);
                path.push('/');
            }
            path.push_str(frame);
            if key_has_ext {
                if let Some(found) = probe(&path)? {
                    return Ok(Some(found));
                }
                continue;
            }
            let base = path.len();
            for e in &self.toml.frame_extensions {
                path.truncate(base);
                path.push('.');
                path.push_str(e);
                if let Some(found) = probe(&path)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Mem(BTreeMap<String, Vec<u8>>);
    impl FileSource for Mem {
        fn read(&self, path: &str) -> crate::error::Result<Option<Vec<u8>>> {
            Ok(self.0.get(path).cloned())
        }
        fn exists(&self, path: &str) -> crate::error::Result<bool> {
            Ok(self.0.contains_key(path))
        }
    }

    #[test]
    fn frames_pair_with_labels_by_layout() {
        let mut m = BTreeMap::new();
        for p in [
            "train/images/a.jpg",
            "kitti/training/image_2/000001.png",
            "voc/JPEGImages/x.jpg",
            "coco/images/val/z.jpg",
        ] {
            m.insert(p.to_string(), vec![]);
        }
        let src = Mem(m);
        let l = Layout::new(DsvToml::default());
        let f = |lp: &str, fmt, key: &str| l.frame_path(&src, lp, fmt, key).unwrap();
        assert_eq!(
            f("train/labels/a.txt", Format::Yolo, "a").as_deref(),
            Some("train/images/a.jpg")
        );
        assert_eq!(
            f("kitti/training/label_2/000001.txt", Format::Kitti, "000001").as_deref(),
            Some("kitti/training/image_2/000001.png")
        );
        assert_eq!(
            f("voc/Annotations/x.xml", Format::Voc, "x.jpg").as_deref(),
            Some("voc/JPEGImages/x.jpg")
        );
        assert_eq!(
            f("coco/annotations/instances_val.json", Format::Coco, "z.jpg").as_deref(),
            Some("coco/images/val/z.jpg")
        );
        assert_eq!(f("train/labels/b.txt", Format::Yolo, "b"), None);
    }

    #[test]
    fn roles_by_path() {
        let l = Layout::new(DsvToml::default());
        assert_eq!(l.role_by_path("a/b.jpg"), Some(Role::Frame));
        assert_eq!(l.role_by_path("data.yaml"), Some(Role::Other));
        assert_eq!(l.role_by_path("a/b.txt"), None);
        assert_eq!(l.role("x/label_2/1.txt", b""), Role::Label(Format::Kitti));
        assert_eq!(l.role("x/labels/1.txt", b"  \n"), Role::Label(Format::Yolo));
        assert_eq!(l.role("notes.txt", b""), Role::Other);
    }

    /// The classification as written by hand before the registry gave the
    /// order (kept to check that the registry's order gives the same roles).
    fn role_by_hand(path: &str, head: &[u8]) -> Role {
        use crate::labels::{coco, cvat, kitti, voc, yolo};
        let head = &head[..head.len().min(SNIFF_LEN)];
        match label_ext(path) {
            "json" if coco::sniff(path, head) => Role::Label(Format::Coco),
            "xml" if cvat::sniff(path, head) => Role::Label(Format::Cvat),
            "xml" if voc::sniff(path, head) => Role::Label(Format::Voc),
            "xml" if has_dir(path, &["Annotations"]) => Role::Label(Format::Voc),
            "json" if has_dir(path, &["annotations"]) => Role::Label(Format::Coco),
            "txt"
                if !blank_head(head) && has_dir(path, &["labels"]) && !kitti::sniff(path, head) =>
            {
                Role::Label(Format::Yolo)
            }
            "txt" => {
                let blank = blank_head(head);
                if has_dir(path, &["label_2", "label_02"]) {
                    Role::Label(Format::Kitti)
                } else if blank {
                    if has_dir(path, &["labels"]) || parent(path).starts_with("obj_") {
                        Role::Label(Format::Yolo)
                    } else {
                        Role::Other
                    }
                } else if yolo::sniff(path, head) {
                    Role::Label(Format::Yolo)
                } else if kitti::sniff(path, head) {
                    Role::Label(Format::Kitti)
                } else {
                    Role::Other
                }
            }
            _ => Role::Other,
        }
    }

    #[test]
    fn content_roles_in_the_registrys_order_are_the_hand_written_ones() {
        let l = Layout::new(DsvToml::default());
        let dirs = [
            "",
            "a/",
            "labels/",
            "x/LABELS/",
            "train/label_2/",
            "seq/label_02/",
            "Annotations/",
            "annotations/",
            "obj_train_data/",
            "data/obj_train_data/",
            "voc/Annotations/sub/",
        ];
        let names = ["f.txt", "f.TXT", "f.json", "f.xml", "f.XML", "f.png", "f"];
        let heads: [&[u8]; 12] = [
            b"",
            b" \n\t",
            b"0 0.5 0.5 0.2 0.2\n",
            b"1 0.1 0.2 0.3",
            b"Car 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n",
            b"hello world\n",
            br#"{"images":[],"annotations":[]}"#,
            br#"[{"data":{}}]"#,
            b"<?xml version=\"1.0\"?><annotation><filename>a.jpg</filename></annotation>",
            b"<?xml version=\"1.0\"?>\n<annotations>\n<version>1.1</version>",
            b"<root/>",
            b"\xEF\xBB\xBF0 0.5 0.5 0.1 0.1",
        ];
        let mut seen = std::collections::HashSet::new();
        for d in dirs {
            for n in names {
                let path = format!("{d}{n}");
                for h in heads {
                    let want = role_by_hand(&path, h);
                    assert_eq!(
                        l.role_by_content(&path, h),
                        want,
                        "{path} {:?}",
                        String::from_utf8_lossy(h)
                    );
                    seen.insert(format!("{want:?}"));
                }
            }
        }
        // Every format and "not a label file" came up.
        assert_eq!(seen.len(), Format::ALL.len() + 1, "{seen:?}");
        // Under both a YOLO and a KITTI directory, KITTI's directory decides
        // (by hand, YOLO's did for a file that does not look like KITTI's).
        assert_eq!(
            l.role_by_content("labels/label_2/a.txt", b"0 0.5 0.5 0.1 0.1"),
            Role::Label(Format::Kitti)
        );
    }
}
