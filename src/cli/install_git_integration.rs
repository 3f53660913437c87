//! `dsv install-git-integration`: make `git diff` show dataset diffs for `dsv.lock`.

use dsv::lock::Access;
use dsv::ops::git_integration::install;

use super::Ctx;

/// Arguments of `install-git-integration`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {}

/// Quotes a path for the shell git runs the driver command with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `install-git-integration`.
pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    // The absolute path of this binary, so git finds it whatever its PATH is.
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the dsv executable's path: {e}"))?;
    let exe = exe.to_str().ok_or_else(|| {
        anyhow::anyhow!("the dsv executable's path is not UTF-8: {}", exe.display())
    })?;
    let r = install(&repo, &format!("{} diff-driver", shell_quote(exe)))?;
    if !ctx.quiet {
        let say = |done: bool, what: &str| {
            println!("{} {what}", if done { "Added" } else { "Already present:" });
        };
        say(
            r.attributes_added,
            "`dsv.lock diff=dsv` in .gitattributes (commit it)",
        );
        say(
            r.config_added,
            "diff.dsv.command in the repository's git config",
        );
    }
    Ok(0)
}

/// Examples shown by `dsv install-git-integration --help`.
const EXAMPLES: &str = "\
Examples:
  dsv install-git-integration        `git diff` on dsv.lock shows dataset diffs";
