#!/usr/bin/env node
// Control-plane and agent CPU per proxied request, alone: one backend, one control plane and one agent of this
// checkout (or of CODE_ROOT given as the first argument), 50 connections for 5 s after a 2 s warm-up, through
// each entry point twice; the user + system time (/proc/<pid>/stat) of the control plane and of the
// agent over the measured window, each divided by the requests answered. Run it in two checkouts alternately for an A/B:
//   node bench/cp-cpu.mjs            # this checkout
//   node bench/cp-cpu.mjs ../old     # another checkout, built with npx tsc -b
import autocannon from 'autocannon';
import { resolve } from 'node:path';
import {
  cpuMs,
  killAll,
  setCodeRoot,
  spawnAgent,
  spawnControlPlane,
  startBackend,
  stopProc,
  waitRoutable,
} from './procs.mjs';

if (process.argv[2]) setCodeRoot(resolve(process.argv[2]));
const backend = await startBackend();
const cp = await spawnControlPlane();
const agent = spawnAgent({ ws_url: cp.ws_url, backend_url: backend.url });
await waitRoutable(cp.api_url);
const cpuOf = (h) => {
  const c = cpuMs(h.pid);
  return c.u + c.s;
};
async function measure(url, headers = {}) {
  await autocannon({ url, connections: 50, duration: 2, headers });
  const cp_before_ms = cpuOf(cp);
  const agent_before_ms = cpuOf(agent);
  const r = await autocannon({ url, connections: 50, duration: 5, headers });
  const per_req = (ms) => Math.round((ms * 1000) / r.requests.total);
  return {
    req_s: Math.round(r.requests.average),
    cp_us_per_req: per_req(cpuOf(cp) - cp_before_ms),
    agent_us_per_req: per_req(cpuOf(agent) - agent_before_ms),
  };
}
try {
  for (let i = 0; i < 2; i++) {
    console.log('/v1/proxy', await measure(`${cp.api_url}/v1/proxy/demo/small`));
    console.log('Host:    ', await measure(`${cp.proxy_url}/small`, { host: 'demo.app.test' }));
  }
} finally {
  await stopProc(cp);
  await killAll();
}
