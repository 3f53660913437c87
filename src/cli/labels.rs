//! `dsv labels FILE...`: parse label files as dsv sees them (format detection,
//! frames, objects). Works inside or outside a repository.

use std::io::Write;
use std::path::PathBuf;

use dsv::labels::Format;
use dsv::ops::inspect::inspect_file;

use super::Ctx;
use super::output::{print_json, quote_path, safe_line, write_paged};

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
    Format::from_name(s)
        .ok_or_else(|| format!("unknown format '{s}' (coco, yolo, kitti, voc, cvat)"))
}

/// Runs `labels`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let root = match dsv::Repository::discover(&ctx.cwd, dsv::lock::Access::Read, &ctx.open) {
        Ok(r) => Some(r.root().to_path_buf()),
        Err(_) => None,
    };
    let mut all = Vec::new();
    for f in &args.files {
        let file = dsv::repo::absolute(&ctx.cwd.join(f))?;
        // Outside a repository, class-name files are looked for up to the filesystem root.
        let base = root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let mut i = inspect_file(&base, &file, args.format)?;
        if args.units == UnitsArg::Pixels && !args.count {
            dsv::ops::pixels::labels_to_pixels(&base, &file, i.format, &mut i.frames)?;
        }
        all.push(i);
    }
    // The one box validation every command applies.
    for i in &all {
        for fr in &i.frames {
            for p in dsv::labels::frame_box_problems(&fr.objects, fr.units, (fr.width, fr.height)) {
                eprintln!("warning: invalid box: {}: frame {}: {p}", i.path, fr.frame);
            }
        }
    }
    if args.json && !args.count {
        print_json(&all)?;
        return Ok(0);
    }
    let mut buf = Vec::new();
    // Which convention the boxes below use, said once: a YOLO file holds
    // centres, and a reader must not take the printed corner for one.
    let boxed = all
        .iter()
        .flat_map(|i| &i.frames)
        .filter(|f| f.objects.iter().any(|o| o.bbox.is_some()));
    if !args.count && boxed.clone().next().is_some() {
        writeln!(
            buf,
            "{}",
            dsv::labels::box_convention(boxed.map(|f| f.units))
        )?;
    }
    for i in &all {
        let objects: usize = i.frames.iter().map(|f| f.objects.len()).sum();
        if args.count {
            writeln!(
                buf,
                "{}\t{}\t{}\t{}",
                quote_path(&i.path),
                i.format.name(),
                dsv::quote::count(i.frames.len(), "frame"),
                dsv::quote::count(objects, "object")
            )?;
            continue;
        }
        writeln!(
            buf,
            "{} [{}]: {}, {}",
            quote_path(&i.path),
            i.format.name(),
            dsv::quote::count(i.frames.len(), "frame"),
            dsv::quote::count(objects, "object")
        )?;
        for fr in &i.frames {
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
        }
    }
    write_paged(&buf, !args.count)?;
    // The process exits right after this command (main calls process::exit),
    // and the OS takes the memory back whole. Freeing the parsed labels one by
    // one first is millions of small frees for a large COCO file (4.9 M
    // allocations for the 205 MB bench file, 40-100 ms of `labels --count`)
    // that change nothing: skip them.
    std::mem::forget(all);
    Ok(0)
}

/// Examples shown by `dsv labels --help`.
const EXAMPLES: &str = "\
Examples:
  dsv labels annotations/instances.json
  dsv labels --count labels/*.txt
  dsv labels --units pixels labels/frame_000.txt
  dsv labels --format voc --json Annotations/0001.xml";
