// The agent fleet of the idle, restart and profile sections: real agents (bench/many-agents.mjs, one or more
// processes) connected to one control plane `fl` ({ cp, insp, backend, agents: [], events: [] }, made by
// scripts/bench.mjs), and the control plane's memory as seen from /proc and, through the inspector, from
// process.memoryUsage() after a forced GC.

import { join } from 'node:path';
import { adminGet, BENCH_DIR, memKiB, sleep, spawnProc, stopProc, tmpDir, waitFor } from './procs.mjs';

/** Routable and connected agents summed over the fleet's apps (idle-*), from the admin /v1/apps. */
export async function routableSum(api_url) {
  const { apps } = await adminGet(api_url, '/v1/apps');
  let routable = 0;
  let connected = 0;
  for (const a of apps) {
    if (!a.app_name.startsWith('idle-')) continue;
    routable += a.agents_routable;
    connected += a.agents_connected;
  }
  return { routable, connected };
}

/** One many-agents process with `count` agents (apps idle-0 …), of which the first `start` start at once
 *  (the rest on SIGUSR2, see startRest). Tracked in fl.agents; its JSON events go to fl.events with
 *  src = its index in fl.agents. */
export function spawnFleetAgents(fl, count, start = count) {
  const src = fl.agents.length;
  const opts = {
    ws_url: fl.cp.ws_url,
    backend_url: fl.backend.url,
    count,
    start,
    health_interval_s: 10,
    state_dir: tmpDir('ee-bench-many-'),
  };
  const h = spawnProc(
    src ? `many-agents #${src + 1}` : 'many-agents',
    process.execPath,
    [join(BENCH_DIR, 'many-agents.mjs'), JSON.stringify(opts)],
    {
      ulimit: true,
      onLine: (line) => {
        if (!line.startsWith('{')) return;
        try {
          fl.events.push({ ...JSON.parse(line), src });
          if (fl.events.length > 20_000) fl.events.splice(0, 10_000);
        } catch {
          // not ours
        }
      },
    },
  );
  fl.agents.push(h);
  return h;
}

/** The control plane's /health counts (agents_connected, agents_routable): from memory, cheap to poll, where
 *  the admin /v1/apps (a query and ~200 KB of JSON at 1000 apps) would load the control plane under measurement. */
export async function healthCounts(api_url) {
  return (await fetch(`${api_url}/health`, { signal: AbortSignal.timeout(5000) })).json();
}

/** Confirms once with the admin /v1/apps what /health said: exactly n fleet agents routable. */
export async function confirmRoutable(api_url, n) {
  const { routable } = await routableSum(api_url);
  if (routable !== n) throw new Error(`/health said ${n} routable, /v1/apps says ${routable}`);
}

/** Waits until the `n` started agents of process h all attested (their own view) and the control plane routes
 *  n fleet agents; t0 = when they were started. Epoch-ms times: t0, all attested, all routable. */
async function connected(fl, h, n, t0) {
  await h.waitLine(new RegExp(`"ev":"all_attested".*"started":${n}\\}`), 120_000, `all ${n} agents attested`);
  const tAttested = Date.now();
  await waitFor(
    async () => (await healthCounts(fl.cp.api_url)).agents_routable >= n,
    30_000,
    `${n} routable agents in /health`,
    100,
  );
  const tRoutable = Date.now();
  await confirmRoutable(fl.cp.api_url, n);
  return { t0, tAttested, tRoutable };
}

/** Spawns one process of `count` agents, starts the first `start`, and waits until they are all attested and
 *  routable. Returns the handle and the times (see `connected`). */
export async function connectFleetAgents(fl, count, start = count) {
  const t0 = Date.now();
  const h = spawnFleetAgents(fl, count, start);
  return { h, ...(await connected(fl, h, start, t0)) };
}

/** Starts the rest of process h's `count` agents (SIGUSR2) and waits until all `count` are attested and routable. */
export async function startRest(fl, h, count) {
  const t0 = Date.now();
  h.kill('SIGUSR2');
  return connected(fl, h, count, t0);
}

/** The time by which every agents process had printed all_attested at or after `since` (epoch ms), or null
 *  while one has not. */
export function allAttestedSince(fl, since) {
  let t = -Infinity;
  for (let src = 0; src < fl.agents.length; src++) {
    const e = fl.events.find((x) => x.ev === 'all_attested' && x.src === src && x.t >= since);
    if (!e) return null;
    t = Math.max(t, e.t);
  }
  return fl.agents.length ? t : null;
}

export const fleetAgentsAlive = (fl) => fl.agents.length > 0 && fl.agents.every((h) => h.alive());

export async function stopFleetAgents(fl) {
  await Promise.all(fl.agents.map((h) => stopProc(h, 'SIGKILL')));
}

/** Total RSS of the agents processes, KiB. */
export const fleetAgentsRss = (fl) => fl.agents.reduce((a, h) => a + (h.alive() ? memKiB(h.pid).rss : 0), 0);

/** Control-plane memory after `settle_ms`: RSS and peak RSS; then, with the inspector, RSS and
 *  process.memoryUsage() after a forced full GC (rssGc NaN and heap null without it). */
export async function measureCp(fl, settle_ms = 3000) {
  await sleep(settle_ms);
  const { rss, hwm } = memKiB(fl.cp.pid);
  let rssGc = NaN;
  let heap = null;
  if (fl.insp) {
    await fl.insp.gc();
    await sleep(500);
    rssGc = memKiB(fl.cp.pid).rss;
    heap = await fl.insp.memoryUsage();
  }
  return { rss, hwm, rssGc, heap };
}
