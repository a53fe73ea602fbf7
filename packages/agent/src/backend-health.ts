// The agent's health verdict on its backend, sent to the control plane as heartbeats: an HTTP GET of
// EE_HEALTH_PATH answering below 500 passes; without a health path, a TCP connect to the backend does.
import net from 'node:net';
import type { Pool } from 'undici';

const HEALTH_CHECK_TIMEOUT_MS = 2_000;

export interface BackendHealth {
  ok: boolean;
  detail?: string;
}

export async function checkBackend(
  pool: Pool,
  backend_url: string,
  health_path: string | null,
): Promise<BackendHealth> {
  const url = new URL(backend_url);
  if (health_path) {
    try {
      const res = await pool.request({
        method: 'GET',
        path: health_path,
        headersTimeout: HEALTH_CHECK_TIMEOUT_MS,
        bodyTimeout: HEALTH_CHECK_TIMEOUT_MS,
      });
      await res.body.dump();
      return res.statusCode < 500 ? { ok: true } : { ok: false, detail: `backend health answered ${res.statusCode}` };
    } catch (err) {
      return { ok: false, detail: `backend unreachable: ${(err as Error).message}` };
    }
  }
  return new Promise((resolve) => {
    const sock = net.connect({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    });
    const done = (r: BackendHealth) => {
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(HEALTH_CHECK_TIMEOUT_MS, () => done({ ok: false, detail: 'backend connect timeout' }));
    sock.once('connect', () => done({ ok: true }));
    sock.once('error', (err: Error & { code?: string }) =>
      done({ ok: false, detail: `backend unreachable: ${err.code ?? err.message}` }),
    );
  });
}
