// Process plumbing for the benchmark: every target runs in its own process (backend, nginx, control plane,
// agent, load generator), started here and killed by killAll(). Loopback only; every wait is bounded.

import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Where the built packages are run from: the repository, or a snapshot of it (bench/snapshot.mjs). */
export let CODE_ROOT = REPO_ROOT;
export function setCodeRoot(root) {
  CODE_ROOT = root;
}
export const eeBin = () => join(CODE_ROOT, 'packages/cli/dist/main.js');
export const BENCH_DIR = join(REPO_ROOT, 'bench');
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
export const APP_DOMAIN = 'app.test';
export const FD_LIMIT = 65536;

const procs = new Set();
const tmpDirs = [];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tmpDir(prefix = 'ee-bench-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

/** Polls fn until truthy or the deadline passes (then throws, naming what it waited for). */
export async function waitFor(fn, timeout_ms, what, every_ms = 20) {
  const deadline = Date.now() + timeout_ms;
  let last;
  for (let i = 0; i < 1_000_000; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) break;
    await sleep(every_ms);
  }
  throw new Error(`timed out after ${timeout_ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = http.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once nothing accepts on the port (connect refused). */
export function portFree(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 500 }, (res) => {
      res.resume();
      resolve(false);
    });
    req.on('error', () => resolve(true));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** RSS and peak RSS of a process in KiB (from /proc). */
export function memKiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

/** Read/write syscall counters of a process (/proc/<pid>/io: syscr, syscw); zeros if it is gone. */
export function ioCounts(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
    return { r: get('syscr'), w: get('syscw') };
  } catch {
    return { r: 0, w: 0 };
  }
}

let clkTck = null;
/** CPU time of a process in ms (user, system), from /proc/<pid>/stat (all threads); zeros if it is gone. */
export function cpuMs(pid) {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return { u: (Number(f[11]) * 1000) / clkTck, s: (Number(f[12]) * 1000) / clkTck };
  } catch {
    return { u: 0, s: 0 };
  }
}

/** Direct children of a process (e.g. nginx workers under the master). */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Spawns a process. With `ulimit`, it runs under `bash -c 'ulimit -n …; exec …'` (same pid after exec) so
 * it may hold thousands of sockets. Keeps the last 256 KiB of its output.
 */
export function spawnProc(
  name,
  cmd,
  args,
  { env = {}, ulimit = false, cwd = REPO_ROOT, onLine, stopSignal = 'SIGKILL' } = {},
) {
  // GLIBC_TUNABLES passes through, to measure allocator settings (e.g. the mmap threshold) on the real processes.
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    EE_BENCH_CODE_ROOT: CODE_ROOT,
    ...(process.env.GLIBC_TUNABLES ? { GLIBC_TUNABLES: process.env.GLIBC_TUNABLES } : {}),
    ...env,
  };
  const child = ulimit
    ? spawn(
        'bash',
        ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`, 'bash', cmd, ...args],
        { env: fullEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] },
      )
    : spawn(cmd, args, { env: fullEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const lineWaiters = [];
  let partial = '';
  const onData = (d) => {
    const s = d.toString();
    out = (out + s).slice(-256 * 1024);
    partial += s;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      onLine?.(line, Date.now());
      for (const w of [...lineWaiters]) {
        const m = w.re.exec(line);
        if (m) {
          lineWaiters.splice(lineWaiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve({ match: m, line, at: Date.now() });
        }
      }
    }
    if (partial.length > 64 * 1024) partial = partial.slice(-64 * 1024);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exitInfo = null;
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal, at: Date.now() };
      procs.delete(h);
      for (const w of lineWaiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`${name} exited (${code ?? signal}) before printing ${w.re}\n${out.slice(-4000)}`));
      }
      resolve(exitInfo);
    }),
  );
  const h = {
    name,
    stopSignal,
    child,
    pid: child.pid,
    exited,
    get exitInfo() {
      return exitInfo;
    },
    output: () => out,
    alive: () => exitInfo === null,
    exitStatus: () => exitInfo,
    kill(signal = 'SIGKILL') {
      if (exitInfo === null) {
        try {
          process.kill(child.pid, signal);
        } catch {
          // already gone
        }
      }
    },
    /** Waits for an output line matching re (bounded). */
    waitLine(re, timeout_ms, what = String(re)) {
      const m = out
        .split('\n')
        .map((l) => re.exec(l))
        .find(Boolean);
      if (m) return Promise.resolve({ match: m, line: m.input, at: Date.now() });
      if (exitInfo) return Promise.reject(new Error(`${name} already exited before ${what}\n${out.slice(-4000)}`));
      return new Promise((resolve, reject) => {
        const w = {
          re,
          resolve,
          reject,
          timer: setTimeout(() => {
            lineWaiters.splice(lineWaiters.indexOf(w), 1);
            reject(
              new Error(`timed out after ${timeout_ms} ms waiting for ${name} to print ${what}\n${out.slice(-4000)}`),
            );
          }, timeout_ms),
        };
        lineWaiters.push(w);
      });
    },
  };
  procs.add(h);
  return h;
}

export async function stopProc(h, signal = 'SIGTERM', timeout_ms = 3000) {
  if (!h || !h.alive()) return;
  h.kill(signal);
  const t = setTimeout(() => h.kill('SIGKILL'), timeout_ms);
  await h.exited;
  clearTimeout(t);
}

/** Kills every process this benchmark started (by pid) and removes its temp dirs. */
export async function killAll() {
  const all = [...procs];
  // nginx gets SIGTERM first (its master then stops its workers); everything else SIGKILL.
  for (const h of all) h.kill(h.stopSignal);
  await Promise.race([Promise.all(all.map((h) => h.exited)), sleep(2000)]);
  for (const h of all) h.kill('SIGKILL');
  await Promise.race([Promise.all(all.map((h) => h.exited)), sleep(2000)]);
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function killAllSync() {
  for (const h of procs) h.kill(h.stopSignal === 'SIGKILL' ? 'SIGKILL' : h.stopSignal);
  for (const d of tmpDirs.splice(0)) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

// ---------- The parts under test ----------

export async function startBackend() {
  const h = spawnProc('backend', process.execPath, [join(BENCH_DIR, 'backend.mjs'), '0'], { ulimit: true });
  const { match } = await h.waitLine(/^\{"port":(\d+)\}$/, 10_000, 'its port');
  const port = Number(match[1]);
  return { ...h, port, url: `http://127.0.0.1:${port}` };
}

/** The one-Node-hop reference proxy (bench/node-proxy.mjs) in front of backend_url. */
export async function startNodeProxy(backend_url) {
  const h = spawnProc('node-proxy', process.execPath, [join(BENCH_DIR, 'node-proxy.mjs'), backend_url, '0'], {
    ulimit: true,
  });
  const { match } = await h.waitLine(/^\{"port":(\d+)\}$/, 10_000, 'its port');
  const port = Number(match[1]);
  return { ...h, port, url: `http://127.0.0.1:${port}` };
}

/** The deployment setting README.md documents for the control plane on glibc Linux (see "Memory allocator"):
 *  at most two malloc arenas. Every benchmarked control plane runs with it unless `extra` overrides it. */
export const CP_MALLOC_TUNABLES = 'glibc.malloc.arena_max=2';

export function cpEnv({ api_port, proxy_port, db_path, extra = {} }) {
  return {
    GLIBC_TUNABLES: process.env.GLIBC_TUNABLES || CP_MALLOC_TUNABLES,
    EE_CONTROL_BIND: '127.0.0.1',
    EE_CONTROL_PORT: String(api_port),
    EE_PROXY_BIND: '127.0.0.1',
    EE_PROXY_PORT: String(proxy_port),
    EE_DB_PATH: db_path,
    EE_ADMIN_TOKEN: ADMIN_TOKEN,
    EE_APP_DOMAIN: APP_DOMAIN,
    EE_LOG_LEVEL: 'warn',
    // Every bench agent dials from this one host; in production they are many hosts, each under these caps.
    EE_MAX_HANDSHAKES_PER_ADDRESS: '1000000',
    EE_APP_CLAIMS_PER_HOUR: '1000000',
    EE_MAX_CONNECTIONS_PER_ADDRESS: '1000000',
    ...extra,
  };
}

/**
 * `ee control-plane` as a subprocess on fixed loopback ports (so it can be killed and restarted on the same
 * ports and database). Resolves once it printed its "listening" line and /health answers.
 */
export async function spawnControlPlane({
  api_port,
  proxy_port,
  db_path,
  extra = {},
  nodeArgs = [],
  name = 'control-plane',
  onLine,
} = {}) {
  api_port ??= await freePort();
  proxy_port ??= await freePort();
  db_path ??= join(tmpDir(), 'cp.db');
  const env = cpEnv({ api_port, proxy_port, db_path, extra });
  const spawned_at = Date.now();
  const h = spawnProc(name, process.execPath, [...nodeArgs, eeBin(), 'control-plane'], { env, ulimit: true, onLine });
  const listening = await h.waitLine(/easyenclave control plane: api /, 20_000, 'its listening line');
  const api_url = `http://127.0.0.1:${api_port}`;
  await waitFor(async () => (await fetch(`${api_url}/health`)).ok, 10_000, `control plane /health on ${api_url}`);
  return {
    ...h,
    api_port,
    proxy_port,
    db_path,
    extra,
    spawned_at,
    listening_at: listening.at,
    api_url,
    proxy_url: `http://127.0.0.1:${proxy_port}`,
    ws_url: `ws://127.0.0.1:${api_port}/v1/tunnel`,
  };
}

export function agentEnv({ ws_url, backend_url, app = 'demo', agent_id, extra = {} }) {
  return {
    EE_CONTROL_WS: ws_url,
    EE_REPO: 'acme/bench',
    EE_RELEASE_TAG: 'v1.0.0',
    EE_APP_NAME: app,
    EE_NETWORK: 'sandbox-1',
    EE_BACKEND_URL: backend_url,
    EE_AGENT_ID: agent_id ?? `bench-${app}-${Math.random().toString(16).slice(2, 10)}`,
    EE_AGENT_STATE_DIR: tmpDir('ee-bench-agent-'),
    EE_HEALTH_INTERVAL_SEC: '5',
    EE_LOG_LEVEL: 'error',
    ...extra,
  };
}

/** `ee agent` as a subprocess. */
export function spawnAgent({ ws_url, backend_url, app = 'demo', agent_id, extra = {}, nodeArgs = [], name = 'agent' }) {
  const env = agentEnv({ ws_url, backend_url, app, agent_id, extra });
  return spawnProc(name, process.execPath, [...nodeArgs, eeBin(), 'agent'], { env, ulimit: true });
}

export async function waitRoutable(api_url, app = 'demo', timeout_ms = 10_000) {
  await waitFor(
    async () => (await fetch(`${api_url}/v1/resolve/${app}`)).status === 200,
    timeout_ms,
    `app ${app} to be routable`,
    25,
  );
}

export async function adminGet(api_url, path) {
  const res = await fetch(`${api_url}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}
