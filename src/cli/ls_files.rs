//! `dsv ls-files [-c|-m|-d|-o] [-s] [-z] [PATH...]`: the files dsv tracks (or the
//! modified, deleted or untracked ones), as `git ls-files` lists them.

use std::io::Write;
use std::path::PathBuf;

use dsv::lock::Access;
use dsv::object::diff::ChangeKind;

use super::Ctx;
use super::output::quote_path;

/// Arguments of `ls-files`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Limit to these files or directories.
    paths: Vec<PathBuf>,
    /// Tracked files (the index; the default when no other kind is asked for).
    #[arg(short = 'c', long)]
    cached: bool,
    /// Tracked files whose working copy differs from the index (deleted ones too, as git).
    #[arg(short = 'm', long)]
    modified: bool,
    /// Tracked files missing from the working tree.
    #[arg(short = 'd', long)]
    deleted: bool,
    /// Untracked files (.dsvignore applies).
    #[arg(short = 'o', long)]
    others: bool,
    /// The mode and content id of each tracked file: `MODE ID\tPATH`.
    #[arg(short = 's', long)]
    stage: bool,
    /// End each path with NUL instead of a newline, and do not quote paths.
    #[arg(short = 'z')]
    nul: bool,
}

/// Runs `ls-files`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    // As git: run in a subdirectory, it lists that directory, paths relative to it.
    let base = repo.repo_path(&ctx.cwd, std::path::Path::new("."))?;
    let mut scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    if scopes.is_empty() && !base.is_empty() {
        scopes.push(base.clone());
    }
    let index = repo.index.load()?;
    let within =
        |p: &[u8]| scopes.is_empty() || scopes.iter().any(|s| dsv::paths::path_within(p, s));
    // (path, mode and id when --stage shows them), in the order git lists: sorted,
    // each kind after the other.
    let mut rows: Vec<(Vec<u8>, Option<String>)> = Vec::new();
    let cached = args.cached || !(args.modified || args.deleted || args.others);
    let row = |p: &[u8]| -> (Vec<u8>, Option<String>) {
        let info = args.stage.then(|| {
            index
                .entries
                .get(p)
                .map(|e| format!("{} {}", e.mode.label(), e.id))
                .unwrap_or_default()
        });
        (p.to_vec(), info)
    };
    if cached {
        for p in index.entries.keys().filter(|p| within(p)) {
            rows.push(row(p));
        }
    }
    if args.modified || args.deleted || args.others {
        let report = dsv::ops::status::status(&repo, &scopes, &ctx.progress())?;
        for ch in &report.unstaged {
            let deleted = ch.kind == ChangeKind::Deleted;
            if args.deleted && deleted {
                rows.push(row(&ch.path));
            }
            if args.modified {
                rows.push(row(&ch.path));
            }
        }
        if args.others {
            rows.extend(report.untracked.iter().map(|p| (p.clone(), None)));
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (path, info) in rows {
        let path = relative(&base, &path);
        if let Some(info) = info.filter(|i| !i.is_empty()) {
            write!(out, "{info}\t")?;
        }
        if args.nul {
            out.write_all(&path)?;
            out.write_all(b"\0")?;
        } else {
            writeln!(out, "{}", quote_path(&path))?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `path` (from the repository root) as seen from the directory `base`.
fn relative(base: &[u8], path: &[u8]) -> Vec<u8> {
    if base.is_empty() {
        return path.to_vec();
    }
    let b: Vec<&[u8]> = base.split(|c| *c == b'/').collect();
    let p: Vec<&[u8]> = path.split(|c| *c == b'/').collect();
    let common = b.iter().zip(&p).take_while(|(x, y)| x == y).count();
    let mut out: Vec<&[u8]> = vec![b".."; b.len() - common];
    out.extend(&p[common..]);
    out.join(&b'/')
}

/// Examples shown by `dsv ls-files --help`.
const EXAMPLES: &str = "\
Examples:
  dsv ls-files labels/                     tracked files under labels/
  dsv ls-files -m                          modified (and deleted) files
  dsv ls-files -o                          untracked files
  dsv ls-files -s                          the mode and content id of each file";
