#!/usr/bin/env bash
# Prints the git files the Worker's commit stamp (`/api/health`) depends on, one per line, for
# the Makefile: HEAD (a checkout), the branch it points to (a commit on that branch) and
# packed-refs (where a branch lives after `git gc`); a branch that is only packed is given as its
# directory, where the next commit creates it. Prints nothing outside a git checkout or without
# git. build.rs watches the same list (`commit_inputs`).
set -uo pipefail
cd "$(dirname "$0")/.."
git rev-parse --git-dir >/dev/null 2>&1 || exit 0
for p in HEAD packed-refs; do
  f=$(git rev-parse --git-path "$p") && [ -e "$f" ] && echo "$f"
done
if ref=$(git symbolic-ref -q HEAD) && f=$(git rev-parse --git-path "$ref"); then
  while [ ! -e "$f" ] && [ "$f" != "$(dirname "$f")" ]; do f=$(dirname "$f"); done
  [ -e "$f" ] && echo "$f"
fi
exit 0
