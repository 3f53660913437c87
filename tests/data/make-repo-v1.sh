#!/usr/bin/env bash
# Writes tests/data/repo-v1: a repository in on-disk format version 1.
#
# This was run ONCE, with the build that introduced format 1. Do not run it again
# to "update" the fixture: the point of the fixture is that it was written by an
# old build (see README.md). It refuses to overwrite an existing repo-v1.
#
# Usage: tests/data/make-repo-v1.sh [path/to/dsv]   (default: target/debug/dsv)
# Only the CLI and POSIX tools (printf, seq, mawk/gawk) are used; the content
# is fully deterministic and tests/it/corruption.rs regenerates it to compare.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/repo-v1"
dsv="$(realpath "${1:-$here/../../target/debug/dsv}")"
if [ -e "$dest" ]; then
    echo "$dest exists; the format-1 fixture must never be regenerated" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for v in $(env | sed -n 's/^\(\(DSV\|GIT\)_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" TZ=UTC LC_ALL=C NO_COLOR=1
export DSV_AUTHOR_NAME="Format Fixture" DSV_AUTHOR_EMAIL="fixture@example.com"
mkdir -p "$HOME"

r="$tmp/repo-v1"
DSV_AUTHOR_DATE=1700000000 "$dsv" -q init "$r"
cd "$r"

# Commit 1 (tagged v1.0): small raw objects, a chunked zstd-compressed file, an
# executable, a symlink, and a directory large enough to be stored as a sharded tree.
printf 'dsv format v1 fixture\n' > README.txt
mkdir labels frames shard
printf 'id,label\n1,cat\n2,dog\n3,cat\n' > labels/train.csv
printf 'id,label\n4,dog\n' > labels/val.csv
awk 'BEGIN { for (i = 1; i <= 120000; i++) printf "frame %06d pixel %d\n", i, (i * 7919) % 65536 }' > frames/video.raw
printf '#!/bin/sh\necho train\n' > run.sh
chmod 755 run.sh
ln -s labels/train.csv latest
awk -v dir=shard 'BEGIN { for (i = 0; i < 4200; i++) { f = sprintf("%s/%05d.txt", dir, i); printf "item %d\n", i > f; close(f) } }'
export DSV_AUTHOR_DATE=1700000000
"$dsv" -q add -A
"$dsv" -q commit -m "initial dataset"
"$dsv" -q tag v1.0

# Commit 2 on main: edit, delete, add; ten lines in the middle of the chunked file change.
export DSV_AUTHOR_DATE=1700003600
printf '5,bird\n' >> labels/train.csv
rm labels/val.csv
printf 'id,label\n6,cat\n' > labels/test.csv
awk 'BEGIN { for (i = 1; i <= 120000; i++) if (i >= 60000 && i < 60010) printf "frame %06d edited\n", i; else printf "frame %06d pixel %d\n", i, (i * 7919) % 65536 }' > frames/video.raw
"$dsv" -q add -A
"$dsv" -q commit -m "edit labels and frames"

# Commit 3 on branch experiment, forked from v1.0.
export DSV_AUTHOR_DATE=1700007200
"$dsv" -q switch -c experiment v1.0
printf 'try a new split\n' > notes.txt
"$dsv" -q add notes.txt
"$dsv" -q commit -m "experiment notes"
"$dsv" -q switch main

# Keep only the repository: the test restores the worktree with `dsv reset --hard`.
# The lock file is runtime state, not part of the format.
find . -mindepth 1 -maxdepth 1 ! -name .dsv -exec rm -rf {} +
rm -f .dsv/lock
if [ -n "$(find .dsv -name '*.dsv-tmp-*')" ] || [ -n "$(find .dsv -type d -empty)" ]; then
    echo "unexpected temporary files or empty directories (git would drop them):" >&2
    find .dsv -name '*.dsv-tmp-*' -o -type d -empty >&2
    exit 1
fi
cp -a "$r" "$dest"
echo "wrote $dest"
