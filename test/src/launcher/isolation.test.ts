// What a job cannot do, on real podman: reach the host's network, exceed its memory (it is OOM-killed and
// reported so), hold capabilities, fork past its pids limit, write its root filesystem.
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import { after, afterEach, describe, test } from 'node:test';
import type { PodmanRuntime, WorkloadSpecInput } from '@easyenclave/launcher';
import { closeAll, onCleanup } from '../helpers/network.js';
import { openRuntime, podmanSkipReason, testJob, PODMAN_SUITE_TIMEOUT_MS } from '../helpers/podman.js';

const skip = podmanSkipReason();

const job = (command: string, extra: Partial<WorkloadSpecInput> = {}) =>
  testJob('iso', 1, { command: ['/bin/sh', '-c', command], ...extra });

/** A TCP server on every host address; counts the connections that reach it. */
async function hostServer(): Promise<{ port: number; addresses: string[]; accepted: () => number }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.end('hello from the host\n');
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const addresses = Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4')
    .map((a) => a!.address);
  assert.ok(addresses.includes('127.0.0.1'));
  return { port: (server.address() as net.AddressInfo).port, addresses, accepted: () => accepted };
}

/** Shell that tries each address and prints "addr:reached" or "addr:refused". */
const probe = (addresses: string[], port: number) =>
  addresses
    .map((a) => `if echo | nc -w 2 ${a} ${port} >/dev/null 2>&1; then echo ${a}:reached; else echo ${a}:refused; fi`)
    .join('; ');

describe('launcher isolation on podman', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  let rt: PodmanRuntime;
  afterEach(() => closeAll());
  after(() => closeAll());

  test('a job without network has only lo and reaches no host address', async () => {
    rt = await openRuntime();
    const host = await hostServer();
    const w = await rt.start(await job(`ls /sys/class/net; ${probe(host.addresses, host.port)}`));
    const out = (await w.result()).stdout_tail.toString();
    const lines = out.trim().split('\n');
    assert.equal(lines[0], 'lo', out);
    for (const a of host.addresses) assert.ok(lines.includes(`${a}:refused`), out);
    assert.equal(host.accepted(), 0);

    // Control: the server does accept connections from the host itself.
    const control = await new Promise<boolean>((r) => {
      const s = net.connect(host.port, '127.0.0.1', () => {
        s.end();
        r(true);
      });
      s.on('error', () => r(false));
    });
    assert.ok(control);
  });

  test("a job with network gets its own stack: the host's loopback stays out of reach", async () => {
    rt = await openRuntime();
    const host = await hostServer();
    // 10.0.2.2 is slirp4netns's gateway: it would be the host's loopback if allow_host_loopback were set.
    const w = await rt.start(
      await job(`ls /sys/class/net; ${probe(['127.0.0.1', '10.0.2.2'], host.port)}`, { network: true }),
    );
    const out = (await w.result()).stdout_tail.toString();
    assert.match(out, /^lo\ntap0\n/);
    assert.ok(out.includes('127.0.0.1:refused') && out.includes('10.0.2.2:refused'), out);
  });

  test('a job that allocates past its memory limit is OOM-killed and reported oom_killed', async () => {
    rt = await openRuntime();
    // Doubling a shell string passes 32 MiB after a few rounds.
    const w = await rt.start(await job('x=a; while true; do x="$x$x"; done', { memory_mib: 32 }));
    const r = await w.result();
    assert.equal(r.state, 'failed');
    assert.equal(r.oom_killed, true, r.reason);
    assert.equal(r.exit_code, 137);
    assert.match(r.reason, /out of memory \(limit 32 MiB\)/);
  });

  test('a job runs without capabilities, with no_new_privs, on a read-only root with a writable /tmp', async () => {
    rt = await openRuntime();
    const w = await rt.start(
      await job(
        'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status; ' +
          'touch /root-write 2>/dev/null && echo root:writable || echo root:read-only; ' +
          'touch /tmp/x && echo tmp:writable',
      ),
    );
    const out = (await w.result()).stdout_tail.toString();
    for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'])
      assert.match(out, new RegExp(`${cap}:\\s+0{16}\\n`));
    assert.match(out, /NoNewPrivs:\s+1\n/);
    assert.match(out, /root:read-only\n/);
    assert.match(out, /tmp:writable\n/);
  });

  test('the pids limit holds: forking past it fails', async () => {
    rt = await openRuntime();
    const w = await rt.start(
      await job('i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done; echo all-forked', { pids_limit: 16 }),
    );
    const r = await w.result();
    assert.ok(!r.stdout_tail.toString().includes('all-forked'), r.stdout_tail.toString());
    assert.match(r.stderr_tail.toString(), /can't fork/);
    assert.notEqual(r.exit_code, 0);
  });
});
