#!/bin/sh
# Retrain when a new dataset version lands.
#
# Run by a dsv hook (payload on stdin, DSV_* variables set), by `dsv watch --exec`
# in a mirror of the remote, by a CI job, or by hand:
#     DSV_REPO=/data/set DSV_COMMIT=$(cat /data/set/.dsv/refs/heads/main) ./retrain.sh < /dev/null
#
# 1. reads the payload (commit, repository);
# 2. materializes that commit into its own directory with `dsv ls-tree` and
#    `dsv cat-object --raw` (the working tree of the repository is not touched, so
#    the labellers can go on working while this runs);
# 3. runs the training step (train.sh) on it and writes model.json.
#
# A commit is trained once: a second delivery of the same commit (a retry after a
# crash, say) finds model.json and stops. RETRAIN_DIR (default ~/.cache/dsv-retrain)
# holds one directory per commit. DSV (default `dsv`) is the dsv binary.
set -eu

dsv=${DSV:-dsv}
here=$(cd "$(dirname "$0")" && pwd)
payload=$(cat)

# The DSV_* variables are set for hooks; without them, read the payload.
field() {
    printf '%s' "$payload" | tr ',' '\n' | sed -n "s/^.*\"$1\":\"\([^\"]*\)\".*$/\1/p" | head -n 1
}
commit=${DSV_COMMIT:-$(field commit)}
repo=${DSV_REPO:-$(field root)}
if [ -z "$commit" ] || [ -z "$repo" ]; then
    echo "retrain.sh: no commit or repository (set DSV_COMMIT and DSV_REPO, or pipe a payload)" >&2
    exit 2
fi

work=${RETRAIN_DIR:-$HOME/.cache/dsv-retrain}/$commit
if [ -e "$work/model.json" ]; then
    echo "retrain.sh: $commit already trained ($work/model.json)"
    exit 0
fi
rm -rf "$work/data"
mkdir -p "$work/data"
printf '%s\n' "$payload" > "$work/payload.json"

# A metadata-only mirror (`dsv clone --no-checkout`, what `dsv watch` runs in) has
# the commits and trees but not the file data: checking the commit out downloads
# what it needs (and leaves the mirror's own working tree at that commit).
if [ -e "$repo/.dsv/partial" ]; then
    "$dsv" -C "$repo" -q checkout --force "$commit"
fi

# ls-tree -r prints "kind id size<TAB>path" for every file of the commit.
tab=$(printf '\t')
"$dsv" -C "$repo" ls-tree -r "$commit" | while IFS="$tab" read -r meta path; do
    set -- $meta
    case $1 in
        file)
            mkdir -p "$work/data/$(dirname "$path")"
            "$dsv" -C "$repo" cat-object --raw "$2" > "$work/data/$path"
            ;;
    esac
done
echo "retrain.sh: materialized $(find "$work/data" -type f | wc -l | tr -d ' ') files of $commit"

# Write the model under a temporary name: model.json exists only once training finished.
"$here/train.sh" "$work/data" > "$work/model.json.tmp"
mv "$work/model.json.tmp" "$work/model.json"
echo "retrain.sh: trained $work/model.json"
cat "$work/model.json"
