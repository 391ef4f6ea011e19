#!/usr/bin/env bash
# The web app's API types, generated from the OpenAPI document the Worker serves
# (src/domain/openapi.rs, printed on the host by `cargo run --example openapi`) with the pinned
# `openapi-typescript` of frontend/package.json.
#
#   scripts/api-types.sh          regenerate frontend/src/api/schema.d.ts (rewritten only if it changed)
#   scripts/api-types.sh --check  fail, saying what to do, when the committed file differs from a
#                                 fresh generation (drift); `make test` runs this
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=frontend/src/api/schema.d.ts
WORK=target/api-types
mkdir -p "$WORK"
cargo run -q --example openapi > "$WORK/openapi.json"
(cd frontend && node_modules/.bin/openapi-typescript "../$WORK/openapi.json" -o "../$WORK/schema.d.ts" --empty-objects-unknown >/dev/null)

if [[ "${1:-}" == "--check" ]]; then
  # The committed (or staged) file; outside a git checkout, the file as it is.
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git show ":$TARGET" > "$WORK/committed.d.ts" 2>/dev/null || : > "$WORK/committed.d.ts"
  elif [[ -f "$TARGET" ]]; then
    cp "$TARGET" "$WORK/committed.d.ts"
  else
    : > "$WORK/committed.d.ts"
  fi
  if ! cmp -s "$WORK/committed.d.ts" "$WORK/schema.d.ts"; then
    echo "[api-types] $TARGET is out of date: the OpenAPI document (src/domain/openapi.rs) changed." >&2
    echo "[api-types] Run \`make api-types\` (or \`make build\`) and commit $TARGET. The difference:" >&2
    diff -u "$WORK/committed.d.ts" "$WORK/schema.d.ts" | head -40 >&2 || true
    exit 1
  fi
  echo "[api-types] $TARGET matches the OpenAPI document"
  exit 0
fi

if ! cmp -s "$TARGET" "$WORK/schema.d.ts"; then
  cp "$WORK/schema.d.ts" "$TARGET"
  echo "[api-types] regenerated $TARGET"
fi
