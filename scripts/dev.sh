#!/usr/bin/env bash
# `make dev`: byte-sandbox and wrangler dev side by side; Ctrl-C (or either one exiting) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
SANDBOX_PORT=${SANDBOX_PORT:-8790}
SANDBOX_SECRET=$(grep '^SANDBOX_SECRET=' .dev.vars | cut -d= -f2-)
mkdir -p .wrangler/workspaces
cargo build -q -p byte-sandbox
SANDBOX_SECRET=$SANDBOX_SECRET SANDBOX_LISTEN=127.0.0.1:$SANDBOX_PORT SANDBOX_ROOT=$PWD/.wrangler/workspaces \
  SANDBOX_TEMPLATES_DIR=$PWD/templates target/debug/byte-sandbox &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; wait $sandbox 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$SANDBOX_PORT/health" >/dev/null && break; sleep 0.1; done
echo "[dev] byte-sandbox on http://127.0.0.1:$SANDBOX_PORT"
echo "[dev] Byte Platform on http://localhost:$PORT  (previews at http://<app>.preview.localhost:$PORT; Ctrl-C stops both)"
echo "[dev] verification mail goes to the outbox: http://localhost:$PORT/api/dev/outbox (links are also logged)"
"$WRANGLER" dev --port "$PORT" --ip 127.0.0.1 --show-interactive-dev-session=false \
  --var SANDBOX_BACKEND:local --var "SANDBOX_URL:http://127.0.0.1:$SANDBOX_PORT" \
  --var MAIL_BACKEND:outbox &
wrangler=$!
trap 'kill $wrangler $sandbox 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
wait -n $wrangler $sandbox
