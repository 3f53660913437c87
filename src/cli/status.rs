//! `dsv status [--short|--porcelain[=v1] [-z]|--json] [PATH...]`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use dsv::object::diff::ChangeKind;
use dsv::ops::status::{StatusReport, status};

use super::Ctx;
use super::output::{paint, print_json, quote_path};

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Limit to these paths.
    paths: Vec<PathBuf>,
    /// Two-column short format (`XY path`, as git).
    #[arg(short, long)]
    short: bool,
    /// The short format for scripts, stable across versions: v1 (the default) is git's
    /// porcelain v1 (no colour, paths from the repository root, renames as
    /// `R  OLD -> NEW`); v2 is git's porcelain v2 (`1 XY N... mH mI mW hH hI PATH`,
    /// `2` for renames, `u` for conflicts, `? PATH`; `# branch.*` headers with -b).
    #[arg(long, value_name = "VERSION", num_args = 0..=1, require_equals = true, default_missing_value = "v1", conflicts_with = "json")]
    porcelain: Option<String>,
    /// With --porcelain: end entries with NUL and do not quote paths (renames: `R  NEW\0OLD\0`;
    /// v2: `2 ... NEW\0OLD\0`).
    #[arg(short = 'z', requires = "porcelain")]
    nul: bool,
    /// Machine-readable JSON.
    #[arg(long, conflicts_with = "short")]
    json: bool,
    /// List every untracked file instead of collapsing untracked directories.
    #[arg(short = 'u', long)]
    untracked_files: bool,
    /// Show the branch and its upstream: a `## BRANCH...UPSTREAM [ahead N]` line in
    /// the short formats, `# branch.*` headers in porcelain v2.
    #[arg(short = 'b', long)]
    branch: bool,
}

fn label(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "new file:",
        ChangeKind::Deleted => "deleted:",
        ChangeKind::Modified => "modified:",
        ChangeKind::Renamed => "renamed:",
    }
}

/// Untracked paths, with directories holding no tracked file collapsed to `dir/` (as git does).
fn collapse_untracked(report: &StatusReport, tracked_dirs: &HashSet<Vec<u8>>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for p in &report.untracked {
        let mut shown = p.clone();
        let mut suffix = "";
        for (i, b) in p.iter().enumerate() {
            if *b == b'/' && !tracked_dirs.contains(&p[..i]) {
                shown = p[..i].to_vec();
                suffix = "/";
                break;
            }
        }
        shown.extend_from_slice(suffix.as_bytes());
        out.insert(quote_path(&shown));
    }
    out.into_iter().collect()
}

/// One line of the short formats: `XY PATH` (X staged, Y unstaged; `UU` an
/// unresolved conflict, `??` untracked), and the path a staged rename came from.
struct ShortLine {
    xy: [char; 2],
    path: Vec<u8>,
    from: Option<Vec<u8>>,
}

/// The lines of `--short` and `--porcelain`: changed paths sorted, untracked last.
fn short_lines(
    report: &StatusReport,
    merging: Option<&dsv::ops::merge::MergeState>,
) -> Vec<ShortLine> {
    fn line<'a>(lines: &'a mut BTreeMap<Vec<u8>, ShortLine>, path: &[u8]) -> &'a mut ShortLine {
        lines.entry(path.to_vec()).or_insert_with(|| ShortLine {
            xy: [' ', ' '],
            path: path.to_vec(),
            from: None,
        })
    }
    let mut lines = BTreeMap::new();
    for ch in &report.staged {
        let l = line(&mut lines, &ch.path);
        l.xy[0] = ch.kind.letter();
        l.from = ch.from.clone();
    }
    for ch in &report.unstaged {
        line(&mut lines, &ch.path).xy[1] = ch.kind.letter();
    }
    // Unresolved conflicts show as `UU`, as git does.
    for c in merging.iter().flat_map(|m| m.unresolved()) {
        let l = line(&mut lines, c.path.as_bytes());
        l.xy = ['U', 'U'];
        l.from = None;
    }
    let untracked = report.untracked.iter().map(|p| ShortLine {
        xy: ['?', '?'],
        path: p.clone(),
        from: None,
    });
    lines.into_values().chain(untracked).collect()
}

/// `--short`: the short lines, coloured when asked.
fn print_short(lines: &[ShortLine], color: bool) {
    for l in lines {
        let [x, y] = l.xy;
        let xy = match l.xy {
            ['U', 'U'] | ['?', '?'] => paint(color, "31", &format!("{x}{y}")),
            _ => format!(
                "{}{}",
                paint(color, "32", &x.to_string()),
                paint(color, "31", &y.to_string())
            ),
        };
        match &l.from {
            Some(f) => println!("{xy} {} -> {}", quote_path(f), quote_path(&l.path)),
            None => println!("{xy} {}", quote_path(&l.path)),
        }
    }
}

/// git's porcelain v1: the short lines, never coloured. With `nul`, paths are raw
/// bytes and entries end with NUL (a rename: `R  NEW` NUL `OLD` NUL).
fn print_porcelain(lines: &[ShortLine], nul: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in lines {
        let [x, y] = l.xy;
        write!(out, "{x}{y} ")?;
        match (&l.from, nul) {
            (Some(f), true) => {
                out.write_all(&l.path)?;
                out.write_all(b"\0")?;
                out.write_all(f)?;
            }
            (Some(f), false) => write!(out, "{} -> {}", quote_path(f), quote_path(&l.path))?,
            (None, true) => out.write_all(&l.path)?,
            (None, false) => out.write_all(quote_path(&l.path).as_bytes())?,
        }
        out.write_all(if nul { b"\0" } else { b"\n" })?;
    }
    out.flush()
}

/// git's `## ` line of `status -sb`: `main...origin/main [ahead 1, behind 2]`,
/// `No commits yet on main`, or `HEAD (no branch)`.
fn branch_line(report: &StatusReport, upstream: Option<&dsv::remote::Upstream>) -> String {
    let Some(b) = &report.branch else {
        return "HEAD (no branch)".into();
    };
    if report.head.is_none() {
        return format!("No commits yet on {b}");
    }
    match upstream {
        None => b.clone(),
        Some(u) => {
            let mut ab = Vec::new();
            if u.ahead > 0 {
                ab.push(format!("ahead {}", u.ahead));
            }
            if u.behind > 0 {
                ab.push(format!("behind {}", u.behind));
            }
            let ab = if ab.is_empty() {
                String::new()
            } else {
                format!(" [{}]", ab.join(", "))
            };
            format!("{b}...{}/{}{ab}", u.remote, u.branch)
        }
    }
}

/// git's octal mode of an entry in porcelain v2 (`000000`: absent).
fn octal(state: Option<&dsv::object::diff::FileState>) -> &'static str {
    use dsv::object::EntryMode;
    match state.map(|s| s.mode) {
        None => "000000",
        Some(EntryMode::File) => "100644",
        Some(EntryMode::Exec) => "100755",
        Some(EntryMode::Symlink) => "120000",
        Some(EntryMode::Dir) => "040000",
    }
}

/// An entry's id in porcelain v2 (all zeros: absent).
fn hex(state: Option<&dsv::object::diff::FileState>) -> String {
    state.map_or_else(|| "0".repeat(64), |s| s.id.to_hex())
}

/// A path's staged change (HEAD to index) and unstaged one (index to working tree).
type StagedUnstaged<'a> = (
    Option<&'a dsv::object::diff::Change>,
    Option<&'a dsv::object::diff::Change>,
);

/// git's porcelain v2: `# branch.*` headers (with -b), then `1` (changed), `2`
/// (renamed: a staged deletion and addition of identical content), `u` (unresolved
/// conflict) and `?` (untracked) entries, sorted by path.
/// Ids are dsv's (64 hex digits), modes git's octal ones.
fn print_porcelain_v2(
    report: &StatusReport,
    merging: Option<&dsv::ops::merge::MergeState>,
    upstream: Option<&dsv::remote::Upstream>,
    args: &Args,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let end: &[u8] = if args.nul { b"\0" } else { b"\n" };
    let path = |p: &[u8]| -> Vec<u8> {
        if args.nul {
            p.to_vec()
        } else {
            quote_path(p).into_bytes()
        }
    };
    if args.branch {
        let oid = report
            .head
            .map_or_else(|| "(initial)".to_string(), |h| h.to_hex());
        write!(out, "# branch.oid {oid}")?;
        out.write_all(end)?;
        write!(
            out,
            "# branch.head {}",
            report.branch.as_deref().unwrap_or("(detached)")
        )?;
        out.write_all(end)?;
        if let Some(u) = upstream {
            write!(out, "# branch.upstream {}/{}", u.remote, u.branch)?;
            out.write_all(end)?;
            write!(out, "# branch.ab +{} -{}", u.ahead, u.behind)?;
            out.write_all(end)?;
        }
    }
    // Per path: the staged change (HEAD -> index) and the unstaged one (index -> worktree).
    // Staged renames are already paired up (see `run`): `2` entries.
    let mut entries: BTreeMap<&[u8], StagedUnstaged> = BTreeMap::new();
    for ch in &report.staged {
        entries.entry(&ch.path).or_default().0 = Some(ch);
    }
    for ch in &report.unstaged {
        entries.entry(&ch.path).or_default().1 = Some(ch);
    }
    let conflicted: BTreeMap<&[u8], &dsv::ops::merge::FileConflict> = merging
        .iter()
        .flat_map(|m| m.unresolved())
        .map(|c| (c.path.as_bytes(), c))
        .collect();
    for p in conflicted.keys() {
        entries.entry(p).or_default();
    }
    for (p, (staged, unstaged)) in entries {
        if let Some(c) = conflicted.get(p) {
            let work = unstaged.map_or(c.ours.as_ref(), |u| u.new.as_ref());
            write!(
                out,
                "u UU N... {} {} {} {} {} {} {} ",
                octal(c.base.as_ref()),
                octal(c.ours.as_ref()),
                octal(c.theirs.as_ref()),
                octal(work),
                hex(c.base.as_ref()),
                hex(c.ours.as_ref()),
                hex(c.theirs.as_ref()),
            )?;
            out.write_all(&path(p))?;
            out.write_all(end)?;
            continue;
        }
        let x = staged.map_or('.', |c| c.kind.letter());
        let y = unstaged.map_or('.', |c| c.kind.letter());
        // HEAD, index and worktree states of the path.
        let (head, index) = match (staged, unstaged) {
            (Some(s), _) => (s.old.as_ref(), s.new.as_ref()),
            (None, Some(u)) => (u.old.as_ref(), u.old.as_ref()),
            (None, None) => (None, None),
        };
        let work = match unstaged {
            Some(u) => u.new.as_ref(),
            None => index,
        };
        let kind = if staged.is_some_and(|s| s.from.is_some()) {
            '2'
        } else {
            '1'
        };
        write!(
            out,
            "{kind} {x}{y} N... {} {} {} {} {} ",
            octal(head),
            octal(index),
            octal(work),
            hex(head),
            hex(index)
        )?;
        if kind == '2' {
            write!(out, "R100 ")?;
        }
        out.write_all(&path(p))?;
        if let Some(from) = staged.and_then(|s| s.from.as_deref()) {
            out.write_all(if args.nul { b"\0" } else { b"\t" })?;
            out.write_all(&path(from))?;
        }
        out.write_all(end)?;
    }
    for p in &report.untracked {
        out.write_all(b"? ")?;
        out.write_all(&path(p))?;
        out.write_all(end)?;
    }
    out.flush()
}

/// Runs `status`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let v2 = match args.porcelain.as_deref() {
        None | Some("v1" | "1") => false,
        Some("v2" | "2") => true,
        Some(v) => crate::usage!("--porcelain={v}: the versions are v1 and v2"),
    };
    // Read-only first: status must not wait for, or block, other commands.
    let repo = ctx.repo(dsv::lock::Access::Read)?;
    let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let mut report = status(&repo, &scopes, &ctx.progress())?;
    super::fsmonitor::ensure_running(repo.root(), &report.monitor);
    let sparse = dsv::ops::sparse::list(&repo)?;
    let mut tracked_dirs = HashSet::new();
    if !report.untracked.is_empty() && !args.untracked_files {
        // Keyed lookups of the untracked paths' directories, not a read of the whole index.
        let reader = repo.index.reader()?;
        let mut seen = HashSet::new();
        for p in &report.untracked {
            for (i, b) in p.iter().enumerate() {
                if *b == b'/' && seen.insert(p[..i].to_vec()) && reader.has_under(&p[..i])? {
                    tracked_dirs.insert(p[..i].to_vec());
                }
            }
        }
    }
    let upstream = match &report.branch {
        Some(b) if !args.json && (args.branch || (!args.short && args.porcelain.is_none())) => {
            dsv::remote::upstream_status(&repo, b)?
        }
        _ => None,
    };
    let merging = dsv::ops::merge::load_state(&repo)?;
    drop(repo);
    // Record fresh stat data for files that were only touched, if no one holds the lock:
    // the next status then skips re-hashing them. Never waits; failure costs only speed.
    if (!report.refresh.is_empty() || report.record.is_some())
        && let Ok(Some(w)) = dsv::Repository::try_discover_write(&ctx.cwd, &ctx.open)
    {
        if !report.refresh.is_empty() {
            let _ = w.index.refresh(&report.refresh, report.stamp);
        }
        // The index's tree id, so the next status knows what is staged without hashing.
        if let Some(r) = &report.record {
            r.save(&w.index);
        }
    }
    if args.json {
        #[derive(serde::Serialize)]
        struct WithMerge<'a> {
            #[serde(flatten)]
            report: &'a StatusReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            merge: Option<&'a dsv::ops::merge::MergeState>,
        }
        print_json(&WithMerge {
            report: &report,
            merge: merging.as_ref(),
        })?;
        return Ok(0);
    }
    // A staged deletion and addition of the same content is a rename, in every text
    // format as in git (`R  OLD -> NEW`, `2 ... R100`, `renamed:`); --json keeps the pair.
    report.staged = dsv::object::diff::detect_renames(std::mem::take(&mut report.staged));
    if v2 {
        print_porcelain_v2(&report, merging.as_ref(), upstream.as_ref(), &args)?;
        return Ok(0);
    }
    if args.branch && (args.short || args.porcelain.is_some()) {
        let head = branch_line(&report, upstream.as_ref());
        if args.nul {
            print!("## {head}\0");
        } else {
            println!("## {head}");
        }
    }
    if args.porcelain.is_some() {
        print_porcelain(&short_lines(&report, merging.as_ref()), args.nul)?;
        return Ok(0);
    }
    let c = ctx.color;
    if args.short {
        print_short(&short_lines(&report, merging.as_ref()), c);
        return Ok(0);
    }
    match (&report.branch, &report.head) {
        (Some(b), Some(_)) => {
            println!("On branch {b}");
            if let Some(u) = &upstream {
                let theirs = format!("{}/{}", u.remote, u.branch);
                match (u.ahead, u.behind) {
                    (0, 0) => println!("Your branch is up to date with '{theirs}'."),
                    (a, 0) => println!(
                        "Your branch is ahead of '{theirs}' by {}.",
                        dsv::quote::count(a, "commit")
                    ),
                    (0, b) => println!(
                        "Your branch is behind '{theirs}' by {}.",
                        dsv::quote::count(b, "commit")
                    ),
                    (a, b) => println!(
                        "Your branch and '{theirs}' have diverged: {a} and {b} different commits."
                    ),
                }
            }
        }
        (Some(b), None) => println!("On branch {b}\n\nNo commits yet"),
        (None, Some(h)) => println!(
            "{}",
            paint(c, "31", &format!("HEAD detached at {}", h.short()))
        ),
        (None, None) => {}
    }
    if let Some(sp) = &sparse {
        println!(
            "You are in a sparse checkout: {} path{} held (dsv sparse list).",
            sp.paths.len(),
            if sp.paths.len() == 1 { "" } else { "s" }
        );
    }
    if let Some(m) = &merging {
        let open = m.unresolved().count();
        println!(
            "\nYou are in the middle of a {} of {} ({open} of {} conflicted file(s) unresolved).",
            m.kind.command(),
            m.theirs_name,
            m.conflicts.len()
        );
        if !m.conflicts.is_empty() {
            println!("\nConflicts:");
            super::merge::print_conflicts(c, &m.conflicts);
        }
    }
    if !report.staged.is_empty() {
        println!("\nChanges to be committed:");
        for ch in &report.staged {
            let path = match &ch.from {
                Some(f) => format!("{} -> {}", quote_path(f), quote_path(&ch.path)),
                None => quote_path(&ch.path),
            };
            println!(
                "\t{}",
                paint(c, "32", &format!("{:<12}{path}", label(ch.kind)))
            );
        }
    }
    if !report.unstaged.is_empty() {
        println!("\nChanges not staged for commit:");
        for ch in &report.unstaged {
            println!(
                "\t{}",
                paint(
                    c,
                    "31",
                    &format!("{:<12}{}", label(ch.kind), quote_path(&ch.path))
                )
            );
        }
    }
    if !report.untracked.is_empty() {
        println!("\nUntracked files:");
        let shown = if args.untracked_files {
            report.untracked.iter().map(quote_path).collect()
        } else {
            collapse_untracked(&report, &tracked_dirs)
        };
        for p in shown {
            println!("\t{}", paint(c, "31", &p));
        }
    }
    if let Some(m) = &merging {
        let cmd = m.kind.command();
        if m.unresolved().count() > 0 {
            println!(
                "\nfix conflicts (`dsv resolve PATH --ours|--theirs`, or edit and `dsv add`), then run `dsv {cmd} --continue`"
            );
        } else {
            println!("\nall conflicts resolved: run `dsv {cmd} --continue`");
        }
    } else if report.is_clean() {
        println!("nothing to commit, working tree clean");
    } else if report.staged.is_empty() && report.unstaged.is_empty() {
        println!(
            "\nnothing added to commit but untracked files present (use \"dsv add\" to track)"
        );
    } else if report.staged.is_empty() {
        println!("\nno changes added to commit (use \"dsv add\")");
    }
    Ok(0)
}

/// Examples shown by `dsv status --help`.
const EXAMPLES: &str = "\
Examples:
  dsv status
  dsv status -s                      short format
  dsv status --porcelain             stable format for scripts
  dsv status labels/";
