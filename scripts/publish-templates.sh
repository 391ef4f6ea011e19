#!/usr/bin/env bash
# Publishes each template in templates/ to the R2 bucket TEMPLATES as one JSON bundle,
# templates/<name>.json = {"name", "meta", "files": {path: content}}, skipping unchanged ones.
# Local bucket by default; `R2_TARGET=--remote scripts/publish-templates.sh` publishes to Cloudflare.
set -euo pipefail
cd "$(dirname "$0")/.."
PERSIST=${PERSIST:-}
R2_TARGET=${R2_TARGET:---local}
mkdir -p build/templates
for dir in templates/*/; do
  name=$(basename "$dir")
  [ -f "$dir/template.json" ] || continue
  out=build/templates/$name.json
  node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1], name = process.argv[2];
    const files = {};
    (function walk(d) {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (["node_modules", "dist", ".git", "template.json"].includes(e.name)) continue;
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p); else if (e.isFile()) files[path.relative(dir, p)] = fs.readFileSync(p, "utf8");
      }
    })(dir);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "template.json"), "utf8"));
    process.stdout.write(JSON.stringify({ name, meta, files }));
  ' "$dir" "$name" > "$out.new"
  stamp=$out.published$R2_TARGET${PERSIST:+.$(echo "$PERSIST" | md5sum | cut -c1-8)}
  if [ -f "$stamp" ] && cmp -s "$out.new" "$out"; then rm "$out.new"; continue; fi
  mv "$out.new" "$out"
  "$WRANGLER" r2 object put "byte-platform-templates/templates/$name.json" --file "$out" \
    --content-type application/json "$R2_TARGET" ${PERSIST:+--persist-to "$PERSIST"} >/dev/null
  touch "$stamp"
  echo "[dev] published template $name to R2" >&2
done
