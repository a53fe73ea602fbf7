#!/usr/bin/env node
// Long on purpose: one benchmark script whose setups, runs and report share one run's state.
// The tunnel benchmark (`npm run bench`): direct backend (the limit) vs nginx vs the tunnel through both
// entry points, measured in the same run on the same machine. Never a timed test: results go to stdout and
// docs/benchmarks.md.
//
//   npm run bench                                  # everything (writes docs/benchmarks.md)
//   npm run bench -- small large                   # some sections (prints only; add --write to write the doc)
//   npm run bench -- --quick                       # smoke run: short durations, 200 agents (prints only)
// Sections: small large mixed idle restart profile graceful attestation ledger confidential jobs. Options: --quick, --write, --no-write, --build,
// --no-snapshot, --agents N (default 1000; 200 with --quick). The built packages are copied to a temp dir at
// the start (bench/snapshot.mjs) so a concurrent rebuild cannot change the code under test mid-run.
//
// Every target runs in its own process (backend, nginx, control plane, agent); the load generator runs in
// its own process too, identically for every target. Only loopback addresses; every wait is bounded.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import {
  REPO_ROOT,
  setCodeRoot,
  CODE_ROOT,
  APP_DOMAIN,
  CP_MALLOC_TUNABLES,
  freePort,
  killAll,
  killAllSync,
  memKiB,
  sleep,
  spawnAgent,
  spawnControlPlane,
  startBackend,
  startNodeProxy,
  stopProc,
  tmpDir,
  waitFor,
  waitRoutable,
  ioCounts,
  cpuMs,
  childPids,
} from '../bench/procs.mjs';
import { findNginx, nginxVersion, startNginx, NGINX_INSTALL_HINT } from '../bench/nginx.mjs';
import { runLoad } from '../bench/load.mjs';
import { runTransfers } from '../bench/transfer.mjs';
import { runHttpLoad } from '../bench/http-load.mjs';
import { runConfidential } from '../bench/confidential.mjs';
import { connectInspector, INSPECT_ARG, INSPECT_LINE, summarizeProfile } from '../bench/inspector.mjs';
import { snapshotBuild } from '../bench/snapshot.mjs';
import {
  allAttestedSince,
  confirmRoutable,
  connectFleetAgents,
  healthCounts,
  fleetAgentsAlive,
  fleetAgentsRss,
  measureCp,
  spawnFleetAgents,
  startRest,
  stopFleetAgents,
} from '../bench/fleet.mjs';

// ---------- Arguments ----------

const ALL = [
  'small',
  'large',
  'mixed',
  'idle',
  'restart',
  'profile',
  'graceful',
  'attestation',
  'ledger',
  'confidential',
  'jobs',
]; // run in this order
const argv = process.argv.slice(2);
const flags = new Set(argv.filter((a) => a.startsWith('--')));
const quick = flags.has('--quick');
let agentsN = quick ? 200 : 1000;
const names = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--agents') agentsN = Number(argv[++i]);
  else if (a.startsWith('--agents=')) agentsN = Number(a.slice('--agents='.length));
  else if (a.startsWith('--')) {
    if (!['--quick', '--write', '--no-write', '--build', '--no-snapshot', '--help'].includes(a))
      die(`unknown option ${a}`);
  } else names.push(a);
}
if (flags.has('--help')) {
  console.log(
    `usage: npm run bench -- [${ALL.join(' ')}] [--quick] [--write|--no-write] [--build] [--no-snapshot] [--agents N]`,
  );
  process.exit(0);
}
for (const n of names) if (!ALL.includes(n)) die(`unknown section "${n}"; choose from: ${ALL.join(' ')}`);
if (!Number.isInteger(agentsN) || agentsN < 1 || agentsN > 10_000) die('--agents must be an integer from 1 to 10000');
const selected = names.length ? ALL.filter((n) => names.includes(n)) : ALL;
const fullRun = selected.length === ALL.length && !quick;
const writeDoc = flags.has('--no-write') ? false : flags.has('--write') || fullRun;

const DUR = quick ? 1 : 5; // seconds per measured load run (mixed, profile)
const WARM = quick ? 0.5 : 1; // warm-up seconds (discarded)
const SMALL_ROUNDS = quick ? 1 : 3;
const SMALL_DUR = quick ? 1 : 3; // seconds per small-GET cell per round
const LARGE = 100 * 1024 * 1024;
const LARGE_REPS = quick ? 1 : 3;
const IDLE_REPS = 3; // idle-memory measurements, each on a fresh control plane (median reported)
const GB = 1e9;

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

// ---------- Formatting ----------

const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const pct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
const secs = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a');
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

const doc = []; // markdown sections, in order
const goals = []; // { goal, measured, met }
const scale = []; // sentences that put the goals in proportion, from this run's reference targets
let sectionLoad = '';
function section(title, body) {
  const text = `## ${title}\n\n${body.trim()}\n\n_Load average (1/5/15 min) when this section started: ${sectionLoad}._\n`;
  doc.push(text);
  console.log(`\n${text}`);
}
const loadNow = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const log = (m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);

// ---------- Setup ----------

function ensureBuilt() {
  const need = ['packages/cli/dist/main.js', 'packages/agent/dist/index.js', 'packages/control-plane/dist/server.js'];
  if (!flags.has('--build') && need.every((p) => existsSync(join(REPO_ROOT, p))))
    return 'existing dist (npx tsc -b not run; pass --build to rebuild)';
  log('building: npx tsc -b');
  execFileSync('npx', ['tsc', '-b'], { cwd: REPO_ROOT, stdio: 'inherit', timeout: 300_000 });
  return 'built with npx tsc -b';
}

function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  let commit = 'unknown';
  let dirty = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim()
      ? ' (with uncommitted changes)'
      : '';
  } catch {
    // not a git checkout
  }
  let nproc = os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // keep os.cpus()
  }
  return {
    nproc,
    cpu,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    mem_gib: (os.totalmem() / 2 ** 30).toFixed(1),
    commit: commit + dirty,
  };
}

// ---------- The stack for small / large / mixed ----------

let stack = null;
async function getStack(nginxBin) {
  if (stack) return stack;
  log('starting backend, nginx, node proxy, control plane and agent');
  const backend = await startBackend();
  const nginx = nginxBin ? await startNginx({ bin: nginxBin, upstream_port: backend.port }) : null;
  const nodeProxy = await startNodeProxy(backend.url);
  const cp = await spawnControlPlane({ name: 'control-plane' });
  const agent = spawnAgent({ ws_url: cp.ws_url, backend_url: backend.url, app: 'demo' });
  await waitRoutable(cp.api_url, 'demo', 15_000);
  const host = { host: `demo.${APP_DOMAIN}` };
  // procs: the proxy processes in front of the backend (for syscall accounting), by role.
  const nginxProcs = () => (nginx ? [['nginx', [nginx.pid, ...childPids(nginx.pid)]]] : []);
  const tunnelProcs = () => [
    ['control plane', [cp.pid]],
    ['agent', [agent.pid]],
  ];
  const targets = [
    { key: 'direct', label: 'direct (backend)', base: backend.url, headers: {}, procs: () => [] },
    ...(nginx
      ? [
          {
            key: 'nginx',
            label: `nginx (${nginx.workers} worker${nginx.workers === '1' ? '' : 's'})`,
            base: nginx.url,
            headers: {},
            procs: nginxProcs,
          },
        ]
      : []),
    {
      key: 'node-proxy',
      label: 'node proxy (http + undici, one hop)',
      base: nodeProxy.url,
      headers: {},
      procs: () => [['node proxy', [nodeProxy.pid]]],
    },
    {
      key: 'tunnel-path',
      label: 'tunnel via /v1/proxy/demo',
      base: `${cp.api_url}/v1/proxy/demo`,
      headers: {},
      procs: tunnelProcs,
    },
    {
      key: 'tunnel-host',
      label: `tunnel via Host: demo.${APP_DOMAIN}`,
      base: cp.proxy_url,
      headers: host,
      procs: tunnelProcs,
    },
  ];
  stack = {
    backend,
    nginx,
    nodeProxy,
    cp,
    agent,
    targets,
    /** Throws (naming the process and its last output) if any part of the stack has died. */
    check() {
      for (const h of [backend, nginx, nodeProxy, cp, agent]) {
        if (h && !h.alive()) {
          const e = h.exitStatus();
          throw new Error(
            `${h.name} (pid ${h.pid}) exited unexpectedly (${e.code ?? e.signal}); last output:\n${h.output().slice(-3000)}`,
          );
        }
      }
    },
  };
  return stack;
}

// ---------- 1. small ----------

async function benchSmall(nginxBin) {
  const { targets } = await getStack(nginxBin);
  // Rounds: every target is measured once per round, one after the other, so a change in the (shared,
  // noisy) machine's load hits all targets alike; ratios are taken within a round, then the median.
  const rounds = [];
  for (let round = 0; round < SMALL_ROUNDS; round++) {
    const res = {};
    for (const c of [1, 50]) {
      for (const t of targets) {
        log(`small: round ${round + 1}/${SMALL_ROUNDS}, ${t.key}, ${c} connection(s), ${SMALL_DUR} s`);
        stack.check();
        // Warm-up as its own run, so the syscall counters below cover exactly the measured requests.
        await runLoad({
          url: `${t.base}/small`,
          headers: t.headers,
          connections: c,
          duration_s: round === 0 ? WARM : 0.3,
          warmup_s: 0,
        });
        const procs = [['backend', [stack.backend.pid]], ...t.procs()];
        const io0 = procs.map(([, pids]) => pids.map(ioCounts));
        const cpu0 = procs.map(([, pids]) => pids.map(cpuMs));
        const r = await runLoad({
          url: `${t.base}/small`,
          headers: t.headers,
          connections: c,
          duration_s: SMALL_DUR,
          warmup_s: 0,
        });
        const served = r.requests_ok + r.non2xx;
        r.perReq = procs.map(([role, pids], i) => {
          const io1 = pids.map(ioCounts);
          const cpu1 = pids.map(cpuMs);
          const io = (k) => io1.reduce((a, x, j) => a + x[k] - io0[i][j][k], 0) / served;
          const cpu = (k) => (cpu1.reduce((a, x, j) => a + x[k] - cpu0[i][j][k], 0) * 1000) / served; // µs per request
          return { role, r: io('r'), w: io('w'), u_us: cpu('u'), s_us: cpu('s') };
        });
        res[`${t.key}/${c}`] = r;
      }
    }
    rounds.push(res);
  }
  const agg = (key) => {
    const rs = rounds.map((r) => r[key]);
    const d = rounds.map((r) => r[`direct/${key.split('/')[1]}`]);
    return {
      rps: median(rs.map((r) => r.rps)),
      rps_min: Math.min(...rs.map((r) => r.rps)),
      rps_max: Math.max(...rs.map((r) => r.rps)),
      p50_ms: median(rs.map((r) => r.p50_ms)),
      p99_ms: median(rs.map((r) => r.p99_ms)),
      p999_ms: median(rs.map((r) => r.p999_ms)),
      ratio: median(rs.map((r, i) => r.rps / d[i].rps)),
      failed: rs.reduce((a, r) => a + r.errors + r.non2xx, 0),
      kinds: rs.map((r) => r.error_kinds).filter((k) => Object.keys(k).length),
    };
  };
  const res = {};
  const rows = [];
  for (const c of [1, 50]) {
    for (const t of targets) {
      const r = (res[`${t.key}/${c}`] = agg(`${t.key}/${c}`));
      const range = SMALL_ROUNDS > 1 ? ` (${f0(r.rps_min)}–${f0(r.rps_max)})` : '';
      rows.push([
        t.label,
        c,
        `${f0(r.rps)}${range}`,
        f2(r.p50_ms),
        f2(r.p99_ms),
        f2(r.p999_ms),
        pct(r.ratio),
        r.failed === 0 ? '0' : `**${r.failed}** ${JSON.stringify(r.kinds)}`,
      ]);
    }
  }
  // CPU time and read/write syscalls per request at 50 connections (median over rounds), per process role.
  const cpuRows = [];
  for (const t of targets) {
    const per = rounds.map((r) => r[`${t.key}/50`].perReq);
    const roles = per[0].map((x) => x.role);
    const m = (i, k) => median(per.map((p) => p[i][k]));
    const cells = roles.map((role, i) => `${role} ${f0(m(i, 'u_us'))} + ${f0(m(i, 's_us'))}`);
    const proxy = median(
      per.map((p) => p.filter((x) => x.role !== 'backend').reduce((a, x) => a + x.u_us + x.s_us, 0)),
    );
    const all = median(per.map((p) => p.reduce((a, x) => a + x.u_us + x.s_us, 0)));
    const sys = roles.map((role, i) =>
      role === 'nginx' ? 'nginx n/a (recv/send)' : `${role} ${f1(m(i, 'r'))} r + ${f1(m(i, 'w'))} w`,
    );
    cpuRows.push([t.label, cells.join('; '), t.key === 'direct' ? '—' : f0(proxy), f0(all), sys.join('; ')]);
    res[`${t.key}/50`].proxy_us = proxy;
  }
  const ref = (k) => res[`${k}/50`];
  if (ref('node-proxy') && ref('tunnel-path')) {
    const ng = ref('nginx');
    scale.push(
      `Small GETs at 50 connections: ${ng ? `nginx (one hop, in C) reached ${pct(ng.ratio)} of direct at ${f0(ng.proxy_us)} µs of proxy CPU per request; ` : ''}` +
        `the node proxy (one Node hop: node:http + undici, nothing else) reached ${pct(ref('node-proxy').ratio)} at ${f0(ref('node-proxy').proxy_us)} µs, p99 ${f2(ref('node-proxy').p99_ms)} ms. ` +
        `The tunnel is two Node hops (control plane, agent) plus the framing between them: ${f0(ref('tunnel-path').proxy_us)} µs per request, ${f1(ref('tunnel-path').proxy_us / ref('node-proxy').proxy_us)}× the node proxy, for ${pct(ref('tunnel-path').ratio)} of direct. ` +
        `Every process shares the same ${os.cpus().length} cores, so req/s falls as the total CPU per request grows.`,
    );
  }
  for (const k of ['tunnel-path', 'tunnel-host']) {
    const r = res[`${k}/50`];
    goals.push({
      goal: `small GETs, 50 conns, ${k}: ≥ 40% of direct req/s`,
      measured: `${pct(r.ratio)} (${f0(r.rps)} vs ${f0(res['direct/50'].rps)} req/s)`,
      met: r.ratio >= 0.4,
    });
    goals.push({ goal: `small GETs, 50 conns, ${k}: p99 < 5 ms`, measured: `${f2(r.p99_ms)} ms`, met: r.p99_ms < 5 });
  }
  section(
    'Small GETs',
    `GET /small (100-byte body), autocannon with keep-alive. The *node proxy* row is one Node HTTP hop and nothing else (node:http + undici): its cost is the floor for any Node proxy on this machine, and its share of direct roughly the ceiling — the tunnel adds a second Node process (the agent) and the tunnel framing on top of such a hop. ${SMALL_ROUNDS} round(s); in each round every cell runs ${SMALL_DUR} s after a warm-up (${WARM} s in the first round, 0.3 s after). Figures are medians over the rounds (req/s range in brackets); "vs direct" is the median of the per-round ratios. Latency in ms, exact percentiles over every 2xx response.\n\n` +
      table(['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'req/s vs direct', 'failed'], rows) +
      `\n\nServer-side cost per request at 50 connections: CPU time (user + system µs per response, from /proc/<pid>/stat utime/stime over the measured run; 10 ms tick resolution, so ±a few %) and read/write syscalls per response (/proc/<pid>/io syscr/syscw: read/readv/write/writev only — nginx uses recv/send, which these counters do not see). Medians over rounds. The load generator's own CPU is not included.\n\n` +
      table(
        [
          'target',
          'CPU µs per request: user + system, per process',
          'proxy CPU µs/req',
          'total CPU µs/req',
          'syscalls per request',
        ],
        cpuRows,
      ),
  );
  return res;
}

// ---------- 2. large ----------

async function benchLarge(nginxBin) {
  const { targets } = await getStack(nginxBin);
  const res = Object.fromEntries(targets.map((t) => [t.key, { down: [], up: [] }]));
  let client = 'node';
  for (let rep = 0; rep < LARGE_REPS; rep++) {
    for (const t of targets) {
      log(`large: round ${rep + 1}/${LARGE_REPS}, ${t.key}, 100 MiB each way`);
      stack.check();
      const procs = [['backend', [stack.backend.pid]], ...t.procs()];
      const withCpu = async (o) => {
        const c0 = procs.map(([, pids]) => pids.map(cpuMs));
        const r = await runTransfers(o);
        // CPU ms (user + system) per process role for this one 100 MiB transfer.
        r.transfers[0].cpu = procs.map(([role, pids], i) => ({
          role,
          ms: pids.map(cpuMs).reduce((a, x, j) => a + x.u + x.s - c0[i][j].u - c0[i][j].s, 0),
        }));
        return r;
      };
      const dn = await withCpu({
        mode: 'download',
        url: `${t.base}/bytes/${LARGE}`,
        headers: t.headers,
        bytes: LARGE,
        repeat: 1,
      });
      const up = await withCpu({ mode: 'upload', url: `${t.base}/sink`, headers: t.headers, bytes: LARGE, repeat: 1 });
      res[t.key].down.push(...dn.transfers);
      res[t.key].up.push(...up.transfers);
      client = dn.client;
    }
  }
  const summary = (xs) => ({
    med: median(xs.filter((x) => x.ok).map((x) => x.gbps)),
    best: Math.max(...xs.filter((x) => x.ok).map((x) => x.gbps)),
    failed: xs.filter((x) => !x.ok).map((x) => x.error ?? x.status),
  });
  const rows = [];
  const d = { down: summary(res.direct.down), up: summary(res.direct.up) };
  for (const t of targets) {
    const dn = summary(res[t.key].down);
    const up = summary(res[t.key].up);
    const failed = [...dn.failed, ...up.failed];
    rows.push([
      t.label,
      f2(dn.med),
      f2(dn.best),
      pct(dn.med / d.down.med),
      f2(up.med),
      f2(up.best),
      pct(up.med / d.up.med),
      failed.length ? `**${failed.join(', ')}**` : '0',
    ]);
    if (t.key.startsWith('tunnel')) {
      goals.push({
        goal: `100 MiB download, ${t.key}: ≥ 1 GB/s`,
        measured: `${f2(dn.med)} GB/s (median of ${LARGE_REPS}; direct ${f2(d.down.med)})`,
        met: dn.med >= 1,
      });
      goals.push({
        goal: `100 MiB upload, ${t.key}: ≥ 1 GB/s`,
        measured: `${f2(up.med)} GB/s (median of ${LARGE_REPS}; direct ${f2(d.up.med)})`,
        met: up.med >= 1,
      });
    }
  }
  if (res['node-proxy'] && res['tunnel-path']) {
    const g = (k) => `${f2(summary(res[k].down).med)} down / ${f2(summary(res[k].up).med)} up`;
    scale.push(
      `100 MiB bodies: ${res.nginx ? `nginx ${g('nginx')} GB/s, ` : ''}the node proxy ${g('node-proxy')} GB/s, the tunnel (path) ${g('tunnel-path')} GB/s. ` +
        'Every relayed byte crosses the kernel twice per hop (a socket read and a socket write); the tunnel has two hops where nginx and the node proxy have one, and each Node hop also copies once in user space (the agent into a DATA frame, the control plane when ws joins a message split across reads). See the CPU-per-100 MiB table in "Large transfers".',
    );
  }
  const cpuRows = targets.map((t) => {
    const cell = (xs) => {
      const roles = xs[0]?.cpu?.map((c) => c.role) ?? [];
      return roles.map((role, i) => `${role} ${f0(median(xs.map((x) => x.cpu[i].ms)))}`).join('; ');
    };
    return [t.label, cell(res[t.key].down), cell(res[t.key].up)];
  });
  section(
    'Large transfers (100 MiB)',
    `One 100 MiB body at a time, ${LARGE_REPS} round(s) over all targets, each direction once per round; download = GET /bytes/104857600 (the client counts bytes), upload = POST to /sink (streamed body, the backend counts bytes). Client: ${client === 'curl' ? "`curl` (one process per transfer; the Node http client measured only about half of curl's rate against the bare backend here, so it would have capped the baseline)" : 'Node http in a child process (curl not found)'}. GB/s = 10^9 bytes/s, wall time from request start to the end of the response; median over the rounds.\n\n` +
      table(
        [
          'target',
          'download GB/s (median)',
          'best',
          'vs direct',
          'upload GB/s (median)',
          'best',
          'vs direct',
          'failed',
        ],
        rows,
      ) +
      `\n\nCPU ms (user + system, all threads, from /proc/<pid>/stat; 10 ms ticks) spent per 100 MiB transfer by each server-side process (median over rounds; curl's own CPU not included). For scale: at 1 GB/s a 100 MiB body takes 105 ms, so a hop that needs more CPU than that per 100 MiB cannot reach 1 GB/s on one core.\n\n` +
      table(['target', 'download: CPU ms per 100 MiB', 'upload: CPU ms per 100 MiB'], cpuRows),
  );
  return res;
}

// ---------- 3. mixed ----------

async function benchMixed(nginxBin) {
  const { targets } = await getStack(nginxBin);
  const pick = (k) => targets.find((t) => t.key === k);
  const rows = [];
  let tunnelRatio = NaN;
  for (const t of [pick('direct'), pick('node-proxy'), pick('tunnel-path')]) {
    stack.check();
    log(`mixed: ${t.key}, 10 connections alone`);
    const alone = await runLoad({
      url: `${t.base}/small`,
      headers: t.headers,
      connections: 10,
      duration_s: DUR,
      warmup_s: WARM,
    });
    log(`mixed: ${t.key}, 10 connections while two 100 MiB downloads loop`);
    const until = Date.now() + (WARM + DUR + 0.5) * 1000;
    const transfersP = runTransfers({
      mode: 'download',
      url: `${t.base}/bytes/${LARGE}`,
      headers: t.headers,
      bytes: LARGE,
      parallel: 2,
      until_ms: until,
      max_count: 500,
    });
    await sleep(100); // let the downloads start first
    const busy = await runLoad({
      url: `${t.base}/small`,
      headers: t.headers,
      connections: 10,
      duration_s: DUR,
      warmup_s: WARM,
    });
    const tr = (await transfersP).transfers;
    const okT = tr.filter((x) => x.ok);
    const totalBytes = okT.reduce((a, x) => a + x.bytes, 0);
    const spanMs = (WARM + DUR + 0.5) * 1000;
    rows.push([
      t.label,
      f0(alone.rps),
      f2(alone.p50_ms),
      f2(alone.p99_ms),
      f0(busy.rps),
      f2(busy.p50_ms),
      f2(busy.p99_ms),
      `${f1(busy.p99_ms / alone.p99_ms)}×`,
      `${okT.length} (${f2(totalBytes / (spanMs / 1000) / GB)} GB/s)${tr.length > okT.length ? `, **${tr.length - okT.length} failed**` : ''}`,
      busy.errors + busy.non2xx,
    ]);
    if (t.key === 'tunnel-path') {
      tunnelRatio = busy.p99_ms / alone.p99_ms;
      goals.push({
        goal: 'small-request p99 (10 conns) while two 100 MiB transfers run through the tunnel',
        measured: `${f2(busy.p99_ms)} ms (alone: ${f2(alone.p99_ms)} ms; ${f1(busy.p99_ms / alone.p99_ms)}×)`,
        met: null,
      });
    }
  }
  section(
    'Small requests during large transfers',
    `GET /small with 10 connections for ${DUR} s, alone and while two concurrent 100 MiB downloads run back to back through the same target (same agent and tunnel connection for the tunnel rows). The transfer column counts 100 MiB downloads completed during the window and their aggregate rate.\n\n` +
      table(
        [
          'target',
          'alone req/s',
          'alone p50',
          'alone p99',
          'busy req/s',
          'busy p50',
          'busy p99',
          'p99 busy/alone',
          '100 MiB transfers done',
          'failed',
        ],
        rows,
      ),
  );
  return tunnelRatio;
}

// ---------- 4./5. the fleet: idle memory and kill -9 restart ----------

let fleet = null;
async function getFleet(extra = {}) {
  if (fleet) return fleet;
  const backend = stack?.backend ?? (await startBackend());
  const api_port = await freePort();
  const proxy_port = await freePort();
  const db_path = join(tmpDir(), 'fleet.db');
  const cp = await spawnControlPlane({
    api_port,
    proxy_port,
    db_path,
    extra,
    nodeArgs: [INSPECT_ARG],
    name: 'control-plane (fleet)',
  });
  let insp = null;
  try {
    const { match } = await cp.waitLine(INSPECT_LINE, 5000, 'the inspector URL');
    insp = await connectInspector(match[1]);
  } catch (err) {
    log(`inspector unavailable (${err.message}); reporting RSS without a forced GC`);
  }
  fleet = { backend, cp, insp, api_port, proxy_port, db_path, agents: [], events: [] };
  return fleet;
}

/** One idle measurement on a fresh fleet control plane: baseline, first half, second half (see benchIdle). */
async function idleOnce(N, extra = {}) {
  const fl = await getFleet(extra);
  const n1 = N >= 2 ? Math.floor(N / 2) : N;
  const n2 = N - n1;
  log(`idle: control plane baseline (pid ${fl.cp.pid})`);
  // Baseline: a forced GC (when the inspector is there) so start-up garbage is not counted, then the same
  // 3 s wait as after the agents connect. Both columns use this one baseline.
  if (fl.insp) await fl.insp.gc();
  await sleep(3000);
  const before = memKiB(fl.cp.pid).rss;
  const heapBefore = fl.insp ? await fl.insp.memoryUsage() : null;
  const halves = [];
  // One agents process, as for the restart that follows (a second process would take the second core from
  // the control plane during the reconnect storm): it starts agents 0 … n1-1, then, told to, the rest.
  let agents = null;
  for (const [count, offset] of [
    [n1, 0],
    [n2, n1],
  ]) {
    if (count === 0) continue;
    log(
      `idle: ${offset ? 'starting' : 'connecting'} agents idle-${offset} … idle-${offset + count - 1} (${offset ? 'the same process' : 'one process, real Agent class'})`,
    );
    const c = offset ? await startRest(fl, agents, N) : await connectFleetAgents(fl, N, n1);
    agents ??= c.h;
    log(
      `idle: ${offset + count} routable, the last ${count} after ${c.tRoutable - c.t0} ms; 3 s for a steady state, then a forced GC`,
    );
    halves.push({ count, offset, ...c, mem: await measureCp(fl) });
  }
  const health = await healthCounts(fl.cp.api_url);
  const [h1, h2] = halves;
  const all = halves[halves.length - 1].mem;
  const avg = { rss: (all.rss - before) / N, gc: (all.rssGc - before) / N };
  // The second half starts from the first half's forced-GC state (like the average from the baseline's).
  const mid = Number.isFinite(h1.mem.rssGc) ? h1.mem.rssGc : h1.mem.rss;
  const marg = h2 ? { rss: (h2.mem.rss - mid) / n2, gc: (h2.mem.rssGc - h1.mem.rssGc) / n2 } : { rss: NaN, gc: NaN };
  return { n1, n2, before, heapBefore, halves, health, all, avg, marg, agentsRss: fleetAgentsRss(fl) };
}

async function benchIdle() {
  const N = agentsN;
  // Two halves in the same control plane: the average over the whole fleet also charges one-time costs (code
  // compiled for the registration/attestation path, warmed caches) to the agents; the second half's delta
  // is the marginal cost of one more agent. The marginal figure rests on a few MiB of RSS, where allocator
  // and heap-page steps move it by 2-3 KiB per agent, so the whole measurement is repeated on fresh control
  // planes and the medians are reported; the last fleet stays up for the restart section.
  const reps = quick ? 1 : IDLE_REPS;
  const runs = [];
  // For comparison, first one run with glibc's default malloc (one arena per thread, up to 8 per core).
  let plain = null;
  if (!quick) {
    log('idle: one measurement with glibc malloc defaults (for comparison)');
    plain = await idleOnce(N, { GLIBC_TUNABLES: '' });
  }
  for (let rep = 0; rep < reps; rep++) {
    if (rep > 0 || plain) {
      await stopFleet();
      fleet = null;
    }
    log(`idle: measurement ${rep + 1}/${reps}`);
    runs.push(await idleOnce(N));
  }
  const pick = (x) => (Number.isFinite(x.gc) ? x.gc : x.rss);
  const medMarg = median(runs.map((r) => pick(r.marg)));
  const medAvg = median(runs.map((r) => pick(r.avg)));
  // Detailed tables: the run whose marginal figure is the median.
  const r = [...runs].sort((a, b) => pick(a.marg) - pick(b.marg))[Math.floor((runs.length - 1) / 2)];
  const { n1, n2, before, heapBefore, halves, health, all, avg, marg, agentsRss } = r;
  const [h1, h2] = halves;
  const which = Number.isFinite(avg.gc) ? 'after a forced GC' : 'after 3 s (no inspector, no forced GC)';
  const spread = runs.length > 1 ? ` (runs: ${runs.map((x) => f1(pick(x.marg))).join(', ')})` : '';
  const spreadAvg = runs.length > 1 ? ` (runs: ${runs.map((x) => f1(pick(x.avg))).join(', ')})` : '';
  goals.push({
    goal: `control-plane memory per idle connected agent (${N} agents): < 10 KiB`,
    measured: `marginal ${f1(medMarg)} KiB${spread}, median of ${runs.length} (agents ${n1}…${N - 1}: RSS delta / ${n2}); average ${f1(medAvg)} KiB${spreadAvg} (RSS delta / ${N} over the whole fleet); ${which}. Judged on the marginal figure: the average also charges one-time costs such as compiled code to the agents, and those do not grow with N`,
    met: (h2 ? medMarg : medAvg) < 10,
  });
  const kib = (x) => `${f0(x)} KiB`;
  const rows = [
    ['control-plane RSS before agents (after a forced GC + 3 s)', kib(before), kib(before)],
    ...halves.map((h) => [
      `control-plane RSS with ${h.offset + h.count} idle agents`,
      kib(h.mem.rss),
      Number.isFinite(h.mem.rssGc) ? kib(h.mem.rssGc) : 'n/a',
    ]),
  ];
  const perRows = [
    ['RSS after 3 s', `${f1(avg.rss)} KiB`, `${f1(marg.rss)} KiB`],
    ['**RSS after a forced GC**', `**${f1(avg.gc)} KiB**`, `**${f1(marg.gc)} KiB** (judged)`],
  ];
  if (heapBefore && all.heap) {
    const d = (k) => [
      (all.heap[k] - heapBefore[k]) / 1024 / N,
      h2 ? (h2.mem.heap[k] - h1.mem.heap[k]) / 1024 / n2 : NaN,
    ];
    const row = (label, [a, m]) => [label, `${f1(a)} KiB`, `${f1(m)} KiB`];
    const total = d('heapTotal');
    perRows.push(row('V8 heap used', d('heapUsed')));
    perRows.push(row('V8 heap committed (heapTotal)', total));
    perRows.push(
      row('RSS outside the V8 heap (RSS delta − heapTotal delta, after a forced GC)', [
        avg.gc - total[0],
        marg.gc - total[1],
      ]),
    );
    perRows.push(row('external + array buffers', d('external')));
  }
  const repRow = (label, x) => [
    label,
    `${f1(pick(x.avg))} KiB`,
    `${f1(pick(x.marg))} KiB`,
    `${f1(x.heapBefore && x.all.heap ? (x.all.heap.heapUsed - x.heapBefore.heapUsed) / 1024 / N : NaN)} KiB`,
  ];
  const repRows = runs.map((x, i) => repRow(String(i + 1), x));
  if (plain) repRows.push(repRow('for comparison: glibc malloc defaults (not the documented setting)', plain));
  const cold = halves.map(
    (h) =>
      `agents ${h.offset}…${h.offset + h.count - 1}${h.offset ? ` (with ${h.offset} already connected)` : ''}: all attested (agents' view) ${secs(h.tAttested - h.t0)} and routable (control plane's view) ${secs(h.tRoutable - h.t0)} after ${h.offset ? 'they were started' : 'the agents process was spawned'}`,
  );
  section(
    `Idle agents (${N})`,
    `${N} real \`Agent\` instances (packages/agent/dist), one app each (idle-0 … idle-${N - 1}), health every 10 s, connected to a fresh control plane (its own SQLite file) in two halves, both from one process (\`bench/many-agents.mjs\`): first agents 0…${n1 - 1}, then, once those are measured, agents ${n1}…${N - 1}, in the same control plane. RSS from /proc/<pid>/status VmRSS, measured 3 s after all agents of a half were routable (agents_routable in /health, confirmed once in the admin /v1/apps), then again after a forced full GC (through the inspector protocol: the control plane runs with \`${INSPECT_ARG}\` for this, in every measurement), with V8's own figures (process.memoryUsage()). The baseline is taken after a forced full GC and a 3 s wait.\n\n` +
      `Two figures per agent: the **average** (RSS delta over the whole fleet / ${N}) and the **marginal** cost (the second half's RSS delta / ${n2}). The average also charges one-time costs to the agents — code V8 compiles for the registration and attestation path, caches that warm up (a heap snapshot diff at 1000 agents showed about 2 KiB per agent of "(code)" objects, an amount that does not grow with N); the marginal figure leaves them out, so the goal is judged on it (after the forced GC, which does not count garbage not yet collected). The marginal figure rests on a few MiB of RSS, where allocator and heap-page steps move it by 2–3 KiB per agent, so the measurement runs ${runs.length} time(s), each on a fresh control plane, and the goal takes the median. The control plane runs with the setting README.md documents for glibc Linux, \`GLIBC_TUNABLES=${CP_MALLOC_TUNABLES}\` (at most two malloc arenas): with glibc's default of one arena per thread, memory freed after the connect storm stays spread over several arenas and RSS keeps a few KiB per agent more, not reused and not returned${plain ? ' (last row: one run with the defaults)' : ''}.\n\n` +
      table(['run', 'average (after forced GC)', 'marginal (after forced GC)', 'V8 heap used, average'], repRows) +
      `\n\nThe run with the median marginal figure, in detail. Cold connect: ${cold.join('; ')}. /health then reported agents_connected = ${health.agents_connected}.\n\n` +
      table(['control-plane memory', 'after 3 s', 'after forced GC'], rows) +
      '\n\n' +
      table(['per agent', `average: whole fleet (delta / ${N})`, `marginal: second half (delta / ${n2})`], perRows) +
      `\n\nControl-plane peak RSS (VmHWM) so far: ${kib(all.hwm)}. Agents process RSS (${N} agents): ${kib(agentsRss)} (${f1(agentsRss / N)} KiB per agent).`,
  );
  return { avg: medAvg, marg: medMarg };
}

async function benchRestart() {
  const fl = await getFleet();
  const N = agentsN;
  if (!fl.agents.length) {
    log(`restart: connecting ${N} agents first`);
    await connectFleetAgents(fl, N);
  }
  log(`restart: kill -9 control plane (pid ${fl.cp.pid}) and start a new one on the same ports and database`);
  fl.insp?.close();
  fl.insp = null;
  const tKill = Date.now();
  fl.cp.kill('SIGKILL');
  await fl.cp.exited;
  const tExit = Date.now();
  const cp2 = await spawnControlPlane({
    api_port: fl.api_port,
    proxy_port: fl.proxy_port,
    db_path: fl.db_path,
    name: 'control-plane (fleet, restarted)',
  });
  const tListen = cp2.listening_at;
  fl.cp = cp2;
  const samples = [];
  let tConnected = NaN;
  let tRoutable = NaN;
  const deadline = tKill + 60_000;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    try {
      // /health only: polling /v1/apps every 50 ms took a share of the very CPU the reconnect storm needs.
      const h = await healthCounts(cp2.api_url);
      if (!Number.isFinite(tConnected) && h.agents_connected >= N) tConnected = Date.now();
      samples.push({ t: Date.now(), routable: h.agents_routable });
      if (h.agents_routable >= N) {
        tRoutable = Date.now();
        break;
      }
    } catch {
      // busy: try again
    }
    await sleep(50);
  }
  // Cross-check with the admin view once the storm is over: every idle app has its agent routable.
  if (Number.isFinite(tRoutable)) await confirmRoutable(cp2.api_url, N);
  // The agents' own "all attested" lines (one per agents process) may trail the control plane's view by a few ms.
  const tAttested =
    (await waitFor(() => allAttestedSince(fl, tKill), 5000, "every agents process' all_attested line", 50).catch(
      () => null,
    )) ?? NaN;
  const at = (ms) => {
    const s = [...samples].reverse().find((x) => x.t <= tListen + ms);
    return s ? `${s.routable}` : '0';
  };
  const rows = [
    ['old process gone (kill -9 → exit seen)', secs(tExit - tKill), ''],
    ['new process listening', secs(tListen - tKill), '0.00 s'],
    [`all ${N} connected (/health agents_connected)`, secs(tConnected - tKill), secs(tConnected - tListen)],
    [`all ${N} attested (agents' own view)`, secs(tAttested - tKill), secs(tAttested - tListen)],
    [
      `**all ${N} routable (/health agents_routable; /v1/apps agrees)**`,
      `**${secs(tRoutable - tKill)}**`,
      secs(tRoutable - tListen),
    ],
  ];
  goals.push({
    goal: `all ${N} agents back (routable) after kill -9 + restart: < 5 s`,
    measured: `${secs(tRoutable - tKill)} from the kill (${secs(tRoutable - tListen)} from listening)`,
    met: tRoutable - tKill < 5000,
  });
  section(
    `Restart: kill -9 with ${N} agents`,
    `The fleet control plane gets SIGKILL; a new \`ee control-plane\` process starts at once on the same ports and SQLite file. Agents reconnect on their own (full-jitter backoff, 250 ms base, 2 s cap; the control plane caps concurrent handshakes at 256 and answers 503 beyond that). Polling /health (connected and routable counts, from memory) every ~50 ms; /v1/apps is read once at the end to confirm.\n\n` +
      table(['event', 'time from kill', 'time from listening'], rows) +
      `\n\nRoutable agents seen 0.5 / 1 / 2 / 3 / 5 s after listening: ${[500, 1000, 2000, 3000, 5000].map(at).join(' / ')}.`,
  );
  return tRoutable - tKill;
}

// ---------- 7. attestation ----------

/** Quote verifications per second: ours (DcapVerifier, warm per-platform cache) against plain dcap-qvl. */
async function benchAttestation() {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'bench/attestation.mjs'), '--json', ...(quick ? ['--seconds', '1', '--quotes', '50'] : [])],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const r = JSON.parse(out.slice(out.indexOf('{')));
  const rows = [];
  for (const [name, x] of Object.entries(r.results)) {
    rows.push([
      name === 'fixture'
        ? 'real Intel quote (fixture), inside its window'
        : 'generated quotes, one platform (test root of trust)',
      f0(x.ours.per_s),
      f0(x.qvl.per_s),
      `${f1(x.ratio)}×`,
    ]);
    goals.push({
      goal: `quote verifications/s, ${name}: ≥ ${r.goal}× plain @phala/dcap-qvl`,
      measured: `${f1(x.ratio)}× (${f0(x.ours.per_s)} vs ${f0(x.qvl.per_s)} /s)`,
      met: x.ratio >= r.goal,
    });
  }
  section(
    'Attestation: quote verification rate',
    '`node bench/attestation.mjs` in its own process: full DCAP verification (chain, CRLs, TCB, quote signature) of repeated quotes from one platform, ours (`DcapVerifier`: per-platform work cached within its validity window, the quote signature checked every time with node:crypto) against plain `@phala/dcap-qvl` `verify` on the same quotes, same run.\n\n' +
      table(['quotes', 'ours /s', 'dcap-qvl /s', 'ratio'], rows),
  );
  return r;
}

// ---------- 8. ledger ----------

/** Transfers per second with durability on: ours in-process and over HTTP against the same SQL run raw. */
async function benchLedger() {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'bench/ledger.mjs'), '--json', '--seconds', quick ? '1' : '4'],
    { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const r = JSON.parse(out.slice(out.indexOf('{')));
  const rows = [
    ['raw SQLite (better-sqlite3), 1 transfer per transaction', f0(r.raw_sqlite_1), '', ''],
    ['raw SQLite, 1000 transfers per transaction', f0(r.raw_sqlite_batched), '', ''],
    [
      '**ours, SQLite, in-process** (4096 concurrent submitters, group commit)',
      f0(r.ours_sqlite.rate),
      f0(r.ours_sqlite.ops_per_batch),
      r.ours_sqlite.verify_ok ? 'passes' : '**FAILS**',
    ],
  ];
  if (r.pgbench !== undefined) {
    rows.push(['pgbench, same SQL, 8 clients, 1 transfer per transaction', f0(r.pgbench), '', '']);
    rows.push([
      '**ours, PostgreSQL, in-process** (4096 submitters)',
      f0(r.ours_postgres.rate),
      f0(r.ours_postgres.ops_per_batch),
      r.ours_postgres.verify_ok ? 'passes' : '**FAILS**',
    ]);
  }
  if (r.http_sqlite !== undefined)
    rows.push([
      `**ours, HTTP API** (POST /v1/credits/transfer, autocannon 64 connections; p99 ${f1(r.http_sqlite.p99_ms)} ms, ${r.http_sqlite.non2xx} non-2xx)`,
      f0(r.http_sqlite.rate),
      '',
      '',
    ]);
  // The issue states its goals in absolute numbers next to the raw figures it measured on this machine (raw
  // SQLite about 300k transfers/s batched); the machine is shared and its speed varies by several times between
  // runs, so a goal is judged as the same ratio to the raw baseline measured in this run.
  const ISSUE_RAW_BATCHED = 300_000;
  const sqliteRatio = r.ours_sqlite.rate / r.raw_sqlite_batched;
  goals.push({
    goal: `ledger, SQLite in-process: ≥ 100k transfers/s (group commit) — i.e. ≥ ${pct(100_000 / ISSUE_RAW_BATCHED)} of raw batched SQLite in the same run`,
    measured: `${f0(r.ours_sqlite.rate)}/s = ${pct(sqliteRatio)} of raw batched (${f0(r.raw_sqlite_batched)}/s in this run); ${f1(r.ours_sqlite.rate / r.raw_sqlite_1)}× raw one-per-transaction`,
    met: sqliteRatio >= 100_000 / ISSUE_RAW_BATCHED,
  });
  if (r.pgbench !== undefined)
    goals.push({
      goal: 'ledger, PostgreSQL in-process: ≥ 80% of pgbench',
      measured: `${pct(r.ours_postgres.rate / r.pgbench)} (${f0(r.ours_postgres.rate)} vs ${f0(r.pgbench)}/s)`,
      met: r.ours_postgres.rate >= 0.8 * r.pgbench,
    });
  if (r.http_sqlite !== undefined) {
    const httpRatio = r.http_sqlite.rate / r.raw_sqlite_batched;
    goals.push({
      goal: `ledger, HTTP API on SQLite: ≥ 10k transfers/s — i.e. ≥ ${pct(10_000 / ISSUE_RAW_BATCHED)} of raw batched SQLite in the same run`,
      measured: `${f0(r.http_sqlite.rate)}/s = ${pct(httpRatio)} of raw batched (absolute 10k/s ${r.http_sqlite.rate >= 10_000 ? 'reached' : 'not reached'} in this run)`,
      met: httpRatio >= 10_000 / ISSUE_RAW_BATCHED,
    });
  }
  goals.push({
    goal: 'ledger: `verifyLedger` passes after every run',
    measured: [r.ours_sqlite, r.ours_postgres].filter(Boolean).every((x) => x.verify_ok) ? 'passes' : 'FAILS',
    met: [r.ours_sqlite, r.ours_postgres].filter(Boolean).every((x) => x.verify_ok),
  });
  section(
    'Ledger: transfers per second',
    "`node bench/ledger.mjs` in its own process, durability on (SQLite WAL with `synchronous=FULL`; PostgreSQL defaults, fsync on), 1000 accounts, 1 micro-USD transfers between them. The raw rows run only the core SQL (debit with an overdraft guard, credit, journal insert; the same indexes on the journal) with none of the ledger's guarantees; ours adds idempotent client ids, failed-id memory, two-phase locks and expiry, the append-only journal and the hash-chained audit row per change, and hands each result out only after COMMIT.\n\n" +
      table(['workload', 'transfers/s', 'ops per commit', 'ledger verify'], rows),
  );
  return r;
}

// ---------- 11. jobs ----------

/** Container start latency: `podman run` of the test image by hand against the launcher's runtime. */
async function benchJobs() {
  const { execFileSync, spawnSync } = await import('node:child_process');
  const podman = process.env.EE_CONTAINER_RUNTIME ?? 'podman';
  if (spawnSync(podman, ['version'], { stdio: 'ignore' }).status !== 0) {
    section('Jobs: container start', `_Skipped: \`${podman}\` is not installed or does not answer._`);
    return null;
  }
  const out = execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'bench/jobs.mjs'), '--json', '--runs', quick ? '3' : '20', '--jobs', quick ? '20' : '100'],
    { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const r = JSON.parse(out.trim().split('\n').pop()); // the result is the last line
  const ms = (s) => `${f0(s.median)} ms (p90 ${f0(s.p90)})`;
  const rows = [
    ['`podman run` by hand (attached, `--rm`)', ms(r.by_hand.first_instruction_ms), ms(r.by_hand.exit_ms)],
    ['launcher runtime: `start()` then `result()`', ms(r.runtime.first_instruction_ms), ms(r.runtime.result_ms)],
    ['`POST /v1/jobs` (control plane → tunnel → launcher)', ms(r.api.first_instruction_ms), '—'],
  ];
  const m = r.api.many;
  section(
    'Jobs: container start',
    `\`node bench/jobs.mjs\`: ${r.runs} sequential runs each of the test image (\`${r.image}\`, a static busybox imported locally) whose command is \`adjtimex\`: its output is the kernel clock at the container's first instruction, compared with the host clock when the request began. By hand: \`podman run --rm --network=none --cap-drop=all …\` and wait for it to exit. Launcher runtime: \`PodmanRuntime.start()\` (image resolution, env file, \`podman run --detach\`, inspect), then \`result()\` (exit seen through \`podman events\`, inspect, log tails). Medians, p90 in brackets.\n\n` +
      table(['path', 'to first instruction', 'to exit / result'], rows) +
      `\n\nGoal for \`POST /v1/jobs\`: at most 1.5 × the by-hand figure + 200 ms = ${f0(r.api.goal_ms)} ms: ${r.api.goal_met ? 'met' : 'not met'}. ` +
      `${m.jobs} short jobs (\`true\`) from ${m.jobs} concurrent clients (a job that finds no free vCPU is retried by its client after 50–150 ms: a job is placed only where a launcher has room): ${m.succeeded} succeeded, ${m.locks_resolved} locks resolved, locked = settled + refunded for every one: ${m.locked_equals_settled_plus_refunded}, in ${(m.wall_ms / 1000).toFixed(1)} s.`,
  );
  return r;
}

// ---------- 6. graceful ----------

async function gracefulOnce(backend, mode) {
  const api_port = await freePort();
  const proxy_port = await freePort();
  const db_path = join(tmpDir(), 'graceful.db');
  const cp = await spawnControlPlane({ api_port, proxy_port, db_path, name: `control-plane (graceful ${mode})` });
  const agent = spawnAgent({
    ws_url: cp.ws_url,
    backend_url: backend.url,
    app: 'demo',
    name: `agent (graceful ${mode})`,
  });
  await waitRoutable(cp.api_url, 'demo', 15_000);
  const duration_s = quick ? 4 : 8;
  const sigAfter = quick ? 1000 : 2500;
  const loadP = runHttpLoad({
    duration_s,
    targets: [
      { label: 'path', url: `${cp.api_url}/v1/proxy/demo/small`, connections: 10 },
      { label: 'host', url: `${cp.proxy_url}/small`, headers: { host: `demo.${APP_DOMAIN}` }, connections: 10 },
    ],
  });
  await sleep(sigAfter);
  const tSig = Date.now();
  if (mode === 'handoff') return gracefulHandoff({ cp, agent, loadP, tSig });
  cp.kill('SIGTERM');
  let tFree = NaN;
  if (mode === 'port-free') {
    const net = await import('node:net');
    const refused = (port) =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => (s.destroy(), resolve(false)));
        s.once('error', () => resolve(true));
      });
    await waitFor(
      async () => (await refused(api_port)) && (await refused(proxy_port)),
      30_000,
      'the old control plane to release its ports',
      2,
    );
    tFree = Date.now();
  } else {
    await Promise.race([cp.exited, sleep(40_000)]);
  }
  const cp2 = await spawnControlPlane({ api_port, proxy_port, db_path, name: `control-plane (graceful ${mode}, new)` });
  const tListen = cp2.listening_at;
  const old = await Promise.race([cp.exited, sleep(40_000).then(() => null)]);
  const tOldExit = old?.at ?? NaN;
  let tRoutable = NaN;
  try {
    await waitRoutable(cp2.api_url, 'demo', 20_000);
    tRoutable = Date.now();
  } catch {
    // reported as n/a
  }
  const load = await loadP;
  const oldOut = cp.output().trim().split('\n').slice(-5).join(' ⏎ ');
  await stopProc(agent, 'SIGKILL');
  await stopProc(cp2, 'SIGKILL');
  return { mode, tSig, tFree, tOldExit, tListen, tRoutable, load, oldOut, old_exit: old };
}

/** SIGHUP: the control plane hands its listening sockets to a successor it spawns, then drains and exits. */
async function gracefulHandoff({ cp, agent, loadP, tSig }) {
  cp.kill('SIGHUP');
  let successor = NaN;
  let tListen = NaN;
  await waitFor(
    () => {
      const m = /successor (\d+) is serving/.exec(cp.output());
      if (m) {
        successor = Number(m[1]);
        tListen = Date.now();
      }
      return Boolean(m);
    },
    30_000,
    'the successor to be serving',
    5,
  );
  const old = await Promise.race([cp.exited, sleep(40_000).then(() => null)]);
  const load = await loadP;
  const oldOut = cp.output().trim().split('\n').slice(-5).join(' ⏎ ');
  await stopProc(agent, 'SIGKILL');
  try {
    process.kill(successor, 'SIGKILL');
  } catch {
    // already gone
  }
  return {
    mode: 'handoff',
    tSig,
    tFree: NaN,
    tOldExit: old?.at ?? NaN,
    tListen,
    tRoutable: tListen,
    load,
    oldOut,
    old_exit: old,
  };
}

async function benchGraceful() {
  const backend = stack?.backend ?? fleet?.backend ?? (await startBackend());
  const runs = [];
  for (const mode of ['handoff', 'after-exit', 'port-free']) {
    log(
      mode === 'handoff'
        ? 'graceful: SIGHUP under load (zero-downtime handoff to a successor)'
        : `graceful: SIGTERM under load, new process started ${mode === 'after-exit' ? 'once the old one exited' : 'as soon as the ports were free'}`,
    );
    runs.push(await gracefulOnce(backend, mode));
  }
  const rows = [];
  const detail = [];
  for (const r of runs) {
    const rel = (t) => (Number.isFinite(t) ? `+${((t - r.tSig) / 1000).toFixed(3)} s` : 'n/a');
    let ok = 0;
    let failed = 0;
    for (const s of Object.values(r.load.targets)) {
      ok += s.ok;
      failed += s.failed;
    }
    const fs = r.load.failures;
    const first = fs.length ? Math.min(...fs.map((x) => x.t0)) : NaN;
    const last = fs.length ? Math.max(...fs.map((x) => x.t1)) : NaN;
    // Which phase each failure started in.
    const phase = { before_exit: 0, gap: 0, after_listen: 0 };
    const firstEdge = Math.min(r.tOldExit, r.tListen);
    for (const x of fs) {
      if (x.t0 < firstEdge) phase.before_exit++;
      else if (x.t0 < r.tListen) phase.gap++;
      else phase.after_listen++;
    }
    rows.push([
      r.mode,
      f0(ok),
      failed === 0 ? '0' : `**${f0(failed)}**`,
      rel(r.tFree),
      rel(r.tOldExit),
      rel(r.tListen),
      rel(r.tRoutable),
      fs.length ? `${rel(first)} … ${rel(last)}` : '—',
    ]);
    // Per kind: how many, and when (request start times, relative to the SIGTERM).
    const byKind = new Map();
    for (const x of fs) {
      const k = `${x.target}: ${x.kind}`;
      const e = byKind.get(k) ?? { n: 0, first: Infinity, last: -Infinity, dmin: Infinity, dmax: -Infinity };
      e.n++;
      e.first = Math.min(e.first, x.t0);
      e.last = Math.max(e.last, x.t0);
      e.dmin = Math.min(e.dmin, x.t1 - x.t0);
      e.dmax = Math.max(e.dmax, x.t1 - x.t0);
      byKind.set(k, e);
    }
    const kindText = [...byKind.entries()]
      .sort((a, b) => a[1].first - b[1].first)
      .map(
        ([k, e]) =>
          `${k} × ${e.n} (sent ${rel(e.first)} … ${rel(e.last)}, failed after ${e.dmin === e.dmax ? `${e.dmin}` : `${e.dmin}–${e.dmax}`} ms)`,
      );
    detail.push(
      `- **${r.mode}**: ${failed} failed of ${ok + failed} requests. Failure kinds: ${kindText.length ? kindText.join('; ') : 'none'}. ` +
        `By start time: ${phase.before_exit} before the ${r.tOldExit < r.tListen ? 'old process exited' : 'new process listened'}, ${phase.gap} in the gap until the new process listened, ${phase.after_listen} after. ` +
        `Old process exit: ${r.old_exit ? (r.old_exit.code ?? r.old_exit.signal) : 'still running after 40 s'}.`,
    );
  }
  const failedOf = (r) => Object.values(r.load.targets).reduce((a, s) => a + s.failed, 0);
  const handoff = runs.find((r) => r.mode === 'handoff');
  goals.push({
    goal: 'zero failed requests across a graceful restart (new process) under load — `ee control-plane` SIGHUP handoff',
    measured: runs.map((r) => `${r.mode}: ${failedOf(r)} failed`).join('; '),
    met: handoff !== undefined && failedOf(handoff) === 0,
  });
  section(
    'Graceful restart under load',
    `20 request-level workers (10 via /v1/proxy/demo, 10 via Host routing), one GET /small at a time each, keep-alive, no client retries, for ${quick ? 4 : 8} s; the control plane gets the signal ${quick ? 1 : 2.5} s in. Mode *handoff*: SIGHUP — the running control plane spawns its successor with the listening sockets inherited, waits until it serves, then stops accepting, answers its remaining keep-alive requests with \`Connection: close\` and drains (\`packages/control-plane/src/handoff.ts\`); "new listening" is when the successor reported ready. Mode *after-exit* (SIGTERM): the new \`ee control-plane\` (same ports, same SQLite file) is started when the old process has exited. Mode *port-free*: it is started as soon as both ports refuse connections (the old one may still be draining). Times are relative to the SIGTERM. A failure is any request that ended in a transport error or a non-2xx status (a worker pauses 10 ms after each failure, so a refused port does not become a busy loop: the count depends on that pace; the window is the robust figure).\n\n` +
      table(
        ['mode', 'ok', 'failed', 'ports free', 'old exited', 'new listening', 'app routable again', 'failure window'],
        rows,
      ) +
      '\n\n' +
      detail.join('\n') +
      '\n\nFailure kinds: *ECONNRESET (reused socket)* = a request written on an existing keep-alive connection that the server then reset without answering; *ECONNREFUSED (new socket)* = nothing listening on the port; *HTTP 503 no_agent* (or another code) = a control plane answered, with that error code in the JSON body. "failed after" is the time from sending the request to seeing the failure.',
  );
  return runs;
}

// ---------- 7. profile ----------

async function stopFleet() {
  if (!fleet) return;
  fleet.insp?.close();
  fleet.insp = null;
  await stopFleetAgents(fleet);
  await stopProc(fleet.cp, 'SIGKILL');
  fleet.done = true;
}

/** CPU profile of a control plane while N agents connect at once: a kill -9 restart of the fleet when it is up
 *  (the restart section's scenario, now with the profiler attached), else a cold connect of N agents. */
async function profileStorm() {
  const N = agentsN;
  let kind;
  let cp;
  let insp;
  let t0;
  if (fleet && !fleet.done && fleetAgentsAlive(fleet)) {
    kind = `kill -9 restart with ${N} connected agents`;
    fleet.insp?.close();
    fleet.insp = null;
    fleet.cp.kill('SIGKILL');
    await fleet.cp.exited;
    t0 = Date.now();
    cp = fleet.cp = await spawnControlPlane({
      api_port: fleet.api_port,
      proxy_port: fleet.proxy_port,
      db_path: fleet.db_path,
      nodeArgs: [INSPECT_ARG],
      name: 'control-plane (fleet, profiled restart)',
    });
    insp = await connectInspector((await cp.waitLine(INSPECT_LINE, 5000)).match[1]);
    await insp.startProfile(1000);
  } else {
    kind = `cold connect of ${N} agents`;
    const fl = await getFleet();
    cp = fl.cp;
    insp = fl.insp;
    if (!insp) throw new Error('inspector unavailable');
    await insp.startProfile(1000);
    t0 = Date.now();
    spawnFleetAgents(fl, N);
  }
  log(`profile: ${kind}, control plane profiled until all are routable`);
  await waitFor(
    async () => (await healthCounts(cp.api_url)).agents_routable >= N,
    120_000,
    `${N} routable agents`,
    200,
  );
  const took = Date.now() - t0;
  const prof = summarizeProfile(await insp.stopProfile(), 12);
  await confirmRoutable(cp.api_url, N);
  await stopFleet();
  return { kind, took, prof };
}

async function benchProfile() {
  const backend = stack?.backend ?? fleet?.backend ?? (await startBackend());
  let storm = null;
  try {
    storm = await profileStorm();
  } catch (err) {
    log(`profile: connect-storm profile failed: ${err.message}`);
    await stopFleet();
  }
  log('profile: control plane and agent under --inspect, V8 CPU profile of the 50-connection small-GET load');
  const cp = await spawnControlPlane({ nodeArgs: [INSPECT_ARG], name: 'control-plane (profile)' });
  const agent = spawnAgent({
    ws_url: cp.ws_url,
    backend_url: backend.url,
    app: 'demo',
    nodeArgs: [INSPECT_ARG],
    name: 'agent (profile)',
  });
  await waitRoutable(cp.api_url, 'demo', 15_000);
  const cpInsp = await connectInspector((await cp.waitLine(INSPECT_LINE, 5000)).match[1]);
  const agInsp = await connectInspector((await agent.waitLine(INSPECT_LINE, 5000)).match[1]);
  await runLoad({ url: `${cp.api_url}/v1/proxy/demo/small`, connections: 50, duration_s: WARM, warmup_s: 0 });
  await cpInsp.startProfile();
  await agInsp.startProfile();
  const load = await runLoad({
    url: `${cp.api_url}/v1/proxy/demo/small`,
    connections: 50,
    duration_s: DUR,
    warmup_s: 0,
  });
  const cpProf = summarizeProfile(await cpInsp.stopProfile());
  const agProf = summarizeProfile(await agInsp.stopProfile());
  cpInsp.close();
  agInsp.close();
  await stopProc(agent, 'SIGKILL');
  await stopProc(cp, 'SIGKILL');
  const fnTable = (p) =>
    table(
      ['function (self time)', 'ms', '% of busy'],
      p.functions
        .filter((x) => x.name !== '(idle)')
        .slice(0, 15)
        .map((x) => [`\`${x.name}\``, f0(x.ms), f1(x.pct_busy)]),
    );
  const modTable = (p) =>
    table(
      ['module (self time)', 'ms', '% of busy'],
      p.modules
        .filter((x) => x.name !== '(idle)')
        .slice(0, 12)
        .map((x) => [`\`${x.name}\``, f0(x.ms), f1(x.pct_busy)]),
    );
  const stormText = storm
    ? `### Control plane during a connect storm (${storm.kind})\n\nProfiled from the moment the new process answered /health until all ${agentsN} agents were routable: ${secs(storm.took)} (the profiler costs a little, and agents' backoff is random, so this is not the restart figure above). The control plane was busy ${f0(storm.prof.busy_pct)}% of that time. Native functions (\`run\`, \`Statement\`, \`writev\`) count the time spent inside them, including blocking system calls (better-sqlite3 is synchronous: a commit's fsync blocks the event loop).\n\n${modTable(storm.prof)}\n\n${fnTable(storm.prof)}\n\n`
    : '';
  section(
    'Where the time goes (CPU profiles)',
    `V8 sampling CPU profiles (the profiler behind \`node --cpu-prof\`, started and stopped through the inspector so start-up is excluded). Self time per function and per module; "busy" = all non-idle samples. On a loaded machine a thread descheduled inside a system call still counts as busy in that call, so native entries (\`writev\`, \`writeLatin1String\` = socket writes) read high; the per-request CPU table in "Small GETs" is the better measure of cost per process.\n\n` +
      stormText +
      `### Small GETs at 50 connections via /v1/proxy\n\n${DUR} s, 0.5 ms sampling, a fresh control plane and agent (${f0(load.rps)} req/s, p99 ${f2(load.p99_ms)} ms while profiled). The control plane was busy ${f0(cpProf.busy_pct)}% of the window, the agent ${f0(agProf.busy_pct)}%.\n\n` +
      `#### Control plane\n\n${modTable(cpProf)}\n\n${fnTable(cpProf)}\n\n#### Agent\n\n${modTable(agProf)}\n\n${fnTable(agProf)}`,
  );
  return { cpProf, agProf, load };
}

// ---------- 10. confidential ----------

/** Sealed vs plain through the tunnel, same client code, same run: small POSTs (req/s, p99, agent CPU per
 *  request) and 100 MiB each way. A fresh backend, control plane and agent of their own. */
async function benchConfidential() {
  const backend = await startBackend();
  const cp = await spawnControlPlane({ name: 'control-plane (confidential)' });
  const agent = spawnAgent({ ws_url: cp.ws_url, backend_url: backend.url, app: 'demo', name: 'agent (confidential)' });
  try {
    await waitRoutable(cp.api_url, 'demo', 15_000);
    const nonce = Buffer.alloc(32, 7).toString('hex');
    const ev = await (await fetch(`${cp.api_url}/v1/apps/demo/attestation?nonce=${nonce}`)).json();
    const pk = ev.keyset.hpke_public_key;
    const base = { code_root: CODE_ROOT, url: `${cp.api_url}/v1/proxy/demo` };
    const CONNS = 32;
    const rounds = quick ? 1 : 3;
    const rps = { plain: [], sealed: [] };
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 ? ['sealed', 'plain'] : ['plain', 'sealed']) {
        log(`confidential: small POSTs, round ${round + 1}/${rounds}, ${mode}`);
        const public_key = mode === 'sealed' ? pk : null;
        const r = await runConfidential({
          ...base,
          public_key,
          kind: 'rps',
          connections: CONNS,
          warm_s: WARM,
          duration_s: SMALL_DUR,
          body_bytes: 100,
          cpu_pids: [agent.pid, cp.pid],
        });
        [r.agent_us, r.cp_us] = r.pid_us;
        rps[mode].push(r);
      }
    }
    // The cryptographic floor of one sealed small POST (bench/confidential.mjs, cryptoFloor), in this run.
    log('confidential: crypto floor per sealed request (in-process loop)');
    const floorOpts = { ...base, kind: 'floor', iterations: quick ? 1000 : 3000, body_bytes: 100 };
    // A second try if the child fails (it once stalled before its loop on a loaded machine).
    const floor = await runConfidential(floorOpts).catch(() => runConfidential(floorOpts));
    const xfer = { plain: { upload: [], download: [] }, sealed: { upload: [], download: [] } };
    for (let rep = 0; rep < LARGE_REPS; rep++) {
      for (const mode of ['plain', 'sealed']) {
        for (const dir of ['download', 'upload']) {
          log(`confidential: 100 MiB ${dir}, ${mode}, ${rep + 1}/${LARGE_REPS}`);
          const r = await runConfidential({
            ...base,
            public_key: mode === 'sealed' ? pk : null,
            kind: 'transfer',
            dir,
            bytes: LARGE,
          });
          xfer[mode][dir].push(r.gbps);
        }
      }
    }
    const m = (xs, k) => median(xs.map((x) => x[k]));
    const ratioRps = median(rps.sealed.map((s, i) => s.rps / rps.plain[i].rps));
    const rows = ['plain', 'sealed'].map((mode) => [
      mode,
      f0(m(rps[mode], 'rps')),
      f2(m(rps[mode], 'p50_ms')),
      f2(m(rps[mode], 'p99_ms')),
      f0(m(rps[mode], 'agent_us')),
      f0(m(rps[mode], 'cp_us')),
      f0(m(rps[mode], 'client_us')),
      String(rps[mode].reduce((a, r) => a + r.failed, 0)),
    ]);
    const totalUs = (mode) => median(rps[mode].map((r) => r.client_us + r.agent_us + r.cp_us));
    const plainUs = totalUs('plain');
    const sealedUs = totalUs('sealed');
    const cryptoUs = floor.client_us + floor.agent_us;
    const floorRows = [
      [
        'crypto floor of one sealed request (client / agent / total)',
        `${f0(floor.client_us)} / ${f0(floor.agent_us)} / ${f0(cryptoUs)}`,
      ],
      ['the bare node:crypto primitives under it (both sides)', f0(floor.primitives_us)],
      ['plain request, all processes (measured)', f0(plainUs)],
      ['sealed request, all processes (measured)', f0(sealedUs)],
      ['sealed overhead above plain + floor', f0(sealedUs - plainUs - cryptoUs)],
      ['ceiling sealed / plain = plain / (plain + floor)', pct(plainUs / (plainUs + cryptoUs))],
      [
        'ceiling with the bare primitives = plain / (plain + primitives)',
        pct(plainUs / (plainUs + floor.primitives_us)),
      ],
      ['predicted from measured CPU = plain / sealed', pct(plainUs / sealedUs)],
    ];
    const gb = (mode, dir) => median(xfer[mode][dir]);
    const tRows = ['download', 'upload'].map((dir) => [
      `100 MiB ${dir}`,
      f2(gb('plain', dir)),
      f2(gb('sealed', dir)),
      pct(gb('sealed', dir) / gb('plain', dir)),
    ]);
    goals.push({
      goal: `confidential: sealed small POSTs ≥ 80% of plain req/s (${CONNS} conns, same run)`,
      measured: `${pct(ratioRps)} (${f0(m(rps.sealed, 'rps'))} vs ${f0(m(rps.plain, 'rps'))} req/s; p99 ${f2(m(rps.sealed, 'p99_ms'))} vs ${f2(m(rps.plain, 'p99_ms'))} ms)`,
      met: ratioRps >= 0.8,
    });
    for (const dir of ['download', 'upload']) {
      const r = gb('sealed', dir) / gb('plain', dir);
      goals.push({
        goal: `confidential: sealed 100 MiB ${dir} ≥ 70% of plain GB/s`,
        measured: `${pct(r)} (${f2(gb('sealed', dir))} vs ${f2(gb('plain', dir))} GB/s)`,
        met: r >= 0.7,
      });
    }
    // Receipts accepted by the control plane, batched as the tunnel carries them (bench/receipts.mjs).
    log('confidential: receipts accepted per second');
    const { execFileSync } = await import('node:child_process');
    const rcOut = execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'bench/receipts.mjs'), '--json', '--receipts', quick ? '5000' : '20000'],
      { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const rc = JSON.parse(rcOut.trim().split('\n').pop());
    goals.push({
      goal: 'confidential: receipts accepted ≥ 5,000/s by the control plane (batched, with their ledger posts)',
      measured: `${f0(rc.rate)}/s (${rc.accepted} of ${rc.receipts}; claimed = sum: ${rc.claimed_equals_sum}; ledger verifies: ${rc.verify_ok})`,
      met: rc.rate >= 5000 && rc.accepted === rc.receipts && rc.claimed_equals_sum && rc.verify_ok,
    });
    section(
      'Confidential (sealed) traffic',
      `Sealed requests (HPKE to the agent's attested X25519 key, docs/confidential.md) against plain ones through the same control plane and agent (\`/v1/proxy/demo\`), with the same client code (\`bench/confidential.mjs\`, undici keep-alive pool, its own process); a sealed request is sealed and its response opened and authenticated by that client, so the client's crypto is part of the cost, and every process shares the 2 cores. Small POSTs: 100-byte body to \`/sink\`, ${CONNS} connections, ${rounds} round(s) of ${SMALL_DUR} s after a ${WARM} s warm-up, plain and sealed alternating; medians over rounds (the ratio is the median of per-round ratios). CPU per request: user + system time of the agent, control-plane and client processes over the measured window (the client warms up in the same process first), divided by the requests served.\n\n` +
        table(
          [
            'mode',
            'req/s',
            'p50 ms',
            'p99 ms',
            'agent CPU µs/req',
            'control plane CPU µs/req',
            'client CPU µs/req',
            'failed',
          ],
          rows,
        ) +
        `\n\nSealed / plain req/s: **${pct(ratioRps)}**.\n\nCPU µs per small request, same run. The floor is the cryptography alone (\`bench/confidential.mjs\` cryptoFloor: ${floor.iterations} requests in a loop, no I/O, process.cpuUsage; client: HPKE setup to the agent key, seal meta and body, derive the response key, open its frames; agent: HPKE open, seal the response; these requests carry no reservation, so no receipt is signed or verified). With all processes sharing the cores, req/s ∝ 1 / total CPU per request:\n\n` +
        table(['CPU per request', 'µs or ratio'], floorRows) +
        `\n\n100 MiB bodies, one at a time, median of ${LARGE_REPS}:\n\n` +
        table(['transfer', 'plain GB/s', 'sealed GB/s', 'sealed / plain'], tRows) +
        `\n\nUsage receipts (\`bench/receipts.mjs\`, its own process): ${rc.receipts} receipts signed beforehand by ${16} agent keys over ${64} reservations, claimed through the control plane's receipt path (shape, amount and Ed25519 checks, signatures on worker threads; per reservation one ledger operation per batch, posting the exact sum of its accepted receipts as one claim and storing each receipt) in batches of ${rc.batch}, ${rc.in_flight} batches in flight, SQLite with synchronous=FULL: **${f0(rc.rate)} receipts/s**, ${f0(rc.cpu_us_per_receipt)} µs of process CPU per receipt (all threads); afterwards claimed = the receipts' sum (${rc.claimed_equals_sum}) and the ledger verifies (${rc.verify_ok}).`,
    );
    return { rps, xfer, receipts: rc, floor };
  } finally {
    await stopProc(agent, 'SIGKILL');
    await stopProc(cp, 'SIGKILL');
    await stopProc(backend, 'SIGKILL');
  }
}

// ---------- Main ----------

async function main() {
  const started = Date.now();
  let build = ensureBuilt();
  if (!flags.has('--no-snapshot')) {
    setCodeRoot(snapshotBuild(REPO_ROOT));
    build += `; run from a copy of packages/*/dist taken at the start (bench/snapshot.mjs)`;
  }
  const m = machine();
  const nginxBin = findNginx();
  const ngVer = nginxBin ? nginxVersion(nginxBin) : null;
  const load0 = os.loadavg();
  console.log(`easyenclave benchmark: ${selected.join(', ')}${quick ? ' (--quick)' : ''}`);
  console.log(
    `machine: ${m.nproc} cores (${m.cpu}), node ${m.node}, ${ngVer ?? 'no nginx'}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`,
  );
  if (!nginxBin && selected.some((s) => ['small', 'large'].includes(s))) {
    console.log(`\nNOTE: ${NGINX_INSTALL_HINT}. The nginx column is skipped in this run.\n`);
  }
  const run = {
    ledger: benchLedger,
    confidential: benchConfidential,
    jobs: benchJobs,
    attestation: benchAttestation,
    small: benchSmall,
    large: benchLarge,
    mixed: benchMixed,
    idle: benchIdle,
    restart: benchRestart,
    graceful: benchGraceful,
    profile: benchProfile,
  };
  const failures = [];
  for (const s of selected) {
    sectionLoad = loadNow();
    try {
      await run[s](nginxBin);
    } catch (err) {
      failures.push(`${s}: ${err.message}`);
      log(`section ${s} failed: ${err.stack ?? err.message}`);
      section(`${s}: FAILED`, '```\n' + String(err.message).slice(0, 3000) + '\n```');
    }
    if (
      s === 'mixed' ||
      (s === 'large' && !selected.includes('mixed')) ||
      (s === 'small' && !selected.some((x) => ['large', 'mixed'].includes(x)))
    ) {
      // The small/large/mixed stack is no longer needed: stop it so it does not compete with what follows.
      if (stack) {
        await stopProc(stack.agent, 'SIGKILL');
        await stopProc(stack.cp, 'SIGKILL');
        if (stack.nginx) await stopProc(stack.nginx, 'SIGTERM');
        await stopProc(stack.nodeProxy, 'SIGKILL');
        stack = { backend: stack.backend, targets: [] };
        stack.done = true;
      }
    }
    // The fleet (N agents) stays up for the next section that uses it (restart, then profile's restart storm).
    const later = selected.slice(selected.indexOf(s) + 1);
    if (!later.includes('restart') && !later.includes('profile')) await stopFleet();
  }
  const load1 = os.loadavg();
  const elapsed = (Date.now() - started) / 1000;

  const goalRows = goals.map((g) => [
    g.goal,
    g.measured,
    g.met === null ? 'reported (no stated goal)' : g.met ? 'met' : '**not met**',
  ]);
  const goalText = goals.length ? table(['goal', 'measured', ''], goalRows) : '_no goal measured in this run_';
  console.log(`\n## Goals\n\n${goalText}\n`);
  for (const x of scale) console.log(`- ${x}`);
  console.log(
    `total time ${elapsed.toFixed(0)} s; load average at the end ${load1.map((x) => x.toFixed(2)).join(' ')}`,
  );

  const header = [
    '# Benchmarks',
    '',
    '_Generated by `npm run bench` (scripts/bench.mjs); re-run to refresh. Do not edit by hand._',
    '',
    `- Command: \`npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}\` (sections: ${selected.join(', ')})`,
    `- Date: ${new Date(started).toISOString().replace('T', ' ').slice(0, 16)} UTC; total run time ${elapsed.toFixed(0)} s`,
    `- Machine: ${m.nproc} cores (${m.cpu}), ${m.mem_gib} GiB, ${m.kernel}; Node ${m.node}; ${ngVer ?? 'nginx not installed (column skipped)'}`,
    `- Load average (1/5/15 min) at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')} — the machine is shared and noisy: compare ratios within one run, not absolute numbers across runs.`,
    `- Code: commit ${m.commit}, ${build}`,
    '',
    '## Method',
    '',
    '- Every target is its own process: the backend (`bench/backend.mjs`, node:http), nginx, the node proxy (`bench/node-proxy.mjs`), the control plane (`ee control-plane`), the agent (`ee agent`); the load generator too (`bench/load.mjs`: autocannon 8 in a child process, the same way for every target). All of them share the same cores, so the load generator costs every target the same.',
    '- Targets: **direct** = the backend itself (the limit); **nginx** = Debian `nginx-light` with `worker_processes 1` (one proxy process, like the control plane), upstream `keepalive 64`, `proxy_http_version 1.1`, `proxy_buffering off` and `proxy_request_buffering off` (bodies stream in both directions, like the tunnel) with 64 KiB `proxy_buffer_size`/`client_body_buffer_size` (the default one-page buffers cut the 100 MiB rate of nginx to about a third), `access_log off` (config written by `bench/nginx.mjs`); **node proxy** = `bench/node-proxy.mjs`, the least one Node HTTP hop can do: a node:http server forwarding every request through an undici `Pool` (keep-alive, pipelining 1, 128 connections) with bodies streamed both ways under backpressure, hop-by-hop headers dropped and nothing else (no tunnel, auth or JSON heads), so it shows what share of direct any Node proxy can reach on this machine; **tunnel** = client → control plane → WebSocket tunnel → agent → backend, through `/v1/proxy/{app}` on the API port and through `Host: {app}.app.test` on the proxy port.',
    `- Every control plane runs with \`GLIBC_TUNABLES=${CP_MALLOC_TUNABLES}\`, the setting README.md documents for glibc Linux (the idle section shows why, with one run without it); the other processes run with glibc's defaults.`,
    "- Latency percentiles are exact (every 2xx response time recorded by the load process, not autocannon's 1 ms-resolution histogram). Throughput is 2xx responses per second.",
    '- 100 MiB transfers use `curl` as the client (`bench/transfer.mjs`; a Node fallback if curl is missing). Idle memory and restart use N real `Agent` instances in one process (`bench/many-agents.mjs`; the idle section starts them in two halves, to report the marginal cost per agent next to the average); graceful restart uses a request-level client (`bench/http-load.mjs`) so every failed request is counted once with its cause.',
    '- Partial runs (`npm run bench -- small`) and `--quick` runs print only; a full run (or `--write`) rewrites this file.',
    '',
    '## Goals',
    '',
    goalText,
    '',
    ...(scale.length ? ["For scale, from this run's reference targets:", '', ...scale.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
  const body =
    header +
    '\n' +
    doc.join('\n') +
    (failures.length ? `\n## Failed sections\n\n${failures.map((f) => `- ${f}`).join('\n')}\n` : '');
  // A run with failed sections does not replace good results unless --write asks for it.
  if (writeDoc && (failures.length === 0 || flags.has('--write'))) {
    writeFileSync(join(REPO_ROOT, 'docs/benchmarks.md'), body);
    console.log('wrote docs/benchmarks.md');
  } else {
    const why =
      failures.length && writeDoc
        ? `${failures.length} section(s) failed; pass --write to write it anyway`
        : fullRun
          ? '--no-write'
          : 'partial or --quick run; pass --write to write it';
    console.log(`(docs/benchmarks.md not written: ${why})`);
  }
  return failures.length ? 1 : 0;
}

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});
process.on('SIGTERM', () => {
  killAllSync();
  process.exit(143);
});

const hardLimit = setTimeout(() => {
  console.error('bench: giving up after 15 minutes');
  killAllSync();
  process.exit(1);
}, 15 * 60_000);
hardLimit.unref();

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`bench: ${err.stack ?? err.message}`);
} finally {
  await killAll();
}
process.exit(code);
