//! `dsv labels FILE...`: parse label files as dsv sees them (format detection,
//! frames, objects). Works inside or outside a repository.

use std::io::Write;
use std::path::PathBuf;

use dsv::labels::Format;
use dsv::ops::inspect::{LabelFile, open_label_file};

use super::Ctx;
use super::output::{print_json, quote_path, safe_line, write_paged_parts};

/// Arguments of `labels`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Label files to read.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The format (default: detected from the path and contents).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Print only counts (frames, objects) per file.
    #[arg(long)]
    count: bool,
    /// Print the normalized labels as JSON.
    #[arg(long)]
    json: bool,
    /// Units of the boxes printed: `file` (as the file gives them: YOLO's normalized, others' pixels) or `pixels` (normalized boxes scaled by the size in the frame's image header).
    #[arg(long, value_enum, default_value = "file")]
    units: UnitsArg,
}

/// The units `--units` asks boxes in (`labels`, `query --json`, `diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitsArg {
    /// As the label file gives them.
    File,
    /// In pixels of the frame's image (read from its header).
    Pixels,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!("unknown format '{s}' ({})", names.join(", "))
    })
}

/// Files from this size on are printed as JSON from a second reading
/// instead of from their frames held whole (issue 16: a command's memory
/// stays within twice its largest label file plus 200 MiB; the JSON text is
/// several times the file, so it cannot be held either).
const STREAM_JSON_FROM: usize = 16 << 20;

/// The size of a block of text output.
const BLOCK: usize = 1 << 20;

/// One label file as read by the first pass: its counts and what it prints.
struct Read {
    file: LabelFile,
    frames: usize,
    objects: usize,
    /// Text output: the lines of its frames (its header is known at the
    /// end), in blocks: one growing buffer would hold its old and new room
    /// at once as it grows.
    body: Vec<Vec<u8>>,
    /// JSON output of a small file: its frames.
    held: Option<Vec<dsv::labels::FrameLabels>>,
    /// `--units pixels`: normalized boxes are scaled to pixels.
    pixels: bool,
}

impl Read {
    /// Scales a frame's normalized boxes to pixels when `--units pixels` asked.
    fn convert(&self, fr: &mut dsv::labels::FrameLabels) -> dsv::Result<()> {
        if self.pixels {
            self.file.to_pixels(std::slice::from_mut(fr))
        } else {
            Ok(())
        }
    }
}

/// Runs `labels`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let root = match dsv::Repository::discover(&ctx.cwd, dsv::lock::Access::Read, &ctx.open) {
        Ok(r) => Some(r.root().to_path_buf()),
        Err(_) => None,
    };
    let text = !args.json && !args.count;
    let mut all = Vec::new();
    let mut warnings = Vec::new();
    let mut boxed_units = Vec::new();
    for f in &args.files {
        let file = dsv::repo::absolute(&ctx.cwd.join(f))?;
        // Outside a repository, class-name files are looked for up to the filesystem root.
        let base = root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let file = open_label_file(&base, &file, args.format)?;
        let hold = args.json && !args.count && file.len() < STREAM_JSON_FROM;
        let mut r = Read {
            frames: 0,
            objects: 0,
            body: Vec::new(),
            held: hold.then(Vec::new),
            pixels: args.units == UnitsArg::Pixels && !args.count,
            file,
        };
        // Frame by frame: a multi-frame file's objects are never all held.
        let mut out: std::io::Result<()> = Ok(());
        let mut converted: dsv::Result<()> = Ok(());
        let mut held = r.held.take();
        let mut body = std::mem::take(&mut r.body);
        let (mut frames, mut objects) = (0, 0);
        let path = &r.file.path;
        r.file.each(&mut |mut fr| {
            if converted.is_ok() {
                converted = r.convert(&mut fr);
            }
            // The one box validation every command applies.
            for p in dsv::labels::frame_box_problems(&fr.objects, fr.units, (fr.width, fr.height)) {
                warnings.push(format!(
                    "warning: invalid box: {path}: frame {}: {p}",
                    fr.frame
                ));
            }
            if fr.objects.iter().any(|o| o.bbox.is_some()) && !boxed_units.contains(&fr.units) {
                boxed_units.push(fr.units);
            }
            frames += 1;
            objects += fr.objects.len();
            if text && out.is_ok() {
                if body.last().is_none_or(|b| b.len() >= BLOCK) {
                    body.push(Vec::with_capacity(BLOCK + (64 << 10)));
                }
                if let Some(b) = body.last_mut() {
                    out = write_frame(b, &fr);
                }
            }
            if let Some(h) = held.as_mut() {
                h.push(fr);
            }
        })?;
        converted?;
        out?;
        (r.held, r.body, r.frames, r.objects) = (held, body, frames, objects);
        all.push(r);
    }
    for w in &warnings {
        eprintln!("{w}");
    }
    if args.json && !args.count {
        let files: Vec<JsonFile> = all.iter().map(JsonFile).collect();
        print_json(&files)?;
        // The process exits right after this command (main calls
        // process::exit): freeing the held labels one by one first is
        // millions of small frees that change nothing.
        std::mem::forget(all);
        return Ok(0);
    }
    let mut heads: Vec<Vec<u8>> = Vec::new();
    // Which convention the boxes below use, said once: a YOLO file holds
    // centres, and a reader must not take the printed corner for one.
    let mut first = Vec::new();
    if text && !boxed_units.is_empty() {
        writeln!(first, "{}", dsv::labels::box_convention(boxed_units))?;
    }
    for r in &all {
        let mut head = std::mem::take(&mut first);
        let (frames, objects) = (
            dsv::quote::count(r.frames, "frame"),
            dsv::quote::count(r.objects, "object"),
        );
        let (path, format) = (quote_path(&r.file.path), r.file.format.name());
        if args.count {
            writeln!(head, "{path}\t{format}\t{frames}\t{objects}")?;
        } else {
            writeln!(head, "{path} [{format}]: {frames}, {objects}")?;
        }
        heads.push(head);
    }
    let parts: Vec<&[u8]> = heads
        .iter()
        .zip(&all)
        .flat_map(|(h, r)| std::iter::once(h).chain(&r.body).map(Vec::as_slice))
        .collect();
    write_paged_parts(&parts, !args.count)?;
    Ok(0)
}

/// The text lines of one frame and its objects.
fn write_frame(buf: &mut Vec<u8>, fr: &dsv::labels::FrameLabels) -> std::io::Result<()> {
    // Frame names, classes and attributes come from the file: quoted, escaped.
    writeln!(
        buf,
        "  {} ({})",
        quote_path(&fr.frame),
        dsv::quote::count(fr.objects.len(), "object")
    )?;
    for o in &fr.objects {
        let b = dsv::report::text::fmt_box(&o.bbox, fr.units);
        let attrs: Vec<String> = o
            .attributes
            .iter()
            .map(|(k, v)| safe_line(&format!("{k}={v}")).into_owned())
            .collect();
        writeln!(
            buf,
            "    {:<16} {b} {}",
            safe_line(&o.class),
            attrs.join(" ")
        )?;
    }
    Ok(())
}

/// A file as `labels --json` prints it (the fields of
/// [`dsv::ops::inspect::Inspected`]), its frames held or read again.
struct JsonFile<'a>(&'a Read);

impl serde::Serialize for JsonFile<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Inspected", 3)?;
        st.serialize_field("path", &self.0.file.path)?;
        st.serialize_field("format", &self.0.file.format)?;
        st.serialize_field("frames", &JsonFrames(self.0))?;
        st.end()
    }
}

/// The frames of a [`JsonFile`].
struct JsonFrames<'a>(&'a Read);

impl serde::Serialize for JsonFrames<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        if let Some(frames) = &self.0.held {
            return frames.serialize(s);
        }
        // The first pass read the file without error: this one reads it the same.
        let mut seq = s.serialize_seq(None)?;
        let mut failed = None;
        self.0
            .file
            .each(&mut |mut fr| {
                if failed.is_none() {
                    failed = match self.0.convert(&mut fr) {
                        Ok(()) => seq.serialize_element(&fr).err(),
                        Err(e) => Some(S::Error::custom(e.to_string())),
                    };
                }
            })
            .map_err(|e| S::Error::custom(e.to_string()))?;
        if let Some(e) = failed {
            return Err(e);
        }
        seq.end()
    }
}

/// Examples shown by `dsv labels --help`.
const EXAMPLES: &str = "\
Examples:
  dsv labels annotations/instances.json
  dsv labels --count labels/*.txt
  dsv labels --units pixels labels/frame_000.txt
  dsv labels --format voc --json Annotations/0001.xml";
