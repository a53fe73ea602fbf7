// The launcher's pure parts, without podman: the exact isolation flags, spec limits, configuration
// allowlists, capacity bookkeeping, the outcome rules (state, OOM, billing) and bounded tails.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CapacityLedger,
  LauncherConfigError,
  RuntimeError,
  envFile,
  loadLauncherConfig,
  outcome,
  parseWorkloadSpec,
  runArgs,
  type ExitFacts,
} from '@easyenclave/launcher';
import { recordOf } from '@easyenclave/launcher/podman/labels';
import { TailBuffer } from '@easyenclave/launcher/tail';
import { tmpDir } from '../helpers/tmp.js';

const IMAGE = {
  name: 'localhost/app:1',
  id: `sha256:${'a'.repeat(64)}`,
  digest: `sha256:${'b'.repeat(64)}`,
};
const JOB = {
  workload_id: 'job-1',
  kind: 'job',
  assignment_seq: 7,
  image: 'localhost/app:1',
  command: ['/bin/sh', '-c', 'echo hi'],
  env: { SECRET: 'value' },
  vcpus: 2,
  memory_mib: 256,
  max_runtime_ms: 60_000,
} as const;

function args(input: object, output_host_dir: string | null = null): string[] {
  const spec = parseWorkloadSpec(input);
  return runArgs({
    spec,
    record: recordOf(spec, IMAGE),
    launcher_id: 'launcher-1',
    run_args: ['--ulimit=nofile=1024:1024'],
    output_host_dir,
    env_file: '/dev/shm/ee-launcher-x/job-1',
  });
}

describe('podman run arguments', () => {
  test('a job: limits, no capabilities, no network, read-only root, labels, the image by id', () => {
    assert.deepEqual(args(JOB), [
      'run',
      '--detach',
      '--pull=never',
      '--name=ee-job-1',
      '--label=ee.launcher=launcher-1',
      '--label=ee.workload_id=job-1',
      '--label=ee.kind=job',
      '--label=ee.assignment_seq=7',
      '--label=ee.vcpus=2',
      '--label=ee.memory_mib=256',
      '--label=ee.image=localhost/app:1',
      `--label=ee.image_id=sha256:${'a'.repeat(64)}`,
      `--label=ee.image_digest=sha256:${'b'.repeat(64)}`,
      '--label=ee.max_runtime_ms=60000',
      '--env-file=/dev/shm/ee-launcher-x/job-1',
      '--cpus=2',
      '--memory=256m',
      '--memory-swap=256m',
      '--pids-limit=256',
      '--cap-drop=all',
      '--security-opt=no-new-privileges',
      '--network=none',
      '--read-only',
      '--read-only-tmpfs=false',
      '--tmpfs=/tmp:rw,nosuid,nodev,size=67108864,mode=1777',
      '--log-driver=k8s-file',
      '--log-opt=max-size=8388608',
      '--stop-timeout=5',
      '--timeout=70',
      '--ulimit=nofile=1024:1024',
      '--',
      'a'.repeat(64),
      '/bin/sh',
      '-c',
      'echo hi',
    ]);
  });

  test('the secret value is in no argument', () => {
    assert.ok(!args(JOB).some((a) => a.includes('value')));
    assert.equal(envFile(JOB.env).toString(), 'SECRET=value\n');
  });

  test('a job that asks for network gets a private slirp4netns stack; a deployment publishes on loopback', () => {
    assert.ok(args({ ...JOB, network: true }).includes('--network=slirp4netns:allow_host_loopback=false'));
    const d = args({
      workload_id: 'web-1',
      kind: 'deployment',
      assignment_seq: 1,
      image: 'localhost/app:1',
      vcpus: 1,
      memory_mib: 64,
      port: 8080,
      read_only_root: false,
    });
    assert.ok(d.includes('--network=slirp4netns:allow_host_loopback=false'));
    assert.ok(d.includes('--publish=127.0.0.1::8080'));
    assert.ok(d.includes('--label=ee.port=8080'));
    assert.ok(!d.includes('--read-only'));
    assert.ok(!d.some((a) => a.startsWith('--timeout')), 'deployments have no max runtime');
    for (const a of [...d, ...args(JOB)]) {
      assert.ok(!/privileged|network=host|--net=host|cap-add|--pid=|--ipc=|--uts=/.test(a), a);
    }
  });

  test('an output file mounts the job output directory without exec, suid or devices', () => {
    assert.ok(
      args({ ...JOB, output_file: 'result.bin' }, '/state/outputs/job-1').includes(
        '--mount=type=bind,source=/state/outputs/job-1,destination=/ee/output,rw,nosuid,nodev,noexec',
      ),
    );
  });
});

describe('workload spec', () => {
  const refused = (input: object, message: RegExp) =>
    assert.throws(
      () => parseWorkloadSpec(input),
      (err: unknown) => err instanceof RuntimeError && err.code === 'invalid_spec' && message.test(err.message),
    );

  test('names that podman could read as flags are refused', () => {
    refused({ ...JOB, image: '--privileged' }, /^image:/);
    refused({ ...JOB, workload_id: '-x' }, /^workload_id:/);
    refused({ ...JOB, env: { '-e': 'x' } }, /^env/);
  });

  test('env values that would break the env file, and limits', () => {
    refused({ ...JOB, env: { A: 'line\nB=injected' } }, /newlines/);
    refused({ ...JOB, env: { A: 'x'.repeat(32 * 1024 + 1) } }, /at most 32768 bytes/);
    refused({ ...JOB, vcpus: 0 }, /^vcpus:/);
    refused({ ...JOB, memory_mib: 8 }, /^memory_mib:/);
    refused({ ...JOB, max_runtime_ms: undefined }, /max_runtime_ms: is required for a job/);
    refused({ ...JOB, port: 80 }, /port: is for deployments only/);
    refused({ ...JOB, unknown: 1 }, /unrecognized/i);
    refused({ ...JOB, output_file: '../etc/passwd' }, /^output_file:/);
    refused({ ...JOB, kind: 'deployment', max_runtime_ms: undefined }, /port: is required/);
  });
});

describe('launcher configuration', () => {
  const machine = { vcpus: 8, memory_mib: 16_000 };
  const base = { EE_LAUNCHER_STATE_DIR: tmpDir(), EE_LAUNCHER_ID: 'launcher-test-1' };
  const refused = (env: Record<string, string>, variable: string) =>
    assert.throws(
      () => loadLauncherConfig({ ...base, ...env }, machine),
      (err: unknown) => err instanceof LauncherConfigError && err.variable === variable,
    );

  test('defaults: podman, no extra flags, the whole machine', () => {
    const c = loadLauncherConfig(base, machine);
    assert.equal(c.container_runtime, 'podman');
    assert.deepEqual(c.container_global_args, []);
    assert.deepEqual(c.container_run_args, []);
    assert.deepEqual(c.capacity, machine);
  });

  test("this machine's podman settings are accepted", () => {
    const c = loadLauncherConfig(
      {
        ...base,
        EE_CONTAINER_GLOBAL_ARGS: '--runtime runc',
        EE_CONTAINER_RUN_ARGS: '--ulimit nofile=1024:1024 --ulimit=nproc=1000:1000',
        EE_LAUNCHER_VCPUS: '2',
        EE_LAUNCHER_MEMORY_MIB: '4096',
      },
      machine,
    );
    assert.deepEqual(c.container_global_args, ['--runtime=runc']);
    assert.deepEqual(c.container_run_args, ['--ulimit=nofile=1024:1024', '--ulimit=nproc=1000:1000']);
    assert.deepEqual(c.capacity, { vcpus: 2, memory_mib: 4096 });
  });

  test('flags that would weaken isolation, and capacity beyond the machine, are refused', () => {
    refused({ EE_CONTAINER_RUN_ARGS: '--privileged' }, 'EE_CONTAINER_RUN_ARGS');
    refused({ EE_CONTAINER_RUN_ARGS: '--network host' }, 'EE_CONTAINER_RUN_ARGS');
    refused({ EE_CONTAINER_RUN_ARGS: '--cap-add=ALL' }, 'EE_CONTAINER_RUN_ARGS');
    refused({ EE_CONTAINER_RUN_ARGS: '--userns=host' }, 'EE_CONTAINER_RUN_ARGS');
    refused({ EE_CONTAINER_RUN_ARGS: '--ulimit' }, 'EE_CONTAINER_RUN_ARGS');
    refused({ EE_CONTAINER_GLOBAL_ARGS: '--remote' }, 'EE_CONTAINER_GLOBAL_ARGS');
    refused({ EE_CONTAINER_RUNTIME: '-podman' }, 'EE_CONTAINER_RUNTIME');
    refused({ EE_LAUNCHER_VCPUS: '9' }, 'EE_LAUNCHER_VCPUS');
    refused({ EE_LAUNCHER_MEMORY_MIB: '16001' }, 'EE_LAUNCHER_MEMORY_MIB');
    refused({ EE_LAUNCHER_STATE_DIR: 'relative' }, 'EE_LAUNCHER_STATE_DIR');
  });
});

describe('capacity', () => {
  test('reserve refuses what does not fit; release is idempotent; adopt records what already runs', () => {
    const c = new CapacityLedger({ vcpus: 4, memory_mib: 1000 });
    assert.ok(c.reserve('a', { vcpus: 3, memory_mib: 500 }));
    assert.ok(!c.reserve('b', { vcpus: 2, memory_mib: 100 }), 'vCPUs do not fit');
    assert.ok(!c.reserve('b', { vcpus: 1, memory_mib: 501 }), 'memory does not fit');
    assert.ok(c.reserve('b', { vcpus: 1, memory_mib: 500 }));
    assert.deepEqual(c.snapshot().free, { vcpus: 0, memory_mib: 0 });
    c.release('a');
    c.release('a');
    assert.deepEqual(c.snapshot().allocated, { vcpus: 1, memory_mib: 500 });
    c.adopt('c', { vcpus: 4, memory_mib: 100 });
    assert.deepEqual(c.snapshot(), {
      total: { vcpus: 4, memory_mib: 1000 },
      allocated: { vcpus: 5, memory_mib: 600 },
      free: { vcpus: 0, memory_mib: 400 },
      workloads: 2,
    });
  });
});

describe('outcome', () => {
  const facts = (f: Partial<ExitFacts>): ExitFacts => ({
    kind: 'job',
    vcpus: 2,
    memory_mib: 64,
    max_runtime_ms: 10_000,
    exit_code: 0,
    started: true,
    started_at_ms: 1_000_000,
    finished_at_ms: 1_004_000,
    podman_oom_killed: false,
    cgroup_oom_kills: null,
    stop_reason: null,
    ...f,
  });

  test('bills vCPUs x wall clock, capped at max runtime', () => {
    assert.deepEqual(outcome(facts({})), {
      state: 'succeeded',
      reason: 'exit code 0',
      oom_killed: false,
      timed_out: false,
      wall_ms: 4000,
      billed_ms: 4000,
      billed_vcpu_ms: 8000,
    });
    const t = outcome(facts({ finished_at_ms: 1_015_000, exit_code: 137, stop_reason: 'timeout' }));
    assert.equal(t.state, 'timed_out');
    assert.equal(t.billed_vcpu_ms, 20_000);
    assert.equal(t.oom_killed, false, 'the launcher sent that SIGKILL');
    assert.equal(outcome(facts({ finished_at_ms: 1_010_000, exit_code: 0 })).state, 'timed_out');
    assert.equal(outcome(facts({ finished_at_ms: 999_000 })).wall_ms, 0, 'podman may stamp start after finish');
  });

  test('cancel, OOM (podman, cgroup, or an unexplained SIGKILL), failure, lost', () => {
    assert.equal(outcome(facts({ exit_code: 143, stop_reason: 'cancel' })).state, 'cancelled');
    for (const f of [{ podman_oom_killed: true }, { cgroup_oom_kills: 1 }, {}]) {
      const o = outcome(facts({ exit_code: 137, ...f }));
      assert.equal(o.state, 'failed');
      assert.ok(o.oom_killed);
      assert.match(o.reason, /out of memory \(limit 64 MiB\)/);
    }
    const child_oom = outcome(facts({ exit_code: 0, cgroup_oom_kills: 1 }));
    assert.deepEqual([child_oom.state, child_oom.oom_killed], ['succeeded', true]);
    assert.equal(outcome(facts({ exit_code: 3 })).reason, 'exit code 3');
    assert.equal(outcome(facts({ exit_code: null })).state, 'failed');
    assert.equal(outcome(facts({ started: false, finished_at_ms: 1_000_000 })).reason, 'container never started');
    const dep = outcome(facts({ kind: 'deployment', max_runtime_ms: null, finished_at_ms: 9_000_000 }));
    assert.deepEqual([dep.state, dep.billed_ms], ['failed', 8_000_000]);
  });
});

describe('tail buffer', () => {
  test('keeps the last max_bytes and says when it dropped some', () => {
    const t = new TailBuffer(10);
    for (const s of ['abc', 'defg', 'hijkl', 'mn']) t.write(Buffer.from(s));
    assert.equal(t.tail().toString(), 'efghijklmn');
    assert.ok(t.truncated);
    assert.equal(t.total_bytes, 14);
    t.write(Buffer.from('0123456789ABC'));
    assert.equal(t.tail().toString(), '3456789ABC');
    const small = new TailBuffer(10);
    small.write(Buffer.from('abc'));
    assert.deepEqual([small.tail().toString(), small.truncated], ['abc', false]);
  });
});
