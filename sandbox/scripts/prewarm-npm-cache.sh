#!/bin/sh
# Fills the npm cache with every template's dependencies, so that the first
# `npm install --prefer-offline` in a new workspace is served from the cache.
#
# Usage: prewarm-npm-cache.sh [TEMPLATES_DIR]   (default: /templates)
# The cache is npm's usual one: set NPM_CONFIG_CACHE to choose it. Each template is
# installed from its committed package-lock.json in a throwaway copy, so the
# templates directory itself is left untouched. Used by SandboxDockerfile and usable
# as is by `make dev`.
#
# `npm install` rather than `npm ci`: the lockfiles were generated against a registry
# that lacked some non-Linux platform binaries of the newest rollup and Tailwind
# releases, and `npm ci` refuses a lockfile without those optional entries. `npm install`
# still takes every version the lockfile pins.
set -eu

templates=${1:-/templates}
work=$(mktemp -d "${TMPDIR:-/tmp}/byte-prewarm.XXXXXX")
trap 'rm -rf "$work"' EXIT

found=0
for dir in "$templates"/*/; do
  [ -f "$dir/package-lock.json" ] || continue
  name=$(basename "$dir")
  echo "prewarm: $name"
  mkdir -p "$work/$name"
  cp "$dir/package.json" "$dir/package-lock.json" "$work/$name/"
  (cd "$work/$name" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
  found=$((found + 1))
done

if [ "$found" -eq 0 ]; then
  echo "prewarm: no template with a package-lock.json under $templates" >&2
  exit 1
fi
echo "prewarm: cached dependencies of $found template(s) in ${NPM_CONFIG_CACHE:-$HOME/.npm}"
