// Two apps for the origin suites, each a real backend behind a real agent: pages with script, a script, an
// SVG, cookies set by header (host-only and with a Domain), and a route that reports the Cookie header it got.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { onCleanup, startAgent, waitRoutable, wsUrl } from '../helpers/network.js';

export interface AppBackend {
  name: string;
  url: string;
  /** Cookie headers received on /cookies, in order. */
  cookies_seen: string[];
  /** What the page's script reported (POST /report). */
  reports: Array<Record<string, unknown>>;
}

/** The page's script: sets a cookie, then tries to read the API and the other app, and reports. */
function page(name: string, targets: { api: string; other: string }): string {
  return `<!doctype html><meta charset="utf-8"><title>${name}</title>
<script>
(async () => {
  document.cookie = 'js_${name}=1; path=/';
  const tryRead = async (url) => {
    try { const r = await fetch(url, { credentials: 'include' }); return 'read ' + r.status + ' ' + (await r.text()).slice(0, 80); }
    catch { return 'blocked'; }
  };
  const report = { app: '${name}', origin: location.origin, cookie: document.cookie,
    api: await tryRead(${JSON.stringify(targets.api)}), other: await tryRead(${JSON.stringify(targets.other)}) };
  await fetch('report', { method: 'POST', body: JSON.stringify(report) });
})();
</script>`;
}

export async function startApp(
  name: string,
  control_ws: string,
  targets: () => { api: string; other: string },
): Promise<AppBackend> {
  const app: AppBackend = { name, url: '', cookies_seen: [], reports: [] };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const send = (status: number, headers: Record<string, string | string[]>, body: string) => {
      res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(body);
    };
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (url.startsWith('/page'))
        return send(
          200,
          {
            'content-type': 'text/html; charset=utf-8',
            'set-cookie': [`hdr_${name}=1; Path=/`, `dom_${name}=1; Domain=app.test; Path=/`],
          },
          page(name, targets()),
        );
      // No Content-Type: a browser would sniff this into a document.
      if (url.startsWith('/sniff'))
        return send(
          200,
          {},
          `<!doctype html><html><script>window.ran = true; document.cookie = 'sniffed_${name}=1; path=/';</script></html>`,
        );
      if (url.startsWith('/script.js')) return send(200, { 'content-type': 'application/javascript' }, 'alert(1)');
      if (url.startsWith('/image.svg'))
        return send(200, { 'content-type': 'image/svg+xml' }, '<svg xmlns="http://www.w3.org/2000/svg"/>');
      if (url.startsWith('/setcookie'))
        return send(
          200,
          {
            'content-type': 'text/plain',
            'set-cookie': [`hdr_${name}=1; Path=/`, `dom_${name}=1; Domain=app.test; Path=/`],
          },
          'cookies set',
        );
      if (url.startsWith('/cookies')) {
        app.cookies_seen.push(req.headers.cookie ?? '');
        return send(200, { 'content-type': 'application/json' }, JSON.stringify({ cookie: req.headers.cookie ?? '' }));
      }
      if (url.startsWith('/report')) {
        app.reports.push(JSON.parse(body) as Record<string, unknown>);
        return send(204, {}, '');
      }
      send(200, { 'content-type': 'application/json' }, JSON.stringify({ app: name, url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  app.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  startAgent({ control_ws, backend_url: app.url, app_name: name, repo: `acme/${name}` });
  return app;
}

export async function startApps(
  cp: { api_url: string },
  targets: (name: string) => { api: string; other: string },
): Promise<{ alpha: AppBackend; beta: AppBackend }> {
  const alpha = await startApp('alpha', wsUrl(cp), () => targets('alpha'));
  const beta = await startApp('beta', wsUrl(cp), () => targets('beta'));
  await waitRoutable(cp, 'alpha');
  await waitRoutable(cp, 'beta');
  return { alpha, beta };
}
