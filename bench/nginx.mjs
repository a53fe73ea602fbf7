// nginx as the reverse-proxy reference point (Debian `nginx-light`), in its own process:
// a temp prefix dir with its own nginx.conf, run in the foreground with `nginx -p <dir> -c <dir>/nginx.conf`.
//
// Configuration (documented in docs/benchmarks.md):
//   - worker_processes 1 by default (BENCH_NGINX_WORKERS to change): one proxy process, like the single
//     control-plane process it is compared with; the machine has 2 cores shared by every process.
//   - upstream keepalive 64, proxy_http_version 1.1, Connection "" : keep-alive to the backend, like the agent's pool.
//   - proxy_buffering off and proxy_request_buffering off: bodies stream through in both directions (as
//     through the tunnel) instead of being spooled to memory/temp files; client_max_body_size 0 (unlimited).
//     With buffering off nginx moves at most proxy_buffer_size (response) / client_body_buffer_size (request)
//     per read; the defaults (one 4-8 KiB page) cut its 100 MiB rate to a fraction, so both are 64k, the
//     size of the tunnel's data frames.
//   - access_log off; error_log warn.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { freePort, spawnProc, tmpDir, waitFor } from './procs.mjs';

export const NGINX_INSTALL_HINT =
  'nginx not found: install it with `apt-get update && apt-get install -y nginx-light` (Debian/Ubuntu), then re-run';

/** Path of the nginx binary (BENCH_NGINX=/path overrides, BENCH_NGINX=none skips nginx), or null. */
export function findNginx() {
  if (process.env.BENCH_NGINX === 'none') return null; // skip the nginx column on purpose
  for (const p of [
    process.env.BENCH_NGINX,
    '/usr/sbin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/local/nginx/sbin/nginx',
  ]) {
    if (p && existsSync(p)) return p;
  }
  try {
    const p = execFileSync('bash', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();
    return p || null;
  } catch {
    return null;
  }
}

export function nginxVersion(bin) {
  // `nginx -v` prints "nginx version: nginx/1.22.1" on stderr.
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().replace(/^nginx version: /, '');
  return text || null;
}

export function nginxConf({ dir, listen_port, upstream_port, workers }) {
  return `# Written by bench/nginx.mjs for the easyenclave benchmark.
daemon off;
master_process on;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_max_body_size 0;
  upstream backend {
    server 127.0.0.1:${upstream_port};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${listen_port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 4 64k;
      proxy_busy_buffers_size 128k;
      client_body_buffer_size 64k;
    }
  }
}
`;
}

/** Starts nginx in front of 127.0.0.1:upstream_port; resolves once it answers. */
export async function startNginx({ bin, upstream_port, workers = process.env.BENCH_NGINX_WORKERS ?? '1' }) {
  const dir = tmpDir('ee-bench-nginx-');
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const listen_port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf({ dir, listen_port, upstream_port, workers }));
  const h = spawnProc('nginx', bin, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stopSignal: 'SIGTERM' });
  const url = `http://127.0.0.1:${listen_port}`;
  await waitFor(
    async () => {
      if (!h.alive()) throw new Error(`nginx exited: ${h.output()}`);
      return (await fetch(`${url}/small`)).ok;
    },
    10_000,
    'nginx to answer',
  );
  return { ...h, port: listen_port, url, conf, workers };
}
