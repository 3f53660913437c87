//! What the caller decides for the library: values the CLI takes from the process
//! environment (`src/cli/settings.rs`), resolved once and passed down through
//! [`crate::repo::OpenOptions`]. The library itself never reads the environment, so an
//! embedding program (the Python package) sets these fields as it sees fit, and two
//! repositories in one process can differ. `Default` is what an unset environment gives,
//! except [`Settings::variables`], which reads nothing unless given a lookup.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings of one run; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// How long to wait for another command's lock (`DSV_LOCK_TIMEOUT_MS`; `None`:
    /// `core.lock_timeout_ms`, else 3 s).
    pub lock_timeout: Option<Duration>,
    /// Whether writes are flushed to disk (`DSV_FSYNC`; `None`: `core.fsync`, which
    /// defaults to true).
    pub fsync: Option<bool>,
    /// Author name of new commits (`DSV_AUTHOR_NAME`; `None`: `user.name`).
    pub author_name: Option<String>,
    /// Author email of new commits (`DSV_AUTHOR_EMAIL`; `None`: `user.email`).
    pub author_email: Option<String>,
    /// Time of new commits and reflog lines as given (`DSV_AUTHOR_DATE`: unix seconds
    /// or RFC 3339 with offset), checked when a time is needed; `None`: now.
    pub author_date: Option<String>,
    /// The user's global config file, layered under each repository's (`None`: none).
    pub user_config: Option<PathBuf>,
    /// Remote client timeouts and retries that override every remote's own
    /// `[remote.NAME]` settings (`DSV_REMOTE_*`).
    pub remote_net: Network,
    /// Size at which a pushed pack is closed and uploaded (`DSV_REMOTE_PACK_SIZE`,
    /// at least 1024; `None`: [`crate::remote::push::PACK_TARGET`]).
    pub remote_pack_size: Option<u64>,
    /// S3 endpoint for a remote that names none (`AWS_ENDPOINT_URL`; an `http://` one
    /// allows plain HTTP).
    pub aws_endpoint_url: Option<String>,
    /// Whether a default AWS region is set (`AWS_REGION` or `AWS_DEFAULT_REGION`, which
    /// `object_store` reads itself); otherwise an S3 remote without a region uses
    /// `us-east-1`.
    pub aws_region_set: bool,
    /// Never derive a version's query index from another's, always build it
    /// (`DSV_QUERY_NO_DERIVE`; for tests and measurements).
    pub query_no_derive: bool,
    /// Delay after a hook delivery's first failure (`DSV_HOOKS_BACKOFF_MS`; `None`: 2 s).
    pub hooks_backoff: Option<Duration>,
    /// Attempts before a hook delivery is marked failed (`DSV_HOOKS_MAX_ATTEMPTS`,
    /// 1 to 1000; `None`: 8).
    pub hooks_max_attempts: Option<u32>,
    /// Deliver `post-*` hooks in the command's own process and wait for them
    /// (`DSV_HOOKS_FOREGROUND`) instead of a detached worker.
    pub hooks_foreground: bool,
    /// Whether `status`, `add -A` and `commit -a` use the file-system monitor
    /// (`DSV_FSMONITOR`; `None`: `core.fsmonitor`, which defaults to false).
    pub fsmonitor: Option<bool>,
    /// Where hooks look up the variables they name (`${NAME}` in a webhook's URL and
    /// headers, `secret_env`): asked at the moment of sending, never copied.
    pub variables: Variables,
}

/// A lookup of named variables supplied by the caller (the CLI: the process
/// environment). Values are fetched when needed and not kept, so secrets are
/// held no longer than one request. The default finds nothing.
#[derive(Clone, Default)]
pub struct Variables(Option<Arc<Lookup>>);

/// The function behind [`Variables`].
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Variables {
    /// A lookup that finds nothing.
    pub const NONE: Variables = Variables(None);

    /// A lookup by `f`.
    pub fn new(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Variables {
        Variables(Some(Arc::new(f)))
    }

    /// The value of `name`, if the lookup has one.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.as_ref().and_then(|f| f(name))
    }
}

impl std::fmt::Debug for Variables {
    // Never the values: they may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Variables(lookup)"
        } else {
            "Variables(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn the_library_reads_no_environment_variable() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        // Split so that this file does not list itself.
        let patterns = [
            ["env", "::var"].concat(),
            ["var", "_os("].concat(),
            ["std", "::env::"].concat(),
        ];
        let mut sites = Vec::new();
        for f in &files {
            let rel = f.strip_prefix(&src).unwrap();
            // The edge: the CLI resolves `Settings` from the environment.
            if rel.starts_with("cli") || rel == Path::new("main.rs") {
                continue;
            }
            let text = std::fs::read_to_string(f).unwrap();
            // A file's top-level `#[cfg(test)] mod tests { … }` is test code,
            // not the library: tests may take settings (such as where sample
            // data sets are) from the environment.
            let (mut prev, mut in_tests) = ("", false);
            for (i, line) in text.lines().enumerate() {
                if !in_tests && line.starts_with("mod tests {") && prev.trim() == "#[cfg(test)]" {
                    in_tests = true;
                } else if in_tests && line == "}" {
                    in_tests = false;
                }
                prev = line;
                if in_tests {
                    continue;
                }
                if patterns.iter().any(|p| line.contains(p.as_str())) {
                    sites.push(format!("src/{}:{}: {}", rel.display(), i + 1, line.trim()));
                }
            }
        }
        assert!(files.len() > 50, "found only {} source files", files.len());
        assert!(
            sites.is_empty(),
            "the library reads the environment (resolve it in src/cli/settings.rs and pass it in Settings):\n{}",
            sites.join("\n")
        );
    }
}

/// Client timeouts and retry budget of one remote. `None` fields fall back (to the
/// next layer given to [`Network::or`], and finally to the constants of `remote::net`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    /// Time allowed to open a connection.
    pub connect_timeout: Option<Duration>,
    /// Time allowed for a whole request, body included (`object_store`'s default,
    /// 30 s, when unset).
    pub timeout: Option<Duration>,
    /// Retries of a failed request once the endpoint has answered.
    pub retries: Option<usize>,
    /// Time budget of all retries of one request.
    pub retry_timeout: Option<Duration>,
}

impl Network {
    /// Each field from `self`, else from `fallback`.
    pub fn or(self, fallback: Network) -> Network {
        Network {
            connect_timeout: self.connect_timeout.or(fallback.connect_timeout),
            timeout: self.timeout.or(fallback.timeout),
            retries: self.retries.or(fallback.retries),
            retry_timeout: self.retry_timeout.or(fallback.retry_timeout),
        }
    }
}
