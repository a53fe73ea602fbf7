// Zero-downtime restart, the way nginx upgrades its binary: the running control plane spawns its successor
// with the two listening sockets inherited (Node 20 has no SO_REUSEPORT, so this is how two processes
// share a port), waits until the successor is listening and has opened its database, and only then stops
// accepting and drains. The port never refuses a connection; agents follow the GOAWAY to the successor.

import { spawn } from 'node:child_process';

/** fds in the successor: 0-2 stdio, 3 the IPC channel, then the inherited listening sockets. */
const API_FD = 4;
const PROXY_FD = 5;
export const LISTEN_FDS_ENV = 'EE_LISTEN_FDS';
const READY_TIMEOUT_MS = 30_000;

/** Spawns `argv` (this program, same arguments) with the listening sockets; resolves once it is ready. */
export function spawnSuccessor(
  fds: { api: number; proxy: number },
  argv: string[] = process.argv.slice(1),
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, ...argv], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', fds.api, fds.proxy],
      env: { ...process.env, [LISTEN_FDS_ENV]: `${API_FD},${PROXY_FD}` },
      detached: true, // its own process group: it outlives us and our terminal's signals
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`successor not ready within ${READY_TIMEOUT_MS / 1000} s`));
    }, READY_TIMEOUT_MS);
    child.once('message', (m: unknown) => {
      clearTimeout(timer);
      if ((m as { type?: string }).type !== 'ready') return reject(new Error('successor sent an unexpected message'));
      child.disconnect();
      child.unref();
      resolve(child.pid!);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`successor exited with ${code} before it was ready`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** In a successor: the inherited listening sockets, if any. */
export function inheritedListenFds(
  env: Record<string, string | undefined> = process.env,
): { api: number; proxy: number } | undefined {
  const v = env[LISTEN_FDS_ENV];
  if (!v) return undefined;
  const m = /^(\d+),(\d+)$/.exec(v);
  if (!m) throw new Error(`${LISTEN_FDS_ENV} must be "<api fd>,<proxy fd>", got "${v}"`);
  return { api: Number(m[1]), proxy: Number(m[2]) };
}

/** In a successor: tell the predecessor we are serving (no-op when started normally). */
export function announceReady(): void {
  if (process.send) {
    process.send({ type: 'ready' });
    process.disconnect?.();
  }
}
