// A deployment on real podman: busybox httpd in the test image serves on its published port, which is bound
// to the host's loopback only; stopping it reports `cancelled`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { after, afterEach, describe, test } from 'node:test';
import { TEST_IMAGE_INDEX_HTML } from '@easyenclave/launcher/testing/test-image';
import { closeAll, waitFor } from '../helpers/network.js';
import { openRuntime, podmanSkipReason, testImage, PODMAN_SUITE_TIMEOUT_MS } from '../helpers/podman.js';

const skip = podmanSkipReason();

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.on('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

describe('launcher deployments on podman', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  afterEach(() => closeAll());
  after(() => closeAll());

  test('a deployment serves HTTP on its published loopback port, and only there', async () => {
    const rt = await openRuntime();
    const w = await rt.start({
      workload_id: `web-${randomBytes(6).toString('hex')}`,
      kind: 'deployment',
      assignment_seq: 3,
      image: await testImage(),
      command: ['/usr/bin/httpd', '-f', '-p', '8080', '-h', '/www'],
      env: { GREETING: 'hello' },
      vcpus: 1,
      memory_mib: 64,
      port: 8080,
    });
    assert.ok(w.host_port !== null && w.host_port > 0, `host port ${w.host_port}`);
    const url = `http://127.0.0.1:${w.host_port}/index.html`;
    const body = await waitFor(
      async () => {
        const res = await fetch(url);
        return res.status === 200 ? await res.text() : null;
      },
      20_000,
      `the deployment to answer on ${url}`,
    );
    assert.equal(body, TEST_IMAGE_INDEX_HTML);

    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    for (const a of others) assert.equal(await connects(a, w.host_port), false, `port reachable on ${a}`);

    await w.cancel();
    const r = await w.result();
    assert.equal(r.state, 'cancelled', r.reason);
    assert.equal(r.kind, 'deployment');
    assert.equal(r.billed_ms, r.wall_ms, 'a deployment has no max runtime cap');
    assert.equal(await connects('127.0.0.1', w.host_port), false, 'the port is closed once stopped');
    await w.remove();
  });
});
