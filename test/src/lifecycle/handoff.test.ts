// Zero-downtime restart: SIGHUP makes the control plane spawn its successor on the same listening sockets,
// then drain and exit. Under continuous load, no request may fail, and the agent must follow to the successor.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import {
  closeAll,
  sleep,
  spawnCp,
  startAgent,
  startBackend,
  waitFor,
  waitRoutable,
  wsUrl,
} from '../helpers/network.js';

after(closeAll);

async function loadUntil(url: string, stop: () => boolean): Promise<{ ok: number; failed: string[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const failed: string[] = [];
  let ok = 0;
  const worker = async () => {
    while (!stop()) {
      await new Promise<void>((resolve) => {
        const req = http.get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) ok++;
            else failed.push(`HTTP ${res.statusCode}`);
            resolve();
          });
        });
        req.on('error', (e: Error & { code?: string }) => {
          failed.push(e.code ?? e.message);
          setTimeout(resolve, 10);
        });
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
  return { ok, failed };
}

describe('SIGHUP handoff', () => {
  it('restarts onto a successor with zero failed requests, and the agent follows', async () => {
    const backend = await startBackend();
    const cp = await spawnCp();
    let successor = 0;
    try {
      const agent = startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
      await waitRoutable(cp);
      let done = false;
      const load = loadUntil(`${cp.api_url}/v1/proxy/demo/echo`, () => done);
      await sleep(500);
      cp.kill('SIGHUP');
      successor = Number(
        (await waitFor(() => /successor (\d+) is serving/.exec(cp.output()), 20_000, 'a serving successor'))[1],
      );
      assert.equal(await cp.exited, 0, cp.output());
      await sleep(1000); // keep the load running on the successor alone
      done = true;
      const r = await load;
      assert.deepEqual(r.failed, [], `${r.failed.length} failed requests across the handoff`);
      assert.ok(r.ok > 100, `only ${r.ok} requests completed`);
      // The successor answers, and the agent is attested on it (its tunnel moved over).
      const res = await fetch(`${cp.api_url}/v1/resolve/demo`);
      assert.equal(res.status, 200);
      assert.equal(agent.attested, true);
    } finally {
      if (successor) {
        try {
          process.kill(successor, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
