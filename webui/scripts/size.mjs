// Reports the gzip size of the JavaScript the browser loads first (the entry chunk and the
// chunks it imports statically) and fails the build over the budget. Console pages (noVNC,
// xterm) and the wizard are lazy chunks and do not count.
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const BUDGET = 300 * 1024;
const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const initial = new Set([...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]));
const gz = (f) => gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
let js = 0;
for (const f of initial) {
  const n = gz(f);
  if (f.endsWith(".js")) js += n;
  console.log(`initial  ${f.padEnd(44)} ${kib(n).padStart(10)} gzip`);
}
for (const f of readdirSync(join(dist, "assets")).sort()) {
  if (!initial.has(`assets/${f}`)) console.log(`lazy     ${`assets/${f}`.padEnd(44)} ${kib(gz(`assets/${f}`)).padStart(10)} gzip`);
}
console.log(`initial JS: ${kib(js)} gzip (budget ${kib(BUDGET)})`);
if (js > BUDGET) {
  console.error("initial JS over budget");
  process.exit(1);
}
