//! `dsv commit -m MSG`.

use dsv::hooks::Event;
use dsv::ops::commit::CommitOptions;

use super::Ctx;
use super::output::human_bytes;

/// Arguments of `commit`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Commit message (several -m are joined as paragraphs).
    #[arg(
        short,
        long = "message",
        required_unless_present_any = ["file", "amend"],
        conflicts_with = "file"
    )]
    message: Vec<String>,
    /// Take the message from FILE (`-` reads standard input).
    #[arg(short = 'F', long = "file", value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Allow a commit whose tree equals its parent's.
    #[arg(long)]
    allow_empty: bool,
    /// Stage all changes to tracked and new files first (like `add -A`).
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Replace HEAD's commit with one of the index (same parents and author; the
    /// old message unless -m or -F gives a new one).
    #[arg(long)]
    amend: bool,
}

/// Warns, on stderr, of each staged label file that does not parse.
pub(super) fn report_label_errors(check: &dsv::ops::label_check::LabelCheck) {
    for w in &check.errors {
        eprintln!("warning: {w} (its frames' labels are unknown until it parses)");
    }
    if check.refuse && !check.errors.is_empty() {
        eprintln!("warning: commit refuses these ([check] labels = \"error\" in dsv.toml)");
    }
}

/// Longest message `-F` reads: far past any real one, and memory stays bounded when
/// it is pointed at a large file or an endless pipe.
const MAX_MESSAGE: u64 = 1 << 20;

/// The message of `-F FILE` (`-`: standard input), at most [`MAX_MESSAGE`] bytes of UTF-8.
fn message_from(ctx: &Ctx, file: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let (name, reader): (String, Box<dyn Read>) = if file.as_os_str() == "-" {
        ("standard input".into(), Box::new(std::io::stdin()))
    } else {
        let path = ctx.cwd.join(file);
        let f = std::fs::File::open(&path)
            .map_err(|e| anyhow::anyhow!("reading '{}': {e}", path.display()))?;
        (format!("'{}'", path.display()), Box::new(f))
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_MESSAGE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("reading {name}: {e}"))?;
    if bytes.len() as u64 > MAX_MESSAGE {
        anyhow::bail!("the commit message in {name} is longer than 1 MiB");
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the commit message in {name} is not UTF-8"))?;
    if text.trim().is_empty() {
        anyhow::bail!("the commit message in {name} is empty; nothing committed");
    }
    Ok(text)
}

/// Runs `commit`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let message = match &args.file {
        Some(f) => message_from(ctx, f)?,
        None => args.message.join("\n\n"),
    };
    let repo = ctx.writable_repo()?;
    // A bad dsv.toml refuses the commit before `-a` stages anything.
    dsv::hooks::load(&repo)?;
    if args.all {
        let r = dsv::ops::add::add(&repo, &[], &[], &ctx.progress())?;
        super::fsmonitor::ensure_running(repo.root(), &r.monitor);
    }
    // Refusing must come first and reads HEAD's whole file list, so only
    // when asked for; otherwise the commit's changed files are checked after.
    if dsv::ops::label_check::staged_refuses(&repo)? {
        let check = dsv::ops::label_check::check_staged(&repo)?;
        if !check.errors.is_empty() {
            let list: String = check.errors.iter().map(|w| format!("\n  {w}")).collect();
            anyhow::bail!(
                "{} label file(s) do not parse ([check] labels = \"error\" in dsv.toml); nothing committed:{list}",
                check.errors.len()
            );
        }
    }
    // Hooks come with the commit: a bad dsv.toml refuses it, pre-commit can reject it.
    let hooked = dsv::hooks::commit(
        &repo,
        &CommitOptions {
            message,
            allow_empty: args.allow_empty,
            amend: args.amend,
        },
    )?;
    super::hooks::report(ctx, Event::PreCommit, &hooked.pre);
    let r = hooked.result;
    let parent_tree = match r.commit.parents.first() {
        Some(p) => Some(dsv::object::Commit::load(&repo.store, p)?.tree),
        None => None,
    };
    let check = dsv::ops::label_check::check_trees(&repo, parent_tree.as_ref(), &r.commit.tree)?;
    report_label_errors(&check);
    if !ctx.quiet {
        let root = if r.root { " (root-commit)" } else { "" };
        let on = r.branch.as_deref().unwrap_or("detached HEAD");
        println!(
            "[{on}{root} {}] {}",
            r.id.short(),
            super::output::safe_line(r.commit.subject())
        );
        println!(
            " {}, {}",
            dsv::quote::count(r.commit.summary.files, "file"),
            human_bytes(r.commit.summary.bytes)
        );
    }
    super::hooks::after_events(
        ctx,
        repo.into_inner(),
        hooked.post,
        &format!("commit {} was made", r.id.short()),
    )
}

/// Examples shown by `dsv commit --help`.
const EXAMPLES: &str = "\
Examples:
  dsv commit -m 'Relabel night frames'
  dsv commit -am 'Fix two boxes'     stage tracked changes and commit
  dsv commit -F message.txt
  git log -1 --format=%B | dsv commit -F -";
