// A whole local network for tests: backends, a control plane (in-process or as a real `ee` subprocess) and
// agents (in-process or subprocess), on loopback ports chosen by the kernel. Everything started here is
// stopped by `closeAll()` (call it in `after`/`afterEach`).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { pino } from 'pino';
import { loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '@easyenclave/control-plane/server';
import { Agent, loadAgentConfig, type AgentOptions } from '@easyenclave/agent';
import { tmpDir } from './tmp.js';

export const REPO_ROOT = join(fileURLToPath(import.meta.url), '../../../..');
export const EE_BIN = join(REPO_ROOT, 'packages/cli/dist/main.js');
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}
export async function closeAll(): Promise<void> {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch {
      // best effort: keep closing the rest
    }
  }
}

export const quietLogger = () => pino({ level: process.env.EE_TEST_LOG ?? 'silent' });

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeout_ms = 5000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout_ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeout_ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    await sleep(20);
  }
}

// ---------- Backends ----------

export interface Backend {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

/** A backend with a few useful routes:
 *  /echo        → JSON {method, url, headers, body (utf8), body_bytes}
 *  /sink        → consumes the body, answers {body_bytes, sha256}
 *  /bytes/N     → N pseudo-random bytes (deterministic), streamed in 64 KiB chunks
 *  /slow/MS     → answers after MS milliseconds
 *  /hang        → never answers
 *  /drip/N/MS   → N chunks of 1 KiB, one every MS milliseconds
 *  WebSocket upgrade on any path → echoes messages */
export async function startBackend(port = 0): Promise<Backend> {
  const { createHash } = await import('node:crypto');
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    let n = 0;
    if (url.startsWith('/hang')) return; // never answers
    req.on('data', (c: Buffer) => {
      n += c.length;
      hash.update(c);
      if (url.startsWith('/echo') && n <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => {
      if (url.startsWith('/sink')) return json(res, 200, { body_bytes: n, sha256: hash.digest('hex') });
      let m: RegExpExecArray | null;
      if ((m = /^\/bytes\/(\d+)/.exec(url))) return streamBytes(res, Number(m[1]));
      if ((m = /^\/slow\/(\d+)/.exec(url)))
        return void setTimeout(() => json(res, 200, { slow: Number(m![1]) }), Number(m[1]));
      if ((m = /^\/drip\/(\d+)\/(\d+)/.exec(url))) return drip(res, Number(m[1]), Number(m[2]));
      json(res, 200, {
        method: req.method,
        url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        body_bytes: n,
      });
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  const b: Backend = {
    url: `http://127.0.0.1:${p}`,
    port: p,
    server,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  onCleanup(() => b.close());
  return b;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

/** Deterministic bytes: byte i = (i * 31 + (i >> 16)) & 0xff, so a receiver can verify without storing. */
export function patternChunk(offset: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) {
    const x = offset + i;
    b[i] = (x * 31 + (x >>> 16)) & 0xff;
  }
  return b;
}

function streamBytes(res: http.ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let sent = 0;
  const CHUNK = 64 * 1024;
  const pump = () => {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent);
      const ok = res.write(patternChunk(sent, n));
      sent += n;
      if (!ok) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

function drip(res: http.ServerResponse, count: number, every_ms: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  let i = 0;
  const t = setInterval(() => {
    if (res.destroyed) return clearInterval(t);
    res.write(Buffer.alloc(1024, 0x61));
    if (++i >= count) {
      clearInterval(t);
      res.end();
    }
  }, every_ms);
}

// ---------- Control plane ----------

export type CpEnv = Record<string, string | undefined>;

/** Environment for a control plane on ephemeral loopback ports with a fresh SQLite file. */
export function cpEnv(extra: CpEnv = {}): CpEnv {
  return {
    EE_CONTROL_BIND: '127.0.0.1',
    EE_CONTROL_PORT: '0',
    EE_PROXY_BIND: '127.0.0.1',
    EE_PROXY_PORT: '0',
    EE_DB_PATH: join(tmpDir(), 'cp.db'),
    EE_ADMIN_TOKEN: ADMIN_TOKEN,
    EE_APP_DOMAIN: 'app.test',
    EE_LOG_LEVEL: 'silent',
    // Every test agent dials from loopback, one host; the per-address caps have their own tests.
    EE_MAX_HANDSHAKES_PER_ADDRESS: '1000000',
    EE_APP_CLAIMS_PER_HOUR: '1000000',
    EE_MAX_CONNECTIONS_PER_ADDRESS: '1000000',
    ...extra,
  };
}

/** An in-process control plane (fast; lets tests inject a clock or verifier). */
export async function startCp(extra: CpEnv = {}, opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const config = loadControlPlaneConfig(cpEnv(extra));
  const cp = await startControlPlane(config, { logger: quietLogger(), ...opts });
  onCleanup(() => cp.shutdown(0));
  return cp;
}

export interface ProcessHandle {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves with the exit code (or signal) once the process ends. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnEe(args: string[], env: CpEnv): ProcessHandle {
  const child = spawn(process.execPath, [EE_BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((r) => child.on('exit', (code, signal) => r(code ?? signal ?? -1)));
  const h: ProcessHandle = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  onCleanup(async () => {
    h.kill('SIGKILL');
    await exited;
  });
  return h;
}

/** Picks a free loopback port (for subprocesses that must keep the same port across restarts). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface CpProcess extends ProcessHandle {
  api_url: string;
  proxy_url: string;
  ws_url: string;
  env: CpEnv;
}

/** How long a subprocess may take to come up: node start-up alone took over 10 s on a loaded 2-core machine. */
export const SPAWN_READY_TIMEOUT_MS = 30_000;

/** A control plane as a real `ee control-plane` subprocess on fixed ports (so it can be killed and restarted). */
export async function spawnCp(extra: CpEnv = {}): Promise<CpProcess> {
  const api = extra.EE_CONTROL_PORT ? Number(extra.EE_CONTROL_PORT) : await freePort();
  const proxy = extra.EE_PROXY_PORT ? Number(extra.EE_PROXY_PORT) : await freePort();
  const env = cpEnv({ EE_LOG_LEVEL: 'warn', ...extra, EE_CONTROL_PORT: String(api), EE_PROXY_PORT: String(proxy) });
  const h = spawnEe(['control-plane'], env);
  const api_url = `http://127.0.0.1:${api}`;
  await waitFor(
    async () => (await fetch(`${api_url}/health`)).ok,
    SPAWN_READY_TIMEOUT_MS,
    `control plane on ${api_url}\n${h.output()}`,
  );
  return { ...h, api_url, proxy_url: `http://127.0.0.1:${proxy}`, ws_url: `ws://127.0.0.1:${api}/v1/tunnel`, env };
}

// ---------- Agents ----------

export interface AgentSpec {
  control_ws: string;
  backend_url: string;
  app_name?: string;
  repo?: string;
  release_tag?: string;
  network?: string;
  agent_id?: string;
  extra?: CpEnv;
}

export function agentEnv(s: AgentSpec): CpEnv {
  return {
    EE_CONTROL_WS: s.control_ws,
    EE_REPO: s.repo ?? 'acme/demo',
    EE_RELEASE_TAG: s.release_tag ?? 'v1.0.0',
    EE_APP_NAME: s.app_name ?? 'demo',
    EE_NETWORK: s.network ?? 'sandbox-1',
    EE_BACKEND_URL: s.backend_url,
    EE_AGENT_ID: s.agent_id ?? `agent-${randomBytes(6).toString('hex')}`,
    EE_AGENT_STATE_DIR: tmpDir(),
    EE_HEALTH_INTERVAL_SEC: '1',
    EE_LOG_LEVEL: 'silent',
    ...s.extra,
  };
}

export const wsUrl = (cp: { api_url: string }) => `${cp.api_url.replace('http', 'ws')}/v1/tunnel`;

/** An in-process agent. */
export function startAgent(s: AgentSpec, opts: AgentOptions = {}): Agent {
  const agent = new Agent(loadAgentConfig(agentEnv(s)), { logger: quietLogger(), ...opts });
  agent.start();
  onCleanup(() => agent.stop(0));
  return agent;
}

/** An agent as a real `ee agent` subprocess (to kill -9 it). */
export function spawnAgent(s: AgentSpec): ProcessHandle {
  return spawnEe(['agent'], { ...agentEnv(s), EE_LOG_LEVEL: 'warn' });
}

/** Waits until the control plane resolves the app as routable. */
export async function waitRoutable(cp: { api_url: string }, app = 'demo', timeout_ms = 5000): Promise<void> {
  await waitFor(
    async () => (await fetch(`${cp.api_url}/v1/resolve/${app}`)).status === 200,
    timeout_ms,
    `app ${app} to be routable`,
  );
}

/** RSS and peak RSS (KiB) of a process, from /proc. */
export function memoryKiB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}
