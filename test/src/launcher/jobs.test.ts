// Jobs on real podman: the result of a job that hashes a secret, what podman and the launcher keep of that
// secret, timeouts, cancel, logs, the output file, capacity and unknown images.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  OUTPUT_FILE_MAX_BYTES,
  RuntimeError,
  STOP_GRACE_MS,
  type PodmanRuntime,
  type WorkloadSpecInput,
} from '@easyenclave/launcher';
import { closeAll, waitFor } from '../helpers/network.js';
import {
  openRuntime,
  podmanSkipReason,
  testCli,
  testImage,
  testJob,
  testLauncherConfig,
  PODMAN_SUITE_TIMEOUT_MS,
} from '../helpers/podman.js';

const skip = podmanSkipReason();
/** Slack for podman's own start/stop work on a loaded machine, on top of the grace period. */
const STOP_SLACK_MS = 10_000;

let seq = 0;
const job = (extra: Partial<WorkloadSpecInput> & { command: string[] }) => testJob('job', ++seq, extra);

/** Every file under dir, recursively (the launcher's state and env directories). */
function filesUnder(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) out = out.concat(filesUnder(p));
    else if (st?.isFile()) out.push(p);
  }
  return out;
}

/** The command line of every process on the host (what `ps -ef` shows). */
function allCommandLines(): string {
  let all = '';
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      all += readFileSync(`/proc/${pid}/cmdline`).toString('latin1').replaceAll('\0', ' ') + '\n';
    } catch {
      // the process ended meanwhile
    }
  }
  return all;
}

describe('launcher jobs on podman', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  let rt: PodmanRuntime;
  afterEach(() => closeAll());
  after(() => closeAll());

  test('a job prints the sha256 of a secret env value: exit code, stdout tail, image that ran, billing', async () => {
    rt = await openRuntime();
    const secret = `s3cr3t-${randomBytes(16).toString('hex')}`;
    const w = await rt.start(
      await job({
        command: ['/bin/sh', '-c', 'printf %s "$SECRET" | sha256sum; echo to-stderr >&2'],
        env: { SECRET: secret },
        vcpus: 2,
      }),
    );
    const r = await w.result();
    const image = await rt.resolveImage(await testImage());
    assert.equal(r.state, 'succeeded', r.reason);
    assert.equal(r.exit_code, 0);
    assert.equal(r.stdout_tail.toString(), `${createHash('sha256').update(secret).digest('hex')}  -\n`);
    assert.equal(r.stderr_tail.toString(), 'to-stderr\n');
    assert.deepEqual(r.image, image);
    assert.match(r.image.id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(r.oom_killed, false);
    assert.ok(r.finished_at_ms >= r.started_at_ms);
    assert.equal(r.billed_ms, r.wall_ms);
    assert.equal(r.billed_vcpu_ms, 2 * r.wall_ms);
    await w.remove();
    assert.equal(rt.get(w.workload_id), undefined);
    assert.equal((await testCli().call(['container', 'exists', w.container_id])).code, 1, 'container removed');
  });

  test('env values arrive byte for byte (spaces, quotes, "=", "#", unicode)', async () => {
    rt = await openRuntime();
    const values = { A: '  lead and trail  ', B: `q"u'o=te#not-a-comment`, C: 'ünïcødé ✓', D: '' };
    const w = await rt.start(
      await job({ command: ['/bin/sh', '-c', 'printf "[%s]" "$A" "$B" "$C" "$D"'], env: values }),
    );
    const r = await w.result();
    assert.equal(
      r.stdout_tail.toString(),
      Object.values(values)
        .map((v) => `[${v}]`)
        .join(''),
    );
  });

  test('the secret is on no command line while the job runs, in no file the launcher leaves, and podman keeps it only in the container config', async () => {
    const config = testLauncherConfig();
    rt = await openRuntime(config);
    const secret = `s3cr3t-${randomBytes(16).toString('hex')}`;
    const w = await rt.start(
      await job({
        // Runs until cancelled; the trap makes the shell (PID 1) end at once on SIGTERM.
        command: ['/bin/sh', '-c', 'printf %s "$SECRET" | sha256sum; trap "exit 0" TERM; sleep 600 & wait'],
        env: { SECRET: secret },
      }),
    );
    const logs = w.logs();
    let out = '';
    logs.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('  -'), 20_000, 'the job to print its digest');
    assert.ok(w.running, 'still running');
    assert.ok(!allCommandLines().includes(secret), 'secret on a command line');
    const files = [...filesUnder(config.state_dir), ...filesUnder(rt.env_dir)];
    for (const f of files) assert.ok(!readFileSync(f).includes(secret), `secret in ${f}`);
    assert.deepEqual(filesUnder(rt.env_dir), [], 'the env file is deleted once podman run returned');

    const inspect = (await testCli().json(['container', 'inspect', w.container_id])) as any[];
    const env: string[] = inspect[0].Config.Env;
    assert.ok(env.includes(`SECRET=${secret}`));
    inspect[0].Config.Env = [];
    assert.ok(!JSON.stringify(inspect).includes(secret), 'podman keeps the secret beyond Config.Env');

    await w.cancel();
    assert.equal((await w.result()).state, 'cancelled');
    await logs.done;
    await w.remove();
    for (const f of filesUnder(config.state_dir)) assert.ok(!readFileSync(f).includes(secret), `secret in ${f}`);
    await rt.close();
    assert.ok(!existsSync(rt.env_dir), 'a closed runtime leaves no env directory');
  });

  test('a job that outlives max_runtime is stopped and reported timed_out, billed at most max_runtime', async () => {
    rt = await openRuntime();
    const max_runtime_ms = 2_000;
    const w = await rt.start(await job({ command: ['/bin/sleep', '600'], max_runtime_ms, vcpus: 2 }));
    const r = await w.result();
    assert.equal(r.state, 'timed_out', r.reason);
    assert.equal(r.timed_out, true);
    assert.equal(r.oom_killed, false);
    assert.ok(r.wall_ms >= max_runtime_ms, `wall ${r.wall_ms}`);
    assert.ok(r.wall_ms <= max_runtime_ms + STOP_GRACE_MS + STOP_SLACK_MS, `wall ${r.wall_ms}`);
    assert.equal(r.billed_ms, max_runtime_ms);
    assert.equal(r.billed_vcpu_ms, 2 * max_runtime_ms);
    assert.deepEqual(rt.capacity().allocated, { vcpus: 0, memory_mib: 0 });
  });

  test('cancel stops a running job: cancelled, capacity free again', async () => {
    rt = await openRuntime();
    const w = await rt.start(await job({ command: ['/bin/sleep', '600'] }));
    assert.deepEqual(rt.capacity().allocated, { vcpus: 1, memory_mib: 64 });
    await w.cancel();
    assert.equal(w.running, false);
    const r = await w.result();
    assert.equal(r.state, 'cancelled', r.reason);
    assert.ok(r.wall_ms < 60_000);
    assert.deepEqual(rt.capacity().allocated, { vcpus: 0, memory_mib: 0 });
    await w.cancel(); // a no-op once exited
  });

  test('logs stream while the job runs and end when it exits', async () => {
    rt = await openRuntime();
    const w = await rt.start(
      await job({ command: ['/bin/sh', '-c', 'for i in 1 2 3; do echo line$i; echo err$i >&2; sleep 0.2; done'] }),
    );
    const logs = w.logs();
    let out = '';
    let err = '';
    logs.stdout.on('data', (d: Buffer) => (out += d.toString()));
    logs.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await logs.done;
    assert.equal(out, 'line1\nline2\nline3\n');
    assert.equal(err, 'err1\nerr2\nerr3\n');
    assert.equal((await w.result()).state, 'succeeded');
  });

  test('stdout tail keeps the end of a long output', async () => {
    rt = await openRuntime();
    const w = await rt.start(await job({ command: ['/bin/sh', '-c', 'seq 1 100000'] }));
    const r = await w.result();
    assert.ok(r.stdout_truncated);
    assert.equal(r.stdout_tail.length, 64 * 1024);
    assert.ok(r.stdout_tail.toString().endsWith('\n99999\n100000\n'));
  });

  test('the output file comes back; a too large one and a symlink do not', async () => {
    rt = await openRuntime();
    const ok = await rt.start(
      await job({ command: ['/bin/sh', '-c', 'echo result > /ee/output/out.txt'], output_file: 'out.txt' }),
    );
    const big = await rt.start(
      await job({
        command: [
          '/bin/sh',
          '-c',
          `dd if=/dev/zero of=/ee/output/out.bin bs=1024 count=${OUTPUT_FILE_MAX_BYTES / 1024 + 1}`,
        ],
        output_file: 'out.bin',
      }),
    );
    const link = await rt.start(
      await job({ command: ['/bin/sh', '-c', 'ln -s /etc/passwd /ee/output/out.txt'], output_file: 'out.txt' }),
    );
    const none = await rt.start(await job({ command: ['/bin/true'], output_file: 'out.txt' }));
    const r = await ok.result();
    assert.equal(r.output?.status, 'ok');
    assert.equal(r.output.status === 'ok' && r.output.bytes.toString(), 'result\n');
    assert.deepEqual((await big.result()).output, { status: 'too_large', size_bytes: OUTPUT_FILE_MAX_BYTES + 1024 });
    assert.deepEqual((await link.result()).output, { status: 'not_a_file' });
    assert.deepEqual((await none.result()).output, { status: 'missing' });
    for (const w of [ok, big, link, none]) await w.remove();
  });

  test('capacity: a job that does not fit is refused before anything starts', async () => {
    rt = await openRuntime(testLauncherConfig({ EE_LAUNCHER_VCPUS: '1', EE_LAUNCHER_MEMORY_MIB: '256' }));
    const first = await rt.start(await job({ command: ['/bin/sleep', '600'] }));
    const refused = async (spec: WorkloadSpecInput) =>
      assert.rejects(rt.start(spec), (e: unknown) => e instanceof RuntimeError && e.code === 'insufficient_capacity');
    await refused(await job({ command: ['/bin/true'] }));
    await first.cancel();
    await refused(await job({ command: ['/bin/true'], memory_mib: 512 }));
    const second = await rt.start(await job({ command: ['/bin/true'], memory_mib: 256 }));
    assert.equal((await second.result()).state, 'succeeded');
    await assert.rejects(
      rt.start({ ...(await job({ command: ['/bin/true'] })), workload_id: second.workload_id }),
      (e: unknown) => e instanceof RuntimeError && e.code === 'already_exists',
    );
  });

  test('an image that is not local is refused (nothing is pulled) and holds no capacity', async () => {
    rt = await openRuntime();
    await assert.rejects(
      rt.start(await job({ command: ['/bin/true'], image: 'localhost/easyenclave-no-such-image:1' })),
      (e: unknown) => e instanceof RuntimeError && e.code === 'image_not_found',
    );
    assert.deepEqual(rt.capacity().allocated, { vcpus: 0, memory_mib: 0 });
    assert.deepEqual(rt.list(), []);
  });
});
