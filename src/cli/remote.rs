//! `dsv remote add NAME URL [--endpoint E] [--region R] [--allow-http] | remove NAME | list`.

use dsv::lock::Access;
use dsv::remote::{add_remote, list_remotes, remove_remote, url::Settings};

use super::Ctx;
use super::output::print_json;

/// Arguments of `remote`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// With no action: each remote's URL for fetch and for push, as `git remote -v`.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Add a remote: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///path or a path.
    #[command(after_long_help = "\
Examples:
  dsv remote add origin s3://bucket/datasets/street
  dsv remote add minio s3://data/street --endpoint http://127.0.0.1:9000
  dsv remote add backup /mnt/backup/street")]
    Add {
        /// Remote name (letters, digits, '-', '_').
        name: String,
        /// Remote URL (credentials come from the environment, never from the URL).
        url: String,
        /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (MinIO, Ceph, R2).
        #[arg(long)]
        endpoint: Option<String>,
        /// Region.
        #[arg(long)]
        region: Option<String>,
        /// Allow plain HTTP (implied by an http:// endpoint).
        #[arg(long)]
        allow_http: bool,
    },
    /// Remove a remote and its remote-tracking branches.
    #[command(after_long_help = "\
Examples:
  dsv remote remove backup")]
    #[command(alias = "rm")]
    Remove {
        /// Remote name.
        name: String,
    },
    /// List remotes with their URLs.
    #[command(after_long_help = "\
Examples:
  dsv remote list
  dsv remote list --json")]
    List {
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `remote`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.verbose && args.action.is_none() {
        let repo = ctx.repo(Access::Read)?;
        for r in list_remotes(&repo)? {
            let url = dsv::redact::url(&r.url);
            println!("{}\t{url} (fetch)", r.name);
            println!("{}\t{url} (push)", r.name);
        }
        return Ok(0);
    }
    match args.action.unwrap_or(Action::List { json: false }) {
        Action::Add {
            name,
            url,
            endpoint,
            region,
            allow_http,
        } => {
            let repo = ctx.writable_repo()?;
            let settings = Settings {
                endpoint,
                region,
                allow_http,
                ..Settings::default()
            };
            add_remote(&repo, &name, &url, &settings)?;
        }
        Action::Remove { name } => {
            let repo = ctx.writable_repo()?;
            remove_remote(&repo, &name)?;
        }
        Action::List { json } => {
            let repo = ctx.repo(Access::Read)?;
            let remotes = list_remotes(&repo)?;
            if json {
                print_json(&remotes)?;
            } else {
                for r in remotes {
                    println!("{}\t{}", r.name, dsv::redact::url(&r.url));
                }
            }
        }
    }
    Ok(0)
}

/// Examples shown by `dsv remote --help`.
const EXAMPLES: &str = "\
Examples:
  dsv remote add origin s3://bucket/datasets/street
  dsv remote add backup /mnt/backup/street
  dsv remote -v                      remotes with their URLs
  dsv remote remove backup";
