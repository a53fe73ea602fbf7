// The launcher's operations port: off unless EE_METRICS_PORT is set, loopback by default; /metrics shows the
// capacity the runtime offers, holds and has free; /ready follows the launcher's readiness.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { CapacityLedger, LauncherNode, loadLauncherOpsConfig, serveLauncherOps } from '@easyenclave/launcher';
import { freePort, quietLogger } from '../helpers/network.js';
import { PODMAN_TEST_ENV, podmanSkipReason } from '../helpers/podman.js';
import { tmpDir } from '../helpers/tmp.js';

describe('launcher operations port: /metrics and /ready', () => {
  it('is off by default and binds loopback; a bad port is refused', () => {
    assert.deepEqual(loadLauncherOpsConfig({}), { metrics_port: null, metrics_bind: '127.0.0.1' });
    assert.deepEqual(loadLauncherOpsConfig({ EE_METRICS_PORT: '9465' }), {
      metrics_port: 9465,
      metrics_bind: '127.0.0.1',
    });
    assert.throws(() => loadLauncherOpsConfig({ EE_METRICS_PORT: '65536' }), /EE_METRICS_PORT/);
    assert.throws(() => loadLauncherOpsConfig({ EE_METRICS_PORT: '-1' }), /EE_METRICS_PORT/);
  });

  it('serves capacity metrics and readiness', async () => {
    const ledger = new CapacityLedger({ vcpus: 8, memory_mib: 4096 });
    assert.ok(ledger.reserve('job-1', { vcpus: 2, memory_mib: 1024 }));
    let ready = false;
    const ops = await serveLauncherOps(
      { capacity: () => ledger.snapshot() },
      { ...loadLauncherOpsConfig({ EE_METRICS_PORT: '0' }), metrics_port: 0 },
      () => (ready ? { ready: true } : { ready: false, reason: 'runtime not open' }),
    );
    try {
      assert.match(ops.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const notYet = await fetch(`${ops.url}/ready`);
      assert.equal(notYet.status, 503);
      assert.deepEqual(await notYet.json(), { ready: false, reason: 'runtime not open' });
      ready = true;
      assert.equal((await fetch(`${ops.url}/ready`)).status, 200);
      const text = await (await fetch(`${ops.url}/metrics`)).text();
      assert.match(text, /^ee_launcher_vcpus\{state="total"\} 8$/m);
      assert.match(text, /^ee_launcher_vcpus\{state="allocated"\} 2$/m);
      assert.match(text, /^ee_launcher_vcpus\{state="free"\} 6$/m);
      assert.match(text, /^ee_launcher_memory_bytes\{state="allocated"\} 1073741824$/m);
      assert.match(text, /^ee_launcher_workloads 1$/m);
      assert.match(text, /^ee_build_info\{component="launcher",version="[^"]+",node_version="[^"]+"\} 1$/m);
      assert.equal((await fetch(`${ops.url}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await ops.close();
    }
  });

  it(
    'ee node run serves it when EE_METRICS_PORT is set: not ready while its tunnel is not attested',
    {
      skip: podmanSkipReason(),
    },
    async () => {
      const node = await LauncherNode.start(
        {
          ...PODMAN_TEST_ENV,
          EE_LAUNCHER_STATE_DIR: tmpDir('ee-launcher-'),
          EE_LAUNCHER_ID: `test-${randomBytes(6).toString('hex')}`,
          EE_CONTROL_WS: `ws://127.0.0.1:${await freePort()}/v1/tunnel`, // nobody there
          EE_NETWORK: 'sandbox-1',
          EE_LOG_LEVEL: 'silent',
          EE_METRICS_PORT: '0',
        },
        { logger: quietLogger() },
      );
      try {
        assert.ok(node.ops);
        assert.equal(node.agent.metrics, null, 'the embedded agent opens no port of its own');
        const r = await fetch(`${node.ops.url}/ready`);
        assert.equal(r.status, 503);
        assert.deepEqual(await r.json(), { ready: false, reason: 'tunnel not attested' });
        const text = await (await fetch(`${node.ops.url}/metrics`)).text();
        assert.match(text, /^ee_launcher_vcpus\{state="total"\} \d+$/m);
        assert.match(text, /^ee_build_info\{component="launcher",/m);
      } finally {
        await node.stop();
      }
    },
  );
});
