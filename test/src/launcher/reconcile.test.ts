// A launcher restart on real podman: a new runtime with the same launcher id and state directory finds its
// containers by label, collects the ones that exited while it was away, watches the running ones again
// (their max runtime still counts from their start) and holds their capacity.
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { STOP_GRACE_MS, type WorkloadSpecInput } from '@easyenclave/launcher';
import { closeAll, waitFor } from '../helpers/network.js';
import {
  openRuntime,
  podmanSkipReason,
  testCli,
  testJob,
  testLauncherConfig,
  PODMAN_SUITE_TIMEOUT_MS,
} from '../helpers/podman.js';

const skip = podmanSkipReason();

const job = (command: string, extra: Partial<WorkloadSpecInput> = {}) =>
  testJob('rec', 41, { command: ['/bin/sh', '-c', command], ...extra });

async function exitedInPodman(container_id: string): Promise<boolean> {
  const state = (await testCli().json(['container', 'inspect', container_id])) as any[];
  return state[0].State.Status === 'exited';
}

describe('launcher restart on podman', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  afterEach(() => closeAll());
  after(() => closeAll());

  test('a job that exited while the launcher was down is found by label and its result collected', async () => {
    const config = testLauncherConfig();
    const first = await openRuntime(config);
    const w = await first.start(await job('echo done; exit 3'));
    await first.close(); // the launcher "restarts": the old object is dropped
    await waitFor(() => exitedInPodman(w.container_id), 20_000, 'the container to exit');

    const second = await openRuntime(config);
    const found = await second.reconcile();
    assert.deepEqual(
      found.map((f) => [f.workload_id, f.container_id, f.running, f.assignment_seq]),
      [[w.workload_id, w.container_id, false, 41]],
    );
    const r = await found[0]!.result();
    assert.equal(r.state, 'failed');
    assert.equal(r.exit_code, 3);
    assert.equal(r.stdout_tail.toString(), 'done\n');
    assert.deepEqual(r.image, w.image);
    assert.deepEqual(second.capacity().allocated, { vcpus: 0, memory_mib: 0 });
    assert.deepEqual(await second.reconcile(), [], 'a second reconcile finds nothing new');
    await found[0]!.remove();
  });

  test('a running job is re-attached: capacity held, exit seen, result collected', async () => {
    const config = testLauncherConfig();
    const first = await openRuntime(config);
    // Long enough to still run after the restart below, even on a loaded machine.
    const w = await first.start(await job('sleep 8; echo finished', { vcpus: 2, memory_mib: 128 }));
    await first.close();

    const second = await openRuntime(config);
    const [again] = await second.reconcile();
    assert.ok(again?.running, 'still running');
    assert.equal(again.started_at_ms, w.started_at_ms);
    assert.deepEqual(second.capacity().allocated, { vcpus: 2, memory_mib: 128 });
    const r = await again.result();
    assert.equal(r.state, 'succeeded', r.reason);
    assert.equal(r.stdout_tail.toString(), 'finished\n');
    assert.deepEqual(second.capacity().allocated, { vcpus: 0, memory_mib: 0 });
  });

  test('max runtime counts from the container start across a restart', async () => {
    const config = testLauncherConfig();
    const first = await openRuntime(config);
    const max_runtime_ms = 3_000;
    await first.start(await job('sleep 600', { max_runtime_ms }));
    await first.close();

    const second = await openRuntime(config);
    const [again] = await second.reconcile();
    const r = await again!.result();
    assert.equal(r.state, 'timed_out', r.reason);
    assert.equal(r.billed_ms, max_runtime_ms);
    assert.ok(r.wall_ms <= max_runtime_ms + STOP_GRACE_MS + 10_000, `wall ${r.wall_ms}`);
  });

  test('a cancel whose stop the launcher began before restarting is still reported cancelled', async () => {
    const config = testLauncherConfig();
    const first = await openRuntime(config);
    const w = await first.start(await job('sleep 600'));
    await w.cancel();
    await first.close();

    const second = await openRuntime(config);
    const [again] = await second.reconcile();
    assert.equal((await again!.result()).state, 'cancelled');
  });

  test("another launcher's containers are not taken", async () => {
    const mine = await openRuntime();
    const theirs = await openRuntime();
    await theirs.start(await job('sleep 600'));
    assert.deepEqual(await mine.reconcile(), []);
  });
});
