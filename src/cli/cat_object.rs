//! `dsv cat-object [-t|-s|--raw] ID`: print a stored object.

use std::io::Write;

use dsv::lock::Access;
use dsv::object::Commit;
use dsv::object::tree::TreeObject;

use super::Ctx;

/// Arguments of `cat-object`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Object id (full hex), or a revision for commits.
    id: String,
    /// Print what the object looks like: commit, tree, shards or blob.
    #[arg(short = 't', conflicts_with_all = ["size", "raw"])]
    kind: bool,
    /// Print the object's size in bytes.
    #[arg(short = 's', conflicts_with = "raw")]
    size: bool,
    /// Write the raw bytes (default for blobs; commits and trees are pretty-printed).
    #[arg(long)]
    raw: bool,
}

/// Runs `cat-object`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let id = match dsv::ObjectId::from_hex(&args.id.to_ascii_lowercase()) {
        Some(id) => id,
        None => dsv::ops::revparse::resolve(&repo, &args.id)?,
    };
    if !repo.store.contains(&id)? {
        return Err(dsv::Error::MissingObject(id).into());
    }
    let mut out = std::io::stdout().lock();
    if args.raw {
        repo.store.read_into(&id, &mut out)?;
        return Ok(0);
    }
    // Objects are untyped byte strings; small ones are decoded to guess their kind.
    let probe = if repo.store.children(&id)?.is_empty() {
        Some(repo.store.get(&id)?)
    } else {
        None
    };
    let commit = probe.as_ref().and_then(|b| Commit::decode(b).ok());
    let tree = probe.as_ref().and_then(|b| TreeObject::decode(b).ok());
    if args.kind {
        let k = match (&commit, &tree) {
            (Some(_), _) => "commit",
            (_, Some(TreeObject::Entries(_))) => "tree",
            (_, Some(TreeObject::Shards(_))) => "shards",
            _ => "blob",
        };
        writeln!(out, "{k}")?;
        return Ok(0);
    }
    if args.size {
        let n = repo.store.read_into(&id, &mut std::io::sink())?;
        writeln!(out, "{n}")?;
        return Ok(0);
    }
    match (commit, tree) {
        (Some(c), _) => writeln!(out, "{}", serde_json::to_string_pretty(&c)?)?,
        (_, Some(TreeObject::Entries(entries))) => {
            dsv::object::tree::check_entry_sizes(
                &repo.store,
                b"",
                entries.iter().map(|e| (&e.name[..], e.mode, &e.id, e.size)),
            )?;
            for e in entries {
                writeln!(
                    out,
                    "{} {} {:>10}\t{}",
                    e.mode.label(),
                    e.id,
                    e.size,
                    super::output::quote_path(&e.name)
                )?;
            }
        }
        (_, Some(TreeObject::Shards(shards))) => {
            for s in shards {
                writeln!(
                    out,
                    "shard {} {:>8} entries\tlast {}",
                    s.id,
                    s.entries,
                    super::output::quote_path(&s.last)
                )?;
            }
        }
        _ => {
            repo.store.read_into(&id, &mut out)?;
        }
    }
    Ok(0)
}

/// Examples shown by `dsv cat-object --help`.
const EXAMPLES: &str = "\
Examples:
  dsv cat-object HEAD                the commit object as JSON
  dsv cat-object -t 1a2b3c4d         the type of an object
  dsv cat-object -s 1a2b3c4d         its size in bytes";
