//! `dsv man`: manual pages (roff), generated from the command-line definition, so
//! they say what `--help` says. `docs/man/` holds the pages of this version; a
//! test regenerates them and fails when they differ.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Command;

use super::Ctx;
use crate::usage;

/// Arguments of `dsv man`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Examples:
  dsv man | man -l -                       read the dsv page
  dsv man remote add | man -l -            the page of `dsv remote add`
  dsv man --out ~/.local/share/man/man1    install every page for `man dsv-commit`")]
pub struct Args {
    /// The command whose page to print (`dsv man remote add`); none: the dsv page.
    #[arg(value_name = "COMMAND", conflicts_with = "out")]
    command: Vec<String>,
    /// Write every page (dsv.1, dsv-add.1, dsv-remote-add.1, ...) into DIR, creating it.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints one page, or writes them all.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let mut root = super::command().disable_help_subcommand(true);
    // Building names every subcommand `dsv-remote-add` (its page's title and file).
    root.build();
    if let Some(out) = args.out {
        let dir = ctx.cwd.join(out);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let pages = pages(&root)?;
        for (name, text) in &pages {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        if !ctx.quiet {
            eprintln!("wrote {} manual pages to {}", pages.len(), dir.display());
        }
        return Ok(0);
    }
    let mut page = &root;
    for (i, word) in args.command.iter().enumerate() {
        page = match visible(page).find(|c| c.get_name() == word.as_str()) {
            Some(c) => c,
            None => usage!(
                "no command 'dsv {}'; see 'dsv --help'",
                args.command[..=i].join(" ")
            ),
        };
    }
    let mut out = Vec::new();
    man(page)
        .render(&mut out)
        .context("rendering the manual page")?;
    std::io::stdout()
        .write_all(&out)
        .context("writing the manual page to stdout")?;
    Ok(0)
}

/// The page of one command; every page names the dsv version it describes
/// (clap_mangen would give a subcommand's page its own name, as it has no version).
fn man(cmd: &Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone()).source(concat!("dsv ", env!("CARGO_PKG_VERSION")))
}

/// The subcommands that have pages (hidden ones are internal).
fn visible(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|c| !c.is_hide_set())
}

/// Every page of `cmd` and its subcommands: (file name, roff text).
fn pages(cmd: &Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut todo = vec![cmd];
    while let Some(c) = todo.pop() {
        let man = man(c);
        let mut text = Vec::new();
        man.render(&mut text)
            .context("rendering the manual pages")?;
        out.push((man.get_filename(), text));
        todo.extend(visible(c));
    }
    out.sort();
    Ok(out)
}
