// Parsing of the two public entry points: `/v1/proxy/{app}/{path...}` on the API port and
// `Host: {app}.{EE_APP_DOMAIN}` on the proxy port.

import { APP_NAME_RE } from '@easyenclave/protocol';

export const PROXY_PREFIX = '/v1/proxy/';

/** `/v1/proxy/myapp/a/b?x=1` → { app: 'myapp', path: '/a/b?x=1' }; null when the app segment is invalid. */
export function parseProxyPath(url: string): { app_name: string; path: string } | null {
  const rest = url.slice(PROXY_PREFIX.length);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */) {
      end = i;
      break;
    }
  }
  const app_name = rest.slice(0, end);
  if (!APP_NAME_RE.test(app_name)) return null;
  const tail = rest.slice(end);
  return { app_name, path: tail.startsWith('/') ? tail : `/${tail}` };
}

/** `myapp.app.example.com:9090` with domain `app.example.com` → 'myapp'; null for any other host. */
export function appFromHost(host: string | undefined, app_domain: string | undefined): string | null {
  if (!host || !app_domain) return null;
  let h = host.toLowerCase();
  const colon = h.lastIndexOf(':');
  if (colon > 0 && !h.endsWith(']')) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  const suffix = `.${app_domain}`;
  if (!h.endsWith(suffix)) return null;
  const app = h.slice(0, -suffix.length);
  return APP_NAME_RE.test(app) ? app : null;
}
