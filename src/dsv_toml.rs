//! `dsv.toml`: the tracked, team-shared description of a dataset.
//!
//! It lives at the root of the dataset and is versioned with it, so a change of
//! label layout is reviewed and merged like any other change. Everything in it
//! is optional: without it dsv detects label formats from paths and contents.
//!
//! ```toml
//! [[labels]]
//! path = "labels/**/*.txt"   # gitignore-style glob, relative to the root
//! format = "yolo"            # coco | yolo | kitti | voc | cvat
//! names = "data.yaml"        # class names for YOLO (else found next to the labels)
//! frames = "images"          # where the frames these labels describe live
//!
//! [frames]
//! extensions = ["jpg", "png", "bin", "pcd"]   # which files are frames
//!
//! [metadata]
//! path = "meta.csv"          # frame attributes sidecar (default meta.jsonl / meta.csv)
//!
//! [check]
//! labels = "error"           # a staged label file that does not parse: "warn" | "error"
//!
//! [retention]                # versions `gc` and `gc --remote` must keep
//! keep = ["v1.2", "4f1c9e0a2b7d"]   # revisions (tags, branches, commit ids)
//!
//! [[hooks]]                  # read and checked by `crate::hooks::config`
//! id = "retrain"
//! event = "post-commit"
//! url = "https://ci.example.com/dsv"
//! ```

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::labels::Format;

/// The file name, at the dataset root.
pub const FILE_NAME: &str = "dsv.toml";

/// Frame file extensions recognized when `dsv.toml` does not list them.
pub const DEFAULT_FRAME_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp", "bin", "pcd", "ply", "las", "laz",
    "npy", "npz",
];

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    labels: Vec<RawLabels>,
    #[serde(default)]
    frames: Option<RawFrames>,
    #[serde(default)]
    metadata: Option<RawMetadata>,
    #[serde(default)]
    check: Option<RawCheck>,
    #[serde(default)]
    retention: Option<RawRetention>,
    /// `[[hooks]]` entries are parsed and checked by `crate::hooks::config` (which names
    /// the line of any mistake); label and frame readers accept them as they are.
    #[serde(default)]
    hooks: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabels {
    path: String,
    format: String,
    names: Option<String>,
    frames: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrames {
    extensions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    labels: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(default)]
    keep: Vec<String>,
}

/// What `dsv add` and `dsv commit` do with a staged label file that does not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CheckLevel {
    /// Warn on stderr, naming the file and the error (the default).
    #[default]
    Warn,
    /// `commit` refuses.
    Error,
}

/// One `[[labels]]` entry.
#[derive(Debug, Clone)]
pub struct LabelRule {
    /// The glob as written.
    pub pattern: String,
    matcher: GlobMatcher,
    /// Format of the matching files.
    pub format: Format,
    /// Path of the class-names file, relative to the root.
    pub names: Option<String>,
    /// Directory holding the frames, relative to the root.
    pub frames: Option<String>,
}

impl LabelRule {
    /// Whether a root-relative path falls under this rule.
    pub fn matches(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

/// A parsed `dsv.toml`.
#[derive(Debug, Clone)]
pub struct DsvToml {
    /// Label rules, first match wins.
    pub labels: Vec<LabelRule>,
    /// Frame extensions, lower case, without the dot.
    pub frame_extensions: Vec<String>,
    /// Path of the frame-metadata sidecar (`[metadata] path`), when declared.
    pub metadata: Option<String>,
    /// `[check] labels`: what a staged label file that does not parse does.
    pub check_labels: CheckLevel,
    /// `[retention] keep`: revisions gc must keep whatever happens to branches, as written.
    pub retain: Vec<String>,
    /// blake3 of the file's bytes (empty file for the default), used in cache keys.
    pub digest: [u8; 32],
}

impl Default for DsvToml {
    fn default() -> Self {
        DsvToml {
            labels: Vec::new(),
            frame_extensions: DEFAULT_FRAME_EXTENSIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            metadata: None,
            check_labels: CheckLevel::Warn,
            retain: Vec::new(),
            digest: *blake3::hash(b"").as_bytes(),
        }
    }
}

/// 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = floor_char_boundary(text, offset);
    text[..end].matches('\n').count() + 1
}

/// `line L, column C: ` for a byte offset in `text` (the prefix of every positioned error).
pub fn position(text: &str, offset: usize) -> String {
    let end = floor_char_boundary(text, offset);
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |p| p + 1)..]
        .chars()
        .count()
        + 1;
    format!("line {line}, column {col}: ")
}

/// The largest char boundary at or below `offset` (a span from the parser is one, but
/// slicing must never panic on a bad one).
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// An error in `dsv.toml`, with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dsv.toml: {0}")]
pub struct DsvTomlError(pub String);

impl DsvToml {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<DsvToml, DsvTomlError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| DsvTomlError(format!("not UTF-8 (byte {})", e.valid_up_to())))?;
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let pos = e
                .span()
                .map(|s| position(text, s.start))
                .unwrap_or_default();
            DsvTomlError(format!("{pos}{}", e.message()))
        })?;
        let _ = raw.hooks;
        let mut labels = Vec::new();
        for (i, r) in raw.labels.into_iter().enumerate() {
            let format = Format::from_name(&r.format).ok_or_else(|| {
                DsvTomlError(format!(
                    "labels entry {}: unknown format '{}' (expected {})",
                    i + 1,
                    r.format,
                    crate::quote::or_list(Format::ALL.iter().map(|f| f.name()))
                ))
            })?;
            let glob = Glob::new(&r.path)
                .map_err(|e| DsvTomlError(format!("labels entry {}: bad path glob: {e}", i + 1)))?;
            labels.push(LabelRule {
                pattern: r.path,
                matcher: glob.compile_matcher(),
                format,
                names: r.names.map(|s| s.trim_matches('/').to_string()),
                frames: r.frames.map(|s| s.trim_matches('/').to_string()),
            });
        }
        let frame_extensions = match raw.frames.and_then(|f| f.extensions) {
            Some(list) => list
                .into_iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            None => DsvToml::default().frame_extensions,
        };
        let metadata = raw
            .metadata
            .and_then(|m| m.path)
            .map(|p| p.trim_matches('/').to_string());
        let check_labels = match raw.check.and_then(|c| c.labels).as_deref() {
            None | Some("warn") => CheckLevel::Warn,
            Some("error") => CheckLevel::Error,
            Some(other) => {
                return Err(DsvTomlError(format!(
                    "[check] labels: unknown value '{other}' (expected \"warn\" or \"error\")"
                )));
            }
        };
        let retain = raw.retention.map(|r| r.keep).unwrap_or_default();
        for (i, rev) in retain.iter().enumerate() {
            // A revision is a name or an id: never empty, never a control character
            // (it is printed back in reports and errors).
            if rev.trim().is_empty() || rev.chars().any(char::is_control) {
                return Err(DsvTomlError(format!(
                    "[retention] keep: entry {} ('{}') is not a revision",
                    i + 1,
                    crate::quote::text(rev)
                )));
            }
        }
        Ok(DsvToml {
            labels,
            frame_extensions,
            metadata,
            check_labels,
            retain,
            digest: *blake3::hash(bytes).as_bytes(),
        })
    }

    /// The first label rule matching a root-relative path.
    pub fn rule_for(&self, path: &str) -> Option<&LabelRule> {
        self.labels.iter().find(|r| r.matches(path))
    }

    /// Whether a path names a frame (by extension or a `frames` directory).
    pub fn is_frame(&self, path: &str) -> bool {
        let Some((_, ext)) = path.rsplit_once('.') else {
            return false;
        };
        if ext.contains('/') {
            return false;
        }
        self.frame_extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case(ext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_matches_paths() {
        let t = DsvToml::parse(
            br#"
[[labels]]
path = "labels/**/*.txt"
format = "yolo"
names = "data.yaml"
frames = "images/"
"#,
        )
        .unwrap();
        let r = t.rule_for("labels/train/a.txt").unwrap();
        assert_eq!(r.format, Format::Yolo);
        assert_eq!(r.frames.as_deref(), Some("images"));
        assert!(t.rule_for("images/a.jpg").is_none());
        assert!(t.is_frame("images/a.JPG"));
        assert!(!t.is_frame("labels/a.txt"));
    }

    #[test]
    fn retention_lists_revisions_and_refuses_empty_ones() {
        let t = DsvToml::parse(b"[retention]\nkeep = [\"v1.2\", \"abc123\"]\n").unwrap();
        assert_eq!(t.retain, ["v1.2", "abc123"]);
        let e = DsvToml::parse(b"[retention]\nkeep = [\"v1\", \" \"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 2"), "{e}");
        let e = DsvToml::parse(b"[retention]\nkep = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = DsvToml::parse(b"[[labels]]\npath = \"x\"\nformat = \"yolo\"\nfoo = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4"), "{e}");
        let e = DsvToml::parse(b"[[labels]]\npath = \"x\"\nformat = \"png\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown format 'png'"), "{e}");
    }
}
