// Small HTTP helpers shared by the lifecycle tests.
import http from 'node:http';
import { ADMIN_TOKEN } from '../helpers/network.js';

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;

  json: any;
}

export async function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, json };
}

type Api = { api_url: string };

export const resolveApp = (cp: Api, app = 'demo') => httpGet(`${cp.api_url}/v1/resolve/${app}`);
export const proxyGet = (cp: Api, path: string, app = 'demo') => httpGet(`${cp.api_url}/v1/proxy/${app}${path}`);
export const adminApp = (cp: Api, app = 'demo') =>
  httpGet(`${cp.api_url}/v1/apps/${app}`, { authorization: `Bearer ${ADMIN_TOKEN}` });

/** Rejects with a clear message if `p` has not settled within `ms` (a hang fails the test, never stalls it). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** GET through the host-routed app proxy ({app}.app.test on the proxy port); fetch cannot set Host. */
export function hostGet(
  cp: { proxy_url: string },
  path: string,
  app = 'demo',
  domain = 'app.test',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${cp.proxy_url}${path}`,
      { headers: { host: `${app}.${domain}` }, agent: false, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('host-routed request timed out')));
    req.on('error', reject);
  });
}
