//! `dsv init [DIR]`.

use std::path::PathBuf;

use super::Ctx;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Directory to create the repository in (default: current directory).
    // Not named `dir`: that id belongs to the global `-C DIR`, and clap would share the value.
    #[arg(value_name = "DIR")]
    directory: Option<PathBuf>,
}

/// Runs `init`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let dir = ctx.cwd.join(args.directory.unwrap_or_default());
    let repo = dsv::Repository::init(&dir, &ctx.open)?;
    if !ctx.quiet {
        println!(
            "Initialized empty dsv repository in {}",
            repo.dsv_dir().display()
        );
    }
    Ok(0)
}

/// Examples shown by `dsv init --help`.
const EXAMPLES: &str = "\
Examples:
  dsv init                           a repository in the current directory
  dsv init datasets/street";
