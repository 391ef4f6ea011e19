# Byte Platform. Two commands do everything on a fresh machine:
#   make dev    install what is missing, build, migrate, run on http://localhost:8787
#   make test   the whole suite (unit, integration against wrangler dev, sandbox)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PORT ?= 8787
TOOLS_ENV = eval "$$(scripts/ensure-tools.sh)"
# build.rs embeds the template catalog (names, commands, file lists) and the commit: the bundle
# depends on every template file and directory (a directory changes when a file is added or
# removed; `templates/`, since `templates` names the publishing target below) and on the git
# files a new commit changes (none outside a git checkout).
TEMPLATE_SOURCES := $(shell find templates/ \( -name node_modules -o -name dist -o -name .git \) -prune -o -print)
GIT_STAMP_INPUTS := $(shell scripts/git-stamp-inputs.sh)
WORKER_SOURCES := $(shell find src protocol -name '*.rs') Cargo.toml protocol/Cargo.toml Cargo.lock build.rs $(wildcard migrations/*.sql) $(TEMPLATE_SOURCES) $(GIT_STAMP_INPUTS)

.PHONY: dev test build tools migrate secrets templates lint fmt bench clean web api-types

tools:
	@$(TOOLS_ENV) && echo "[tools] ready"

## The Worker bundle (rebuilt only when its sources change).
build: build/worker/shim.mjs frontend/dist/index.html

build/worker/shim.mjs: $(WORKER_SOURCES) package.json
	@$(TOOLS_ENV) && "$$WORKER_BUILD_BIN" --release --no-opt
	@touch $@

## The web app (frontend/, its own package.json): `npm ci` only when its lock changed, then
## `vite build` into frontend/dist (served by the ASSETS binding), which prints the bundle sizes
## and fails when the initial JavaScript is over budget.
FRONTEND_SOURCES := $(shell find frontend/src frontend/public frontend/scripts -type f ! -name '*.test.ts' 2>/dev/null) \
	frontend/index.html frontend/vite.config.ts frontend/tsconfig.json frontend/package.json
FRONTEND_STAMP := frontend/node_modules/.byte-install-stamp

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	@echo "[web] installing the web app's npm packages"
	@cd frontend && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

## The web app's API types, generated from the OpenAPI document (src/domain/openapi.rs, printed
## on the host by examples/openapi.rs) whenever the Rust sources change; the file is committed,
## and `make test` fails when it drifts from a fresh generation.
API_TYPES := frontend/src/api/schema.d.ts
API_SOURCES := $(filter-out $(GIT_STAMP_INPUTS),$(WORKER_SOURCES)) examples/openapi.rs

$(API_TYPES): $(API_SOURCES) $(FRONTEND_STAMP)
	@scripts/api-types.sh
	@touch $@

api-types: $(FRONTEND_STAMP)
	@scripts/api-types.sh

frontend/dist/index.html: $(FRONTEND_STAMP) $(FRONTEND_SOURCES) $(API_TYPES)
	@cd frontend && npm run -s build

## Vite's dev server with HMR on :5173, proxying /api (HTTP and WebSocket) to `make dev` on :8787.
web: $(FRONTEND_STAMP)
	@cd frontend && BYTE_API=http://localhost:$(PORT) exec npx vite

## Local development secrets (.dev.vars, never committed): missing ones are generated.
secrets:
	@scripts/dev-vars.sh

migrate: secrets
	@$(TOOLS_ENV) && "$$WRANGLER" d1 migrations apply DB --local >/dev/null && echo "[dev] D1 migrations applied"

templates: migrate
	@$(TOOLS_ENV) && scripts/publish-templates.sh

## byte-sandbox and wrangler dev together; Ctrl-C stops both.
dev: build templates
	@$(TOOLS_ENV) && PORT=$(PORT) exec scripts/dev.sh

## Unit tests on the host, then the integration suite against real wrangler dev instances.
test: build
	@scripts/api-types.sh --check
	@cd frontend && npx vitest run
	@$(TOOLS_ENV) && cargo build -q -p byte-sandbox && cargo test --workspace --all-targets 2>&1 | tee target/test.log | grep -vE '^\s+(Compiling|Fresh|Running)' || { echo "[test] FAILED (full log: target/test.log)"; exit 1; }

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p byte-platform --lib --target wasm32-unknown-unknown -- -D warnings

fmt:
	cargo fmt --all

bench: build
	@$(TOOLS_ENV) && cargo build -q -p byte-sandbox && cargo run --release -q --example bench

clean:
	rm -rf build target .wrangler
