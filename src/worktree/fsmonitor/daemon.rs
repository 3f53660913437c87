//! The monitor daemon: one per repository, watching every directory of the working
//! tree with inotify (through `notify`, one non-recursive watch per directory, so
//! the daemon knows when each watch is in place) and answering "what changed since
//! token T" over the Unix socket `.dsv/fsmonitor/sock`.
//!
//! Correctness rules (any doubt answers "full scan"):
//! - A token is `<daemon id>-<seq>`; a token of another daemon, one older than the
//!   last overflow or watch rebuild, or one from the future is answered "full".
//! - Before answering, the daemon creates a cookie file in `.dsv/fsmonitor/` and waits
//!   for its event: inotify delivers one instance's events in order, so every change
//!   made before the question has then been recorded.
//! - A new directory is recorded as changed only after its watches are in place
//!   (the client scans its whole subtree), so nothing created in it is missed.
//! - A watched directory renamed or moved away, an inotify overflow (`Flag::Rescan`)
//!   or a watcher error rebuilds every watch (inotify keeps reporting a moved
//!   directory's events under its old path) and invalidates every older token.
//! - More changed paths than `max_paths` counts as an overflow.
//! - Failure to add a watch (e.g. `fs.inotify.max_user_watches`) leaves the daemon
//!   answering "unavailable" (no monitor) until it exits.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::{DaemonStatus, FsmonitorError, PROTOCOL, monitor_dir, socket_path};
use crate::error::{IoContext, Result};
use crate::paths::os_path;

/// How the daemon behaves (the CLI fills it, from `DSV_FSMONITOR_*` for tests).
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Exit after this long without a question.
    pub idle: Duration,
    /// Changed paths remembered before the daemon declares an overflow.
    pub max_paths: usize,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            idle: Duration::from_secs(3600),
            max_paths: 1_000_000,
        }
    }
}

/// How long a question waits for its cookie and for pending watches.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    seq: u64,
    /// Repository path -> seq of its last change.
    changed: HashMap<Vec<u8>, u64>,
    /// Tokens below this seq are answered "full".
    valid_from: u64,
    /// New directories whose watches are still to add.
    pending: Vec<Vec<u8>>,
    rebuild: bool,
    building: bool,
    failed: Option<String>,
    /// Watched directories (repository paths, "" for the root).
    dirs: HashSet<Vec<u8>>,
    cookies: HashSet<u64>,
    next_cookie: u64,
    generation: u64,
    stop: bool,
    queries: u64,
    overflows: u64,
    rebuilds: u64,
}

struct Shared {
    root: PathBuf,
    dsv_dir: PathBuf,
    id: String,
    opts: DaemonOptions,
    state: Mutex<State>,
    cond: Condvar,
    last_query: Mutex<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rel(&self, abs: &Path) -> Option<Vec<u8>> {
        abs.strip_prefix(&self.root)
            .ok()
            .map(|p| p.as_os_str().as_bytes().to_vec())
    }

    fn record(&self, st: &mut State, rel: Vec<u8>) {
        st.seq += 1;
        let seq = st.seq;
        st.changed.insert(rel, seq);
        if st.changed.len() > self.opts.max_paths {
            st.changed.clear();
            st.valid_from = st.seq + 1;
            st.overflows += 1;
        }
    }

    fn on_event(&self, generation: u64, res: notify::Result<Event>) {
        let mut st = self.lock();
        if st.generation != generation {
            return;
        }
        let ev = match res {
            Ok(ev) => ev,
            Err(_) => {
                st.rebuild = true;
                self.cond.notify_all();
                return;
            }
        };
        if ev.need_rescan() {
            st.rebuild = true;
            st.overflows += 1;
            self.cond.notify_all();
            return;
        }
        match ev.kind {
            // Reads change nothing.
            EventKind::Access(AccessKind::Open(_))
            | EventKind::Access(AccessKind::Read)
            | EventKind::Access(AccessKind::Close(AccessMode::Read)) => return,
            _ => {}
        }
        let renamed_from = matches!(
            ev.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Any))
        );
        for (i, abs) in ev.paths.iter().enumerate() {
            let Some(rel) = self.rel(abs) else { continue };
            if rel.is_empty() {
                // The root itself moved or was deleted: the repository is gone.
                if matches!(
                    ev.kind,
                    EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                ) {
                    st.stop = true;
                    self.cond.notify_all();
                }
                continue;
            }
            if let Some(rest) = rel.strip_prefix(b".dsv/fsmonitor/cookie-".as_slice()) {
                if matches!(ev.kind, EventKind::Create(_))
                    && let Some(n) = std::str::from_utf8(rest).ok().and_then(|s| s.parse().ok())
                {
                    st.cookies.insert(n);
                    self.cond.notify_all();
                }
                continue;
            }
            if rel == b".dsv"
                || rel == b".git"
                || rel.starts_with(b".dsv/")
                || rel.starts_with(b".git/")
            {
                continue;
            }
            let from = renamed_from
                || matches!(ev.kind, EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if i == 0);
            if from && st.dirs.contains(&rel) {
                // inotify would go on naming its events by the old path.
                st.rebuild = true;
                self.cond.notify_all();
            }
            if matches!(ev.kind, EventKind::Remove(_)) {
                st.dirs.remove(&rel);
            }
            let arrived = matches!(
                ev.kind,
                EventKind::Create(_)
                    | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any))
            ) || matches!(ev.kind, EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if i == 1);
            if arrived
                && std::fs::symlink_metadata(abs).is_ok_and(|m| m.is_dir())
                && !st.dirs.contains(&rel)
            {
                // Recorded once its watches are in place (see `add_dirs`).
                st.pending.push(rel.clone());
                self.cond.notify_all();
            }
            self.record(&mut st, rel);
        }
    }
}

/// The outcome of [`run`].
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The daemon ran and has exited (stopped, idle, or the repository went away).
    Exited,
    /// Another daemon already serves this repository.
    AlreadyRunning,
}

/// Runs the daemon for the repository at `root` until it is stopped, idle for
/// `opts.idle`, or the repository goes away. Never prints.
pub fn run(root: &Path, dsv_dir: &Path, opts: DaemonOptions) -> Result<RunOutcome> {
    let dir = monitor_dir(dsv_dir);
    std::fs::create_dir_all(&dir).ctx("creating", &dir)?;
    let lock_path = dir.join("daemon.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ctx("opening", &lock_path)?;
    if lock.try_lock().is_err() {
        return Ok(RunOutcome::AlreadyRunning);
    }
    let sock = socket_path(dsv_dir);
    if sock.as_os_str().len() >= 100 {
        return Err(FsmonitorError::SocketPathTooLong(sock).into());
    }
    let _ = std::fs::remove_file(&sock);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if e.file_name().as_bytes().starts_with(b"cookie-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let listener = UnixListener::bind(&sock).ctx("listening on", &sock)?;
    let sock_ino = std::fs::symlink_metadata(&sock).map(|m| m.ino()).ok();
    let dir_ino = std::fs::metadata(&dir).map(|m| m.ino()).ok();
    let seed = format!(
        "{}:{}:{}",
        std::process::id(),
        super::super::index::now_ns(),
        root.display()
    );
    let id = crate::id::ObjectId::hash(seed.as_bytes()).to_hex()[..16].to_string();
    let shared = Arc::new(Shared {
        root: root.to_path_buf(),
        dsv_dir: dsv_dir.to_path_buf(),
        id,
        opts,
        state: Mutex::new(State {
            seq: 1,
            valid_from: u64::MAX,
            building: true,
            ..State::default()
        }),
        cond: Condvar::new(),
        last_query: Mutex::new(Instant::now()),
    });
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("dsv-fsmonitor-accept".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("dsv-fsmonitor-conn".into())
                        .spawn(move || serve(&shared, stream));
                }
            })
            .ctx("starting a thread in", &dir)?;
    }
    let mut watcher: Option<notify::RecommendedWatcher> = None;
    loop {
        enum Job {
            Rebuild,
            Dirs(Vec<Vec<u8>>),
        }
        let job = {
            let mut st = shared.lock();
            if !(st.rebuild
                || st.building && watcher.is_none()
                || !st.pending.is_empty()
                || st.stop)
            {
                st = shared
                    .cond
                    .wait_timeout(st, Duration::from_millis(500))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            if st.stop {
                break;
            }
            let idle = shared
                .last_query
                .lock()
                .map(|t| t.elapsed())
                .unwrap_or_default();
            if idle > shared.opts.idle {
                break;
            }
            if st.failed.is_some() {
                None
            } else if st.rebuild || watcher.is_none() {
                Some(Job::Rebuild)
            } else if !st.pending.is_empty() {
                Some(Job::Dirs(std::mem::take(&mut st.pending)))
            } else {
                None
            }
        };
        // The repository was deleted or replaced.
        if std::fs::metadata(&dir).map(|m| m.ino()).ok() != dir_ino
            || !dsv_dir.join("format").exists()
        {
            break;
        }
        match job {
            Some(Job::Rebuild) => rebuild(&shared, &mut watcher),
            Some(Job::Dirs(dirs)) => add_dirs(&shared, &mut watcher, dirs),
            None => {}
        }
    }
    drop(watcher);
    if std::fs::symlink_metadata(&sock).map(|m| m.ino()).ok() == sock_ino {
        let _ = std::fs::remove_file(&sock);
    }
    drop(lock);
    Ok(RunOutcome::Exited)
}

/// Walks `rel` (a directory) top-down, watching each directory before listing it,
/// so an entry created after the listing has an event and one before it is listed.
fn watch_tree(
    shared: &Shared,
    watcher: &mut notify::RecommendedWatcher,
    rel: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> std::result::Result<(), String> {
    let mut stack = vec![rel.to_vec()];
    while let Some(d) = stack.pop() {
        let abs = shared.root.join(os_path(&d));
        match std::fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            _ => continue,
        }
        match watcher.watch(&abs, RecursiveMode::NonRecursive) {
            Ok(()) => {}
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => continue,
            Err(e) => return Err(format!("watching '{}': {e}", abs.display())),
        }
        out.push(d.clone());
        let Ok(rd) = std::fs::read_dir(&abs) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name();
            let name = name.as_bytes();
            if d.is_empty() && (name == b".dsv" || name == b".git") {
                continue;
            }
            let mut child = d.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            stack.push(child);
        }
    }
    Ok(())
}

fn rebuild(shared: &Arc<Shared>, watcher: &mut Option<notify::RecommendedWatcher>) {
    let generation = {
        let mut st = shared.lock();
        st.rebuild = false;
        st.building = true;
        st.generation += 1;
        st.pending.clear();
        st.generation
    };
    *watcher = None;
    let handler = {
        let shared = shared.clone();
        move |res| shared.on_event(generation, res)
    };
    let result = (|| -> std::result::Result<(notify::RecommendedWatcher, Vec<Vec<u8>>), String> {
        let mut w = notify::recommended_watcher(handler).map_err(|e| format!("inotify: {e}"))?;
        let dir = monitor_dir(&shared.dsv_dir);
        w.watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("watching '{}': {e}", dir.display()))?;
        let mut dirs = Vec::new();
        watch_tree(shared, &mut w, b"", &mut dirs)?;
        Ok((w, dirs))
    })();
    let mut st = shared.lock();
    st.building = false;
    match result {
        Ok((w, dirs)) => {
            *watcher = Some(w);
            st.seq += 1;
            st.valid_from = st.seq;
            st.changed.clear();
            st.dirs = dirs.into_iter().collect();
            st.rebuilds += 1;
        }
        Err(msg) => st.failed = Some(msg),
    }
    shared.cond.notify_all();
}

fn add_dirs(
    shared: &Arc<Shared>,
    watcher: &mut Option<notify::RecommendedWatcher>,
    dirs: Vec<Vec<u8>>,
) {
    let Some(w) = watcher.as_mut() else { return };
    let mut added = Vec::new();
    let mut failed = None;
    for d in &dirs {
        if let Err(msg) = watch_tree(shared, w, d, &mut added) {
            failed = Some(msg);
            break;
        }
    }
    let mut st = shared.lock();
    if let Some(msg) = failed {
        st.failed = Some(msg);
    } else {
        st.dirs.extend(added);
        for d in dirs {
            shared.record(&mut st, d);
        }
    }
    shared.cond.notify_all();
}

/// One question on one connection.
fn serve(shared: &Shared, stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut line = Vec::new();
    let mut reader = BufReader::new((&stream).take(4096));
    if reader.read_until(b'\n', &mut line).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&line);
    let mut words = text.split_whitespace();
    if words.next() != Some(PROTOCOL) {
        let _ = (&stream).write_all(b"error unknown protocol\n");
        return;
    }
    let reply = match (words.next(), words.next()) {
        (Some("query"), Some(token)) => query(shared, token),
        (Some("status"), _) => status_reply(shared),
        (Some("stop"), _) => {
            let mut st = shared.lock();
            st.stop = true;
            shared.cond.notify_all();
            b"stopping\n".to_vec()
        }
        _ => b"error unknown request\n".to_vec(),
    };
    let _ = (&stream).write_all(&reply);
}

fn status_reply(shared: &Shared) -> Vec<u8> {
    let st = shared.lock();
    let state = if let Some(f) = &st.failed {
        format!("failed: {f}")
    } else if st.building {
        "starting".to_string()
    } else {
        "ready".to_string()
    };
    let s = DaemonStatus {
        pid: std::process::id(),
        state,
        watched_dirs: st.dirs.len() as u64,
        changed_paths: st.changed.len() as u64,
        queries: st.queries,
        overflows: st.overflows,
        rebuilds: st.rebuilds,
    };
    let mut out = serde_json::to_vec(&s).unwrap_or_default();
    out.push(b'\n');
    out
}

fn query(shared: &Shared, token: &str) -> Vec<u8> {
    if let Ok(mut t) = shared.last_query.lock() {
        *t = Instant::now();
    }
    let (cookie, generation) = {
        let mut st = shared.lock();
        st.queries += 1;
        if let Some(f) = &st.failed {
            return format!("unavailable {f}\n").into_bytes();
        }
        st.next_cookie += 1;
        (st.next_cookie, st.generation)
    };
    let cookie_path = monitor_dir(&shared.dsv_dir).join(format!("cookie-{cookie}"));
    if let Err(e) = std::fs::write(&cookie_path, b"") {
        return format!("unavailable cannot write a cookie file: {e}\n").into_bytes();
    }
    let deadline = Instant::now() + SYNC_TIMEOUT;
    let mut st = shared.lock();
    loop {
        let synced = st.cookies.contains(&cookie) || st.generation != generation;
        if st.failed.is_some() || (synced && !st.rebuild && !st.building && st.pending.is_empty()) {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            st.cookies.remove(&cookie);
            drop(st);
            let _ = std::fs::remove_file(&cookie_path);
            return b"unavailable timed out waiting for the file-system events\n".to_vec();
        }
        st = shared
            .cond
            .wait_timeout(st, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    st.cookies.remove(&cookie);
    let reply = if let Some(f) = &st.failed {
        format!("unavailable {f}\n").into_bytes()
    } else {
        let new_token = format!("{}-{}", shared.id, st.seq);
        let since = token
            .strip_prefix(shared.id.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s >= st.valid_from && s <= st.seq && st.generation == generation);
        match since {
            None => format!("full {new_token}\n").into_bytes(),
            Some(since) => {
                let paths: Vec<&Vec<u8>> = st
                    .changed
                    .iter()
                    .filter(|(_, s)| **s > since)
                    .map(|(p, _)| p)
                    .collect();
                let mut out = format!("changes {new_token} {}\n", paths.len()).into_bytes();
                for p in paths {
                    out.extend_from_slice(p);
                    out.push(0);
                }
                out
            }
        }
    };
    drop(st);
    let _ = std::fs::remove_file(&cookie_path);
    reply
}
