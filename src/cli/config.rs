//! `dsv config [--global] KEY [VALUE] | --unset KEY | --list`.

use dsv::config::{ConfigFile, check_key};
use dsv::storage::OsStorage;

use super::Ctx;

/// Arguments of `config`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Key (`user.name`, `user.email`, `core.lock_timeout_ms`).
    key: Option<String>,
    /// Value to set.
    value: Option<String>,
    /// Use the user's global file instead of the repository's.
    #[arg(long)]
    global: bool,
    /// Remove the key.
    #[arg(long)]
    unset: bool,
    /// List all values.
    #[arg(short, long)]
    list: bool,
}

/// Runs `config`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let writing = args.unset || args.value.is_some();
    // Changing the repository's config takes the write lock like any other change.
    let repo = if args.global {
        None
    } else {
        let access = if writing {
            dsv::lock::Access::Write
        } else {
            dsv::lock::Access::Read
        };
        Some(dsv::Repository::discover(&ctx.cwd, access, &ctx.open)?)
    };
    let path = match &repo {
        Some(r) => r.dsv_dir().join("config.toml"),
        None => ctx.open.settings.user_config.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "cannot find the home directory for --global (set HOME or XDG_CONFIG_HOME)"
            )
        })?,
    };
    let storage: &dyn dsv::storage::Storage = match &repo {
        Some(r) => r.storage.as_ref(),
        None => &OsStorage,
    };
    let mut file = ConfigFile::load(&path)?;
    if args.list {
        // A config written before credentials were refused may still hold some.
        for (k, v) in &file.values {
            println!("{k}={}", dsv::redact::url(v));
        }
        return Ok(0);
    }
    let Some(key) = args.key else {
        crate::usage!("usage: dsv config [--global] KEY [VALUE]");
    };
    check_key(&key)?;
    if args.unset {
        file.values.remove(&key);
        file.save(storage)?;
        return Ok(0);
    }
    match args.value {
        Some(v) => {
            // The same refusal as `dsv remote add`: no credentials in a remote's URLs.
            if let Some((name, setting)) =
                key.strip_prefix("remote.").and_then(|r| r.rsplit_once('.'))
            {
                let url = file.values.get(&format!("remote.{name}.url")).cloned();
                match setting {
                    "url" => {
                        dsv::remote::url::parse(&v)?;
                    }
                    "endpoint" => dsv::remote::url::check_no_credentials(
                        "endpoint",
                        &v,
                        url.as_deref().unwrap_or("s3://"),
                    )?,
                    _ => {}
                }
            }
            file.values.insert(key, v);
            file.save(storage)?;
            Ok(0)
        }
        None => match file.values.get(&key) {
            Some(v) => {
                println!("{}", dsv::redact::url(v));
                Ok(0)
            }
            None => Ok(1),
        },
    }
}

/// Examples shown by `dsv config --help`.
const EXAMPLES: &str = "\
Examples:
  dsv config user.name 'Ada Lovelace'
  dsv config --global user.email ada@example.com
  dsv config -l                      every setting and where it comes from
  dsv config --unset core.lock_timeout_ms";
