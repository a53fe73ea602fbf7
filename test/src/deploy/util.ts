// Real front proxies for the deploy/ suites: nginx (from deploy/nginx's template) and Caddy (deploy/caddy's
// Caddyfile) on loopback with a per-run private CA, and an HTTPS client that dials 127.0.0.1 while asking
// for any name (SNI and Host). Without the binary a suite skips with a warning, except under CI (or
// EE_REQUIRE_FRONT_PROXIES=1), where it fails — like PostgreSQL and podman.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { freePort, onCleanup, REPO_ROOT, waitFor } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import type { TestPki } from '../helpers/tls.js';

export const NGINX = process.env.EE_NGINX ?? '/usr/sbin/nginx';
export const CADDY = process.env.EE_CADDY ?? '/usr/bin/caddy';

/** For `describe(name, { skip }, ...)`: false when the binary runs; a loud skip, or a throw under CI. */
export function binarySkip(path: string, args: string[], install: string): false | string {
  const r = existsSync(path) ? spawnSync(path, args, { encoding: 'utf8', timeout: 30_000 }) : null;
  if (r !== null && r.status === 0) return false;
  const msg = `${path} is not usable (apt-get install ${install})`;
  if (process.env.CI || process.env.EE_REQUIRE_FRONT_PROXIES === '1')
    throw new Error(`${msg}; required under CI or EE_REQUIRE_FRONT_PROXIES=1`);
  console.warn(`SKIPPING: ${msg}`);
  return `SKIPPED: ${msg}`;
}

/** `${NAME}` → vars[NAME]; a name the template uses and `vars` lacks is an error (nginx's own `$x` stay). */
export function renderTemplate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`template variable ${name} has no value`);
    return v;
  });
}

export interface FrontProxy {
  port: number;
  output(): string;
}

export interface Upstreams {
  api_port: number;
  proxy_port: number;
}

/** nginx with deploy/nginx/easyenclave.conf.template, HTTPS on a free loopback port. */
export async function startNginx(pki: TestPki, up: Upstreams, app_domain = 'app.test'): Promise<FrontProxy> {
  const dir = tmpDir('ee-nginx-');
  const port = await freePort();
  const site = renderTemplate(readFileSync(join(REPO_ROOT, 'deploy/nginx/easyenclave.conf.template'), 'utf8'), {
    NGINX_LISTEN: `127.0.0.1:${port}`,
    EE_PUBLIC_HOST: 'localhost',
    EE_APP_DOMAIN: app_domain,
    EE_TLS_CERT: pki.cert_file,
    EE_TLS_KEY: pki.key_file,
    EE_API_UPSTREAM: `127.0.0.1:${up.api_port}`,
    EE_PROXY_UPSTREAM: `127.0.0.1:${up.proxy_port}`,
  });
  writeFileSync(join(dir, 'easyenclave.conf'), site);
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, t), { mode: 0o777 });
  const root = process.getuid?.() === 0;
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${root ? 'user root root;\n' : ''}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/easyenclave.conf;
}
`,
  );
  const child = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  onCleanup(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const output = () => {
    let log = '';
    try {
      log = readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      // not written yet
    }
    return `${out}\n${log}`;
  };
  await waitFor(
    async () => (await httpsRequest(port, 'localhost', '/health', pki)).status === 200,
    30_000,
    `nginx on ${port}: ${output()}`,
  );
  return { port, output };
}

/** Caddy with deploy/caddy/Caddyfile, HTTPS on a free loopback port. */
export async function startCaddy(pki: TestPki, up: Upstreams, app_domain = 'app.test'): Promise<FrontProxy> {
  const dir = tmpDir('ee-caddy-');
  const port = await freePort();
  const http_port = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    EE_PUBLIC_HOST: 'localhost',
    EE_APP_DOMAIN: app_domain,
    EE_API_UPSTREAM: `127.0.0.1:${up.api_port}`,
    EE_PROXY_UPSTREAM: `127.0.0.1:${up.proxy_port}`,
    EE_CADDY_TLS: `tls ${pki.cert_file} ${pki.key_file}`,
    EE_CADDY_GLOBAL: `admin off\n\thttp_port ${http_port}\n\thttps_port ${port}\n\tauto_https disable_redirects\n\tdefault_bind 127.0.0.1`,
  };
  const child = spawn(CADDY, ['run', '--config', join(REPO_ROOT, 'deploy/caddy/Caddyfile'), '--adapter', 'caddyfile'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  onCleanup(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  await waitFor(
    async () => (await httpsRequest(port, 'localhost', '/health', pki)).status === 200,
    30_000,
    `caddy on ${port}: ${out}`,
  );
  return { port, output: () => out };
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request to 127.0.0.1:port for `name` (SNI and Host), trusting only the test CA. */
export function httpsRequest(
  port: number,
  name: string,
  path: string,
  pki: TestPki,
  opts: { method?: string; body?: string } = {},
): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        servername: name,
        path,
        method: opts.method ?? 'GET',
        headers: { host: name },
        ca: pki.ca_pem,
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
