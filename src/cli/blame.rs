//! `dsv blame LABELFILE [REV] [--frame PATH] [--json]`: the commit that last
//! changed each object of a label file.

use std::io::Write;
use std::path::PathBuf;

use dsv::lock::Access;
use dsv::ops::blame::{BlameOptions, blame};
use dsv::ops::revparse::resolve;
use dsv::paths::display_path;
use dsv::report::text::{fmt_box, kind_style};

use super::Ctx;
use super::output::{paint, print_json, quote_path, safe_line, write_paged};

/// Arguments of `blame`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The label file.
    #[arg(value_name = "LABELFILE")]
    file: PathBuf,
    /// The commit to blame (default HEAD).
    #[arg(value_name = "REV")]
    rev: Option<String>,
    /// Only this frame: its file's path, or the name the label file gives it.
    #[arg(long, value_name = "PATH")]
    frame: Option<String>,
    /// Machine-readable JSON (schema dsv.blame/1).
    #[arg(long)]
    json: bool,
}

const EXAMPLES: &str = "\
Examples:
  dsv blame labels/frame_001.txt
  dsv blame annotations/instances.json --frame images/0001.jpg
  dsv blame annotations/instances.json v1.0 --json";

/// A commit date as `YYYY-MM-DD` in the author's offset.
fn short_date(secs: i64, tz_min: i32) -> String {
    let offset = jiff::tz::Offset::from_seconds(tz_min * 60).unwrap_or(jiff::tz::Offset::UTC);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::fixed(offset))
            .strftime("%Y-%m-%d")
            .to_string(),
        Err(_) => secs.to_string(),
    }
}

/// Runs `blame`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let path = display_path(&repo.repo_path(&ctx.cwd, &args.file)?);
    let rev = resolve(&repo, args.rev.as_deref().unwrap_or("HEAD"))?;
    // A frame given as a path is a repository path, like the label file.
    let frame =
        args.frame.as_ref().map(
            |f| match repo.repo_path(&ctx.cwd, std::path::Path::new(f)) {
                Ok(p) => display_path(&p),
                Err(_) => f.clone(),
            },
        );
    let opts = BlameOptions {
        frame,
        ..BlameOptions::default()
    };
    let b = blame(&repo, rev, &path, &opts)?;
    if args.json {
        print_json(&b)?;
        return Ok(0);
    }
    let author_w = b
        .frames
        .iter()
        .flat_map(|f| &f.objects)
        .map(|o| safe_line(&o.commit.author).chars().count())
        .max()
        .unwrap_or(0);
    let class_w = b
        .frames
        .iter()
        .flat_map(|f| &f.objects)
        .map(|o| safe_line(&o.class).chars().count())
        .max()
        .unwrap_or(0);
    let mut buf = Vec::new();
    for f in &b.frames {
        let name = match &f.frame_path {
            Some(p) => quote_path(p),
            None => safe_line(&f.frame).into_owned(),
        };
        writeln!(buf, "{}", paint(ctx.color, "1", &name))?;
        if f.objects.is_empty() {
            writeln!(buf, "  (no objects)")?;
        }
        for o in &f.objects {
            let (_, colour, word) = kind_style(o.change);
            let short = &o.commit.id[..12.min(o.commit.id.len())];
            let mut line = format!(
                "  {}  {}  {:author_w$}  {}  {:class_w$}  {}",
                paint(ctx.color, "33", short),
                short_date(o.commit.time, o.commit.tz_offset_min),
                safe_line(&o.commit.author),
                paint(ctx.color, colour, &format!("{word:<12}")),
                safe_line(&o.class),
                fmt_box(&o.bbox, f.units),
            );
            if let Some(id) = &o.id {
                line.push_str(&format!("  id {}", safe_line(id)));
            }
            if o.path != b.path {
                line.push_str(&format!("  (in {})", quote_path(&o.path)));
            }
            writeln!(buf, "{}", line.trim_end())?;
        }
    }
    write_paged(&buf, true)?;
    Ok(0)
}
