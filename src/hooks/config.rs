//! Where hooks come from: `[[hooks]]` entries in the tracked `dsv.toml` (shared
//! by the team through the dataset) and executables in `.dsv/hooks/<event>`
//! (local to one clone, like git's hooks).
//!
//! Every mistake in a `[[hooks]]` entry is an error naming the line, found when
//! the file is loaded, so a bad file stops the operation before any hook runs
//! instead of silently dropping the hook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::dsv_toml::FILE_NAME;
use crate::error::{Error, Result};

/// Timeout of a hook that does not set one (and of every `.dsv/hooks/` executable).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Directory under `.dsv` holding local hook executables.
pub const LOCAL_DIR: &str = "hooks";

/// Something that happened in a repository that hooks can react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// Before a commit writes anything; can reject it.
    PreCommit,
    /// After a commit moved the branch.
    PostCommit,
    /// After `switch`/`checkout` moved HEAD.
    PostCheckout,
    /// Before a push sends anything; can reject it (fired by `dsv push`).
    PrePush,
    /// After a push updated the remote (fired by `dsv push`).
    PostPush,
    /// After `dsv merge` moved HEAD (a fast-forward or a merge commit).
    PostMerge,
    /// After a branch moved to a new commit, by any command (commit, merge,
    /// cherry-pick, revert, reset, pull): the event retraining wants.
    BranchUpdated,
    /// A commit landed on a remote branch (fired by `dsv watch`, never declared in
    /// `dsv.toml`: the watch is given its action on the command line).
    RemoteCommit,
}

impl Event {
    /// Every event hooks can be declared for, in documentation order
    /// (`remote-commit` is not one: `dsv watch` fires it).
    pub const ALL: [Event; 7] = [
        Event::PreCommit,
        Event::PostCommit,
        Event::PostCheckout,
        Event::PrePush,
        Event::PostPush,
        Event::PostMerge,
        Event::BranchUpdated,
    ];

    /// The name used in `dsv.toml`, file names and headers.
    pub fn name(self) -> &'static str {
        match self {
            Event::PreCommit => "pre-commit",
            Event::PostCommit => "post-commit",
            Event::PostCheckout => "post-checkout",
            Event::PrePush => "pre-push",
            Event::PostPush => "post-push",
            Event::PostMerge => "post-merge",
            Event::BranchUpdated => "branch-updated",
            Event::RemoteCommit => "remote-commit",
        }
    }

    /// Parses an event name.
    pub fn from_name(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Whether hooks for this event run synchronously and can stop the operation.
    pub fn is_pre(self) -> bool {
        matches!(self, Event::PreCommit | Event::PrePush)
    }

    /// All names, comma separated (for error messages).
    pub fn names() -> String {
        Event::ALL.map(Event::name).join(", ")
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The body a webhook sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// The payload document as it is (docs/hooks.md).
    #[default]
    Dsv,
    /// GitHub's `repository_dispatch` body: `event_type` plus `client_payload`.
    GithubDispatch,
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A shell command (`sh -c`), run in the worktree root.
    Run {
        /// The command line.
        command: String,
    },
    /// A local executable, `.dsv/hooks/<event>`.
    Exec {
        /// Its path.
        path: PathBuf,
    },
    /// An HTTP POST.
    Webhook {
        /// Where to; `${NAME}` is replaced by that environment variable when sending.
        url: String,
        /// Name of the environment variable holding the HMAC secret (never the secret).
        secret_env: Option<String>,
        /// Extra headers; `${NAME}` in a value is replaced by that environment variable.
        headers: BTreeMap<String, String>,
        /// Body layout.
        format: BodyFormat,
    },
}

impl Action {
    /// One line for listings: the command, or `POST url` (secrets masked).
    pub fn describe(&self) -> String {
        match self {
            Action::Run { command } => format!("run: {}", crate::redact::text(command)),
            Action::Exec { path } => format!("exec: {}", path.display()),
            Action::Webhook { url, format, .. } => match format {
                BodyFormat::Dsv => format!("POST {}", crate::redact::url(url)),
                BodyFormat::GithubDispatch => {
                    format!("POST {} (github-dispatch)", crate::redact::url(url))
                }
            },
        }
    }

    /// The action as it may be shown and stored: a webhook's URL through
    /// [`crate::redact::url`], the value of a header whose name looks secret
    /// (`Authorization`, `X-Api-Key`, ...) masked unless it is a `${NAME}` reference,
    /// and URLs inside a command (`curl https://user:pw@host/...`) redacted.
    /// The outbox stores this; delivery takes the masked parts from the live
    /// declaration (`deliver::live_action`).
    pub fn redacted(&self) -> Action {
        match self {
            Action::Webhook {
                url,
                secret_env,
                headers,
                format,
            } => Action::Webhook {
                url: crate::redact::url(url),
                secret_env: secret_env.clone(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        let hide = crate::redact::is_secret_param(k)
                            && !v.is_empty()
                            && !crate::redact::is_reference(v);
                        let v = if hide { crate::redact::MASK } else { v };
                        (k.clone(), v.to_string())
                    })
                    .collect(),
                format: *format,
            },
            Action::Run { command } => Action::Run {
                command: crate::redact::text(command),
            },
            other => other.clone(),
        }
    }

    /// Whether [`Action::redacted`] hides anything: the action holds a secret in clear.
    pub fn has_secrets(&self) -> bool {
        self.redacted() != *self
    }
}

/// Where a hook was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A `[[hooks]]` entry of `dsv.toml`, at this line.
    DsvToml {
        /// 1-based line of the entry's `id`.
        line: usize,
    },
    /// An executable in `.dsv/hooks/`.
    Local,
}

/// When a hook applies.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Branch globs as written (empty: any branch, and detached HEAD).
    pub branches: Vec<String>,
    branch_set: Option<GlobSet>,
    /// Path globs as written (empty: any change).
    pub paths: Vec<String>,
    path_set: Option<GlobSet>,
    /// Only when a label file changed.
    pub labels_changed: bool,
}

impl Filters {
    /// The `paths` and `labels_changed` filters given on a command line (`dsv watch`),
    /// with the meaning they have in `[[hooks]]`.
    pub fn for_changes(paths: &[String], labels_changed: bool) -> Result<Filters> {
        let path_set = if paths.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in paths {
                let glob: Glob = GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        Error::InvalidArgument(format!("invalid --paths glob '{g}': {e}"))
                    })?;
                b.add(glob);
            }
            Some(
                b.build()
                    .map_err(|e| Error::InvalidArgument(format!("invalid --paths globs: {e}")))?,
            )
        };
        Ok(Filters {
            paths: paths.to_vec(),
            path_set,
            labels_changed,
            ..Filters::default()
        })
    }

    /// Whether the branch filter lets `branch` through (`None`: detached HEAD).
    pub fn branch_matches(&self, branch: Option<&str>) -> bool {
        match (&self.branch_set, branch) {
            (None, _) => true,
            (Some(set), Some(b)) => set.is_match(b),
            // A branch filter is about branches: a detached HEAD is on none of them.
            (Some(_), None) => false,
        }
    }

    /// Whether the path filter lets a change of these paths through.
    pub fn paths_match<'a>(&self, mut changed: impl Iterator<Item = &'a str>) -> bool {
        match &self.path_set {
            None => true,
            Some(set) => changed.any(|p| set.is_match(p)),
        }
    }

    /// Whether any filter needs to know what changed.
    pub fn needs_changes(&self) -> bool {
        self.path_set.is_some() || self.labels_changed
    }

    /// One line for listings.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.branches.is_empty() {
            parts.push(format!("branches {}", self.branches.join(",")));
        }
        if !self.paths.is_empty() {
            parts.push(format!("paths {}", self.paths.join(",")));
        }
        if self.labels_changed {
            parts.push("labels changed".to_string());
        }
        if parts.is_empty() {
            "always".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// One hook.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Unique id (`local:<event>` for `.dsv/hooks/` executables).
    pub id: String,
    /// The event it reacts to.
    pub event: Event,
    /// What it does.
    pub action: Action,
    /// How long one run or request may take.
    pub timeout: Duration,
    /// When it applies.
    pub filters: Filters,
    /// Where it was declared.
    pub origin: Origin,
}

/// Every hook of a repository, and what was ignored with a reason.
#[derive(Debug, Clone, Default)]
pub struct HookSet {
    /// Hooks in declaration order: `dsv.toml` entries, then local executables.
    pub hooks: Vec<Hook>,
    /// Files in `.dsv/hooks/` that are not used, and why.
    pub warnings: Vec<String>,
}

impl HookSet {
    /// Loads `dsv.toml` from the worktree root and the executables in `.dsv/hooks/`.
    pub fn load(root: &Path, dsv_dir: &Path) -> Result<HookSet> {
        let path = root.join(FILE_NAME);
        let mut set = HookSet::default();
        match std::fs::read(&path) {
            Ok(bytes) => set.hooks = parse(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("reading", path, e)),
        }
        for h in &set.hooks {
            if h.action.has_secrets() {
                set.warnings.push(format!(
                    "hook '{}': {FILE_NAME} holds a secret in clear (it is committed and pushed with the dataset); write it as ${{NAME}} and set NAME in the environment",
                    h.id
                ));
            }
        }
        let dir = dsv_dir.join(LOCAL_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
            Err(e) => return Err(Error::io("reading", dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading", &dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if name.ends_with(".sample") || name.starts_with('.') {
                continue;
            }
            let Some(event) = Event::from_name(&name) else {
                set.warnings.push(format!(
                    "ignoring {}: not an event name ({})",
                    path.display(),
                    Event::names()
                ));
                continue;
            };
            if !is_executable(&path) {
                set.warnings.push(format!(
                    "ignoring {}: not an executable file (chmod +x it to use it)",
                    path.display()
                ));
                continue;
            }
            set.hooks.push(Hook {
                id: format!("local:{name}"),
                event,
                action: Action::Exec { path },
                timeout: DEFAULT_TIMEOUT,
                filters: Filters::default(),
                origin: Origin::Local,
            });
        }
        Ok(set)
    }

    /// The hooks for one event, in order.
    pub fn for_event(&self, event: Event) -> impl Iterator<Item = &Hook> {
        self.hooks.iter().filter(move |h| h.event == event)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[derive(Debug, Deserialize)]
struct RawFile {
    // Other tables (labels, frames) belong to `dsv_toml`; this reader only looks at hooks.
    #[serde(default)]
    hooks: Vec<Spanned<RawHook>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    id: Spanned<String>,
    event: Spanned<String>,
    run: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    // Accepted only to say where secrets belong instead of a generic "unknown field".
    secret: Option<Spanned<toml::Value>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    timeout: Option<Spanned<toml::Value>>,
    format: Option<Spanned<String>>,
    #[serde(default)]
    branches: Vec<Spanned<String>>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    labels_changed: bool,
}

/// An error at a byte offset of `dsv.toml`, as `dsv.toml: line L, column C: message`.
fn at(text: &str, offset: usize, msg: impl std::fmt::Display) -> Error {
    Error::HookConfig(format!(
        "{FILE_NAME}: {}{msg}",
        crate::dsv_toml::position(text, offset)
    ))
}

fn glob_set(
    text: &str,
    key: &str,
    globs: &[Spanned<String>],
) -> Result<(Vec<String>, Option<GlobSet>)> {
    if globs.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut b = GlobSetBuilder::new();
    for g in globs {
        // `*` stays within one path component (or branch name part); `**` crosses `/`.
        let glob: Glob = GlobBuilder::new(g.get_ref())
            .literal_separator(true)
            .build()
            .map_err(|e| at(text, g.span().start, format!("invalid glob in {key}: {e}")))?;
        b.add(glob);
    }
    let set = b
        .build()
        .map_err(|e| at(text, globs[0].span().start, format!("invalid {key}: {e}")))?;
    Ok((
        globs.iter().map(|g| g.get_ref().clone()).collect(),
        Some(set),
    ))
}

fn check_id(text: &str, id: &Spanned<String>) -> Result<()> {
    let s = id.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(at(
            text,
            id.span().start,
            format!(
                "hook id '{s}' must be 1 to 64 letters, digits, '-', '_' or '.' (it is part of the idempotency key)"
            ),
        ))
    }
}

fn check_env_name(text: &str, v: &Spanned<String>) -> Result<()> {
    let s = v.get_ref();
    let ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(at(
            text,
            v.span().start,
            format!(
                "secret_env must name an environment variable (letters, digits, '_'), not '{s}'"
            ),
        ))
    }
}

fn timeout_of(text: &str, v: &Spanned<toml::Value>) -> Result<Duration> {
    let secs = match v.get_ref() {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        other => {
            return Err(at(
                text,
                v.span().start,
                format!(
                    "timeout must be a number of seconds, not a {}",
                    other.type_str()
                ),
            ));
        }
    };
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(at(
            text,
            v.span().start,
            format!("timeout must be between 0 and 86400 seconds, not {secs}"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses the `[[hooks]]` entries of a `dsv.toml`; errors name the line.
pub fn parse(bytes: &[u8]) -> Result<Vec<Hook>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::HookConfig(format!("{FILE_NAME}: not UTF-8 (byte {})", e.valid_up_to()))
    })?;
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let pos = e
            .span()
            .map(|s| crate::dsv_toml::position(text, s.start))
            .unwrap_or_default();
        Error::HookConfig(format!("{FILE_NAME}: {pos}{}", e.message().trim_end()))
    })?;
    let mut hooks: Vec<Hook> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in raw.hooks {
        let entry_start = entry.span().start;
        let r = entry.into_inner();
        check_id(text, &r.id)?;
        let id = r.id.get_ref().clone();
        let line = crate::dsv_toml::line_of(text, r.id.span().start);
        if let Some(first) = seen.get(&id) {
            return Err(at(
                text,
                r.id.span().start,
                format!("duplicate hook id '{id}' (first declared at line {first})"),
            ));
        }
        seen.insert(id.clone(), line);
        let event = Event::from_name(r.event.get_ref()).ok_or_else(|| {
            at(
                text,
                r.event.span().start,
                format!(
                    "hook '{id}': unknown event '{}' (expected one of {})",
                    r.event.get_ref(),
                    Event::names()
                ),
            )
        })?;
        if let Some(s) = &r.secret {
            return Err(at(
                text,
                s.span().start,
                format!(
                    "hook '{id}': secrets are never stored in {FILE_NAME}; use secret_env = \"NAME\" to name an environment variable"
                ),
            ));
        }
        let webhook_only = [
            (r.secret_env.as_ref().map(|s| s.span().start), "secret_env"),
            (r.format.as_ref().map(|s| s.span().start), "format"),
            (r.headers.as_ref().map(|h| h.span().start), "headers"),
        ];
        let action = match (r.run, r.url) {
            (Some(run), None) => {
                if let Some((Some(pos), key)) = webhook_only.iter().find(|(p, _)| p.is_some()) {
                    return Err(at(
                        text,
                        *pos,
                        format!("hook '{id}': {key} only applies to webhooks (url = ...)"),
                    ));
                }
                if run.get_ref().trim().is_empty() {
                    return Err(at(
                        text,
                        run.span().start,
                        format!("hook '{id}': run is empty"),
                    ));
                }
                Action::Run {
                    command: run.into_inner(),
                }
            }
            (None, Some(url)) => {
                let u = url.get_ref();
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 9 {
                    return Err(at(
                        text,
                        url.span().start,
                        format!("hook '{id}': url must start with http:// or https://, not '{u}'"),
                    ));
                }
                if let Some(s) = &r.secret_env {
                    check_env_name(text, s)?;
                }
                let format = match &r.format {
                    None => BodyFormat::Dsv,
                    Some(f) => match f.get_ref().as_str() {
                        "dsv" => BodyFormat::Dsv,
                        "github-dispatch" => BodyFormat::GithubDispatch,
                        other => {
                            return Err(at(
                                text,
                                f.span().start,
                                format!(
                                    "hook '{id}': unknown format '{other}' (expected dsv or github-dispatch)"
                                ),
                            ));
                        }
                    },
                };
                let (headers, headers_at) = match r.headers {
                    Some(h) => (h.get_ref().clone(), h.span().start),
                    None => (BTreeMap::new(), 0),
                };
                for name in headers.keys() {
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    if !valid {
                        return Err(at(
                            text,
                            headers_at,
                            format!("hook '{id}': invalid header name '{name}'"),
                        ));
                    }
                }
                Action::Webhook {
                    url: url.into_inner(),
                    secret_env: r.secret_env.map(Spanned::into_inner),
                    headers,
                    format,
                }
            }
            (Some(_), Some(url)) => {
                return Err(at(
                    text,
                    url.span().start,
                    format!("hook '{id}': give either run or url, not both"),
                ));
            }
            (None, None) => {
                return Err(at(
                    text,
                    entry_start,
                    format!(
                        "hook '{id}': missing run = \"command\" or url = \"https://...\" (what should the hook do?)"
                    ),
                ));
            }
        };
        let timeout = match &r.timeout {
            Some(t) => timeout_of(text, t)?,
            None => DEFAULT_TIMEOUT,
        };
        let (branches, branch_set) = glob_set(text, "branches", &r.branches)?;
        let (paths, path_set) = glob_set(text, "paths", &r.paths)?;
        hooks.push(Hook {
            id,
            event,
            action,
            timeout,
            filters: Filters {
                branches,
                branch_set,
                paths,
                path_set,
                labels_changed: r.labels_changed,
            },
            origin: Origin::DsvToml { line },
        });
    }
    Ok(hooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(text.as_bytes()) {
            Ok(h) => panic!("expected an error, parsed {h:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_hooks_and_filters() {
        let hooks = parse(
            br#"
[[labels]]
path = "labels/*.txt"
format = "yolo"

[[hooks]]
id = "train"
event = "post-commit"
url = "https://ci.example.com/hook"
secret_env = "DSV_SECRET"
headers = { Authorization = "Bearer ${TOKEN}" }
timeout = 2.5
branches = ["main", "release/*"]
paths = ["labels/**"]
labels_changed = true

[[hooks]]
id = "validate"
event = "pre-commit"
run = "./validate.sh"
"#,
        )
        .unwrap();
        assert_eq!(hooks.len(), 2);
        let h = &hooks[0];
        assert_eq!(h.event, Event::PostCommit);
        assert_eq!(h.timeout, Duration::from_millis(2500));
        assert_eq!(h.origin, Origin::DsvToml { line: 7 });
        assert!(h.filters.branch_matches(Some("release/1")));
        assert!(!h.filters.branch_matches(Some("release/1/x")));
        assert!(!h.filters.branch_matches(Some("dev")));
        assert!(!h.filters.branch_matches(None));
        assert!(
            h.filters
                .paths_match(["images/a.jpg", "labels/x/a.txt"].into_iter())
        );
        assert!(!h.filters.paths_match(["images/a.jpg"].into_iter()));
        assert!(h.filters.labels_changed);
        assert_eq!(hooks[1].action.describe(), "run: ./validate.sh");
        assert!(hooks[1].filters.branch_matches(None));
    }

    #[test]
    fn errors_name_the_line() {
        let e = err("[[hooks]]\nid = \"a\"\nevent = \"post-comit\"\nrun = \"x\"\n");
        assert!(
            e.contains("line 3") && e.contains("unknown event 'post-comit'"),
            "{e}"
        );
        let e =
            err("[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nrun = \"x\"\npaths = [\"a/[\"]\n");
        assert!(e.contains("line 5") && e.contains("invalid glob"), "{e}");
        let e = err("\n\n[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\n");
        assert!(e.contains("line 3") && e.contains("missing run"), "{e}");
        let e = err(
            "[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nrun = \"x\"\n[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nrun = \"y\"\n",
        );
        assert!(
            e.contains("line 6") && e.contains("duplicate hook id 'a' (first declared at line 2)"),
            "{e}"
        );
        let e = err("[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nurl = \"ftp://x\"\n");
        assert!(e.contains("line 4") && e.contains("http://"), "{e}");
        let e = err(
            "[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nurl = \"https://x.example\"\nsecret = \"hunter2\"\n",
        );
        assert!(e.contains("line 5") && e.contains("secret_env"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e =
            err("[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nrun = \"x\"\nbranch = \"main\"\n");
        assert!(e.contains("line 5") && e.contains("branch"), "{e}");
        let e = err("[[hooks]]\nid = \"a b\"\nevent = \"post-commit\"\nrun = \"x\"\n");
        assert!(e.contains("line 2"), "{e}");
        let e = err("[[hooks]]\nid = \"a\"\nevent = \"post-commit\"\nrun = \"x\"\ntimeout = 0\n");
        assert!(e.contains("line 5") && e.contains("timeout"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "(\\[\\[hooks\\]\\]\n|id = \"[a-z]{0,3}\"\n|event = \"[a-z-]{0,14}\"\n|run = \"x\"\n|url = \"[a-z:/.]{0,12}\"\n|paths = \\[\"[a-z*\\[{}]{0,5}\"\\]\n|timeout = -?[0-9.]{1,4}\n|[ -~]{0,8}\n){0,12}") {
            let _ = parse(text.as_bytes());
        }

        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn no_hooks_is_empty() {
        assert!(parse(b"").unwrap().is_empty());
        assert!(
            parse(b"[frames]\nextensions = [\"jpg\"]\n")
                .unwrap()
                .is_empty()
        );
    }
}
