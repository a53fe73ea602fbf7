#!/usr/bin/env node
// `npm start`: a local sandbox network on this machine, in one command. One script (~420 lines) because it is
// one sequence: ports, children in start order, readiness, shutdown; the launcher and log lines have modules.
//
//   1. builds the workspace if needed (`tsc -b`, fast when up to date);
//   2. starts three processes, their output prefixed by role:
//        [control-plane]  `ee control-plane`: SQLite at .easyenclave/control-plane.db, API on 127.0.0.1:8088,
//                         app proxy on 127.0.0.1:9090 (EE_APP_DOMAIN=app.localhost), its admin, launcher and
//                         uptime tokens kept in .easyenclave/ (mode 600, generated once, reused; see
//                         local-network.mjs), and .easyenclave/config.json telling `ee` where it listens;
//        [demo-backend]   scripts/demo-backend.mjs on 127.0.0.1:8080;
//        [agent]          `ee agent` for app "demo" (repo easyenclave/demo, release v0.1.0) on network
//                         sandbox-1, serving the demo backend through its outbound tunnel;
//   3. waits until GET /v1/resolve/demo answers 200, then prints URLs, curl and `ee` lines that work;
//   4. on Ctrl-C / SIGTERM stops the agent first (GOAWAY, drain), then the control plane (graceful), then the
//      backend, and exits 0 when all three stopped cleanly. A second Ctrl-C kills them at once.
//
// Ports: EE_CONTROL_PORT (8088), EE_PROXY_PORT (9090), EE_DEMO_BACKEND_PORT (8080). EE_STATE_DIR moves the state
// directory (default .easyenclave/ in the repository). Other EE_* variables in the
// environment (EE_LOG_LEVEL, EE_PROXY_TIMEOUT_SEC, ...) pass through to the children.
// Exit codes: 0 stopped cleanly, 1 a failure (build, start-up, a child died or did not stop cleanly), 2 bad
// configuration or a port already in use, 130 forced stop.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { keptTokens, readyText, writeConfig } from './local-network.mjs';
import { startLauncher } from './start-launcher.mjs';
import { AGENT_HIDDEN, HIDDEN, readable } from './start-logs.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const STATE_DIR = process.env.EE_STATE_DIR ? resolve(process.env.EE_STATE_DIR) : join(ROOT, '.easyenclave');
const DB_PATH = join(STATE_DIR, 'control-plane.db');
const AGENT_STATE_DIR = join(STATE_DIR, 'agent');
const EE_BIN = join(ROOT, 'packages/cli/dist/main.js');
const HOST = '127.0.0.1';
const APP = 'demo';
const APP_DOMAIN = 'app.localhost';
const READY_TIMEOUT_MS = 60_000;

const tty = process.stdout.isTTY === true;
const paint = (code, s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const say = (msg) => process.stdout.write(`${paint('1', '[start]')} ${msg}\n`);
const die = (msg, code = 1) => {
  process.stderr.write(`[start] error: ${msg}\n`);
  process.exit(code);
};

// ---------- configuration ----------

function port(name, fallback) {
  const raw = process.env[name] || String(fallback);
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535)
    die(`${name} must be an integer from 1 to 65535, got "${raw}"`, 2);
  return Number(raw);
}
const ports = {
  control: { name: 'EE_CONTROL_PORT', what: 'control-plane API', port: port('EE_CONTROL_PORT', 8088) },
  proxy: { name: 'EE_PROXY_PORT', what: 'control-plane app proxy', port: port('EE_PROXY_PORT', 9090) },
  backend: { name: 'EE_DEMO_BACKEND_PORT', what: 'demo backend', port: port('EE_DEMO_BACKEND_PORT', 8080) },
};
{
  const seen = new Map();
  for (const p of Object.values(ports)) {
    if (seen.has(p.port)) die(`${p.name} and ${seen.get(p.port)} are both ${p.port}; give each a different port`, 2);
    seen.set(p.port, p.name);
  }
}
const drainSec = Number(
  /^[0-9]+$/.test(process.env.EE_DRAIN_TIMEOUT_SEC ?? '') ? process.env.EE_DRAIN_TIMEOUT_SEC : 30,
);

// ---------- build ----------

const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
if (!existsSync(tsc)) die('dependencies are not installed: run `npm ci` first');
{
  const t0 = Date.now();
  say('building (tsc -b) ...');
  const r = spawnSync(process.execPath, [tsc, '-b'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) die('the build failed (see the errors above)');
  say(`build ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
if (!existsSync(EE_BIN)) die(`the build produced no ${relative(ROOT, EE_BIN)}`);

// ---------- ports ----------

function checkPort({ name, what, port: p }) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', (err) => {
      const why = err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be used (${err.code ?? err.message})`;
      resolve(`port ${p} on ${HOST} (${what}, ${name}) ${why}: stop whatever holds it, or set ${name} to another port`);
    });
    srv.listen(p, HOST, () => srv.close(() => resolve(null)));
  });
}
for (const p of Object.values(ports)) {
  const problem = await checkPort(p);
  if (problem) die(problem, 2);
}

// ---------- state: admin token, git-ignored state dir ----------

mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
// Nothing in here belongs in git (database, token, agent id).
if (!existsSync(join(STATE_DIR, '.gitignore'))) writeFileSync(join(STATE_DIR, '.gitignore'), '*\n');

const TOKENS = keptTokens(STATE_DIR, say);

// ---------- children ----------

const baseEnv = { ...process.env };
if (baseEnv.EE_DATABASE_URL) {
  say('EE_DATABASE_URL is ignored here: the local network uses SQLite');
  delete baseEnv.EE_DATABASE_URL;
}
// Always the kept tokens; and the children find their URLs in their own variables, not in ee's.
for (const name of ['EE_ADMIN_TOKEN', 'EE_LAUNCHER_TOKEN', 'EE_UPTIME_TOKEN', 'EE_CONTROL_URL', 'EE_STATE_DIR'])
  delete baseEnv[name];

const API = `http://${HOST}:${ports.control.port}`;
const PROXY = `http://${HOST}:${ports.proxy.port}`;
const BACKEND = `http://${HOST}:${ports.backend.port}`;

const roles = {
  'control-plane': {
    color: '36',
    args: [EE_BIN, 'control-plane'],
    env: {
      ...baseEnv,
      // README "Memory allocator": at most two malloc arenas (glibc reads this at process start).
      GLIBC_TUNABLES: baseEnv.GLIBC_TUNABLES || 'glibc.malloc.arena_max=2',
      EE_CONTROL_BIND: HOST,
      EE_CONTROL_PORT: String(ports.control.port),
      EE_PROXY_BIND: HOST,
      EE_PROXY_PORT: String(ports.proxy.port),
      EE_DB_PATH: DB_PATH,
      EE_APP_DOMAIN: APP_DOMAIN,
      ...TOKENS, // EE_ADMIN_TOKEN, EE_LAUNCHER_TOKEN, EE_UPTIME_TOKEN
    },
  },
  'demo-backend': {
    color: '33',
    args: [join(ROOT, 'scripts/demo-backend.mjs')],
    env: { ...baseEnv, EE_DEMO_BACKEND_PORT: String(ports.backend.port) },
  },
  agent: {
    color: '35',
    args: [EE_BIN, 'agent'],
    env: {
      ...baseEnv,
      EE_CONTROL_WS: `ws://${HOST}:${ports.control.port}/v1/tunnel`,
      EE_NETWORK: 'sandbox-1',
      EE_APP_NAME: APP,
      EE_REPO: 'easyenclave/demo',
      EE_RELEASE_TAG: 'v0.1.0',
      EE_BACKEND_URL: BACKEND,
      EE_AGENT_STATE_DIR: AGENT_STATE_DIR,
    },
  },
};

const children = new Map(); // role → { proc, exited: Promise<{code, signal}>, done }
let shuttingDown = false;

function startChild(role) {
  const spec = roles[role];
  // Own process group: a terminal's Ctrl-C reaches only this script, which then stops the children in order.
  const proc = spawn(process.execPath, spec.args, {
    cwd: ROOT,
    env: spec.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const prefix = paint(spec.color, `[${role}]`);
  const hidden = role === 'agent' ? AGENT_HIDDEN : HIDDEN;
  let successor = 0; // a SIGHUP handoff announces the new control plane's pid on this (inherited) output
  for (const stream of [proc.stdout, proc.stderr]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      const m = /successor (\d+) is serving/.exec(line);
      if (m) successor = Number(m[1]);
      process.stdout.write(`${prefix} ${readable(line, hidden, paint)}\n`);
    });
  }
  const child = { proc, done: false, code: null, signal: null };
  child.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      child.done = true;
      child.code = code;
      child.signal = signal;
      resolve({ code, signal });
      if (!shuttingDown && code === 0 && successor > 0) {
        say(`${role} handed off to a successor (pid ${successor}) after SIGHUP`);
        adoptSuccessor(role, successor, () => successor);
        return;
      }
      if (!shuttingDown) {
        say(`${role} exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}): stopping the rest`);
        void shutdown(1);
      }
    });
  });
  proc.on('error', (err) => say(`${role}: ${err.message}`));
  children.set(role, child);
  return child;
}

/** A SIGHUP successor is not our child: track it by pid (polling), and follow it through further handoffs. */
function adoptSuccessor(role, pid, latestSuccessor) {
  const child = { proc: { pid, kill: (sig) => process.kill(pid, sig) }, done: false, code: null, signal: null };
  child.exited = new Promise((resolve) => {
    const poll = setInterval(() => {
      try {
        process.kill(pid, 0);
        return; // still running
      } catch {
        clearInterval(poll);
      }
      child.done = true;
      child.code = 0; // not our child: its exit status is not ours to read
      resolve({ code: 0, signal: null });
      const next = latestSuccessor();
      if (!shuttingDown && next !== pid && next > 0) {
        say(`${role} handed off again (pid ${next})`);
        adoptSuccessor(role, next, latestSuccessor);
      } else if (!shuttingDown) {
        say(`${role} (pid ${pid}) exited: stopping the rest`);
        void shutdown(1);
      }
    }, 250);
  });
  children.set(role, child);
}

/** SIGTERM, wait up to grace_ms, then SIGKILL. Resolves true when the process exited 0 on its own. */
async function stopChild(role, grace_ms) {
  const child = children.get(role);
  if (!child) return true;
  if (!child.done) {
    try {
      child.proc.kill('SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      say(`${role} did not stop within ${Math.round(grace_ms / 1000)} s: killing it`);
      try {
        process.kill(-child.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, grace_ms);
    await child.exited;
    clearTimeout(timer);
  }
  const clean = child.code === 0;
  if (!clean) say(`${role} stopped with ${child.signal ? `signal ${child.signal}` : `code ${child.code}`}`);
  return clean;
}

let shutdownPromise = null;
function shutdown(code) {
  shutdownPromise ??= (async () => {
    shuttingDown = true;
    say('stopping: agent first (GOAWAY, in-flight requests finish), then the control plane, then the demo backend');
    const grace = (drainSec + 5) * 1000;
    let clean = await stopChild('launcher', grace);
    clean = (await stopChild('agent', grace)) && clean;
    clean = (await stopChild('control-plane', grace)) && clean;
    clean = (await stopChild('demo-backend', 5000)) && clean;
    say(clean && code === 0 ? 'stopped cleanly' : 'stopped');
    process.exit(clean ? code : 1);
  })();
  return shutdownPromise;
}

// Under `npm start` one Ctrl-C arrives twice (from the terminal and forwarded by npm), so only a signal more
// than a second after the first one forces the stop.
let first_signal_at = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (first_signal_at === 0) {
      first_signal_at = Date.now();
      process.stdout.write('\n');
      void shutdown(0);
      return;
    }
    if (Date.now() - first_signal_at < 1000) return;
    say(`${sig} again: killing everything now`);
    for (const c of children.values()) {
      try {
        if (!c.done) process.kill(-c.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}
// Under npm, `kill <pid of npm>` makes npm signal only its `sh -c` wrapper, which dies without passing the
// signal on: there, losing the parent process is that same request to stop. (Run directly, e.g. with nohup,
// a parent that exits is no reason to stop.)
if (process.env.npm_lifecycle_event) {
  const original_ppid = process.ppid;
  const parent_watch = setInterval(() => {
    if (process.ppid !== original_ppid && !shuttingDown) {
      say('the parent process (npm) is gone: stopping');
      void shutdown(0);
    }
  }, 500);
  parent_watch.unref();
}
// A reader of our output that went away must not interrupt a graceful stop.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

// Last resort: never leave children behind, whatever ends this process (an exception included).
process.on('exit', () => {
  for (const c of children.values()) {
    try {
      if (!c.done) process.kill(-c.proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

// ---------- start, in dependency order ----------

say(`state in ${relative(ROOT, STATE_DIR) || STATE_DIR}/ (SQLite database, tokens, agent id, ee configuration)`);
writeConfig(STATE_DIR, { api: API, proxy: PROXY, network: 'sandbox-1', app: APP });
startChild('demo-backend');
startChild('control-plane');
startChild('agent');

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}

const deadline = Date.now() + READY_TIMEOUT_MS;
let last = { status: 0, body: '' };
while (!shuttingDown) {
  last = await get(`${API}/v1/resolve/${APP}`);
  if (last.status === 200) break;
  if (Date.now() > deadline) {
    say(
      `the app "${APP}" did not become routable within ${READY_TIMEOUT_MS / 1000} s; last answer of /v1/resolve/${APP}: ${last.status || 'no connection'} ${last.body}`,
    );
    if (last.body.includes('app_expired')) {
      say(
        `its registration expired (EE_REGISTRATION_TTL_DAYS counts from the first start): remove ${relative(ROOT, DB_PATH)}* to start afresh`,
      );
    }
    await shutdown(1);
  }
  await new Promise((r) => setTimeout(r, 200));
}
if (shuttingDown) await shutdownPromise;

// ---------- the node launcher (when podman is here) ----------

const jobsLine = await startLauncher({
  root: ROOT,
  stateDir: STATE_DIR,
  api: API,
  adminToken: TOKENS.EE_ADMIN_TOKEN,
  controlWs: `ws://${HOST}:${ports.control.port}/v1/tunnel`,
  eeBin: EE_BIN,
  readyTimeoutMs: READY_TIMEOUT_MS,
  say,
  stopping: () => shuttingDown,
  start: (env) => {
    roles.launcher = { color: '32', args: [EE_BIN, 'node', 'run'], env: { ...baseEnv, ...env } };
    startChild('launcher');
  },
});
if (shuttingDown) await shutdownPromise;

// ---------- ready ----------

// Paths in the printed commands work from where `npm start` was run.
process.stdout.write(
  readyText({
    from: process.env.INIT_CWD ?? process.cwd(),
    dir: STATE_DIR,
    api: API,
    proxy: PROXY,
    backend: BACKEND,
    proxyPort: ports.proxy.port,
    app: APP,
    appDomain: APP_DOMAIN,
    dbPath: DB_PATH,
    b: (s) => paint('1', s),
  }) + '\n',
);
if (jobsLine) {
  process.stdout.write(
    [
      '',
      paint('1', 'A private job (env sealed to the attested launcher, result sealed to you):'),
      `  ${jobsLine}`,
      '',
    ].join('\n') + '\n',
  );
}
