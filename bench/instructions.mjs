#!/usr/bin/env node
// Instructions per proxied request, counted by valgrind (callgrind) in one process of the path: the control
// plane or the agent. An instruction count does not depend on what else the machine is doing, so two
// checkouts compare within a few per cent where CPU time and req/s swing by 20% on a shared machine.
// Both processes run JIT-compiled JavaScript: the warm-up lets V8 tier up before counting starts.
//
//   node bench/instructions.mjs [--process control-plane|agent] [--entry path|host] [--code DIR]
//                               [--requests N] [--warmup N] [--idle S] [--save FILE]
//
// --code runs another checkout's built code (npx tsc -b there) under this harness; --save keeps the counted
// dump for callgrind_annotate. Needs valgrind.
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  agentEnv,
  cpEnv,
  eeBin,
  freePort,
  killAll,
  setCodeRoot,
  sleep,
  spawnProc,
  startBackend,
  tmpDir,
  waitFor,
  waitRoutable,
} from './procs.mjs';

const CONNECTIONS = 10;
const VALGRIND_START_TIMEOUT_MS = 300_000;

function die(msg) {
  console.error(`instructions: ${msg}`);
  process.exit(2);
}

const opts = { process: 'control-plane', entry: 'path', requests: 2000, warmup: 8000, idle_s: 10, save: null };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const v = args[++i];
  if (v === undefined) die(`${a} needs a value`);
  if (a === '--process') opts.process = v;
  else if (a === '--entry') opts.entry = v;
  else if (a === '--code') setCodeRoot(resolve(v));
  else if (a === '--requests') opts.requests = Number(v);
  else if (a === '--warmup') opts.warmup = Number(v);
  else if (a === '--idle') opts.idle_s = Number(v);
  else if (a === '--save') opts.save = resolve(v);
  else die(`unknown argument ${a}`);
}
if (!['control-plane', 'agent'].includes(opts.process)) die('--process is control-plane or agent');
if (!['path', 'host'].includes(opts.entry)) die('--entry is path or host');
if (!(opts.idle_s >= 1 && opts.idle_s <= 600)) die('--idle must be 1 to 600 seconds');
for (const k of ['requests', 'warmup'])
  if (!Number.isInteger(opts[k]) || opts[k] < 1 || opts[k] > 1_000_000) die(`--${k} must be 1 to 1000000`);

const out_dir = tmpDir('ee-bench-callgrind-');
const under = (name) =>
  opts.process === name
    ? [
        'valgrind',
        [
          '--tool=callgrind',
          '--smc-check=all-non-file',
          '--separate-threads=yes',
          `--callgrind-out-file=${join(out_dir, 'cg.out')}`,
          process.execPath,
        ],
      ]
    : [process.execPath, []];

const backend = await startBackend();
const api_port = await freePort();
const proxy_port = await freePort();
const [cp_cmd, cp_pre] = under('control-plane');
const cp = spawnProc('control-plane', cp_cmd, [...cp_pre, eeBin(), 'control-plane'], {
  env: cpEnv({ api_port, proxy_port, db_path: join(tmpDir(), 'cp.db') }),
  ulimit: true,
});
const api_url = `http://127.0.0.1:${api_port}`;
try {
  await cp.waitLine(/easyenclave control plane: api /, VALGRIND_START_TIMEOUT_MS, 'its listening line');
  await waitFor(async () => (await fetch(`${api_url}/health`)).ok, 30_000, 'control plane /health');
  const [agent_cmd, agent_pre] = under('agent');
  const agent = spawnProc('agent', agent_cmd, [...agent_pre, eeBin(), 'agent'], {
    env: agentEnv({ ws_url: `ws://127.0.0.1:${api_port}/v1/tunnel`, backend_url: backend.url }),
    ulimit: true,
  });
  await waitRoutable(api_url, 'demo', VALGRIND_START_TIMEOUT_MS);
  const target =
    opts.entry === 'path'
      ? { url: `${api_url}/v1/proxy/demo/small`, headers: {} }
      : { url: `http://127.0.0.1:${proxy_port}/small`, headers: { host: 'demo.app.test' } };
  const load = async (amount) => {
    const r = await autocannon({ ...target, connections: CONNECTIONS, amount, timeout: 60 });
    const bad = r.non2xx + r.errors + r.timeouts;
    if (bad > 0) die(`${bad} of ${amount} requests failed`);
  };
  const measured = opts.process === 'agent' ? agent : cp;
  // Counts instructions over `work`, per thread: one callgrind dump per thread (cg.out.N-T, N the dump's
  // number); thread 1 runs the event loop, the others are V8's compiler and GC helpers and libuv's pool.
  let dump_no = 0;
  const count = async (work) => {
    execFileSync('callgrind_control', ['-z', String(measured.pid)], { stdio: 'ignore' });
    const t0 = performance.now();
    await work();
    const elapsed_s = (performance.now() - t0) / 1000;
    execFileSync('callgrind_control', ['-d', String(measured.pid)], { stdio: 'ignore' });
    dump_no++;
    const c = { total: 0, main: 0, elapsed_s };
    for (const f of readdirSync(out_dir).filter((f) => f.startsWith(`cg.out.${dump_no}-`))) {
      const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(out_dir, f), 'utf8'));
      if (!m) continue;
      c.total += Number(m[1]);
      if (/-0*1$/.test(f)) c.main += Number(m[1]);
      if (opts.save) copyFileSync(join(out_dir, f), `${opts.save}.${f.slice('cg.out.'.length)}`);
    }
    if (c.total === 0) die(`no callgrind dump ${dump_no} in ${out_dir}`);
    return c;
  };
  await load(opts.warmup);
  // What the process does with no request (timers, heartbeats, background ticks) runs while the slowed-down
  // load runs too: measured alone, it is taken out of the per-request figure.
  const idle = await count(() => sleep(opts.idle_s * 1000));
  const busy = await count(() => load(opts.requests));
  const per_request = (k) => Math.round((busy[k] - (idle[k] / idle.elapsed_s) * busy.elapsed_s) / opts.requests);
  console.log(
    JSON.stringify({
      process: opts.process,
      entry: opts.entry,
      requests: opts.requests,
      instructions_per_request: per_request('total'),
      main_thread_per_request: per_request('main'),
      idle_per_s: Math.round(idle.total / idle.elapsed_s),
      load_s: Math.round(busy.elapsed_s),
    }),
  );
} finally {
  await killAll();
}
