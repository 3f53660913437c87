#!/bin/sh
# NOT dsv. A git-backed stand-in for the dsv CLI contract, used only to
# exercise bench/core.py end to end before the real binary exists:
#   python3 bench/core.py --quick --dsv bench/fake_dsv.sh
# Its figures mean nothing about dsv.
set -e
if [ "$1" = "-C" ]; then cd "$2"; shift 2; fi
export GIT_DIR="$PWD/.dsv" GIT_WORK_TREE="$PWD" GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="${DSV_AUTHOR_NAME:-fake}" GIT_AUTHOR_EMAIL="${DSV_AUTHOR_EMAIL:-fake@example.com}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_0=gc.auto GIT_CONFIG_VALUE_0=0 GIT_CONFIG_KEY_1=maintenance.auto GIT_CONFIG_VALUE_1=false
cmd="$1"; shift
case "$cmd" in
  init)    git init -q -b main && echo /.dsv/ >> "$GIT_DIR/info/exclude" ;;
  add)     git add "$@" ;;
  commit)  git commit -q "$@" ;;
  status)  git status "$@" ;;
  switch)  git switch -q "$@" ;;
  reset)   git reset -q "$@" ;;
  log)     git log "$@" ;;
  --version) echo "fake-dsv (git-backed stand-in, not dsv)" ;;
  *) echo "fake dsv: unknown command: $cmd" >&2; exit 2 ;;
esac
