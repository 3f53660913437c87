//! `status` answers from keyed lookups of the index: the tree id recorded in the
//! index says whether anything is staged, and the smudged table says which entries
//! the racy-timestamp rule re-hashes. These tests check that every change of the
//! entries (by dsv, or by an older dsv that keeps neither) is still seen.

use std::path::Path;

use redb::{ReadableTable, TableDefinition};

use crate::common::TestRepo;

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

fn committed() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("a.txt", "alpha\n");
    repo.write("b.txt", "beta\n");
    repo.write("d/c.txt", "gamma\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

fn porcelain(repo: &TestRepo, env: &[(&str, &str)]) -> String {
    let mut cmd = repo.cmd();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["status", "--porcelain"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What an older dsv does to the index: rewrites `path`'s entry with `from`'s
/// content id and sets a new stamp, keeping none of the derived tables.
fn older_dsv_restages(index: &Path, path: &str, from: &str) {
    let db = redb::Database::open(index).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut entries = tx.open_table(ENTRIES).unwrap();
        let source = entries
            .get(from.as_bytes())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let mut entry = entries
            .get(path.as_bytes())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        entry[1..9].copy_from_slice(&source[1..9]);
        entry[33..65].copy_from_slice(&source[33..65]);
        entries.insert(path.as_bytes(), entry.as_slice()).unwrap();
        let mut meta = tx.open_table(META).unwrap();
        let stamp = meta.get("stamp").unwrap().unwrap().value();
        meta.insert("stamp", stamp + 1).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn status_sees_a_staged_change_after_add_of_one_file() {
    let repo = committed();
    // The first status hashes the index and records its tree id; the second trusts it.
    assert_eq!(porcelain(&repo, &[]), "");
    assert_eq!(porcelain(&repo, &[]), "");
    repo.write("a.txt", "alpha 2\n");
    repo.ok(["add", "a.txt"]);
    assert_eq!(porcelain(&repo, &[]), "M  a.txt\n");
    repo.ok(["commit", "-m", "two"]);
    assert_eq!(porcelain(&repo, &[]), "");
    repo.ok(["rm", "--cached", "-q", "b.txt"]);
    assert_eq!(porcelain(&repo, &[]), "D  b.txt\n?? b.txt\n");
}

#[test]
fn status_with_the_monitor_sees_a_staged_change_the_monitor_does_not_report() {
    let repo = committed();
    repo.ok(["config", "core.fsmonitor", "true"]);
    repo.ok(["fsmonitor", "start"]);
    for _ in 0..3 {
        assert_eq!(porcelain(&repo, &[]), "");
    }
    // Only the index changes: the worktree is as the monitor last saw it.
    repo.ok(["rm", "--cached", "-q", "d/c.txt"]);
    assert_eq!(porcelain(&repo, &[]), "D  d/c.txt\n?? d/c.txt\n");
    assert_eq!(
        porcelain(&repo, &[]),
        porcelain(&repo, &[("DSV_FSMONITOR", "0")])
    );
    repo.ok(["fsmonitor", "stop"]);
}

#[test]
fn status_of_an_index_written_by_an_older_dsv_is_right() {
    let repo = committed();
    assert_eq!(porcelain(&repo, &[]), "");
    assert_eq!(porcelain(&repo, &[]), "");
    // The recorded tree id still names the committed tree: an older dsv staging
    // b.txt's content as a.txt must not be hidden by it.
    older_dsv_restages(&repo.path(".dsv/index.redb"), "a.txt", "b.txt");
    assert_eq!(porcelain(&repo, &[]), "MM a.txt\n");
    // That status rebuilt the derived tables; the next ones read them.
    assert_eq!(porcelain(&repo, &[]), "MM a.txt\n");
    repo.ok(["add", "a.txt"]);
    assert_eq!(porcelain(&repo, &[]), "");
}

#[test]
fn status_of_an_index_written_by_an_older_dsv_with_the_monitor_is_right() {
    let repo = committed();
    repo.ok(["config", "core.fsmonitor", "true"]);
    repo.ok(["fsmonitor", "start"]);
    for _ in 0..3 {
        assert_eq!(porcelain(&repo, &[]), "");
    }
    older_dsv_restages(&repo.path(".dsv/index.redb"), "d/c.txt", "b.txt");
    assert_eq!(porcelain(&repo, &[]), "MM d/c.txt\n");
    assert_eq!(porcelain(&repo, &[]), "MM d/c.txt\n");
    repo.ok(["fsmonitor", "stop"]);
}
