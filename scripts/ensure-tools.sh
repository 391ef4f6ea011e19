#!/usr/bin/env bash
# Installs whatever the build needs and is missing, pinned to the versions the project uses, and
# prints the environment worker-build needs. Idempotent: a second run only checks versions.
#
# Offline traps handled here (see DESIGN.md): worker-build would download wasm-bindgen and esbuild
# from GitHub, so we point it at a wasm-bindgen built from crates.io and the esbuild binary shipped
# in the npm package @esbuild/linux-x64. Debian's wasm-opt (108) cannot parse today's wasm, so the
# build uses --no-opt; the release profile already optimizes for size.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
mkdir -p "$TOOLS/bin"
log() { echo "[tools] $*" >&2; }

WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
WORKER_BUILD_VERSION=0.8.7

# A tool counts as present if .tools or PATH has it at the wanted version.
find_tool() { # name version-substring
  local name=$1 want=$2 c
  for c in "$TOOLS/bin/$name" "$(command -v "$name" 2>/dev/null || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version 2>/dev/null | grep -q "$want"; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if ! command -v cargo >/dev/null; then
  log "cargo is missing: this machine kind ships Rust via rustup"; exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >&2
fi

WASM_BINDGEN_BIN=$(find_tool wasm-bindgen "$WASM_BINDGEN_VERSION") || {
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (the version in Cargo.lock; a few minutes)"
  # Not --locked: its lockfile pins a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$TOOLS" >&2
  WASM_BINDGEN_BIN=$TOOLS/bin/wasm-bindgen
}
WORKER_BUILD_BIN=$(find_tool worker-build "$WORKER_BUILD_VERSION") || {
  log "installing worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --root "$TOOLS" --locked >&2
  WORKER_BUILD_BIN=$TOOLS/bin/worker-build
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm from Debian"
  apt-get update -qq >&2 && apt-get install -y -qq nodejs npm >&2
fi
# byte-sandbox runs every workspace command inside a bubblewrap jail and refuses to start
# without it (sandbox/src/jail.rs); prlimit (util-linux) sets the jail's limits.
if ! command -v bwrap >/dev/null || ! command -v prlimit >/dev/null; then
  log "installing bubblewrap (the sandbox jail) from Debian"
  apt-get update -qq >&2 && apt-get install -y -qq bubblewrap util-linux >&2
fi
# npm install only when package.json or the lock changed since the last install.
stamp=node_modules/.byte-install-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  log "installing npm packages (wrangler, esbuild)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
  touch "$stamp"
fi

# schemathesis (the contract fuzzer of tests/it/openapi.rs), pinned, in a virtualenv of its own.
SCHEMATHESIS_VERSION=4.32.5
if ! "$TOOLS/venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into .tools/venv"
  command -v python3 >/dev/null || { apt-get update -qq >&2 && apt-get install -y -qq python3 python3-venv >&2; }
  [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv" >&2
  "$TOOLS/venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

# Debian's Chromium for the web app's browser tests (Playwright drives it through executablePath
# and never downloads a browser of its own).
if ! command -v chromium >/dev/null; then
  log "installing Chromium from Debian (browser tests)"
  apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
fi

cat <<ENV
export WASM_BINDGEN_BIN=$WASM_BINDGEN_BIN
export WORKER_BUILD_BIN=$WORKER_BUILD_BIN
export ESBUILD_BIN=$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild
export WRANGLER=$ROOT/node_modules/.bin/wrangler
export WRANGLER_SEND_METRICS=false
export CHROMIUM_BIN=$(command -v chromium)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
ENV
