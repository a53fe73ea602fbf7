#!/usr/bin/env node
// Old tree against new tree, same machine, same run: `scripts/bench.mjs` of each tree is run for the given
// sections, alternating (old, new, old, new, …), and every plain number in the markdown tables it prints is
// compared (new / old per pair, then the median over pairs). Each tree runs its own harness and its own built
// code (`npx tsc -b` in both first); the load generators are the same files in both trees for the proxy
// (small, large, mixed) and ledger sections, so the difference is the code under test.
//
//   node bench/compare.mjs --old /path/to/old/checkout --section small --section ledger [--pairs 2]
//   [--new DIR]   (default: this checkout)   [--quick]   (passes --quick to both)
//   [--save DIR]  (keeps each run's full output as DIR/old-1.md, DIR/new-1.md, …: notes such as p99 and non-2xx
//                  counts live in row labels, which the comparison strips)
//
// The machine is shared and noisy: a single pair says little. Ratios inside one run ("vs direct",
// "ours / raw") are the steadier figures; compare those across trees first.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUN_TIMEOUT_MS = 30 * 60 * 1000; // one tree's run of the chosen sections
const MAX_PAIRS = 10;

function die(msg) {
  console.error(`compare: ${msg}`);
  process.exit(2);
}

// ---------- Arguments ----------

const args = process.argv.slice(2);
let oldRoot = null;
let newRoot = HERE_ROOT;
let pairs = 2;
let quick = false;
let saveDir = null;
const sections = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--old') oldRoot = resolve(args[++i] ?? '');
  else if (a === '--new') newRoot = resolve(args[++i] ?? '');
  else if (a === '--section') sections.push(args[++i]);
  else if (a === '--pairs') pairs = Number(args[++i]);
  else if (a === '--quick') quick = true;
  else if (a === '--save') saveDir = resolve(args[++i] ?? '');
  else die(`unknown argument ${a}`);
}
if (!oldRoot) die('usage: node bench/compare.mjs --old DIR [--new DIR] --section NAME [--section NAME …] [--pairs N]');
if (!sections.length) die('give at least one --section (e.g. small, large, mixed, ledger)');
if (!Number.isInteger(pairs) || pairs < 1 || pairs > MAX_PAIRS)
  die(`--pairs must be an integer from 1 to ${MAX_PAIRS}`);
for (const root of [oldRoot, newRoot]) {
  if (!existsSync(join(root, 'scripts/bench.mjs'))) die(`${root} has no scripts/bench.mjs`);
  if (!existsSync(join(root, 'packages/control-plane/dist/server.js'))) die(`${root} is not built (run npx tsc -b)`);
}

// ---------- One run ----------

const log = (m) => console.error(`[compare ${new Date().toISOString().slice(11, 19)}] ${m}`);

function runTree(root) {
  return new Promise((res, rej) => {
    const argv = [join(root, 'scripts/bench.mjs'), ...sections, '--no-write', ...(quick ? ['--quick'] : [])];
    const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) rej(new Error(`bench in ${root} exited ${code}:\n${out.slice(-3000)}`));
      else res(out);
    });
  });
}

// ---------- Markdown tables → figures ----------

/** The first plain number of a cell ("7,392 (6,900–7,500)" → 7392, "45%" → 0.45); null if none. */
function numberOf(cell) {
  const m = /^\**\s*(-?[\d,]+(?:\.\d+)?)\s*(%|×)?/.exec(cell.trim());
  if (!m) return null;
  const x = Number(m[1].replace(/,/g, ''));
  return m[2] === '%' ? x / 100 : x;
}

/** A row's name: its first cell without emphasis and without bracketed notes that carry figures. */
const rowName = (cell) =>
  cell
    .replace(/\*\*/g, '')
    .replace(/\s*\([^)]*\d[^)]*\)/g, '')
    .trim();

/** Unique column names: a repeated header ("best", "vs direct") gets the first word of the group it follows
 *  ("download GB/s (median)" → "download best"). */
function columnNames(cells) {
  const count = new Map();
  for (const c of cells) count.set(c, (count.get(c) ?? 0) + 1);
  let group = '';
  return cells.map((c, i) => {
    if (count.get(c) === 1) {
      if (i > 0) group = c.split(' ')[0];
      return c;
    }
    return group ? `${group} ${c}` : c;
  });
}

/** Map "section › row › column" → number, for every table the run printed. */
function figures(out) {
  const fig = new Map();
  let title = '';
  let header = null;
  let seen = new Set();
  for (const line of out.split('\n')) {
    if (line.startsWith('## ')) {
      title = line.slice(3).trim();
      header = null;
      continue;
    }
    if (!line.startsWith('|')) {
      header = null;
      continue;
    }
    const cells = line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split('|')
      .map((c) => c.trim());
    if (!header) {
      header = columnNames(cells);
      seen = new Set();
      continue;
    }
    if (cells.every((c) => /^-*:?-*:?$/.test(c))) continue; // the separator row
    let name = rowName(cells[0]);
    if (header[1] === 'conns') name += ` @${cells[1]} conns`;
    if (seen.has(name)) continue; // keep names unique: the first row wins
    seen.add(name);
    for (let i = 1; i < cells.length; i++) {
      if (header[i] === 'conns') continue;
      const x = numberOf(cells[i]);
      if (x !== null) fig.set(`${title} › ${name} › ${header[i]}`, x);
    }
  }
  return fig;
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x) =>
  !Number.isFinite(x) ? 'n/a' : Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2);

// ---------- Main ----------

const loads = [];
const runs = { old: [], new: [] };
for (let p = 0; p < pairs; p++) {
  for (const side of ['old', 'new']) {
    const root = side === 'old' ? oldRoot : newRoot;
    const load = os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    loads.push(`${side} ${p + 1}: ${load}`);
    log(`pair ${p + 1}/${pairs}: ${side} (${root}), sections ${sections.join(' ')}, load ${load}`);
    const out = await runTree(root);
    if (saveDir) {
      mkdirSync(saveDir, { recursive: true });
      writeFileSync(join(saveDir, `${side}-${p + 1}.md`), out);
    }
    runs[side].push(figures(out));
  }
}

const all = [...runs.old, ...runs.new];
// Figures present in every run; constants (direct vs itself, zero failures) say nothing and are left out.
const keys = [...runs.new[0].keys()].filter(
  (k) => all.every((r) => r.has(k)) && new Set(all.map((r) => r.get(k))).size > 1,
);
const failedAnywhere = [...runs.new[0].keys()].filter(
  (k) => / › failed$/.test(k) && all.some((r) => r.has(k) && r.get(k) !== 0),
);
const lowerIsBetter = (k) => /(ms|µs|cpu)/i.test(k.split(' › ').pop());
const rows = keys.map((k) => {
  const o = runs.old.map((r) => r.get(k));
  const n = runs.new.map((r) => r.get(k));
  const per = n.map((x, i) => x / o[i]);
  return [
    k + (lowerIsBetter(k) ? ' (lower is better)' : ''),
    o.map(fmt).join(' / '),
    n.map(fmt).join(' / '),
    per.map(fmt).join(' / '),
    fmt(median(per)),
  ];
});
console.log(
  `\nold: ${oldRoot}\nnew: ${newRoot}\nsections: ${sections.join(' ')}; ${pairs} pair(s), order old, new per pair`,
);
console.log(`load average (1/5/15 min) at each run's start: ${loads.join('; ')}\n`);
console.log('| figure | old (per run) | new (per run) | new / old (per pair) | median new / old |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
console.log(
  failedAnywhere.length
    ? `\nFailed requests in some run: ${failedAnywhere.join('; ')} (see the rows above).`
    : '\nNo failed requests in any run.',
);
