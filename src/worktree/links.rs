//! Where the symlinks of a tree lead once it is checked out.
//!
//! A link's target cannot be judged as text alone: `t -> a/b/c/s/..` looks
//! harmless, but if `a/b/c/s` is itself a link to `../../..`, `t` resolves to
//! the worktree's parent. [`check_links`] resolves every link of a tree the way
//! the kernel would walk the path in the checked-out worktree, following the
//! links the tree itself holds (at most [`MAX_HOPS`] of them per link), and
//! reports the first link that leads outside the worktree or into `.dsv`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::object::tree::{TreeEntry, TreeObject};

use crate::paths::display_path;

/// The most links followed while resolving one link (the kernel's own limit).
pub const MAX_HOPS: usize = 40;

/// A link that leads out of the worktree: its path, its target and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapingLink {
    /// The link's repository path.
    pub path: Vec<u8>,
    /// Its target, as stored.
    pub target: Vec<u8>,
    /// Where it leads (for the message).
    pub reason: &'static str,
}

impl std::fmt::Display for EscapingLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "symlink '{}' points outside the worktree ('{}': {})",
            display_path(&self.path),
            display_path(&self.target),
            self.reason
        )
    }
}

type Dir = Arc<HashMap<Vec<u8>, (EntryMode, ObjectId)>>;

/// Reads tree objects and link targets for [`check_links`].
pub trait LinkSource {
    /// The tree object `id` (entries or shard list).
    fn tree(&self, id: &ObjectId) -> Result<TreeObject>;
    /// The target of the link whose content id is `id`; `None` when it is not available.
    fn link(&self, id: &ObjectId) -> Result<Option<Vec<u8>>>;
}

struct View<'a> {
    src: &'a dyn LinkSource,
    dirs: HashMap<ObjectId, Dir>,
    targets: HashMap<ObjectId, Option<Vec<u8>>>,
    /// Whether a subtree holds a symlink anywhere below it, by tree id.
    has_links: HashMap<ObjectId, bool>,
}

impl View<'_> {
    /// The (mode, id) of every entry of tree `id`, shards joined, not cached.
    fn entries(&self, id: &ObjectId) -> Result<Vec<(EntryMode, ObjectId)>> {
        let pick = |e: Vec<TreeEntry>| e.into_iter().map(|e| (e.mode, e.id));
        Ok(match self.src.tree(id)? {
            TreeObject::Entries(e) => pick(e).collect(),
            TreeObject::Shards(shards) => {
                let mut all = Vec::new();
                for s in shards {
                    if let TreeObject::Entries(e) = self.src.tree(&s.id)? {
                        all.extend(pick(e));
                    }
                }
                all
            }
        })
    }

    /// Whether any symlink lies below tree `id` (bottom-up, without recursion;
    /// each distinct tree is read once for all roots).
    fn has_links(&mut self, id: &ObjectId) -> Result<bool> {
        // A tree first without its entries (to be read), then with them (to be judged).
        type Todo = (ObjectId, Option<Vec<(EntryMode, ObjectId)>>);
        let mut stack: Vec<Todo> = vec![(*id, None)];
        let mut open: std::collections::HashSet<ObjectId> = std::collections::HashSet::new();
        while let Some((t, entries)) = stack.pop() {
            if self.has_links.contains_key(&t) {
                continue;
            }
            match entries {
                None => {
                    let e = self.entries(&t)?;
                    open.insert(t);
                    let dirs: Vec<ObjectId> = e
                        .iter()
                        .filter(|(m, c)| {
                            *m == EntryMode::Dir
                                && !self.has_links.contains_key(c)
                                && !open.contains(c)
                        })
                        .map(|(_, c)| *c)
                        .collect();
                    stack.push((t, Some(e)));
                    stack.extend(dirs.into_iter().map(|c| (c, None)));
                }
                Some(e) => {
                    let any = e.iter().any(|(m, c)| {
                        *m == EntryMode::Symlink
                            || (*m == EntryMode::Dir && self.has_links.get(c) == Some(&true))
                    });
                    self.has_links.insert(t, any);
                }
            }
        }
        Ok(self.has_links.get(id) == Some(&true))
    }

    fn dir(&mut self, id: &ObjectId) -> Result<Dir> {
        if let Some(d) = self.dirs.get(id) {
            return Ok(d.clone());
        }
        let mut map = HashMap::new();
        let mut add = |entries: Vec<TreeEntry>| {
            for e in entries {
                map.insert(e.name, (e.mode, e.id));
            }
        };
        match self.src.tree(id)? {
            TreeObject::Entries(e) => add(e),
            TreeObject::Shards(shards) => {
                for s in shards {
                    if let TreeObject::Entries(e) = self.src.tree(&s.id)? {
                        add(e);
                    }
                }
            }
        }
        let d = Arc::new(map);
        self.dirs.insert(*id, d.clone());
        Ok(d)
    }

    fn target(&mut self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        if let Some(t) = self.targets.get(id) {
            return Ok(t.clone());
        }
        let t = self.src.link(id)?;
        self.targets.insert(*id, t.clone());
        Ok(t)
    }

    /// Resolves the link in directory `dir` (its chain of tree ids from the root)
    /// with target `target`; `Some(reason)` when it leads out of the worktree.
    fn escapes(&mut self, dir: &[ObjectId], target: &[u8]) -> Result<Option<&'static str>> {
        if target.is_empty() {
            return Ok(Some("empty target"));
        }
        if target[0] == b'/' {
            return Ok(Some("absolute path"));
        }
        // The directories walked so far: a tree id while the walk follows the tree,
        // `None` below a name the tree does not have (the rest is taken as text: a
        // user may create that directory later).
        let mut stack: Vec<Option<ObjectId>> = dir.iter().map(|id| Some(*id)).collect();
        let mut pending: VecDeque<Vec<u8>> = components(target);
        let mut hops = 1;
        while let Some(c) = pending.pop_front() {
            if c == b".." {
                if stack.len() <= 1 {
                    return Ok(Some("climbs above the worktree"));
                }
                stack.pop();
                continue;
            }
            if stack.len() == 1 && c == b".dsv" {
                return Ok(Some("leads into .dsv"));
            }
            let Some(Some(here)) = stack.last().copied() else {
                stack.push(None);
                continue;
            };
            match self.dir(&here)?.get(&c).copied() {
                Some((EntryMode::Dir, id)) => stack.push(Some(id)),
                Some((EntryMode::Symlink, id)) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        // The kernel gives up (ELOOP): the path leads nowhere.
                        return Ok(None);
                    }
                    let Some(next) = self.target(&id)? else {
                        stack.push(None);
                        continue;
                    };
                    if next.is_empty() || next[0] == b'/' {
                        return Ok(Some("through a link to an absolute path"));
                    }
                    for part in components(&next).into_iter().rev() {
                        pending.push_front(part);
                    }
                }
                // A file or a missing name: judged as text from here on.
                _ => stack.push(None),
            }
        }
        Ok(None)
    }
}

fn components(target: &[u8]) -> VecDeque<Vec<u8>> {
    target
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// The first symlink of one of the trees `roots` that leads outside the worktree
/// once checked out (resolved through that tree's own links), if any. Links whose
/// target is not available are judged by the links that lead to them only.
/// Only directories with a link somewhere below them are walked.
pub fn check_links(src: &dyn LinkSource, roots: &[ObjectId]) -> Result<Option<EscapingLink>> {
    let mut view = View {
        src,
        dirs: HashMap::new(),
        targets: HashMap::new(),
        has_links: HashMap::new(),
    };
    for root in roots {
        if view.has_links(root)?
            && let Some(bad) = check_root(&mut view, root)?
        {
            return Ok(Some(bad));
        }
    }
    Ok(None)
}

fn check_root(view: &mut View, root: &ObjectId) -> Result<Option<EscapingLink>> {
    // Depth-first over directories, each with its chain of tree ids from the root.
    let mut todo: Vec<(Vec<ObjectId>, Vec<u8>)> = vec![(vec![*root], Vec::new())];
    while let Some((chain, path)) = todo.pop() {
        let here = *chain.last().expect("never empty");
        let dir = view.dir(&here)?;
        let mut names: Vec<_> = dir.iter().collect();
        names.sort();
        for (name, (mode, id)) in names {
            let p = if path.is_empty() {
                name.clone()
            } else {
                [&path[..], b"/", name].concat()
            };
            match mode {
                // Beyond the depth limit the tree is refused elsewhere; do not walk it.
                EntryMode::Dir
                    if chain.len() < crate::object::tree::MAX_DEPTH && view.has_links(id)? =>
                {
                    let mut c = chain.clone();
                    c.push(*id);
                    todo.push((c, p));
                }
                EntryMode::Symlink => {
                    let Some(target) = view.target(id)? else {
                        continue;
                    };
                    if let Some(reason) = view.escapes(&chain, &target)? {
                        return Ok(Some(EscapingLink {
                            path: p,
                            target,
                            reason,
                        }));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree in memory: objects by id.
    #[derive(Default)]
    struct Mem {
        trees: HashMap<ObjectId, TreeObject>,
        blobs: HashMap<ObjectId, Vec<u8>>,
    }

    impl Mem {
        fn mklink(&mut self, target: &str) -> (EntryMode, ObjectId) {
            let id = ObjectId::hash(target.as_bytes());
            self.blobs.insert(id, target.as_bytes().to_vec());
            (EntryMode::Symlink, id)
        }
        fn mkdir(&mut self, entries: &[(&str, (EntryMode, ObjectId))]) -> (EntryMode, ObjectId) {
            let entries: Vec<TreeEntry> = entries
                .iter()
                .map(|(n, (mode, id))| TreeEntry {
                    name: n.as_bytes().to_vec(),
                    mode: *mode,
                    id: *id,
                    size: 0,
                    files: 1,
                })
                .collect();
            let id = ObjectId::hash(format!("{entries:?}").as_bytes());
            self.trees.insert(id, TreeObject::Entries(entries));
            (EntryMode::Dir, id)
        }
    }

    impl LinkSource for Mem {
        fn tree(&self, id: &ObjectId) -> Result<TreeObject> {
            Ok(self.trees[id].clone())
        }
        fn link(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
            Ok(self.blobs.get(id).cloned())
        }
    }

    fn check(m: &Mem, root: (EntryMode, ObjectId)) -> Option<String> {
        check_links(m, &[root.1])
            .unwrap()
            .map(|e| String::from_utf8(e.path).unwrap())
    }

    #[test]
    fn symlink_chain_escaping_worktree_is_found() {
        let mut m = Mem::default();
        let s = m.mklink("../../..");
        let c = m.mkdir(&[("s", s)]);
        let b = m.mkdir(&[("c", c)]);
        let a = m.mkdir(&[("b", b)]);
        let t = m.mklink("a/b/c/s/..");
        let root = m.mkdir(&[("a", a), ("t", t)]);
        assert_eq!(check(&m, root).as_deref(), Some("t"));
        // Without `t`, `s` alone resolves to the root itself: allowed.
        let root = m.mkdir(&[("a", a)]);
        assert_eq!(check(&m, root), None);
    }

    #[test]
    fn links_inside_the_tree_and_loops_are_allowed() {
        let mut m = Mem::default();
        let f = m.mklink("../x/file");
        let x = m.mkdir(&[("l", f)]);
        let up = m.mklink("x/..");
        let l1 = m.mklink("l2");
        let l2 = m.mklink("l1");
        let root = m.mkdir(&[("x", x), ("up", up), ("l1", l1), ("l2", l2)]);
        assert_eq!(check(&m, root), None);
    }

    #[test]
    fn absolute_dotdot_and_dsv_targets_are_refused() {
        for target in [
            "/etc",
            "..",
            "x/../..",
            ".dsv/objects.redb",
            "",
            "d/../.dsv",
        ] {
            let mut m = Mem::default();
            let l = m.mklink(target);
            let d = m.mkdir(&[]);
            let root = m.mkdir(&[("l", l), ("d", d)]);
            assert_eq!(check(&m, root).as_deref(), Some("l"), "{target}");
        }
        // Through a link to a link to an absolute path.
        let mut m = Mem::default();
        let abs = m.mklink("/tmp");
        let via = m.mklink("abs/x");
        let root = m.mkdir(&[("abs", abs), ("via", via)]);
        assert!(check(&m, root).is_some());
    }
}
