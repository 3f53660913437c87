//! `log --graph`: the ASCII history graph git draws, one lane per line of descent.

use std::collections::{BinaryHeap, HashMap};

use dsv::ObjectId;
use dsv::object::Commit;

/// Orders `commits` (newest first by time, as `history` gives them) so that every
/// commit comes after all of its children in the list, as `--graph` needs (git's
/// `--topo-order`); among commits that are ready, the earlier one in the input first.
pub fn topo_order(commits: Vec<(ObjectId, Commit)>) -> Vec<(ObjectId, Commit)> {
    let pos: HashMap<ObjectId, usize> = commits
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut children = vec![0usize; commits.len()];
    for (_, c) in &commits {
        for p in &c.parents {
            if let Some(&i) = pos.get(p) {
                children[i] += 1;
            }
        }
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..commits.len())
        .filter(|&i| children[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut slots: Vec<Option<(ObjectId, Commit)>> = commits.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        let Some((id, c)) = slots[i].take() else {
            continue;
        };
        for p in &c.parents {
            if let Some(&j) = pos.get(p) {
                children[j] -= 1;
                if children[j] == 0 {
                    ready.push(std::cmp::Reverse(j));
                }
            }
        }
        out.push((id, c));
    }
    out
}

/// The lanes of the graph as it is drawn: each lane waits for one commit.
#[derive(Default)]
pub struct Graph {
    lanes: Vec<ObjectId>,
}

/// The graph lines of one commit.
pub struct Rows {
    /// Lines drawn before the commit's own line (lanes joining).
    pub before: Vec<String>,
    /// The commit's own line: `*` in its lane, `|` in the others, padded to the
    /// width of the lanes after it.
    pub commit: String,
    /// Lines drawn after it (a merge opening lanes for its other parents).
    pub after: Vec<String>,
    /// What goes before each further line of the commit's text.
    pub padding: String,
}

fn line(chars: Vec<char>) -> String {
    let s: String = chars.into_iter().collect();
    s.trim_end().to_string()
}

fn bars(n: usize) -> String {
    let mut s = "| ".repeat(n);
    s.truncate(s.trim_end().len());
    s
}

impl Graph {
    /// Places commit `id` with `parents` and returns its lines.
    pub fn next(&mut self, id: ObjectId, parents: &[ObjectId]) -> Rows {
        let mut before = Vec::new();
        // Lanes waiting for this commit join the leftmost one; lanes right of a
        // removed one move left (`/`).
        let here: Vec<usize> = (0..self.lanes.len())
            .filter(|&k| self.lanes[k] == id)
            .collect();
        let col = match here.first() {
            Some(&c) => {
                if here.len() > 1 {
                    let n = self.lanes.len();
                    let mut chars = vec![' '; 2 * n];
                    let mut shift = 0;
                    for k in 0..n {
                        if k != c && self.lanes[k] == id {
                            shift += 1;
                        }
                        if (k != c && self.lanes[k] == id) || (shift > 0 && k > c) {
                            chars[2 * k - 1] = '/';
                        } else {
                            chars[2 * k] = '|';
                        }
                    }
                    before.push(line(chars));
                    let keep: Vec<ObjectId> = self
                        .lanes
                        .iter()
                        .enumerate()
                        .filter(|(k, l)| *k == c || **l != id)
                        .map(|(_, l)| *l)
                        .collect();
                    self.lanes = keep;
                }
                c
            }
            None => {
                self.lanes.push(id);
                self.lanes.len() - 1
            }
        };
        let n = self.lanes.len();
        let mut commit = line(
            (0..n)
                .flat_map(|k| [if k == col { '*' } else { '|' }, ' '])
                .collect(),
        );
        let mut after = Vec::new();
        match parents {
            [] => {
                self.lanes.remove(col);
                if col < self.lanes.len() {
                    // Lanes right of an ended one move left.
                    let mut chars = vec![' '; 2 * n];
                    for k in 0..n {
                        if k < col {
                            chars[2 * k] = '|';
                        } else if k > col {
                            chars[2 * k - 1] = '/';
                        }
                    }
                    after.push(line(chars));
                }
            }
            [first, rest @ ..] => {
                self.lanes[col] = *first;
                if !rest.is_empty() {
                    let m = rest.len();
                    let mut chars = vec![' '; 2 * (n + m)];
                    for k in 0..=col {
                        chars[2 * k] = '|';
                    }
                    for j in 0..m {
                        chars[2 * col + 1 + 2 * j] = '\\';
                    }
                    for k in col + 1..n {
                        chars[2 * k + 1] = '\\';
                    }
                    after.push(line(chars));
                    for (j, p) in rest.iter().enumerate() {
                        self.lanes.insert(col + 1 + j, *p);
                    }
                }
            }
        }
        // As git, the text of a merge starts right of the lanes it opens.
        let width = 2 * n.max(self.lanes.len()) - 1;
        while commit.len() < width {
            commit.push(' ');
        }
        Rows {
            before,
            commit,
            after,
            padding: bars(self.lanes.len()),
        }
    }
}
