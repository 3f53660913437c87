//! git's verbs and options beyond the everyday ones (issue 21 item 2), each as git
//! means it: whole outputs as insta snapshots, refusals checked to change nothing.

use crate::common;

use common::TestRepo;

/// Snapshot with the temporary directory filtered out.
macro_rules! snap {
    ($repo:expr, $name:expr, $value:expr) => {{
        let value: String = $value;
        $repo
            .insta_settings()
            .bind(|| insta::assert_snapshot!($name, value));
    }};
}

/// `$ dsv ARGS` and its stdout, for each command line, in one text.
fn transcript(t: &TestRepo, cmds: &[&[&str]]) -> String {
    let mut out = String::new();
    for args in cmds {
        out.push_str(&format!("$ dsv {}\n{}", args.join(" "), t.ok(*args).stdout));
    }
    out
}

fn commit(t: &TestRepo, msg: &str) {
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", msg]);
}

/// `log -- PATH`: only the commits that changed the paths; a merge that took them
/// from one side is left out (git's history simplification); `--follow` goes on
/// through a rename of the one file.
#[test]
fn log_path_limited_follows_git_simplification_and_renames() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    t.write("labels/x.txt", "0 0.5 0.5 0.1 0.1\n");
    commit(&t, "one: a and x");
    t.write("b.txt", "b\n");
    commit(&t, "two: b only");
    t.write("labels/x.txt", "0 0.6 0.5 0.1 0.1\n");
    commit(&t, "three: x moved a box");
    t.ok(["switch", "-c", "side"]);
    t.write("b.txt", "b on side\n");
    commit(&t, "side: b");
    t.ok(["switch", "main"]);
    t.write("a.txt", "a on main\n");
    commit(&t, "four: a");
    t.ok(["merge", "side", "-m", "merge side"]);
    std::fs::rename(t.path("labels/x.txt"), t.path("labels/y.txt")).unwrap();
    commit(&t, "five: x renamed to y");
    let out = transcript(
        &t,
        &[
            &["log", "--oneline", "--", "labels/x.txt"],
            &["log", "--oneline", "--", "labels"],
            &["log", "--oneline", "--", "b.txt"],
            &["log", "--oneline", "--", "a.txt", "b.txt"],
            &["log", "--oneline", "--", "labels/y.txt"],
            &["log", "--oneline", "--follow", "--", "labels/y.txt"],
            &["log", "--oneline", "-n", "1", "--", "labels"],
            &["log", "--oneline", "--", "nosuch"],
        ],
    );
    snap!(t, "log_path_limited", out);
    // From a subdirectory, paths are relative to it, as in git.
    let r = t.ok_in(t.path("labels"), ["log", "--oneline", "--", "y.txt"]);
    assert_eq!(r.lines().len(), 1, "{r}");
    let r = t.run(["log", "--follow", "--", "a.txt", "b.txt"]);
    assert_eq!(r.code, 2, "{r}");
    let r = t.run(["log", "--follow"]);
    assert_eq!(r.code, 2, "{r}");
}

/// `show REV:PATH` prints the file as that revision holds it (`:PATH` as staged, a
/// directory as its names); `show --stat` lists sizes per file.
#[test]
fn show_rev_path_prints_the_blob_and_stat_lists_sizes() {
    let t = TestRepo::init();
    t.write("data.yaml", "names: [car]\n");
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    commit(&t, "one");
    t.write("labels/f1.txt", "0 0.6 0.5 0.1 0.1\n");
    t.write("labels/f2.txt", "0 0.1 0.1 0.1 0.1\n");
    commit(&t, "two");
    t.write("labels/f1.txt", "staged\n");
    t.ok(["add", "labels/f1.txt"]);
    t.write("labels/f1.txt", "in the worktree\n");
    let out = transcript(
        &t,
        &[
            &["show", "HEAD~1:labels/f1.txt"],
            &["show", "HEAD:labels/f1.txt"],
            &["show", ":labels/f1.txt"],
            &["show", "main:labels"],
            &["show", "HEAD:"],
            &["show", "--stat"],
        ],
    );
    snap!(t, "show_rev_path_and_stat", out);
    // From a subdirectory, ./ is relative to it, anything else to the root (as git).
    let r = t.ok_in(t.path("labels"), ["show", "HEAD~1:./f1.txt"]);
    assert_eq!(r.stdout, "0 0.5 0.5 0.1 0.1\n");
    let r = t.fails(["show", "HEAD~1:labels/f2.txt"]);
    assert_eq!(
        r.stderr,
        "error: path 'labels/f2.txt' does not exist in 'HEAD~1'\n"
    );
    let r = t.fails(["show", ":nosuch"]);
    assert_eq!(r.stderr, "error: path 'nosuch' is not in the index\n");
    let r = t.fails(["show", "nosuch:data.yaml"]);
    assert!(r.stderr.contains("unknown revision 'nosuch'"), "{r}");
    let r = t.run(["show", "--stat", "HEAD:data.yaml"]);
    assert_eq!(r.code, 2, "{r}");
}

/// `commit --amend` replaces HEAD's commit: same parents and author, the old message
/// unless a new one is given, the reflog says so; refused with nothing to amend and
/// during a merge.
#[test]
fn commit_amend_replaces_head_keeps_parents_and_message() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    commit(&t, "one");
    t.write("b.txt", "b\n");
    commit(&t, "two: add b");
    t.write("b.txt", "b fixed\n");
    t.ok(["add", "b.txt"]);
    t.ok(["commit", "--amend"]);
    t.ok(["commit", "--amend", "-m", "two: add b (reworded)"]);
    let out = transcript(
        &t,
        &[
            &["log", "--oneline"],
            &["reflog", "-3"],
            &["show", "HEAD:b.txt"],
        ],
    );
    snap!(t, "commit_amend", out);
    let fresh = TestRepo::init();
    let r = fresh.run(["commit", "--amend", "-m", "x"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no commit to amend"), "{r}");
    // During a merge with conflicts, amend is refused and nothing moves.
    t.ok(["switch", "-c", "side"]);
    t.write("a.txt", "side\n");
    commit(&t, "side a");
    t.ok(["switch", "main"]);
    t.write("a.txt", "main\n");
    commit(&t, "main a");
    let before = t.ok(["rev-parse", "HEAD"]).stdout;
    t.fails(["merge", "side"]);
    let r = t.fails(["commit", "--amend", "-m", "no"]);
    assert!(r.stderr.contains("merge"), "{r}");
    assert_eq!(t.ok(["rev-parse", "HEAD"]).stdout, before);
}

/// `branch -r`, `-a` and `-v` as git prints them: remote-tracking branches, names in
/// one column with -v, and `[ahead N, behind M]` against the remote-tracking branch.
#[test]
fn branch_all_remotes_verbose_show_tracking_and_ahead_behind() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv");
    t.write("a.txt", "a\n");
    commit(&t, "one");
    t.write("b.txt", "b\n");
    commit(&t, "two");
    t.ok(["branch", "topic"]);
    t.ok(["remote", "add", "origin", url.to_str().unwrap()]);
    t.ok(["push", "origin", "main"]);
    t.ok(["push", "origin", "topic"]);
    // main: one ahead of origin/main; topic: moved back one and given a commit of
    // its own, so one ahead and one behind; solo: no remote-tracking branch.
    t.write("c.txt", "c\n");
    commit(&t, "three");
    t.ok(["branch", "-f", "topic", "HEAD~2"]);
    t.ok(["switch", "topic"]);
    t.write("t.txt", "t\n");
    commit(&t, "topic work");
    t.ok(["branch", "solo"]);
    t.ok(["switch", "main"]);
    let out = transcript(
        &t,
        &[
            &["branch"],
            &["branch", "-v"],
            &["branch", "-r"],
            &["branch", "-r", "-v"],
            &["branch", "-a"],
            &["branch", "-a", "-v"],
        ],
    );
    snap!(t, "branch_all_remotes_verbose", out);
    let r = t.run(["branch", "-a", "newname"]);
    assert_eq!(r.code, 2, "{r}");
}

/// `ls-files` lists tracked files (with pathspecs, relative to a subdirectory as
/// git), `-m`/`-d`/`-o` the modified, deleted and untracked ones, `-s` modes and
/// ids, `-z` raw NUL-ended paths.
#[test]
fn ls_files_lists_tracked_modified_deleted_untracked() {
    let t = TestRepo::init();
    t.write(".dsvignore", "*.tmp\n");
    t.write("a.txt", "a\n");
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    t.write("labels/f2.txt", "0 0.5 0.5 0.1 0.1\n");
    t.write("images/f1.jpg", "jpeg");
    commit(&t, "one");
    t.write("labels/f1.txt", "0 0.6 0.5 0.1 0.1\n");
    t.remove("labels/f2.txt");
    t.write("labels/f3.txt", "new\n");
    t.write("scratch.tmp", "ignored\n");
    let out = transcript(
        &t,
        &[
            &["ls-files"],
            &["ls-files", "labels"],
            &["ls-files", "-m"],
            &["ls-files", "-d"],
            &["ls-files", "-o"],
            &["ls-files", "-s", "a.txt", "images"],
        ],
    );
    snap!(t, "ls_files", out);
    let r = t.ok_in(t.path("labels"), ["ls-files"]);
    assert_eq!(r.stdout, "f1.txt\nf2.txt\n");
    let r = t.ok_in(t.path("labels"), ["ls-files", "../a.txt"]);
    assert_eq!(r.stdout, "../a.txt\n");
    let r = t.ok(["ls-files", "-z", "labels"]);
    assert_eq!(r.stdout, "labels/f1.txt\0labels/f2.txt\0");
}

/// `mv` renames in the working tree and the index at once (files and directories,
/// into an existing directory), and refuses to overwrite without -f, an untracked
/// source, and a directory into itself, changing nothing.
#[test]
fn mv_moves_files_and_directories_and_refuses_to_overwrite() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    t.write("b.txt", "b\n");
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    t.write("archive/old.txt", "old\n");
    commit(&t, "one");
    t.ok(["mv", "a.txt", "c.txt"]);
    t.ok(["mv", "labels", "annotations"]);
    t.ok(["mv", "-v", "c.txt", "annotations/f1.txt", "archive"]);
    let out = transcript(&t, &[&["status", "--porcelain"], &["ls-files"]]);
    snap!(t, "mv", out);
    assert_eq!(t.read_string("archive/c.txt"), "a\n");
    assert!(!t.exists("labels"));
    t.write("untracked.txt", "u\n");
    let before = t.ok(["status", "--porcelain"]).stdout;
    let r = t.fails(["mv", "b.txt", "archive/old.txt"]);
    assert_eq!(
        r.stderr,
        "error: destination exists, source=b.txt, destination=archive/old.txt (use -f to overwrite a file)\n"
    );
    let r = t.fails(["mv", "untracked.txt", "x.txt"]);
    assert_eq!(
        r.stderr,
        "error: not under version control, source=untracked.txt\n"
    );
    let r = t.fails(["mv", "archive", "archive/inner"]);
    assert!(
        r.stderr.contains("cannot move directory over itself"),
        "{r}"
    );
    let r = t.fails(["mv", "b.txt", "nodir/b.txt"]);
    assert!(
        r.stderr.contains("destination directory does not exist"),
        "{r}"
    );
    assert_eq!(t.ok(["status", "--porcelain"]).stdout, before);
    t.ok(["mv", "-f", "b.txt", "archive/old.txt"]);
    assert_eq!(t.read_string("archive/old.txt"), "b\n");
    let r = t.ok(["ls-files", "archive"]);
    assert_eq!(r.stdout, "archive/c.txt\narchive/f1.txt\narchive/old.txt\n");
    t.ok(["commit", "-m", "moved"]);
    assert_eq!(t.ok(["status", "--porcelain"]).stdout, "?? untracked.txt\n");
}

/// `clean` refuses without -n or -f (git's clean.requireForce); -n lists, -f removes
/// untracked files, -d untracked directories, -x ignored files too.
#[test]
fn clean_needs_force_and_honours_dsvignore_unless_x() {
    let t = TestRepo::init();
    t.write(".dsvignore", "*.tmp\n");
    t.write("a.txt", "a\n");
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    commit(&t, "one");
    t.write("junk.txt", "j\n");
    t.write("labels/extra.txt", "e\n");
    t.write("cache/x.bin", "x\n");
    t.write("cache/deep/y.bin", "y\n");
    t.write("scratch.tmp", "s\n");
    let r = t.run(["clean"]);
    assert_eq!(r.code, 2, "{r}");
    let out = transcript(
        &t,
        &[
            &["clean", "-n"],
            &["clean", "-n", "-d"],
            &["clean", "-n", "-d", "-x"],
            &["clean", "-n", "labels"],
            &["clean", "-f"],
            &["status", "--porcelain", "-u"],
            &["clean", "-f", "-d"],
            &["clean", "-f", "-x"],
        ],
    );
    snap!(t, "clean", out);
    assert!(!t.exists("cache"));
    assert!(!t.exists("scratch.tmp"));
    assert!(t.exists("a.txt") && t.exists("labels/f1.txt") && t.exists(".dsvignore"));
}

/// `log --graph` draws lanes and merges as git does; `log --stat` lists each
/// commit's files with sizes (nothing for a merge, as git).
#[test]
fn log_graph_and_stat_draw_merges_and_file_sizes() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    commit(&t, "base");
    t.ok(["switch", "-c", "side"]);
    t.write("s.txt", "side\n");
    commit(&t, "side work");
    t.ok(["switch", "main"]);
    t.write("a.txt", "a on main\n");
    commit(&t, "main work");
    t.ok(["merge", "side", "-m", "merge side"]);
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    commit(&t, "labels");
    let out = transcript(
        &t,
        &[
            &["log", "--graph", "--oneline"],
            &["log", "--graph", "--oneline", "--all"],
            &["log", "--graph", "-n", "3"],
            &["log", "--stat", "-n", "3"],
            &["log", "--oneline", "--stat", "-n", "2"],
        ],
    );
    snap!(t, "log_graph_and_stat", out);
}

/// `log --stat` ends each commit's file list with what it did to the dataset: frames
/// added, removed and changed, objects added, removed and changed (the figures of
/// the hook payload); nothing for a merge, as git.
#[test]
fn log_stat_adds_frame_and_object_counts_per_commit_not_for_merges() {
    let t = TestRepo::init();
    t.write("data.yaml", "names: [car, person]\n");
    t.write("images/frame_001.jpg", "\u{ff}\u{d8} jpeg frame one");
    t.write("images/frame_002.jpg", "\u{ff}\u{d8} jpeg frame two");
    t.write("labels/frame_001.txt", "0 0.50 0.50 0.10 0.10\n");
    t.write("labels/frame_002.txt", "1 0.20 0.30 0.10 0.20\n");
    commit(&t, "first labels");
    t.ok(["switch", "-c", "side"]);
    t.write("notes.txt", "n\n");
    commit(&t, "side notes");
    t.ok(["switch", "main"]);
    // A box moved and one added in frame 1; frame 2 gone; frame 3 new, unlabelled.
    t.write(
        "labels/frame_001.txt",
        "0 0.51 0.50 0.10 0.10\n1 0.10 0.10 0.05 0.05\n",
    );
    t.remove("images/frame_002.jpg");
    t.remove("labels/frame_002.txt");
    t.write("images/frame_003.jpg", "\u{ff}\u{d8} jpeg frame three");
    commit(&t, "relabel");
    t.ok(["merge", "side", "-m", "merge side"]);
    let out = transcript(
        &t,
        &[
            &["log", "--stat"],
            &["log", "--oneline", "--stat", "-n", "2"],
        ],
    );
    snap!(t, "log_stat_label_counts", out);
}

/// `status --porcelain=v2` is git's v2 format (`1 XY N... mH mI mW hH hI PATH`,
/// `2 ... R100 PATH\tORIG` for a rename, `u` for an unresolved conflict, `? PATH`), with `# branch.*` headers and the
/// upstream's ahead/behind under -b; `-sb` prints git's `## ` line.
#[test]
fn status_porcelain_v2_with_branch_headers() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv");
    t.write("a.txt", "a\n");
    t.write("run.sh", "#!/bin/sh\n");
    t.write("gone.txt", "g\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.path("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    commit(&t, "one");
    t.ok(["remote", "add", "origin", url.to_str().unwrap()]);
    t.ok(["push", "origin", "main"]);
    t.write("b.txt", "b\n");
    commit(&t, "two");
    t.write("a.txt", "a staged\n");
    t.ok(["add", "a.txt"]);
    t.write("a.txt", "a in the worktree\n");
    t.write("new.txt", "n\n");
    t.ok(["add", "new.txt"]);
    t.remove("gone.txt");
    t.write("untracked file.txt", "u\n");
    t.ok(["mv", "run.sh", "start.sh"]);
    let out = transcript(
        &t,
        &[
            &["status", "--porcelain=v2", "--branch"],
            &["status", "--porcelain=v2"],
            &["status", "-sb"],
        ],
    );
    snap!(t, "status_porcelain_v2", out);
    let r = t.ok(["status", "--porcelain=v2", "-z"]);
    assert!(r.stdout_bytes.ends_with(b"? untracked file.txt\0"), "{r}");
    assert!(
        r.stdout.contains(" R100 start.sh\0run.sh\0"),
        "a rename is PATH NUL ORIG NUL: {r}"
    );
    // A conflict: `u` with the base, ours and theirs modes and ids.
    let c = TestRepo::init();
    c.write("l.txt", "base\n");
    commit(&c, "base");
    c.ok(["switch", "-c", "side"]);
    c.write("l.txt", "side\n");
    commit(&c, "side");
    c.ok(["switch", "main"]);
    c.write("l.txt", "main\n");
    commit(&c, "main");
    c.fails(["merge", "side"]);
    let r = c.ok(["status", "--porcelain=v2"]);
    let line = r
        .lines()
        .into_iter()
        .find(|l| l.starts_with("u "))
        .expect("a u line");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 11, "{line}");
    assert_eq!(
        &fields[..7],
        ["u", "UU", "N...", "100644", "100644", "100644", "100644"]
    );
    assert_eq!(fields[10], "l.txt");
}

/// A staged rename (a deletion and an addition of the same content) shows as git
/// shows it: `R  OLD -> NEW` in `-s` and porcelain v1 (`RM` when the new path is also
/// changed in the working tree), `R  NEW` NUL `OLD` NUL with -z, and
/// `renamed:    OLD -> NEW` in the long format; not as a `D` and an `A`.
#[test]
fn status_short_porcelain_v1_and_long_show_staged_renames() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    t.write("c.txt", "c\n");
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    commit(&t, "one");
    t.write("docs/keep.txt", "k\n");
    commit(&t, "two");
    t.ok(["mv", "a.txt", "docs/a.txt"]);
    t.ok(["mv", "labels/f1.txt", "labels/f 1.txt"]);
    t.write("labels/f 1.txt", "0 0.6 0.5 0.1 0.1\n");
    t.write("c.txt", "c staged\n");
    t.ok(["add", "c.txt"]);
    let out = transcript(
        &t,
        &[&["status"], &["status", "-s"], &["status", "--porcelain"]],
    );
    snap!(t, "status_renames", out);
    let r = t.ok(["status", "--porcelain", "-z"]);
    assert_eq!(
        r.stdout_bytes,
        b"M  c.txt\0R  docs/a.txt\0a.txt\0RM labels/f 1.txt\0labels/f1.txt\0"
    );
}

/// `tag -a NAME -m MSG`: an annotated tag; `show TAG` prints its tagger, date and
/// message before the commit; a lightweight `tag -f` or `tag -d` drops it.
#[test]
fn tag_annotated_show_prints_tagger_and_message() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    commit(&t, "one");
    t.ok([
        "tag",
        "-a",
        "v1",
        "-m",
        "First labelled release",
        "-m",
        "Reviewed.",
    ]);
    t.ok(["tag", "light"]);
    let out = transcript(
        &t,
        &[
            &["show", "v1"],
            &["show", "light"],
            &["tag"],
            &["tag", "--json"],
        ],
    );
    snap!(t, "tag_annotated", out);
    let r = t.run(["tag", "-a", "v2"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(!t.ok(["tag"]).stdout.contains("v2"));
    let r = t.fails(["tag", "-a", "v1", "-m", "again"]);
    assert!(r.stderr.contains("tag 'v1' already exists"), "{r}");
    t.ok(["tag", "-f", "v1"]);
    assert!(!t.ok(["show", "v1"]).stdout.starts_with("tag v1"));
    t.ok(["tag", "-a", "v3", "-m", "three"]);
    t.ok(["tag", "-d", "v3"]);
    assert!(!t.exists(".dsv/tag-annotations/v3"));
    // A damaged annotation is an error naming the file, not a panic.
    t.ok(["tag", "-a", "v4", "-m", "four"]);
    t.write(".dsv/tag-annotations/v4", "{not json");
    let r = t.fails(["show", "v4"]);
    assert!(
        r.stderr
            .contains("tag-annotations/v4: not a tag annotation"),
        "{r}"
    );
}

/// `stash` puts edits to tracked files aside as commits on refs/stash (the list is
/// its reflog), `pop`/`apply` bring them back (new files staged, as git), `drop`
/// and `show` work on `stash@{N}`; a pop whose paths changed meanwhile refuses and
/// leaves the working tree, the index and the stash list as they were; `gc` keeps
/// stashed content.
#[test]
fn stash_push_pop_apply_list_drop_show_and_refused_pop_changes_nothing() {
    let t = TestRepo::init();
    t.write("labels/f1.txt", "0 0.5 0.5 0.1 0.1\n");
    t.write("labels/f2.txt", "0 0.2 0.2 0.1 0.1\n");
    commit(&t, "one");
    t.write("labels/f1.txt", "0 0.6 0.5 0.1 0.1\n");
    t.write("labels/f3.txt", "1 0.3 0.3 0.1 0.1\n");
    t.ok(["add", "labels/f3.txt"]);
    t.remove("labels/f2.txt");
    t.write("notes.txt", "untracked stays\n");
    t.ok(["stash", "push", "-m", "half relabel"]);
    assert_eq!(t.ok(["status", "--porcelain"]).stdout, "?? notes.txt\n");
    t.write("labels/f2.txt", "0 0.9 0.9 0.1 0.1\n");
    t.ok(["stash"]);
    t.ok(["gc"]);
    let out = transcript(
        &t,
        &[
            &["stash", "list"],
            &["stash", "show"],
            &["stash", "show", "stash@{1}"],
            &["stash", "drop"],
            &["stash", "list"],
            &["stash", "apply"],
            &["status", "--porcelain"],
        ],
    );
    snap!(t, "stash", out);
    assert_eq!(t.read_string("labels/f1.txt"), "0 0.6 0.5 0.1 0.1\n");
    // Popping over the applied changes with f1 edited since: f1 is neither as the
    // stash found it nor as the stash has it, so pop refuses and changes nothing.
    t.write("labels/f1.txt", "0 0.7 0.5 0.1 0.1\n");
    let status = t.ok(["status", "--porcelain"]).stdout;
    let list = t.ok(["stash", "list"]).stdout;
    let r = t.fails(["stash", "pop"]);
    assert_eq!(
        r.stderr,
        "error: stash@{0} does not apply: local changes or untracked files in the way at labels/f1.txt; nothing was changed (commit, stash or remove them first)\n"
    );
    assert_eq!(t.ok(["status", "--porcelain"]).stdout, status);
    assert_eq!(t.ok(["stash", "list"]).stdout, list);
    assert_eq!(t.read_string("labels/f1.txt"), "0 0.7 0.5 0.1 0.1\n");
    t.ok(["restore", "labels/f1.txt"]);
    t.ok(["rm", "--cached", "labels/f3.txt"]);
    t.remove("labels/f3.txt");
    t.ok(["restore", "labels/f2.txt"]);
    let r = t.ok(["stash", "pop"]);
    assert!(r.stdout.starts_with("Dropped stash@{0}"), "{r}");
    assert_eq!(t.ok(["stash", "list"]).stdout, "");
    assert!(!t.exists(".dsv/refs/stash"));
    let r = t.fails(["stash", "drop"]);
    assert_eq!(r.stderr, "error: no stash entries\n");
    let r = t.fails(["stash", "show", "stash@{x}"]);
    assert!(r.stderr.contains("not a stash reference"), "{r}");
    let fresh = TestRepo::init();
    let r = fresh.fails(["stash"]);
    assert!(r.stderr.contains("no commit yet"), "{r}");
}

/// A damaged stash list (a malformed line in logs/refs/stash) is an error naming the
/// file and line, for every stash command, and nothing is changed.
#[test]
fn stash_with_a_damaged_list_names_the_file_and_changes_nothing() {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    commit(&t, "one");
    t.write("a.txt", "edited\n");
    t.ok(["stash"]);
    t.write(".dsv/logs/refs/stash", "not a reflog line\n");
    for args in [
        &["stash", "list"][..],
        &["stash", "pop"],
        &["stash", "drop"],
        &["stash", "show"],
    ] {
        let r = t.fails(args);
        assert!(
            r.stderr
                .contains("logs/refs/stash:1: malformed reflog line"),
            "{args:?}: {r}"
        );
    }
    assert_eq!(t.read_string("a.txt"), "a\n");
    assert_eq!(t.read_string(".dsv/logs/refs/stash"), "not a reflog line\n");
}

/// In a partial clone (`clone --no-checkout`: no label file contents), `log --stat`
/// still lists every commit and says the frame counts are not available, instead
/// of failing on the first label file it cannot read.
#[test]
fn log_stat_in_a_partial_clone_says_counts_are_not_available() {
    let t = TestRepo::init();
    t.write("data.yaml", "names: [car]\n");
    t.write("images/frame_001.jpg", "\u{ff}\u{d8} jpeg frame one");
    t.write("labels/frame_001.txt", "0 0.50 0.50 0.10 0.10\n");
    commit(&t, "first labels");
    t.write("labels/frame_001.txt", "0 0.60 0.50 0.10 0.10\n");
    commit(&t, "relabel");
    let remote = t.home().join("remote");
    t.ok([
        "remote",
        "add",
        "origin",
        &format!("file://{}", remote.display()),
    ]);
    t.ok(["push"]);
    t.ok_in(
        t.home(),
        [
            "clone",
            "--no-checkout",
            &format!("file://{}", remote.display()),
            "mirror",
        ],
    );
    let out = t.ok_in(t.home().join("mirror"), ["log", "--stat"]).stdout;
    assert!(
        out.contains("relabel") && out.contains("first labels"),
        "{out}"
    );
    assert!(
        out.contains("frames: not counted (label files not fetched: partial repository)"),
        "{out}"
    );
}
