// Prints the gzipped size of every built asset and of the initial JavaScript (the entry script
// plus the chunks index.html preloads), and fails the build when the initial JS exceeds the budget.
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const BUDGET_KB = 200;
const dist = new URL("../dist/", import.meta.url).pathname;
const gz = (p) => gzipSync(readFileSync(join(dist, p)), { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(1).padStart(8) + " KB";

const html = readFileSync(join(dist, "index.html"), "utf8");
const initial = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const assets = readdirSync(join(dist, "assets")).map((f) => `assets/${f}`);
const rows = assets.map((a) => [a, gz(a)]).sort((x, y) => y[1] - x[1]);
console.log("[web] gzipped sizes:");
for (const [a, n] of rows.slice(0, 12)) console.log(`${kb(n)}  ${a}${initial.includes(a) ? "  (initial)" : ""}`);
if (rows.length > 12) console.log(`         … ${rows.length - 12} more, ${kb(rows.slice(12).reduce((s, r) => s + r[1], 0)).trim()}`);
const total = initial.reduce((s, a) => s + gz(a), 0);
console.log(`[web] initial JS: ${kb(total).trim()} gzipped (budget ${BUDGET_KB} KB)`);
if (total > BUDGET_KB * 1024) {
  console.error("[web] initial JS over budget");
  process.exit(1);
}
