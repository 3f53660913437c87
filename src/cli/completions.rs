//! `dsv completions SHELL`: the shell's completion script, and the completion mode
//! the script calls back into (`DSV_COMPLETE=SHELL dsv -- WORDS`), which knows the
//! branch, tag and remote names of the repository being typed in.
//!
//! The call-back engine is clap_complete's `unstable-dynamic` one (a Cargo feature,
//! usable on stable Rust, but outside clap_complete's semver promise: Cargo.toml pins
//! the exact version). `--static` writes clap_complete's classic self-contained script
//! instead (commands and options, no names from the repository).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::builder::StyledStr;
use clap::{Arg, Command, CommandFactory, ValueEnum, ValueHint};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{EnvCompleter, Shells};

use dsv::config::ConfigFile;
use dsv::refs::{HEADS, REMOTES, Refs, TAGS};
use dsv::repo::DSV_DIR;
use dsv::storage::OsStorage;

use super::Ctx;

/// Environment variable that turns a run of dsv into a completion call.
const VAR: &str = "DSV_COMPLETE";

/// Install lines, shown under `dsv completions --help`.
const INSTALL: &str = "\
Examples:
  dsv completions bash                print the bash script
  source <(dsv completions zsh)       complete in this zsh session

Install (the script calls dsv back for every completion, so it stays right across upgrades):
  bash:        echo 'source <(dsv completions bash)' >> ~/.bashrc
  zsh:         echo 'source <(dsv completions zsh)' >> ~/.zshrc   (after compinit)
  fish:        echo 'dsv completions fish | source' > ~/.config/fish/completions/dsv.fish
  powershell:  Add-Content $PROFILE 'dsv completions powershell | Out-String | Invoke-Expression'
  elvish:      echo 'eval (dsv completions elvish | slurp)' >> ~/.config/elvish/rc.elv";

/// A shell dsv writes completions for.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ShellName {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// PowerShell (pwsh).
    Powershell,
    /// Elvish.
    Elvish,
}

impl ShellName {
    /// The call-back adapter of clap_complete for this shell.
    fn dynamic(self) -> &'static dyn EnvCompleter {
        use clap_complete::env::{Bash, Elvish, Fish, Powershell, Zsh};
        match self {
            ShellName::Bash => &Bash,
            ShellName::Zsh => &Zsh,
            ShellName::Fish => &Fish,
            ShellName::Powershell => &Powershell,
            ShellName::Elvish => &Elvish,
        }
    }

    /// The static-script generator of clap_complete for this shell.
    fn generator(self) -> clap_complete::Shell {
        use clap_complete::Shell;
        match self {
            ShellName::Bash => Shell::Bash,
            ShellName::Zsh => Shell::Zsh,
            ShellName::Fish => Shell::Fish,
            ShellName::Powershell => Shell::PowerShell,
            ShellName::Elvish => Shell::Elvish,
        }
    }
}

/// Arguments of `dsv completions`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = INSTALL)]
pub struct Args {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: ShellName,
    /// A self-contained script that never runs dsv: commands and options only, no
    /// branch, tag or remote names (for packagers).
    #[arg(long = "static")]
    static_: bool,
}

/// Writes the completion script of a shell to stdout.
pub fn run(_ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let mut out = Vec::new();
    if args.static_ {
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut cmd = command(&cwd);
        clap_complete::aot::generate(args.shell.generator(), &mut cmd, "dsv", &mut out);
    } else {
        args.shell
            .dynamic()
            .write_registration(VAR, "dsv", "dsv", &completer_path(), &mut out)
            .context("writing the completion script")?;
    }
    std::io::stdout()
        .write_all(&out)
        .context("writing the completion script to stdout")?;
    Ok(0)
}

/// The program the script calls back: how dsv was started (a name found on `PATH`
/// stays a name, so an upgrade is picked up), made absolute when it was a relative
/// path, which would break as soon as the user changes directory.
fn completer_path() -> String {
    let argv0 = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("dsv"));
    let path = if argv0.components().count() > 1 && argv0.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&argv0))
            .unwrap_or(argv0)
    } else {
        argv0
    };
    path.to_string_lossy().into_owned()
}

/// A completion call from a script (`DSV_COMPLETE` set): writes the candidates (or,
/// with no words after `--`, the script itself) and returns the exit code; `None`
/// for an ordinary run.
pub fn complete_from_env() -> Option<i32> {
    let shell = std::env::var_os(VAR)?;
    if shell.is_empty() || shell == "0" {
        return None;
    }
    // `$SHELL` (`/bin/bash`) is accepted too, as clap_complete does.
    let shell_name = Path::new(&shell)
        .file_stem()
        .unwrap_or(&shell)
        .to_string_lossy()
        .into_owned();
    let shells = Shells::builtins();
    let Some(adapter) = shells.completer(&shell_name) else {
        eprintln!(
            "error: {VAR}={}: unknown shell; expected bash, elvish, fish, powershell or zsh",
            dsv::quote::short(&shell.to_string_lossy())
        );
        return Some(2);
    };
    let mut words: Vec<OsString> = std::env::args_os().skip(1).collect();
    let escape = words
        .iter()
        .position(|w| w == "--")
        .map_or(words.len(), |i| i + 1);
    words.drain(..escape);
    let mut out = Vec::new();
    let written = if words.is_empty() {
        adapter.write_registration(VAR, "dsv", "dsv", &completer_path(), &mut out)
    } else {
        let cwd = std::env::current_dir().unwrap_or_default();
        let start = start_dir(&words, &cwd);
        let mut cmd = command(&start);
        adapter.write_complete(&mut cmd, words, Some(&start), &mut out)
    };
    match written.and_then(|()| std::io::stdout().write_all(&out)) {
        Ok(()) => Some(0),
        Err(e) => {
            eprintln!("error: completing for {shell_name}: {e}");
            Some(1)
        }
    }
}

/// The directory the completed command will run in: the current one, or the last
/// `-C DIR` before the word being completed (relative to the current one, as for the
/// command itself). The word being completed may be a `-C` value still being typed:
/// it is not a directory yet.
fn start_dir(words: &[OsString], cwd: &Path) -> PathBuf {
    // bash and zsh say which word is being completed (the cursor may be mid-line);
    // the other shells pass the words up to the cursor.
    let current = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or(words.len().saturating_sub(1));
    let mut dir = None;
    let mut before = words.iter().take(current).skip(1);
    while let Some(w) = before.next() {
        if w == "--" {
            break;
        } else if w == "-C" {
            if let Some(d) = before.next() {
                dir = Some(PathBuf::from(d));
            }
        } else if let Some(d) = w.to_str().and_then(|w| w.strip_prefix("-C")) {
            dir = Some(PathBuf::from(d.strip_prefix('=').unwrap_or(d)));
        }
    }
    match dir {
        Some(d) => cwd.join(d),
        None => cwd.to_path_buf(),
    }
}

/// Which names complete an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Local branches.
    Branches,
    /// Tags.
    Tags,
    /// Local branches and tags (what `push` sends).
    BranchesAndTags,
    /// Configured remotes.
    Remotes,
    /// Anything that names a commit: HEAD, branches, tags, remote-tracking
    /// branches, and either end of `A..B` / `A...B`.
    Revisions,
}

/// Arguments completed with names from the repository: (subcommand path, argument
/// id, names). A renamed argument makes building the command panic, which the
/// completion tests catch.
const NAMED: &[(&[&str], &str, Names)] = &[
    (&["branch"], "names", Names::Revisions),
    (&["switch"], "target", Names::Branches),
    (&["checkout"], "rev", Names::Revisions),
    (&["diff"], "revs", Names::Revisions),
    (&["log"], "revs", Names::Revisions),
    (&["show"], "rev", Names::Revisions),
    (&["rev-parse"], "revs", Names::Revisions),
    (&["reflog"], "reference", Names::Branches),
    (&["tag"], "name", Names::Tags),
    (&["tag"], "rev", Names::Revisions),
    (&["merge"], "target", Names::Revisions),
    (&["cherry-pick"], "rev", Names::Revisions),
    (&["revert"], "rev", Names::Revisions),
    (&["reset"], "rev", Names::Revisions),
    (&["restore"], "source", Names::Revisions),
    (&["ls-tree"], "rev", Names::Revisions),
    (&["stats"], "revs", Names::Revisions),
    (&["query"], "rev", Names::Revisions),
    (&["export"], "rev", Names::Revisions),
    (&["hooks", "test"], "commit", Names::Revisions),
    (&["push"], "remote", Names::Remotes),
    (&["push"], "branch", Names::BranchesAndTags),
    (&["pull"], "remote", Names::Remotes),
    (&["pull"], "branch", Names::Branches),
    (&["fetch"], "remote", Names::Remotes),
    (&["fsck"], "remote", Names::Remotes),
    (&["watch"], "remote", Names::Remotes),
    (&["remote", "remove"], "name", Names::Remotes),
];

/// Path arguments whose type does not already say so (a `PathBuf` argument
/// completes any path without help), or that take only files or only directories.
const PATHS: &[(&[&str], &str, ValueHint)] = &[
    (&[], "dir", ValueHint::DirPath),
    (&["init"], "directory", ValueHint::DirPath),
    (&["clone"], "directory", ValueHint::DirPath),
    (&["demo"], "keep", ValueHint::DirPath),
    (&["export"], "out", ValueHint::DirPath),
    (&["labels"], "files", ValueHint::FilePath),
    (&["meta", "import"], "file", ValueHint::FilePath),
    (&["meta", "set"], "items", ValueHint::AnyPath),
    (&["man"], "out", ValueHint::DirPath),
];

/// The command line of dsv with completers attached; names are read from the
/// repository around `start` when a completion asks for them.
fn command(start: &Path) -> Command {
    let mut cmd = super::Cli::command();
    for &(path, id, names) in NAMED {
        let start = start.to_path_buf();
        let completer =
            ArgValueCompleter::new(move |current: &OsStr| candidates(&start, names, current));
        cmd = at(cmd, path, &move |c: Command| {
            mut_arg(c, id, &|a| a.add(completer.clone()))
        });
    }
    for &(path, id, hint) in PATHS {
        cmd = at(cmd, path, &move |c: Command| {
            mut_arg(c, id, &|a| a.value_hint(hint))
        });
    }
    let commands: Vec<(String, Option<StyledStr>)> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| (c.get_name().to_string(), c.get_about().cloned()))
        .collect();
    at(cmd, &["man"], &move |c: Command| {
        let commands = commands.clone();
        mut_arg(c, "command", &|a| {
            let commands = commands.clone();
            a.add(ArgValueCandidates::new(move || {
                commands
                    .iter()
                    .map(|(name, about)| CompletionCandidate::new(name).help(about.clone()))
                    .collect()
            }))
        })
    })
}

/// Applies `f` to the argument `id` of `cmd` (panics if there is none). Unlike
/// `Command::mut_arg`, which moves the argument to the end, this keeps the order
/// of positional arguments, which gives them their places.
fn mut_arg(cmd: Command, id: &str, f: &dyn Fn(Arg) -> Arg) -> Command {
    assert!(
        cmd.get_arguments().any(|a| a.get_id() == id),
        "dsv {}: no argument `{id}` to complete",
        cmd.get_name()
    );
    cmd.mut_args(|a| if a.get_id() == id { f(a) } else { a })
}

/// Applies `f` to the subcommand at `path` (panics if there is none).
fn at(cmd: Command, path: &[&str], f: &dyn Fn(Command) -> Command) -> Command {
    match path.split_first() {
        None => f(cmd),
        Some((first, rest)) => cmd.mut_subcommand(*first, |c| at(c, rest, f)),
    }
}

/// The candidates for `current`. Anything unreadable (no repository, a damaged
/// ref) gives fewer candidates, never an error: a completion must not get in the
/// way of typing.
fn candidates(start: &Path, names: Names, current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let Ok(root) = dsv::Repository::locate(start) else {
        return Vec::new();
    };
    let dsv_dir = root.join(DSV_DIR);
    // Either end of a range completes: `main..fe` offers `main..feature`.
    let (prefix, word) = match (names, current.rfind("..")) {
        (Names::Revisions, Some(i)) => current.split_at(i + 2),
        _ => ("", current),
    };
    let mut found: Vec<(String, &str)> = Vec::new();
    let refs = Refs::new(&dsv_dir, Arc::new(OsStorage));
    let mut list = |namespace: &str, help: &'static str| {
        for (name, _) in refs.list(namespace).unwrap_or_default() {
            found.push((name, help));
        }
    };
    match names {
        Names::Branches => list(HEADS, "branch"),
        Names::Tags => list(TAGS, "tag"),
        Names::BranchesAndTags => {
            list(HEADS, "branch");
            list(TAGS, "tag");
        }
        Names::Remotes => {}
        Names::Revisions => {
            list(HEADS, "branch");
            list(TAGS, "tag");
            list(REMOTES, "remote-tracking branch");
            found.push(("HEAD".to_string(), "the current commit"));
        }
    }
    if names == Names::Remotes {
        found.extend(remote_names(&dsv_dir).into_iter().map(|n| (n, "remote")));
    }
    found
        .into_iter()
        .filter(|(name, _)| name.starts_with(word))
        .map(|(name, help)| {
            CompletionCandidate::new(format!("{prefix}{name}")).help(Some(help.into()))
        })
        .collect()
}

/// Names of the configured remotes, read without opening (or waiting for the lock
/// of) the repository; the same rule as `dsv::remote::list_remotes`.
fn remote_names(dsv_dir: &Path) -> Vec<String> {
    let Ok(file) = ConfigFile::load(&dsv_dir.join("config.toml")) else {
        return Vec::new();
    };
    file.values
        .keys()
        .filter_map(|k| k.strip_prefix("remote.")?.strip_suffix(".url"))
        .filter(|n| !n.contains('.'))
        .map(str::to_string)
        .collect()
}
