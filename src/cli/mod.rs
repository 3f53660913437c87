//! Argument parsing and dispatch; one module per command.

mod add;
mod blame;
mod branch;
mod cat_object;
mod checkout;
mod cherry_pick;
mod clean;
mod clone;
pub mod command_error;
mod commit;
mod completions;
mod config;
mod demo;
mod diff;
mod diff_driver;
mod export;
mod fetch;
mod fsck;
pub mod fsmonitor;
mod gc;
mod graph;
mod hooks;
mod import;
mod init;
mod install_git_integration;
mod labels;
mod lock;
mod log;
mod ls_files;
mod ls_tree;
mod man;
mod merge;
mod meta;
mod mv;
mod output;
mod pin;
mod pull;
mod push;
mod query;
mod reflog;
mod remote;
mod repair;
mod reset;
mod resolve;
mod restore;
mod rev_parse;
mod revert;
mod rm;
mod settings;
mod show;
mod sparse;
mod stash;
mod stats;
mod status;
mod switch;
mod tag;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use dsv::lock::Access;
use dsv::repo::{OpenOptions, Repository};
use dsv::storage::FaultStorage;

/// When to colour output.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Version control for machine-learning datasets.
#[derive(Debug, Parser)]
#[command(
    name = "dsv",
    version,
    about,
    long_about = None,
    max_term_width = 100,
    after_help = "-C, --color and -q work with every command, before or after its name.\nSee 'dsv COMMAND --help' for a command's options and examples.",
    after_long_help = TOP_EXAMPLES
)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Print less (no progress bars or informational lines).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    command: Command,
}

const TOP_EXAMPLES: &str = "\
-C, --color and -q work with every command, before or after its name.
See 'dsv COMMAND --help' for a command's options and examples.

Examples:
  dsv init && dsv add -A && dsv commit -m 'first labels'
  dsv diff HEAD~1                 what the last commit changed, object by object
  dsv -C ~/datasets/street log -3
  dsv demo                        a guided tour on bundled sample data";

/// The command line as parsed: the global options (-C, --color, -q) are
/// accepted by every subcommand but listed only in the top-level help, so
/// each command's help shows its own options. (A subcommand that already
/// holds an argument with a global's id does not get the global pushed into
/// it again, so a hidden copy there keeps it working and unlisted.)
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    // Each subcommand edited in place: `mut_subcommand` by name removes the
    // subcommand from the list and pushes it back, moving every large `Command`
    // after it, once per subcommand (half the instructions of `dsv --version`).
    for sc in cmd.get_subcommands_mut() {
        let taken = std::mem::take(sc);
        *sc = globals
            .iter()
            .fold(taken, |sc, a| sc.arg(a.clone().hide(true)));
    }
    cmd
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty repository.
    Init(init::Args),
    /// Stage files (store their content and record them in the index).
    Add(add::Args),
    /// Remove files from the index and the working tree.
    Rm(rm::Args),
    /// Move or rename a tracked file or directory (working tree and index).
    Mv(mv::Args),
    /// Delete untracked files (-n to list them, -f to delete).
    Clean(clean::Args),
    /// Put working-tree label edits aside and bring them back (push, pop, apply, list, drop, show).
    Stash(stash::Args),
    /// Show staged, modified, deleted and untracked files.
    Status(status::Args),
    /// Record the index as a new commit.
    Commit(commit::Args),
    /// Show commit history.
    Log(log::Args),
    /// Show a commit and what it changed.
    Show(show::Args),
    /// Show the commit that last changed each object of a label file.
    Blame(blame::Args),
    /// Show changes between commits, the index and the working tree (file level).
    Diff(diff::Args),
    /// List, create, delete or rename branches.
    Branch(branch::Args),
    /// Switch to a branch (or detach at a commit).
    Switch(switch::Args),
    /// Check out a revision, or restore paths from a revision.
    Checkout(checkout::Args),
    /// Restore working-tree (or staged) files.
    Restore(restore::Args),
    /// List, create or delete tags.
    Tag(tag::Args),
    /// Merge a branch into the current one (fast-forward, or three-way down to label objects).
    Merge(merge::Args),
    /// Resolve conflicted paths of a merge for one side.
    Resolve(resolve::Args),
    /// Apply the changes of a commit onto the current branch.
    #[command(after_long_help = cherry_pick::EXAMPLES)]
    CherryPick(cherry_pick::Args),
    /// Undo the changes of a commit on the current branch.
    #[command(after_long_help = revert::EXAMPLES)]
    Revert(revert::Args),
    /// Record the dataset commit in use in the surrounding git repository's dsv.lock.
    Lock(lock::Args),
    /// git diff driver for dsv.lock: the dataset diff between the two locked commits.
    DiffDriver(diff_driver::Args),
    /// Make `git diff` on dsv.lock show dataset diffs (.gitattributes and git config).
    InstallGitIntegration(install_git_integration::Args),
    /// Move the current branch, optionally resetting index and working tree.
    Reset(reset::Args),
    /// Verify every object and that all referenced data is present.
    Fsck(fsck::Args),
    /// Remove unreachable objects and repack.
    Gc(gc::Args),
    /// Keep commits on a remote whatever happens to branches (retention pins for gc --remote).
    Pin(pin::Args),
    /// Rebuild objects.redb from the packs (and a damaged index from HEAD), then fsck.
    Repair(repair::Args),
    /// Print a stored object (plumbing).
    CatObject(cat_object::Args),
    /// List a tree (plumbing).
    LsTree(ls_tree::Args),
    /// List tracked, modified, deleted or untracked files.
    LsFiles(ls_files::Args),
    /// Dataset statistics: frames, objects, classes, attributes (or their change between two revisions).
    Stats(stats::Args),
    /// Parse label files as dsv sees them (format, frames, objects).
    Labels(labels::Args),
    /// Edit frame metadata (the tracked sidecar): set, unset, import predictions.
    Meta(meta::Args),
    /// List the frames a CEL expression selects, or record them as a branch.
    Query(query::Args),
    /// Write a training-ready copy in a label format, or a JSONL manifest.
    Export(export::Args),
    /// Write an annotation tool's edited file (CVAT, Label Studio) back into the label files.
    Import(import::Args),
    /// Read or write configuration.
    Config(config::Args),
    /// Hooks: list, test, and the log and status of post-* deliveries.
    Hooks(hooks::Args),
    /// Run a demo on the bundled fixtures in a temporary directory.
    Demo(demo::Args),
    /// Add, remove or list remotes (object storage or a directory).
    Remote(remote::Args),
    /// Upload a branch to a remote (fast-forward unless --force).
    Push(push::Args),
    /// Download every branch of a remote into remote-tracking branches.
    Fetch(fetch::Args),
    /// Fetch, then fast-forward the current branch and update the files.
    Pull(pull::Args),
    /// Hold only some paths of the dataset in the working tree (sparse checkout).
    Sparse(sparse::Args),
    /// Create a repository from a remote and check out its default branch.
    Clone(clone::Args),
    /// Fire a command or webhook for every commit landing on a remote (the CI-side trigger).
    Watch(watch::Args),
    /// Print the shell completion script (branch, tag, remote and path names included).
    Completions(completions::Args),
    /// Print a manual page (roff), or write them all with --out.
    Man(man::Args),
    /// The file-system monitor that lets status look only at what changed.
    Fsmonitor(fsmonitor::Args),
    /// Print the commit ids (or branch names) revisions stand for.
    RevParse(rev_parse::Args),
    /// Show where HEAD or a branch has pointed, newest first.
    Reflog(reflog::Args),
}

/// Shared state for a command run.
pub struct Ctx {
    /// Working directory for path arguments.
    pub cwd: PathBuf,
    /// Global options.
    pub color: bool,
    /// Quiet mode.
    pub quiet: bool,
    /// How to open repositories.
    pub open: OpenOptions,
}

impl Ctx {
    /// Opens the repository around the working directory.
    pub fn repo(&self, access: Access) -> anyhow::Result<Repository> {
        Ok(Repository::discover(&self.cwd, access, &self.open)?)
    }

    /// Opens the repository around the working directory for writing.
    pub fn writable_repo(&self) -> anyhow::Result<dsv::WritableRepo> {
        Ok(self.repo(Access::Write)?.into_writable()?)
    }

    /// Progress renderer for this run.
    pub fn progress(&self) -> output::CliProgress {
        output::CliProgress::new(self.quiet)
    }
}

/// git's `log -3` and `reflog -3`: `-N` stands for `-n N` after those commands
/// (clap has no numeric flags). Only the subcommand itself counts (not a value such
/// as `commit -m log`), and nothing after `--` is touched.
fn count_shorthand(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = args.collect();
    // The subcommand: the first word after the program that is neither an option nor
    // the value of a global option that takes one.
    let mut i = 1;
    while let Some(a) = out.get(i).and_then(|a| a.to_str()) {
        match a {
            "-C" | "--color" => i += 2,
            _ if a.starts_with('-') => i += 1,
            _ => break,
        }
    }
    if !matches!(out.get(i).and_then(|a| a.to_str()), Some("log" | "reflog")) {
        return out;
    }
    let mut k = i + 1;
    while k < out.len() {
        let Some(text) = out[k].to_str() else {
            k += 1;
            continue;
        };
        if text == "--" {
            break;
        }
        match text.strip_prefix('-') {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n = n.to_string();
                out[k] = "-n".into();
                out.insert(k + 1, n.into());
                k += 2;
            }
            _ => k += 1,
        }
    }
    out
}

/// Parses arguments, runs the command and maps errors to exit codes:
/// 0 success, 1 failure, 2 usage error.
pub fn run() -> i32 {
    if let Some(code) = completions::complete_from_env() {
        return code;
    }
    let mut cmd = command();
    let parsed = cmd
        .try_get_matches_from_mut(count_shorthand(std::env::args_os()))
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    // The parser of every command is thousands of small allocations: the process's
    // end frees them for nothing, where dropping them costs about a fifth of building
    // them.
    std::mem::forget(cmd);
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let base = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the current directory: {e}");
            return 1;
        }
    };
    let cwd = match &cli.dir {
        Some(d) => base.join(d),
        None => base,
    };
    // As git: -C names a directory to start in; that it is missing is the
    // error, not that no repository was found there.
    if let Some(d) = &cli.dir
        && !cwd.is_dir()
    {
        let what = if cwd.exists() {
            "not a directory"
        } else {
            "directory does not exist"
        };
        eprintln!(
            "error: -C {}: {what}",
            output::quote_path(d.as_os_str().as_encoded_bytes())
        );
        return 2;
    }
    if std::env::var_os("DSV_TRACE_PERF").is_some() {
        dsv::trace::install(Box::new(|name, d| {
            // With the resident and peak memory so far (Linux): where the
            // memory goes shows phase by phase.
            let mem = std::fs::read_to_string("/proc/self/status")
                .map(|s| {
                    let kib = |k: &str| {
                        s.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| {
                            v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                        })
                    };
                    match (kib("VmRSS:"), kib("VmHWM:")) {
                        (Some(r), Some(h)) => {
                            format!(" rss {} MiB peak {} MiB", r / 1024, h / 1024)
                        }
                        _ => String::new(),
                    }
                })
                .unwrap_or_default();
            eprintln!("perf: {name} {:.3} s{mem}", d.as_secs_f64())
        }));
    }
    let mut open = OpenOptions::default();
    // `DSV_FAULT=count`: no fault, but the number of write points is printed at the
    // end, so a crash test knows which `kill:N` it can aim at.
    let mut counter = None;
    if let Ok(spec) = std::env::var("DSV_FAULT") {
        if spec == "count" {
            let f = Arc::new(FaultStorage::new(
                Arc::new(dsv::storage::OsStorage),
                dsv::storage::FaultMode::Fail,
                u64::MAX,
            ));
            counter = Some(f.clone());
            open.storage = f;
        } else if let Some(f) = FaultStorage::from_spec(&spec) {
            open.storage = Arc::new(f);
        }
    }
    match settings::from_env() {
        Ok(s) => open.settings = s,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 2;
        }
    }
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let ctx = Ctx {
        cwd,
        color,
        quiet: cli.quiet,
        open,
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Add(a) => add::run(&ctx, a),
        Command::Rm(a) => rm::run(&ctx, a),
        Command::Mv(a) => mv::run(&ctx, a),
        Command::Clean(a) => clean::run(&ctx, a),
        Command::Stash(a) => stash::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Commit(a) => commit::run(&ctx, a),
        Command::Log(a) => log::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Blame(a) => blame::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Branch(a) => branch::run(&ctx, a),
        Command::Switch(a) => switch::run(&ctx, a),
        Command::Checkout(a) => checkout::run(&ctx, a),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Tag(a) => tag::run(&ctx, a),
        Command::Merge(a) => merge::run(&ctx, a),
        Command::Resolve(a) => resolve::run(&ctx, a),
        Command::CherryPick(a) => cherry_pick::run(&ctx, a),
        Command::Revert(a) => revert::run(&ctx, a),
        Command::Lock(a) => lock::run(&ctx, a),
        Command::DiffDriver(a) => diff_driver::run(&ctx, a),
        Command::InstallGitIntegration(a) => install_git_integration::run(&ctx, a),
        Command::Reset(a) => reset::run(&ctx, a),
        Command::Fsck(a) => fsck::run(&ctx, a),
        Command::Gc(a) => gc::run(&ctx, a),
        Command::Pin(a) => pin::run(&ctx, a),
        Command::Repair(a) => repair::run(&ctx, a),
        Command::CatObject(a) => cat_object::run(&ctx, a),
        Command::LsTree(a) => ls_tree::run(&ctx, a),
        Command::LsFiles(a) => ls_files::run(&ctx, a),
        Command::Config(a) => config::run(&ctx, a),
        Command::Stats(a) => stats::run(&ctx, a),
        Command::Labels(a) => labels::run(&ctx, a),
        Command::Meta(a) => meta::run(&ctx, a),
        Command::Query(a) => query::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Import(a) => import::run(&ctx, a),
        Command::Hooks(a) => hooks::run(&ctx, a),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Remote(a) => remote::run(&ctx, a),
        Command::Push(a) => push::run(&ctx, a),
        Command::Fetch(a) => fetch::run(&ctx, a),
        Command::Pull(a) => pull::run(&ctx, a),
        Command::Sparse(a) => sparse::run(&ctx, a),
        Command::Clone(a) => clone::run(&ctx, a),
        Command::Watch(a) => watch::run(&ctx, a),
        Command::Completions(a) => completions::run(&ctx, a),
        Command::Man(a) => man::run(&ctx, a),
        Command::Fsmonitor(a) => fsmonitor::run(&ctx, a),
        Command::RevParse(a) => rev_parse::run(&ctx, a),
        Command::Reflog(a) => reflog::run(&ctx, a),
    };
    if let Some(c) = counter {
        eprintln!("dsv: {} write points", c.writes());
    }
    match result {
        Ok(code) => code,
        Err(e) => command_error::report(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::count_shorthand;

    /// Every subcommand, in its declared order, holds a hidden copy of each global
    /// option (so its help lists only its own), and they parse after its name.
    #[test]
    fn every_subcommand_takes_the_global_options_hidden() {
        use clap::CommandFactory;
        let cmd = super::command();
        let globals: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().to_string())
            .collect();
        assert_eq!(globals.len(), 3, "{globals:?}");
        let names = |c: &clap::Command| -> Vec<String> {
            c.get_subcommands()
                .map(|s| s.get_name().to_string())
                .collect()
        };
        assert_eq!(names(&cmd), names(&super::Cli::command()));
        for sc in cmd.get_subcommands() {
            for g in &globals {
                let a = sc
                    .get_arguments()
                    .find(|a| a.get_id() == g.as_str())
                    .unwrap_or_else(|| panic!("{} lacks --{g}", sc.get_name()));
                assert!(a.is_hide_set(), "{} shows --{g}", sc.get_name());
            }
        }
        let m = super::command()
            .try_get_matches_from(["dsv", "status", "-q", "--color", "never", "-C", "x"])
            .unwrap();
        let cli = <super::Cli as clap::FromArgMatches>::from_arg_matches(&m).unwrap();
        assert!(cli.quiet);
        assert_eq!(cli.dir.as_deref(), Some(std::path::Path::new("x")));
    }

    fn run(args: &[&str]) -> Vec<String> {
        count_shorthand(args.iter().map(|a| a.into()))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn log_count_shorthand_is_rewritten_only_for_log_and_reflog() {
        assert_eq!(run(&["dsv", "log", "-3"]), ["dsv", "log", "-n", "3"]);
        assert_eq!(
            run(&["dsv", "-C", "log", "reflog", "-2", "--", "-4"]),
            ["dsv", "-C", "log", "reflog", "-n", "2", "--", "-4"]
        );
        assert_eq!(
            run(&["dsv", "commit", "-m", "log", "-3"]),
            ["dsv", "commit", "-m", "log", "-3"]
        );
        assert_eq!(run(&["dsv", "-q", "log"]), ["dsv", "-q", "log"]);
    }
}
