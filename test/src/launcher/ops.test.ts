// The launcher's operations port: off unless EE_METRICS_PORT is set, loopback by default; /metrics shows the
// capacity the runtime offers, holds and has free; /ready follows the launcher's readiness.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CapacityLedger, loadLauncherOpsConfig, serveLauncherOps } from '@easyenclave/launcher';

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
});
