#!/usr/bin/env bash
# Ensures .dev.vars (local secrets, never committed) holds every secret local development needs,
# generating random values for missing ones and keeping existing ones. The file holds secrets, so
# it is created readable by its owner only (umask 077), and an existing one is narrowed to 0600.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
touch .dev.vars
chmod 600 .dev.vars
add() { grep -q "^$1=" .dev.vars || { echo "$1=$2" >> .dev.vars; echo "[dev] added $1 to .dev.vars" >&2; }; }
rand() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
add JWT_SECRET "$(rand)"
add SANDBOX_SECRET "$(rand)"
add SECRETS_ENCRYPTION_KEY "$(rand)"
