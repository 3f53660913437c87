//! Shared helpers for the end-to-end tests: a temporary repository directory and
//! a hermetic way to run the `dsv` binary in it.
//!
//! Layout of a [`TestRepo`]: a fresh temporary directory that serves as `HOME`
//! (and holds `XDG_CONFIG_HOME = HOME/.config`), with the working tree in
//! `HOME/repo`. Every command gets a fixed author, a fixed date, `NO_COLOR=1`,
//! and no inherited `GIT_*` or `DSV_*` variables, so output (object ids
//! included) is the same on every machine.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub mod azurite;
pub mod hostile;
pub mod http;
pub mod s3;

/// `DSV_AUTHOR_NAME` for every command.
pub const AUTHOR_NAME: &str = "Test Author";
/// `DSV_AUTHOR_EMAIL` for every command.
pub const AUTHOR_EMAIL: &str = "author@example.com";
/// `DSV_AUTHOR_DATE` for every command (unix seconds: 2023-11-14 22:13:20 UTC).
pub const AUTHOR_DATE: &str = "1700000000";

/// Removes inherited `GIT_*` and `DSV_*` variables and sets the fixed test environment,
/// with `home` as `HOME` (`XDG_CONFIG_HOME` is `home/.config`).
pub fn hermetic(cmd: &mut std::process::Command, home: &Path) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("GIT_") || k.starts_with("DSV_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("DSV_AUTHOR_NAME", AUTHOR_NAME)
        .env("DSV_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("DSV_AUTHOR_DATE", AUTHOR_DATE)
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("TZ", "UTC")
        .env("LC_ALL", "C");
}

/// The outcome of one command.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Raw stdout.
    pub stdout_bytes: Vec<u8>,
    /// Stdout, lossily decoded.
    pub stdout: String,
    /// Stderr, lossily decoded.
    pub stderr: String,
}

impl Run {
    fn from_output(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout_bytes: out.stdout,
        }
    }

    /// Exit code, stdout and stderr in one text (for snapshots).
    pub fn transcript(&self) -> String {
        self.to_string()
    }

    /// Stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "exit: {}", self.code)?;
        writeln!(f, "--- stdout")?;
        f.write_str(&self.stdout)?;
        writeln!(f, "--- stderr")?;
        f.write_str(&self.stderr)
    }
}

/// Escapes text for use as a literal in a regex (insta filters are regexes).
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A temporary directory with a working tree in it, and a hermetic `dsv` runner.
pub struct TestRepo {
    tmp: tempfile::TempDir,
    home: PathBuf,
    root: PathBuf,
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRepo {
    /// A fresh temporary directory with an empty `repo/` worktree directory (no `dsv init` yet).
    pub fn new() -> TestRepo {
        let tmp = tempfile::Builder::new()
            .prefix("dsv-test-")
            .tempdir()
            .expect("creating a temporary directory");
        // Canonical, so it matches what the child sees as its current directory.
        let home = tmp
            .path()
            .canonicalize()
            .expect("canonicalizing the temporary directory");
        let root = home.join("repo");
        std::fs::create_dir(&root).expect("creating the worktree directory");
        TestRepo { tmp, home, root }
    }

    /// A fresh temporary directory with `dsv init` already run in `repo/`.
    pub fn init() -> TestRepo {
        let repo = TestRepo::new();
        repo.ok(["init"]);
        repo
    }

    /// The working-tree root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory around the worktree (`HOME` of every command).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// A path relative to the worktree root (absolute paths are returned as they are).
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A `dsv` command with the hermetic environment, run in the worktree root.
    pub fn cmd(&self) -> Command {
        self.cmd_in(&self.root)
    }

    /// A `dsv` command run in `dir` (relative to the worktree root, or absolute).
    pub fn cmd_in(&self, dir: impl AsRef<Path>) -> Command {
        let bin = assert_cmd::cargo::cargo_bin("dsv");
        let mut cmd = std::process::Command::new(bin);
        hermetic(&mut cmd, &self.home);
        cmd.current_dir(self.root.join(dir));
        Command::from_std(cmd)
    }

    /// Any other program (e.g. `git`) with the same environment, run in `dir`.
    pub fn program_in(&self, program: impl AsRef<OsStr>, dir: impl AsRef<Path>) -> Command {
        let mut cmd = std::process::Command::new(program);
        hermetic(&mut cmd, &self.home);
        cmd.current_dir(self.root.join(dir));
        Command::from_std(cmd)
    }

    /// Runs `dsv ARGS` in the worktree root, whatever its exit code.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_in(".", args)
    }

    /// Runs `dsv ARGS` in `dir`, whatever its exit code.
    pub fn run_in<I, S>(&self, dir: impl AsRef<Path>, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd_in(dir).args(args).output().expect("running dsv");
        Run::from_output(out)
    }

    /// Runs `dsv ARGS` in the worktree root and panics unless it exits 0.
    #[track_caller]
    pub fn ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.expect_code(0, args)
    }

    /// Runs `dsv ARGS` in `dir` and panics unless it exits 0.
    #[track_caller]
    pub fn ok_in<I, S>(&self, dir: impl AsRef<Path>, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown = show_args(&args);
        let r = self.run_in(dir, args);
        assert_eq!(r.code, 0, "dsv {shown} failed:\n{r}");
        r
    }

    /// Runs `dsv ARGS` in the worktree root and panics unless it exits with `code`.
    #[track_caller]
    pub fn expect_code<I, S>(&self, code: i32, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown = show_args(&args);
        let r = self.run(args);
        assert_eq!(r.code, code, "dsv {shown}: unexpected exit code:\n{r}");
        r
    }

    /// Runs `dsv ARGS` and panics unless it exits 1 (a runtime error); returns the run.
    #[track_caller]
    pub fn fails<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.expect_code(1, args)
    }

    /// The file paths of `rev`'s tree, from `ls-tree -r`.
    pub fn tree_paths(&self, rev: &str) -> std::collections::BTreeSet<String> {
        self.ok(["ls-tree", "-r", rev])
            .stdout
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .map(str::to_string)
            .collect()
    }

    /// Writes a file (creating parent directories).
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating parent directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    }

    /// Reads a file.
    pub fn read(&self, rel: impl AsRef<Path>) -> Vec<u8> {
        let path = self.path(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"))
    }

    /// Reads a UTF-8 file.
    pub fn read_string(&self, rel: impl AsRef<Path>) -> String {
        String::from_utf8(self.read(rel)).expect("file is not UTF-8")
    }

    /// Removes a file or symlink.
    pub fn remove(&self, rel: impl AsRef<Path>) {
        let path = self.path(rel);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("removing {path:?}: {e}"));
    }

    /// Whether something (a dangling symlink counts) exists at the path.
    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Makes a symlink at `rel` pointing at `target` (stored as given).
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating parent directories");
        }
        std::os::unix::fs::symlink(target, &path)
            .unwrap_or_else(|e| panic!("creating symlink {path:?}: {e}"));
    }

    /// Runs `dsv ARGS` in `dir` (as [`TestRepo::cmd_in`]) with output discarded; its
    /// exit code (-1 when killed by a signal) and its own peak resident set size in
    /// bytes.
    ///
    /// Not from RUSAGE_CHILDREN (the children of every test of the binary count
    /// there), and not from `wait4` on a child of this process either: Linux starts a
    /// child's peak at its parent's (at exec it records the peak of the address space
    /// it leaves), and this process runs every suite, some holding hundreds of MB. So
    /// dsv is the child of a small Python process, whose `wait4` sees dsv alone.
    pub fn exit_and_peak_rss_in(&self, dir: impl AsRef<Path>, args: &[&str]) -> (i32, u64) {
        const MEASURE: &str = "\
import os, sys
null = os.open(os.devnull, os.O_RDWR)
io = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=io)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
";
        let mut cmd = std::process::Command::new("python3");
        hermetic(&mut cmd, &self.home);
        let out = cmd
            .current_dir(self.root.join(dir))
            .arg("-c")
            .arg(MEASURE)
            .arg(assert_cmd::cargo::cargo_bin("dsv"))
            .args(args)
            .output()
            .expect("running python3 (needed to measure dsv's memory)");
        let report = String::from_utf8_lossy(&out.stdout);
        let parsed = report.split_once(' ').and_then(|(code, kib)| {
            Some((code.parse::<i32>().ok()?, kib.trim().parse::<u64>().ok()?))
        });
        let Some((code, kib)) = parsed.filter(|_| out.status.success()) else {
            panic!(
                "measuring dsv {args:?} with python3 failed: {report}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // ru_maxrss is in KiB on Linux; a signal is a negative code.
        (code.max(-1), kib * 1024)
    }

    /// insta settings that replace the temporary directory with `[TMP]`.
    pub fn insta_settings(&self) -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        let mut paths = vec![self.home.display().to_string()];
        let raw = self.tmp.path().display().to_string();
        if raw != paths[0] {
            paths.push(raw);
        }
        for p in paths {
            s.add_filter(&regex_escape(&p), "[TMP]");
        }
        s.set_prepend_module_to_snapshot(true);
        s
    }
}

fn show_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Deterministic pseudo-random bytes (xorshift64*), for large test files.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a file below `root`, creating its parent directories.
pub fn write_file(root: &Path, rel: &str, data: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
}

/// Copies a directory tree with `cp -a` (keeps modes, symlinks and mtimes).
pub fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("running cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// Copies the contents of `from` into the existing directory `to` (merging, overwriting).
pub fn copy_contents(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("running cp");
    assert!(st.success(), "cp -a {}/. {}", from.display(), to.display());
}

/// Visits every entry below `root` (files, symlinks and directories, not
/// following links) with its path relative to `root`; an entry for which
/// `skip` is true is neither visited nor, if a directory, entered. A directory
/// that cannot be read is passed over (the tests that use this look at trees
/// dsv may be racing to change). The one walker of the tests.
pub fn walk(
    root: &Path,
    skip: impl Fn(&str) -> bool,
    mut each: impl FnMut(&str, &Path, &std::fs::Metadata),
) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip(&rel) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            each(&rel, &p, &m);
        }
    }
}

/// Every regular file below `root` with its bytes, by relative path (entries
/// for which `skip` is true left out, directories among them not entered).
pub fn files_with_bytes(
    root: &Path,
    skip: impl Fn(&str) -> bool,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    walk(root, skip, |rel, p, m| {
        if m.is_file() {
            out.insert(rel.to_string(), std::fs::read(p).unwrap());
        }
    });
    out
}

/// A worktree file as seen on disk (a symlink not followed).
#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file: whether it is executable, and its bytes.
    File { exec: bool, data: Vec<u8> },
    /// A symlink and its target.
    Link(PathBuf),
}

// Short: a failing comparison of worktrees must not print megabytes.
impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::File { exec, data } => write!(
                f,
                "File({} bytes{}, {})",
                data.len(),
                if *exec { ", exec" } else { "" },
                &blake3::hash(data).to_hex()[..12]
            ),
            Node::Link(t) => write!(f, "Link({})", t.display()),
        }
    }
}

/// Every file and symlink below `root` by relative path (entries for which
/// `skip` is true left out, directories among them not entered).
pub fn nodes(root: &Path, skip: impl Fn(&str) -> bool) -> std::collections::BTreeMap<String, Node> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    walk(root, skip, |rel, path, meta| {
        if meta.file_type().is_symlink() {
            out.insert(
                rel.to_string(),
                Node::Link(std::fs::read_link(path).unwrap()),
            );
        } else if meta.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            let data = std::fs::read(path).unwrap();
            out.insert(rel.to_string(), Node::File { exec, data });
        }
    });
    out
}
